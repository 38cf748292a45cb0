#include "adapters/prometheus/go_template.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace gma::adapters::prometheus {
namespace {

constexpr std::size_t kMaxSteps = 1'000'000;
/// Execution recurses once per if, range, with, parenthesis and template call it is inside; the
/// parse caps the first four per text at go_template::kMaxDepth, this caps them with the calls,
/// well within a thread's stack (a level takes about half a KiB unoptimised).
constexpr int kMaxExecNesting = 1000;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

const std::set<std::string>& builtins() {
  static const std::set<std::string> k = {
      "and", "or", "not", "len",   "index",  "slice",   "call", "eq", "ne",      "lt",
      "le",  "gt", "ge",  "print", "printf", "println", "html", "js", "urlquery"};
  return k;
}

void append_utf8(std::string& out, std::uint32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = 0xFFFD;
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

/// Decodes one UTF-8 rune at s[i]; returns its length, 0 when the byte is not valid UTF-8.
std::size_t decode_utf8(std::string_view s, std::size_t i, std::uint32_t* r) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  std::uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    v = (v << 6) | (cc & 0x3F);
  }
  if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
      (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *r = v;
  return n;
}

std::size_t rune_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Values

using string_list = std::vector<std::string>;
using string_map = std::map<std::string, std::string>;

struct value {
  enum kind_t { invalid, boolean, integer, floating, string, list, map, root } kind = invalid;
  bool b = false;
  std::int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<const string_list> l;
  std::shared_ptr<const string_map> m;
  const template_data* data = nullptr;  ///< root: the data
  std::string_view root_type;           ///< root: Go's name of its type

  static value of_bool(bool v) {
    value x;
    x.kind = boolean;
    x.b = v;
    return x;
  }
  static value of_int(std::int64_t v) {
    value x;
    x.kind = integer;
    x.i = v;
    return x;
  }
  static value of_float(double v) {
    value x;
    x.kind = floating;
    x.f = v;
    return x;
  }
  static value of_string(std::string v) {
    value x;
    x.kind = string;
    x.s = std::move(v);
    return x;
  }
  static value of(const template_value& v) {
    value x;
    if (const auto* s = std::get_if<std::string>(&v)) return of_string(*s);
    if (const auto* l = std::get_if<string_list>(&v)) {
      x.kind = list;
      x.l = std::shared_ptr<const string_list>(std::shared_ptr<void>{}, l);  // not owning
    } else {
      x.kind = map;
      x.m = std::shared_ptr<const string_map>(std::shared_ptr<void>{}, &std::get<string_map>(v));
    }
    return x;
  }
};

bool truth(const value& v) {
  switch (v.kind) {
    case value::invalid:
      return false;
    case value::boolean:
      return v.b;
    case value::integer:
      return v.i != 0;
    case value::floating:
      return v.f != 0;
    case value::string:
      return !v.s.empty();
    case value::list:
      return !v.l->empty();
    case value::map:
      return !v.m->empty();
    case value::root:
      return true;
  }
  return false;
}

std::string type_name(const value& v) {
  switch (v.kind) {
    case value::invalid:
      return "<nil>";
    case value::boolean:
      return "bool";
    case value::integer:
      return "int";
    case value::floating:
      return "float64";
    case value::string:
      return "string";
    case value::list:
      return "[]string";
    case value::map:
      return "map[string]string";
    case value::root:
      return std::string(v.root_type);
  }
  return "";
}

/// The root's fields in Go's declaration order: prometheus-adapter's queryTemplateArgs, then
/// schema.GroupResource; other names follow, sorted.
std::vector<std::pair<std::string_view, const template_value*>> root_fields(const value& v) {
  static const std::vector<std::string_view> kOrder = {
      "Series",       "LabelMatchers", "LabelValuesByName", "GroupBy",
      "GroupBySlice", "Group",         "Resource"};
  std::vector<std::pair<std::string_view, const template_value*>> out;
  for (const auto& name : kOrder)
    if (const auto it = v.data->find(std::string(name)); it != v.data->end())
      out.emplace_back(name, &it->second);
  for (const auto& [k, x] : *v.data)
    if (std::find(kOrder.begin(), kOrder.end(), k) == kOrder.end()) out.emplace_back(k, &x);
  return out;
}

/// strconv.FormatFloat(f, 'g', -1, 64): the shortest digits that read back as f, in exponent
/// form iff the decimal exponent X < -4 || X >= 6 (the reference, section 8).
std::string go_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const auto e = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e + 1);
  if (exp < -4 || exp >= 6) return sci;
  r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

/// strconv.IsPrint, close enough: control characters, the C1 block, the soft hyphen, the line
/// and paragraph separators and the byte order mark are not printable.
bool is_print(std::uint32_t r) {
  if (r < 0x20 || r == 0x7F) return false;
  if (r >= 0x80 && r < 0xA0) return false;
  return r != 0xAD && r != 0x2028 && r != 0x2029 && r != 0xFEFF && r <= 0x10FFFF;
}

/// strconv.Quote (`q` '"') and QuoteRune (`q` '\''), or their ToASCII forms.
std::string quote(std::string_view s, char q = '"', bool ascii = false) {
  std::string out(1, q);
  static const char* hex = "0123456789abcdef";
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t r = 0;
    const std::size_t n = decode_utf8(s, i, &r);
    if (n == 0) {
      const auto c = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
      continue;
    }
    if (r == static_cast<unsigned char>(q) || r == '\\') {
      out += '\\';
      out += static_cast<char>(r);
    } else if (r < 0x80 && is_print(r)) {
      out += static_cast<char>(r);
    } else if (r >= 0x80 && is_print(r) && !ascii) {
      out.append(s.substr(i, n));
    } else if (r == '\a') {
      out += "\\a";
    } else if (r == '\b') {
      out += "\\b";
    } else if (r == '\f') {
      out += "\\f";
    } else if (r == '\n') {
      out += "\\n";
    } else if (r == '\r') {
      out += "\\r";
    } else if (r == '\t') {
      out += "\\t";
    } else if (r == '\v') {
      out += "\\v";
    } else if (r < 0x20 || r == 0x7F) {
      out += "\\x";
      out += hex[r >> 4];
      out += hex[r & 15];
    } else if (r < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(r));
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(r));
      out += buf;
    }
    i += n;
  }
  out += q;
  return out;
}

/// strconv.CanBackquote: `%#q` prints such a string between backquotes.
bool can_backquote(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t r = 0;
    const std::size_t n = decode_utf8(s, i, &r);
    if (n == 0 || r == 0xFEFF) return false;
    if (n == 1 && ((r < ' ' && r != '\t') || r == '`' || r == 0x7F)) return false;
    i += n;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// fmt: printf's verbs, flags, width, precision and argument indexes, as Go's fmt package.

struct spec {
  bool minus = false, plus = false, sharp = false, zero = false, space = false;
  bool plus_v = false, sharp_v = false;  ///< %+v and %#v
  int width = -1, prec = -1;             ///< -1: not given
  std::uint32_t verb = 'v';
};

std::string verb_text(const spec& sp) {
  std::string s;
  append_utf8(s, sp.verb);
  return s;
}

/// fmt's padding to the width, in runes: zeros on the left with the 0 flag, spaces otherwise.
std::string pad(std::string s, const spec& sp) {
  const auto n = rune_count(s);
  if (sp.width < 0 || n >= static_cast<std::size_t>(sp.width)) return s;
  const std::size_t fill = static_cast<std::size_t>(sp.width) - n;
  if (sp.minus) return s + std::string(fill, ' ');
  return std::string(fill, sp.zero ? '0' : ' ') + s;
}

std::string fmt_value(const spec& sp, const value& v);

/// `%!d(string=x)`: a verb that does not suit the value.
std::string bad_verb(const spec& sp, const value& v) {
  if (v.kind == value::invalid) return "%!" + verb_text(sp) + "(<nil>)";
  return "%!" + verb_text(sp) + "(" + type_name(v) + "=" + fmt_value(spec{}, v) + ")";
}

/// fmtInteger: the precision (or, with the 0 flag, the width) is a minimum number of digits;
/// `#` adds 0x, 0 or 0b.
std::string fmt_int(const spec& sp, std::int64_t i) {
  const bool neg = i < 0;
  const std::uint64_t u = neg ? 0 - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
  int base = 10;
  const char* digits = "0123456789abcdef";
  switch (sp.verb) {
    case 'x':
      base = 16;
      break;
    case 'X':
      base = 16;
      digits = "0123456789ABCDEF";
      break;
    case 'o':
    case 'O':
      base = 8;
      break;
    case 'b':
      base = 2;
      break;
    default:
      break;
  }
  int prec = 0;
  if (sp.prec >= 0) {
    prec = sp.prec;
    if (prec == 0 && u == 0) {
      spec p = sp;
      p.zero = false;
      return pad("", p);
    }
  } else if (sp.zero && sp.width >= 0) {
    prec = sp.width;
    if (neg || sp.plus || sp.space) --prec;
  }
  std::string d;
  for (std::uint64_t x = u; x > 0; x /= static_cast<unsigned>(base)) d += digits[x % base];
  if (d.empty()) d = "0";
  while (static_cast<int>(d.size()) < prec) d += '0';
  if (sp.sharp) {
    if (base == 2) d += "b0";
    if (base == 8 && d.back() != '0') d += '0';
    if (base == 16) d += sp.verb == 'X' ? "X0" : "x0";
  }
  if (sp.verb == 'O') d += "o0";
  if (neg)
    d += '-';
  else if (sp.plus)
    d += '+';
  else if (sp.space)
    d += ' ';
  std::reverse(d.begin(), d.end());
  spec p = sp;
  p.zero = false;
  return pad(std::move(d), p);
}

/// strconv's 'x' format: -0x1.yyyyp±dd, the fraction shortest or rounded to `prec` hex digits.
std::string hex_float(double f, int prec, bool upper) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &f, sizeof bits);
  const bool neg = (bits >> 63) != 0;
  int exp = static_cast<int>((bits >> 52) & 0x7FF);
  std::uint64_t mant = bits & ((std::uint64_t{1} << 52) - 1);
  if (exp == 0)
    exp = 1;  // subnormal
  else
    mant |= std::uint64_t{1} << 52;
  exp -= 1023;
  if (mant == 0) exp = 0;
  // The leading 1 at bit 60, fifteen hex digits of fraction below it.
  mant <<= 8;
  while (mant != 0 && (mant & (std::uint64_t{1} << 60)) == 0) {
    mant <<= 1;
    --exp;
  }
  if (prec >= 0 && prec < 15) {  // round half to even at `prec` digits
    const unsigned shift = static_cast<unsigned>(prec) * 4;
    const std::uint64_t rest = (mant << shift) & ((std::uint64_t{1} << 60) - 1);
    mant >>= 60 - shift;
    if ((rest | (mant & 1)) > (std::uint64_t{1} << 59)) ++mant;
    mant <<= 60 - shift;
    if (mant & (std::uint64_t{1} << 61)) {
      mant >>= 1;
      ++exp;
    }
  }
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out = neg ? "-" : "+";
  out += upper ? "0X" : "0x";
  out += static_cast<char>('0' + ((mant >> 60) & 1));
  mant <<= 4;
  if ((prec < 0 && mant != 0) || prec > 0) {
    out += '.';
    for (int k = 0; prec < 0 ? mant != 0 : k < prec; ++k) {
      out += hex[(mant >> 60) & 15];
      mant <<= 4;
    }
  }
  out += upper ? 'P' : 'p';
  out += exp < 0 ? '-' : '+';
  const std::string e = std::to_string(exp < 0 ? -exp : exp);
  if (e.size() < 2) out += '0';
  return out + e;
}

/// The digits of a float with their sign ("+1.5", "-0x1p+00", "+Inf"), as strconv writes them.
std::string float_digits(double f, char verb, int prec) {
  if (std::isnan(f)) return "+NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  if (verb == 'x' || verb == 'X') return hex_float(f, prec, verb == 'X');
  if (verb == 'b') {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    int exp = static_cast<int>((bits >> 52) & 0x7FF);
    std::uint64_t mant = bits & ((std::uint64_t{1} << 52) - 1);
    if (exp == 0)
      exp = 1;
    else
      mant |= std::uint64_t{1} << 52;
    exp -= 1023 + 52;
    return std::string((bits >> 63) ? "-" : "+") + std::to_string(mant) + "p" +
           (exp >= 0 ? "+" : "") + std::to_string(exp);
  }
  std::string s;
  if (prec < 0) {  // only g and G: the shortest form
    s = go_float(f);
    if (verb == 'G') std::replace(s.begin(), s.end(), 'e', 'E');
  } else {
    const char format[] = {'%', '.', '*', verb == 'F' ? 'f' : verb, '\0'};
    const int n = std::snprintf(nullptr, 0, format, prec, f);
    s.resize(static_cast<std::size_t>(std::max(n, 0)) + 1);
    std::snprintf(s.data(), s.size(), format, prec, f);
    s.pop_back();
  }
  return s[0] == '-' ? s : "+" + s;
}

/// fmtFloat: sign, `#` (keep the point and, for g and x, the digits up to the precision),
/// infinities never zero-padded.
std::string fmt_float(const spec& sp, double f) {
  char verb = static_cast<char>(sp.verb == 'v' ? 'g' : sp.verb);
  int prec = sp.prec;
  if (prec < 0 && (verb == 'e' || verb == 'E' || verb == 'f' || verb == 'F')) prec = 6;
  std::string num = float_digits(f, verb, prec);
  if (sp.space && num[0] == '+' && !sp.plus) num[0] = ' ';
  if (num[1] == 'I' || num[1] == 'N') {
    if (num[1] == 'N' && !sp.space && !sp.plus) num.erase(0, 1);
    spec p = sp;
    p.zero = false;
    return pad(std::move(num), p);
  }
  if (sp.sharp && verb != 'b') {
    int digits = 0;
    if (verb == 'g' || verb == 'G' || verb == 'x') digits = prec < 0 ? 6 : prec;
    std::string tail;
    bool point = false, nonzero = false;
    for (std::size_t k = 1; k < num.size(); ++k) {
      const char c = num[k];
      if (c == '.') {
        point = true;
      } else if (c == 'p' || c == 'P' || ((c == 'e' || c == 'E') && verb != 'x' && verb != 'X')) {
        tail = num.substr(k);
        num.resize(k);
        break;
      } else {
        if (c != '0') nonzero = true;
        if (nonzero) --digits;
      }
    }
    if (!point) {
      if (num.size() == 2 && num[1] == '0') --digits;
      num += '.';
    }
    if (digits > 0) num.append(static_cast<std::size_t>(digits), '0');
    num += tail;
  }
  if (sp.plus || num[0] != '+') {
    if (sp.zero && sp.width > static_cast<int>(num.size())) {
      spec p = sp;
      --p.width;
      return num[0] + pad(num.substr(1), p);
    }
    return pad(std::move(num), sp);
  }
  return pad(num.substr(1), sp);
}

/// fmtSbx: the bytes of a string in hex, `% x` spaced, `%#x` with 0x.
std::string hex_string(const spec& sp, std::string_view s) {
  const char* digits = sp.verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  const std::size_t length = sp.prec >= 0 ? std::min(s.size(), std::size_t(sp.prec)) : s.size();
  std::string out;
  for (std::size_t k = 0; k < length; ++k) {
    if (sp.sharp && (k == 0 || sp.space)) out += sp.verb == 'X' ? "0X" : "0x";
    const auto u = static_cast<unsigned char>(s[k]);
    out += digits[u >> 4];
    out += digits[u & 15];
    if (sp.space && k + 1 < length) out += ' ';
  }
  return pad(std::move(out), sp);
}

std::string fmt_string(const spec& sp, const std::string& s) {
  std::string t = s;
  if (sp.prec >= 0 && sp.verb != 'x' && sp.verb != 'X') {
    std::size_t runes = 0, at = 0;
    while (at < t.size() && runes < static_cast<std::size_t>(sp.prec)) {
      ++at;
      while (at < t.size() && (static_cast<unsigned char>(t[at]) & 0xC0) == 0x80) ++at;
      ++runes;
    }
    t.resize(at);
  }
  switch (sp.verb) {
    case 'v':
      if (sp.sharp_v) return pad(quote(t), sp);
      return pad(std::move(t), sp);
    case 's':
      return pad(std::move(t), sp);
    case 'q':
      if (sp.sharp && can_backquote(t)) return pad("`" + t + "`", sp);
      return pad(quote(t, '"', sp.plus), sp);
    case 'x':
    case 'X':
      return hex_string(sp, t);
    default:
      return bad_verb(sp, value::of_string(s));
  }
}

/// %c, %q, %U of an integer, a rune; fmtC, fmtQc, fmtUnicode.
std::string fmt_rune(const spec& sp, std::int64_t i) {
  const auto u = static_cast<std::uint64_t>(i);
  const std::uint32_t r = u > 0x10FFFF ? 0xFFFD : static_cast<std::uint32_t>(u);
  std::string s;
  if (sp.verb == 'U') {
    for (std::uint64_t x = u; x > 0; x /= 16) s.insert(s.begin(), "0123456789ABCDEF"[x % 16]);
    if (static_cast<int>(s.size()) < std::max(sp.prec, 4))
      s.insert(0, static_cast<std::size_t>(std::max(sp.prec, 4)) - s.size(), '0');
    s.insert(0, "U+");
    if (sp.sharp && u <= 0x10FFFF && is_print(r)) {
      s += " '";
      append_utf8(s, r);
      s += "'";
    }
    spec p = sp;
    p.zero = false;
    return pad(std::move(s), p);
  }
  append_utf8(s, r);
  return pad(sp.verb == 'q' ? quote(s, '\'', sp.plus) : s, sp);
}

/// One argument with one verb, as fmt's printArg and printValue (elements of slices, maps and
/// struct fields take the same verb; `%#v` is Go syntax; `%+v` names struct fields).
std::string fmt_value(const spec& sp, const value& v) {
  if (sp.verb == 'T') return pad(type_name(v), sp);
  switch (v.kind) {
    case value::invalid:
      if (sp.verb == 'v') return pad("<nil>", sp);
      return bad_verb(sp, v);
    case value::boolean:
      if (sp.verb == 'v' || sp.verb == 't') return pad(v.b ? "true" : "false", sp);
      return bad_verb(sp, v);
    case value::integer:
      switch (sp.verb) {
        case 'v':
        case 'd':
        case 'x':
        case 'X':
        case 'o':
        case 'O':
        case 'b':
          return fmt_int(sp, v.i);
        case 'c':
        case 'q':
        case 'U':
          return fmt_rune(sp, v.i);
        default:
          return bad_verb(sp, v);
      }
    case value::floating:
      switch (sp.verb) {
        case 'v':
        case 'b':
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
        case 'x':
        case 'X':
          return fmt_float(sp, v.f);
        default:
          return bad_verb(sp, v);
      }
    case value::string:
      return fmt_string(sp, v.s);
    case value::list: {
      std::string out = sp.sharp_v ? "[]string{" : "[";
      for (std::size_t k = 0; k < v.l->size() && out.size() <= go_template::kMaxOutput; ++k)
        out += (k ? sp.sharp_v ? ", " : " " : "") + fmt_value(sp, value::of_string((*v.l)[k]));
      return out + (sp.sharp_v ? "}" : "]");
    }
    case value::map: {
      std::string out = sp.sharp_v ? "map[string]string{" : "map[";
      bool first = true;
      for (const auto& [k, x] : *v.m) {
        if (out.size() > go_template::kMaxOutput) break;
        out += (first        ? ""
                : sp.sharp_v ? ", "
                             : " ") +
               fmt_value(sp, value::of_string(k)) + ":" + fmt_value(sp, value::of_string(x));
        first = false;
      }
      return out + (sp.sharp_v ? "}" : "]");
    }
    case value::root: {
      std::string out = sp.sharp_v ? std::string(v.root_type) + "{" : "{";
      bool first = true;
      for (const auto& [name, x] : root_fields(v)) {
        out += first ? "" : sp.sharp_v ? ", " : " ";
        if (sp.sharp_v || sp.plus_v) out += std::string(name) + ":";
        out += fmt_value(sp, value::of(*x));
        first = false;
      }
      return out + "}";
    }
  }
  return "";
}

/// fmt's %v of one value, as `<<pipeline>>` prints it (an invalid value is `<no value>`).
std::string print_value(const value& v) {
  if (v.kind == value::invalid) return "<no value>";
  return fmt_value(spec{}, v);
}

/// fmt.Sprint: a space between operands when neither is a string.
std::string sprint(const std::vector<value>& args) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && args[i].kind != value::string && args[i - 1].kind != value::string) out += ' ';
    out += fmt_value(spec{}, args[i]);
  }
  return out;
}

std::string sprintln(const std::vector<value>& args) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) out += (i ? " " : "") + fmt_value(spec{}, args[i]);
  return out + "\n";
}

/// fmt's parsenum: a number from s[i] on; past 10^6 it gives up and the directive ends there.
bool parse_num(std::string_view s, std::size_t& i, int* n) {
  if (i >= s.size() || !is_digit(s[i])) return false;
  int v = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (v > 1'000'000) {
      i = s.size();
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  *n = v;
  return true;
}

/// fmt.Sprintf. nullopt when the result would exceed go_template::kMaxOutput.
std::optional<std::string> sprintf(std::string_view format, const std::vector<value>& args) {
  std::string out;
  std::size_t arg = 0;
  bool reordered = false;
  const std::size_t end = format.size();
  for (std::size_t i = 0; i < end;) {
    if (out.size() > go_template::kMaxOutput) return std::nullopt;
    const std::size_t literal = i;
    while (i < end && format[i] != '%') ++i;
    out.append(format.substr(literal, i - literal));
    if (i >= end) break;
    ++i;
    spec sp;
    for (; i < end; ++i) {
      const char c = format[i];
      if (c == '#') {
        sp.sharp = true;
      } else if (c == '0') {
        sp.zero = !sp.minus;
      } else if (c == '+') {
        sp.plus = true;
      } else if (c == '-') {
        sp.minus = true;
        sp.zero = false;
      } else if (c == ' ') {
        sp.space = true;
      } else {
        break;
      }
    }
    bool good_index = true, after_index = false;
    // An argument index, [n]: the next verb (or * width) takes argument n, and the following
    // ones n+1, ...
    const auto index = [&] {
      after_index = false;
      if (i >= end || format[i] != '[') return;
      reordered = true;
      const auto close = format.find(']', i + 1);
      std::size_t from = i + 1;
      int n = 0;
      if (close == std::string_view::npos || format.size() - i < 3) {
        good_index = false;
        ++i;
        return;
      }
      const std::string_view inside = format.substr(0, close);
      const bool ok = parse_num(inside, from, &n) && from == close;
      i = close + 1;
      if (ok && n >= 1 && static_cast<std::size_t>(n) <= args.size()) {
        arg = static_cast<std::size_t>(n - 1);
        after_index = true;
        return;
      }
      good_index = false;
      after_index = ok;
    };
    // A `*` takes its number from an int argument (within ±10^6).
    const auto star = [&](int* target) {
      if (arg >= args.size()) return false;
      const value& a = args[arg++];
      if (a.kind != value::integer || a.i > 1'000'000 || a.i < -1'000'000) return false;
      *target = static_cast<int>(a.i);
      return true;
    };
    index();
    if (i < end && format[i] == '*') {
      ++i;
      if (!star(&sp.width)) {
        sp.width = -1;
        out += "%!(BADWIDTH)";
      } else if (sp.width < 0) {
        sp.width = -sp.width;
        sp.minus = true;
        sp.zero = false;
      }
      after_index = false;
    } else if (parse_num(format, i, &sp.width) && after_index) {
      good_index = false;
    }
    if (i + 1 < end && format[i] == '.') {
      ++i;
      if (after_index) good_index = false;
      index();
      if (i < end && format[i] == '*') {
        ++i;
        if (!star(&sp.prec)) {
          sp.prec = -1;
          out += "%!(BADPREC)";
        } else if (sp.prec < 0) {
          sp.prec = -1;
          out += "%!(BADPREC)";
        }
        after_index = false;
      } else if (!parse_num(format, i, &sp.prec)) {
        sp.prec = 0;
      }
    }
    if (!after_index) index();
    if (i >= end) {
      out += "%!(NOVERB)";
      break;
    }
    std::uint32_t r = 0;
    std::size_t n = decode_utf8(format, i, &r);
    if (n == 0) n = 1, r = 0xFFFD;
    i += n;
    sp.verb = r;
    if (r == '%') {
      out += '%';
    } else if (!good_index) {
      out += "%!" + verb_text(sp) + "(BADINDEX)";
    } else if (arg >= args.size()) {
      out += "%!" + verb_text(sp) + "(MISSING)";
    } else {
      if (r == 'v') {
        sp.sharp_v = std::exchange(sp.sharp, false);
        sp.plus_v = std::exchange(sp.plus, false);
      }
      out += fmt_value(sp, args[arg++]);
    }
  }
  if (!reordered && arg < args.size()) {
    out += "%!(EXTRA ";
    for (std::size_t k = arg; k < args.size(); ++k) {
      if (k > arg) out += ", ";
      out += args[k].kind == value::invalid ? "<nil>"
                                            : type_name(args[k]) + "=" + fmt_value(spec{}, args[k]);
    }
    out += ")";
  }
  if (out.size() > go_template::kMaxOutput) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Escapers

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\0':
        out += "\xEF\xBF\xBD";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string js_escape(std::string_view s) {
  std::string out;
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\'':
          out += "\\'";
          break;
        case '"':
          out += "\\\"";
          break;
        case '<':
          out += "\\u003C";
          break;
        case '>':
          out += "\\u003E";
          break;
        case '&':
          out += "\\u0026";
          break;
        case '=':
          out += "\\u003D";
          break;
        default:
          if (u < 0x20) {
            std::snprintf(buf, sizeof buf, "\\u%04X", u);
            out += buf;
          } else {
            out += c;
          }
      }
      ++i;
      continue;
    }
    std::uint32_t r = 0;
    const std::size_t n = decode_utf8(s, i, &r);
    if (n == 0) {
      out += "\\uFFFD";
      ++i;
      continue;
    }
    if (r < 0xA0 || r == 0xAD || r == 0x2028 || r == 0x2029 || r == 0xFEFF) {
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(r));
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string query_escape(std::string_view s) {
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The parsed program: flat pools indexed by int, no owning pointers.

/// Where an error points: a line, Go's column (bytes from the start of the line, from 0) and
/// the source of the node, for execution errors ("at <index .GroupBySlice 9>").
struct site {
  int line = 0, col = 0;
  std::string src;
};

struct operand : site {
  enum kind_t { field, variable, dot, func, str, integer, floating, boolean, nil, paren } kind;
  std::string name;  ///< variable ("$x"), function or string constant
  std::vector<std::string> chain;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;
  bool overflows = false;  ///< an integer in uint64 but not int64 range: Go's "overflows int"
  int pipe = -1;
};

struct command : site {
  std::vector<operand> args;
};

struct pipeline {
  std::vector<std::string> decl;
  bool assign = false;
  std::vector<command> cmds;
};

struct node : site {
  enum kind_t { literal, action, if_, range, with, break_, continue_, template_ } kind;
  std::string text;        ///< literal: the text; template_: the name
  std::vector<int> pipes;  ///< the action's pipeline; if's conditions; range's, with's, template's
  std::vector<int> lists;  ///< the bodies, one a pipe
  int else_list = -1;
};

}  // namespace

struct go_template::program {
  std::vector<node> nodes;
  std::vector<std::vector<int>> lists;
  std::vector<pipeline> pipes;
  int root = -1;
  std::map<std::string, int> templates;  ///< define and block, and the template itself: a list
  std::set<std::string> fields;
  std::string name;
  std::string root_type;                               ///< Go's name of the data's type
  std::set<std::pair<std::string, std::string>> used;  ///< (field, key or "*")
  bool whole = false;  ///< the data itself is used, not only named fields
};

namespace {

using program = go_template::program;

/// "name:line:col", as Go's ErrorContext; without a name, "line:col".
std::string location(const std::string& name, int line, int col) {
  return (name.empty() ? "" : name + ":") + std::to_string(line) + ":" + std::to_string(col);
}

// ---------------------------------------------------------------------------------------------
// Lexer

struct token {
  enum kind_t {
    field,
    variable,
    dot,
    ident,
    str,
    number,
    lparen,
    rparen,
    pipe,
    declare,
    assign,
    chr,   ///< any other printable ASCII character (`,` separates range variables)
    error  ///< what the lexer could not read, reported when the parser gets there (as Go's)
  } kind;
  std::string val;  ///< the name, the decoded string, or the number's text
  int line = 0, col = 0;
  bool spaced = false;           ///< white space before it
  std::size_t pos = 0, end = 0;  ///< its bytes in the text
};

struct item {
  bool is_text = true;
  std::string text;
  std::vector<token> toks;
  int line = 0, col = 0;
  std::size_t end = 0;  ///< the action's closing delimiter
};

struct parse_error {
  int line, col;
  std::string what;
};

class lexer {
 public:
  explicit lexer(std::string_view text) : text_(text) {
    starts_.push_back(0);
    for (std::size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') starts_.push_back(i + 1);
  }

  /// The line (from 1) and Go's column (bytes from the line's start, from 0) of a position.
  std::pair<int, int> at(std::size_t pos) const {
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), pos);
    const std::size_t line = static_cast<std::size_t>(it - starts_.begin());
    return {static_cast<int>(line), static_cast<int>(pos - starts_[line - 1])};
  }

  [[noreturn]] void fail(std::size_t pos, std::string what) const {
    const auto [l, c] = at(pos);
    throw parse_error{l, c, std::move(what)};
  }

  /// The items of the text. Lexing stops at the first error, which becomes the last token of
  /// the last action: the parser reports it when it gets there, so that an earlier mistake
  /// (`<<.Series>` is an unexpected ">") is named first, as Go's parser, which pulls tokens
  /// from a concurrent lexer, names it.
  std::vector<item> run() {
    std::vector<item> items;
    item a;
    try {
      lex(items, a);
    } catch (const parse_error& e) {
      a.toks.push_back({token::error, e.what, e.line, e.col, true});
      items.push_back(std::move(a));
    }
    return items;
  }

 private:
  void lex(std::vector<item>& items, item& a) {
    std::size_t pos = 0;
    const std::size_t n = text_.size();
    bool trim_next = false;
    while (pos < n) {
      const auto open = text_.find("<<", pos);
      std::string lit(text_.substr(pos, open == std::string_view::npos ? n - pos : open - pos));
      if (trim_next) {
        std::size_t k = 0;
        while (k < lit.size() && is_space(lit[k])) ++k;
        lit.erase(0, k);
        trim_next = false;
      }
      if (open == std::string_view::npos) {
        const auto [l, c] = at(pos);
        if (!lit.empty()) items.push_back({true, std::move(lit), {}, l, c});
        break;
      }
      std::size_t p = open + 2;
      if (p + 1 < n && text_[p] == '-' && is_space(text_[p + 1])) {
        while (!lit.empty() && is_space(lit.back())) lit.pop_back();
        p += 2;
      }
      if (!lit.empty()) {
        const auto [l, c] = at(pos);
        items.push_back({true, std::move(lit), {}, l, c});
      }
      a = item{};
      a.is_text = false;
      std::tie(a.line, a.col) = at(open);
      if (text_.substr(p, 2) == "/*") {
        const auto end = text_.find("*/", p + 2);
        if (end == std::string_view::npos) fail(open, "unclosed comment");
        const std::size_t q = end + 2;
        if (text_.substr(q, 2) == ">>") {
          pos = q + 2;
        } else if (q + 3 < n + 0 && is_space(text_[q]) && text_.substr(q + 1, 3) == "->>") {
          pos = q + 4;
          trim_next = true;
        } else {
          fail(q, "comment ends before closing delimiter");
        }
        continue;
      }
      pos = action(p, open, a.toks, &trim_next);
      a.end = pos;
      items.push_back(std::move(a));
    }
  }

  /// Lexes the action from `p`; returns the position after its closing delimiter.
  std::size_t action(std::size_t p, std::size_t open, std::vector<token>& toks, bool* trim) {
    const std::size_t n = text_.size();
    bool spaced = false;
    int parens = 0;
    const auto push = [&](token::kind_t k, std::string val, std::size_t start) {
      token t{k, std::move(val), 0, 0, spaced, start, p};
      std::tie(t.line, t.col) = at(start);
      toks.push_back(std::move(t));
      spaced = false;
    };
    const auto closing = [&] {
      if (parens > 0) fail(p, "unclosed left paren");
    };
    while (true) {
      if (p >= n) fail(open, "unclosed action");
      const char c = text_[p];
      if (is_space(c)) {
        if (text_.substr(p + 1, 3) == "->>") {
          closing();
          *trim = true;
          return p + 4;
        }
        spaced = true;
        ++p;
        continue;
      }
      if (text_.substr(p, 2) == ">>") {
        closing();
        return p + 2;
      }
      const std::size_t start = p;
      if (c == '"') {
        std::string s;
        ++p;
        while (true) {
          if (p >= n || text_[p] == '\n') fail(start, "unterminated quoted string");
          if (text_[p] == '"') break;
          if (text_[p] == '\\') {
            p = escape(p, '"', s);
          } else {
            s += text_[p++];
          }
        }
        ++p;
        push(token::str, std::move(s), start);
      } else if (c == '`') {
        const auto end = text_.find('`', p + 1);
        if (end == std::string_view::npos) fail(start, "unterminated raw quoted string");
        std::string s;
        for (char ch : text_.substr(p + 1, end - p - 1))
          if (ch != '\r') s += ch;
        p = end + 1;
        push(token::str, std::move(s), start);
      } else if (c == '\'') {
        std::string s;
        ++p;
        while (true) {
          if (p >= n || text_[p] == '\n') fail(start, "unterminated character constant");
          if (text_[p] == '\'') break;
          if (text_[p] == '\\') {
            p = escape(p, '\'', s);
          } else {
            s += text_[p++];
          }
        }
        ++p;
        std::uint32_t r = 0;
        const std::size_t len = s.empty() ? 0 : decode_utf8(s, 0, &r);
        if (s.empty() || len != s.size()) {
          if (s.size() == 1)
            r = static_cast<unsigned char>(s[0]);
          else
            fail(start,
                 "malformed character constant: " + std::string(text_.substr(start, p - start)));
        }
        push(token::number, std::to_string(r), start);
      } else if (is_digit(c) || c == '-' || c == '+' ||
                 (c == '.' && p + 1 < n && is_digit(text_[p + 1]))) {
        ++p;
        while (p < n) {
          const char d = text_[p];
          if (is_alnum(d) || d == '.') {
            ++p;
          } else if ((d == '+' || d == '-') && (text_[p - 1] == 'e' || text_[p - 1] == 'E' ||
                                                text_[p - 1] == 'p' || text_[p - 1] == 'P')) {
            ++p;
          } else {
            break;
          }
        }
        push(token::number, std::string(text_.substr(start, p - start)), start);
      } else if (c == '.' && p + 1 < n && is_alnum(text_[p + 1])) {
        ++p;
        while (p < n && is_alnum(text_[p])) ++p;
        push(token::field, std::string(text_.substr(start + 1, p - start - 1)), start);
      } else if (c == '.') {
        ++p;
        push(token::dot, ".", start);
      } else if (c == '$') {
        ++p;
        while (p < n && is_alnum(text_[p])) ++p;
        push(token::variable, std::string(text_.substr(start, p - start)), start);
      } else if (is_alnum(c)) {
        while (p < n && is_alnum(text_[p])) ++p;
        push(token::ident, std::string(text_.substr(start, p - start)), start);
      } else if (c == '(') {
        ++p;
        ++parens;
        push(token::lparen, "(", start);
      } else if (c == ')') {
        if (--parens < 0) fail(p, "unexpected right paren");
        ++p;
        push(token::rparen, ")", start);
      } else if (c == '|') {
        ++p;
        push(token::pipe, "|", start);
      } else if (c == ':') {
        if (p + 1 >= n || text_[p + 1] != '=') fail(p, "expected :=");
        p += 2;
        push(token::declare, ":=", start);
      } else if (c == '=') {
        ++p;
        push(token::assign, "=", start);
      } else if (c > ' ' && c < 0x7F) {
        ++p;
        push(token::chr, std::string(1, c), start);
      } else {
        char buf[16];
        std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned char>(c));
        fail(p, std::string("unrecognized character in action: ") + buf);
      }
    }
  }

  /// Decodes the escape at text_[p] == '\\' into `out`; returns the position after it.
  std::size_t escape(std::size_t p, char quote_char, std::string& out) const {
    const std::size_t n = text_.size();
    if (p + 1 >= n) fail(p, "unterminated quoted string");
    const char c = text_[p + 1];
    const auto hex = [&](std::size_t from, int digits) -> std::uint32_t {
      std::uint32_t v = 0;
      for (int k = 0; k < digits; ++k) {
        if (from + k >= n || !std::isxdigit(static_cast<unsigned char>(text_[from + k])))
          fail(p, "invalid syntax in escape sequence");
        const char h = text_[from + k];
        v = v * 16 +
            static_cast<std::uint32_t>(is_digit(h) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      return v;
    };
    switch (c) {
      case 'a':
        out += '\a';
        return p + 2;
      case 'b':
        out += '\b';
        return p + 2;
      case 'f':
        out += '\f';
        return p + 2;
      case 'n':
        out += '\n';
        return p + 2;
      case 'r':
        out += '\r';
        return p + 2;
      case 't':
        out += '\t';
        return p + 2;
      case 'v':
        out += '\v';
        return p + 2;
      case '\\':
        out += '\\';
        return p + 2;
      case 'x':
        out += static_cast<char>(hex(p + 2, 2));
        return p + 4;
      case 'u':
        append_utf8(out, hex(p + 2, 4));
        return p + 6;
      case 'U':
        append_utf8(out, hex(p + 2, 8));
        return p + 10;
      default:
        if (c == quote_char) {
          out += c;
          return p + 2;
        }
        if (c >= '0' && c <= '7') {
          std::uint32_t v = 0;
          for (int k = 0; k < 3; ++k) {
            if (p + 1 + k >= n || text_[p + 1 + k] < '0' || text_[p + 1 + k] > '7')
              fail(p, "invalid syntax in escape sequence");
            v = v * 8 + static_cast<std::uint32_t>(text_[p + 1 + k] - '0');
          }
          if (v > 255) fail(p, "invalid syntax in escape sequence");
          out += static_cast<char>(v);
          return p + 4;
        }
        fail(p, "unknown escape sequence");
    }
  }

  std::string_view text_;
  std::vector<std::size_t> starts_;
};

/// A Go number constant, as text/template's parse.NumberNode reads it: an int when it has no
/// '.', exponent or 'p' (hex digits aside); a float64 otherwise. `error` says why not.
std::optional<value> parse_number(const std::string& text, bool* overflows, std::string* error) {
  std::string t;
  for (char c : text)
    if (c != '_') t += c;
  bool neg = false;
  std::string digits = t;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    neg = digits[0] == '-';
    digits.erase(0, 1);
  }
  const bool hex = digits.size() > 1 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
  if (!digits.empty() && (digits.back() == 'i')) {
    *error = "complex number constants are not supported: \"" + text + "\"";
    return std::nullopt;
  }
  const bool looks_float = hex ? digits.find_first_of(".pP") != std::string::npos
                               : digits.find_first_of(".eE") != std::string::npos;
  if (!looks_float && !digits.empty() && is_digit(digits[0])) {
    int base = 10;
    std::size_t from = 0;
    if (hex) {
      base = 16;
      from = 2;
    } else if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
      base = 2;
      from = 2;
    } else if (digits.size() > 1 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
      base = 8;
      from = 2;
    } else if (digits.size() > 1 && digits[0] == '0') {
      base = 8;
      from = 1;
    }
    std::uint64_t u = 0;
    const auto r = std::from_chars(digits.data() + from, digits.data() + digits.size(), u, base);
    if (from < digits.size() && r.ptr == digits.data() + digits.size()) {
      if (r.ec == std::errc::result_out_of_range) {
        *error = "integer overflow: \"" + text + "\"";
        return std::nullopt;
      }
      if (u > static_cast<std::uint64_t>(INT64_MAX) + (neg ? 1 : 0)) {
        // ParseUint takes it, ParseInt does not: an exec error where it is used.
        if (neg) {
          *error = "integer overflow: \"" + text + "\"";
          return std::nullopt;
        }
        *overflows = true;
        return value::of_int(0);
      }
      return value::of_int(neg ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u));
    }
  }
  // ParseFloat; an integer it takes but ParseInt did not is too large. A hexadecimal mantissa
  // needs a p exponent.
  if (t.empty() || t.find_first_of("nNiI") != std::string::npos ||
      (hex && digits.find_first_of("pP") == std::string::npos)) {
    *error = "illegal number syntax: \"" + text + "\"";
    return std::nullopt;
  }
  char* end = nullptr;
  const double d = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) {
    *error = "bad number syntax: \"" + text + "\"";
    return std::nullopt;
  }
  if (std::isfinite(d)) {  // an underflow is 0, as ParseFloat's
    if (!looks_float) {
      *error = "integer overflow: \"" + text + "\"";
      return std::nullopt;
    }
    return value::of_float(d);
  }
  *error = "illegal number syntax: \"" + text + "\"";
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent whose depth is capped at go_template::kMaxDepth.

/// unicode.IsSpace, for Go's "empty template" (a definition of only white space).
bool is_blank(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::uint32_t r = 0;
    const std::size_t n = decode_utf8(s, i, &r);
    if (n == 0) return false;
    const bool space = (r >= '\t' && r <= '\r') || r == ' ' || r == 0x85 || r == 0xA0 ||
                       r == 0x1680 || (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 ||
                       r == 0x202F || r == 0x205F || r == 0x3000;
    if (!space) return false;
    i += n;
  }
  return true;
}

bool is_keyword(std::string_view w) {
  return w == "if" || w == "else" || w == "end" || w == "range" || w == "with" || w == "break" ||
         w == "continue" || w == "define" || w == "template" || w == "block";
}

class parser {
 public:
  parser(const lexer& lex, std::vector<item> items, program& p, std::string_view text)
      : lex_(lex), items_(std::move(items)), p_(p), text_(text) {
    vars_.push_back({"$", true});
  }

  void run() {
    std::string stop;
    const int top = list(&stop, true);
    if (!stop.empty()) fail_at(last_, "unexpected {{" + stop + "}}");
    // The text is the template of its own name; a definition of that name stands in for a text
    // that is only white space, as in Go.
    add_template(p_.name, top, last_);
    p_.root = p_.templates.at(p_.name);
  }

 private:
  struct var {
    std::string name;
    bool rootish;  ///< may hold the data itself
  };

  [[noreturn]] void fail_at(const token& t, std::string what) const {
    throw parse_error{t.line, t.col, std::move(what)};
  }
  [[noreturn]] void fail_item(std::string what) const {
    const auto& it = items_[std::min(it_, items_.size() - 1)];
    throw parse_error{it.line, it.col, std::move(what)};
  }

  bool more() const { return tk_ < items_[it_].toks.size(); }
  const token& peek(std::size_t ahead = 0) const {
    static const token none{token::chr, "", 0, 0, false};
    const auto& toks = items_[it_].toks;
    return tk_ + ahead < toks.size() ? toks[tk_ + ahead] : none;
  }
  bool peek_is(token::kind_t k, std::size_t ahead = 0) const {
    return tk_ + ahead < items_[it_].toks.size() && items_[it_].toks[tk_ + ahead].kind == k;
  }
  bool peek_chr(char c, std::size_t ahead = 0) const {
    return peek_is(token::chr, ahead) && peek(ahead).val[0] == c;
  }
  const token& next() {
    last_ = items_[it_].toks[tk_++];
    return last_;
  }

  /// The next token as Go's errors name it (`"x"`, `<if>`), or the action's closing delimiter.
  token upcoming() const {
    if (more()) return peek();
    const std::size_t end = items_[it_].end;
    token t{token::chr, ">>", 0, 0, false, end >= 2 ? end - 2 : 0, end};
    std::tie(t.line, t.col) = lex_.at(t.pos);
    return t;
  }
  std::string describe(const token& t) const {
    if (t.kind == token::dot) return "<.>";
    if (t.kind == token::ident && (is_keyword(t.val) || t.val == "nil")) return "<" + t.val + ">";
    const std::string_view raw = t.pos < t.end ? text_.substr(t.pos, t.end - t.pos) : t.val;
    if (rune_count(raw) <= 10) return quote(raw);
    std::size_t at = 0;
    for (int runes = 0; runes < 10; ++runes) {
      ++at;
      while (at < raw.size() && (static_cast<unsigned char>(raw[at]) & 0xC0) == 0x80) ++at;
    }
    return quote(raw.substr(0, at)) + "...";
  }
  [[noreturn]] void unexpected(const std::string& context) const {
    const token t = upcoming();
    if (t.kind == token::error) fail_at(t, t.val);
    fail_at(t, "unexpected " + describe(t) + " in " + context);
  }
  void expect_end(const std::string& context) {
    if (more()) unexpected(context);
  }

  void enter(const token& t) {
    if (++depth_ > go_template::kMaxDepth)
      fail_at(t, "template nesting exceeds " + std::to_string(go_template::kMaxDepth) + " levels");
  }

  int add_node(node n) {
    p_.nodes.push_back(std::move(n));
    return static_cast<int>(p_.nodes.size() - 1);
  }

  /// Parses nodes until `end`, `else` or the end of the text; `stop` names which (empty at the
  /// end). After `else` the cursor stays in that action, after the keyword. `define` is only
  /// allowed at the top level.
  int list(std::string* stop, bool top = false) {
    std::vector<int> nodes;
    stop->clear();
    while (it_ < items_.size()) {
      const item& itm = items_[it_];
      if (itm.is_text) {
        node n{{itm.line, itm.col, {}}, node::literal, itm.text, {}, {}, -1};
        nodes.push_back(add_node(std::move(n)));
        ++it_;
        continue;
      }
      tk_ = 0;
      if (!more()) fail_item("missing value for command");
      const token first = peek();
      if (first.kind == token::ident) {
        const std::string& w = first.val;
        if (w == "end" || w == "else") {
          next();
          *stop = w;
          if (w == "end") {
            expect_end("end");
            ++it_;
          }
          return store(std::move(nodes));
        }
        if (w == "if" || w == "range" || w == "with") {
          next();
          nodes.push_back(control(w, first));
          continue;
        }
        if (w == "break" || w == "continue") {
          const token t = next();
          if (range_depth_ == 0) fail_at(t, "{{" + w + "}} outside {{range}}");
          expect_end(w);
          nodes.push_back(add_node({{t.line, t.col, {}},
                                    w == "break" ? node::break_ : node::continue_,
                                    "",
                                    {},
                                    {},
                                    -1}));
          ++it_;
          continue;
        }
        if (w == "define" && top) {
          next();
          define(first);
          continue;
        }
        if (w == "template" || w == "block") {
          next();
          nodes.push_back(invoke(w, first));
          continue;
        }
      }
      const token start = peek();
      node n{{start.line, start.col, {}}, node::action, "", {pipe("command", false)}, {}, -1};
      ++it_;
      nodes.push_back(add_node(std::move(n)));
    }
    return store(std::move(nodes));
  }

  int store(std::vector<int> nodes) {
    p_.lists.push_back(std::move(nodes));
    return static_cast<int>(p_.lists.size() - 1);
  }

  bool empty_list(int list) const {
    for (const int n : p_.lists[static_cast<std::size_t>(list)]) {
      const node& x = p_.nodes[static_cast<std::size_t>(n)];
      if (x.kind != node::literal || !is_blank(x.text)) return false;
    }
    return true;
  }

  /// Go's treeSet: a definition replaces one that is only white space; two that are not are an
  /// error.
  void add_template(const std::string& name, int list, const token& at) {
    const auto it = p_.templates.find(name);
    if (it == p_.templates.end() || empty_list(it->second)) {
      p_.templates[name] = list;
    } else if (!empty_list(list)) {
      fail_at(at, "template: multiple definition of template " + quote(name));
    }
  }

  /// The body of a define or block: a template of its own, which sees no variable but its own
  /// `$` (its dot, whatever the caller passes) and is not inside a range.
  int body(const std::string& context, const token& kw) {
    auto vars = std::exchange(vars_, std::vector<var>{{"$", false}});
    const int ranges = std::exchange(range_depth_, 0);
    const bool dot_root = std::exchange(dot_root_, false);
    const bool dollar_root = std::exchange(dollar_root_, false);
    std::string stop;
    const int l = list(&stop);
    if (stop.empty()) fail_at(kw, "unexpected EOF");
    if (stop != "end") fail_at(last_, "unexpected {{" + stop + "}} in " + context);
    vars_ = std::move(vars);
    range_depth_ = ranges;
    dot_root_ = dot_root;
    dollar_root_ = dollar_root;
    return l;
  }

  /// <<define "name">>...<<end>>, at the top level.
  void define(const token& kw) {
    if (!peek_is(token::str)) unexpected("define clause");
    const std::string name = next().val;
    expect_end("define clause");
    ++it_;
    const int l = body("define clause", kw);
    add_template(name, l, last_);
  }

  /// <<template "name">>, <<template "name" pipeline>> and <<block "name" pipeline>>...<<end>>
  /// (a define and a template in one).
  int invoke(const std::string& w, const token& kw) {
    const std::string context = w + " clause";
    if (!peek_is(token::str)) unexpected(context);
    const token name = next();
    node n{{name.line, name.col, {}}, node::template_, name.val, {}, {}, -1};
    std::string source_text;
    if (w == "block" || more()) {
      const std::size_t from = more() ? peek().pos : name.end;
      // A pipeline that passes the data itself (`.` or `$`) has marked every field used (the
      // callee may print its dot whole).
      n.pipes.push_back(pipe(context, false));
      source_text = " " + source(from);
    }
    n.src = "{{template " + quote(n.text) + source_text + "}}";
    ++it_;
    if (w == "block") add_template(name.val, body(context, kw), last_);
    return add_node(std::move(n));
  }

  int control(const std::string& w, const token& kw) {
    enter(kw);
    const std::size_t mark = vars_.size();
    const bool saved_dot = dot_root_;
    node n{{kw.line, kw.col, {}},
           w == "if"      ? node::if_
           : w == "range" ? node::range
                          : node::with,
           "",
           {},
           {},
           -1};
    std::string stop;
    while (true) {
      const int before = rootish_refs_;
      n.pipes.push_back(pipe(w, w == "range"));
      const bool rootish = rootish_refs_ > before;
      ++it_;
      if (w == "range") {
        ++range_depth_;
        dot_root_ = false;
      } else if (w == "with") {
        dot_root_ = rootish;
      }
      n.lists.push_back(list(&stop));
      if (w == "range") --range_depth_;
      dot_root_ = saved_dot;
      if (stop.empty()) fail_at(kw, "unexpected EOF");
      if (stop == "end") break;
      // else
      if (w == "if" && peek_is(token::ident) && peek().val == "if") {
        next();
        continue;
      }
      if (w == "with" && peek_is(token::ident) && peek().val == "with")
        fail_at(peek(), "unexpected <with> in else");
      expect_end("else");
      ++it_;
      n.else_list = list(&stop);
      if (stop != "end")
        fail_at(kw, stop.empty() ? "unexpected EOF" : "expected end; found {{else}}");
      break;
    }
    vars_.resize(mark);
    --depth_;
    return add_node(std::move(n));
  }

  bool declared(const std::string& name, bool* rootish = nullptr) const {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->name == name) {
        if (rootish) *rootish = it->rootish;
        return true;
      }
    return false;
  }

  /// A pipeline up to the end of the action (or the `)` when `context` is a parenthesis).
  int pipe(const std::string& context, bool range_decl) {
    pipeline pl;
    const bool paren = context == "parenthesized pipeline";
    // Declarations.
    std::vector<token> decl_toks;
    if (peek_is(token::variable)) {
      if (peek_is(token::declare, 1) || peek_is(token::assign, 1)) {
        decl_toks.push_back(next());
        pl.assign = next().kind == token::assign;
      } else if (peek_chr(',', 1)) {
        if (!range_decl) fail_at(peek(1), "too many declarations in " + context);
        if (!peek_is(token::variable, 2) || !peek_is(token::declare, 3))
          fail_at(peek(1), "range can only initialize variables");
        decl_toks.push_back(next());
        next();
        decl_toks.push_back(next());
        next();
      }
    }
    for (const auto& t : decl_toks) {
      if (t.val == "$") fail_at(t, "cannot assign to $");
      if (pl.assign && !declared(t.val)) fail_at(t, "undefined variable \"" + t.val + "\"");
      pl.decl.push_back(t.val);
    }
    const int before = rootish_refs_;
    while (true) {
      pl.cmds.push_back(cmd(context));
      if (peek_is(token::pipe)) {
        next();
        continue;
      }
      break;
    }
    if (paren) {
      if (!peek_is(token::rparen)) unexpected("parenthesized pipeline");
    } else if (more()) {
      unexpected(context);
    }
    const bool rootish = rootish_refs_ > before;
    for (std::size_t k = 1; k < pl.cmds.size(); ++k) {
      const auto first = pl.cmds[k].args.front().kind;
      if (first == operand::str || first == operand::integer || first == operand::floating ||
          first == operand::boolean || first == operand::dot || first == operand::nil)
        fail_at(last_, "non executable command in pipeline stage " + std::to_string(k + 1));
    }
    // Declared after the pipeline is parsed; a range's variables hold elements of what may be
    // the data only when the pipeline refers to the data itself.
    for (const auto& name : pl.decl) {
      if (pl.assign) {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
          if (it->name == name) {
            it->rootish = it->rootish || rootish;
            break;
          }
      } else {
        vars_.push_back({name, rootish});
      }
    }
    p_.pipes.push_back(std::move(pl));
    return static_cast<int>(p_.pipes.size() - 1);
  }

  static bool starts_operand(const token& t) {
    switch (t.kind) {
      case token::field:
      case token::variable:
      case token::dot:
      case token::str:
      case token::number:
      case token::lparen:
        return true;
      case token::ident:
        return !is_keyword(t.val);
      default:
        return false;
    }
  }

  command cmd(const std::string& context) {
    command c;
    if (!more() || peek_is(token::pipe) || peek_is(token::rparen) || !starts_operand(peek())) {
      if (!more() || peek_is(token::pipe) || peek_is(token::rparen))
        fail_at(upcoming(), "missing value for " + context);
      unexpected(context);
    }
    c.line = peek().line;
    c.col = peek().col;
    const std::size_t from = peek().pos;
    while (more() && !peek_is(token::pipe) && !peek_is(token::rparen)) {
      if (!c.args.empty() && (!peek().spaced || !starts_operand(peek()))) unexpected("operand");
      c.args.push_back(arg());
    }
    c.src = source(from);
    // Which fields and keys the command reads: `index .M "k"` reads only M's entry k.
    for (std::size_t k = 0; k < c.args.size(); ++k) {
      const auto& a = c.args[k];
      if (a.chain.empty()) continue;
      const bool rooted = a.kind == operand::field || a.kind == operand::variable;
      if (rooted && k == 1 && a.chain.size() == 1 && c.args.size() == 3 &&
          c.args[0].kind == operand::func && c.args[0].name == "index" &&
          c.args[2].kind == operand::str) {
        p_.used.insert({a.chain[0], c.args[2].name});
      } else {
        p_.used.insert({a.chain[0], a.chain.size() > 1 ? a.chain[1] : "*"});
      }
    }
    return c;
  }

  void chain(operand& o) {
    while (peek_is(token::field) && !peek().spaced) o.chain.push_back(next().val);
  }

  void check_field(const token& t, const std::string& name) const {
    if (!p_.fields.contains(name)) fail_at(t, "unknown template field ." + name);
  }

  operand arg() {
    const std::size_t from = peek().pos;
    operand o = term();
    o.src = source(from);
    return o;
  }

  operand term() {
    const token t = next();
    operand o;
    o.line = t.line;
    o.col = t.col;
    o.kind = operand::nil;
    switch (t.kind) {
      case token::field:
        o.kind = operand::field;
        o.chain.push_back(t.val);
        chain(o);
        if (dot_root_) check_field(t, t.val);
        return o;
      case token::variable: {
        bool rootish = false;
        if (!declared(t.val, &rootish)) fail_at(t, "undefined variable \"" + t.val + "\"");
        o.kind = operand::variable;
        o.name = t.val;
        chain(o);
        if (t.val == "$" && dollar_root_ && !o.chain.empty()) check_field(t, o.chain[0]);
        if (o.chain.empty() && rootish) note_root();
        return o;
      }
      case token::dot:
        o.kind = operand::dot;
        if (peek_is(token::field) && !peek().spaced) fail_at(peek(), "unexpected . after term");
        if (dot_root_) note_root();
        return o;
      case token::ident:
        if (t.val == "true" || t.val == "false") {
          o.kind = operand::boolean;
          o.b = t.val == "true";
          return o;
        }
        if (t.val == "nil") return o;
        if (!builtins().contains(t.val)) fail_at(t, "function \"" + t.val + "\" not defined");
        o.kind = operand::func;
        o.name = t.val;
        return o;
      case token::str:
        o.kind = operand::str;
        o.name = t.val;
        return o;
      case token::number: {
        std::string error;
        const auto v = parse_number(t.val, &o.overflows, &error);
        if (!v) fail_at(t, error);
        o.kind = v->kind == value::integer ? operand::integer : operand::floating;
        o.i = v->i;
        o.f = v->f;
        return o;
      }
      case token::lparen: {
        enter(t);
        o.kind = operand::paren;
        o.pipe = pipe("parenthesized pipeline", false);
        next();  // ')'
        --depth_;
        chain(o);
        return o;
      }
      default:
        fail_at(t, "unexpected " + describe(t) + " in operand");
    }
  }

  void note_root() {
    ++rootish_refs_;
    p_.whole = true;
  }

  std::string source(std::size_t from) const {
    return std::string(text_.substr(from, last_.end > from ? last_.end - from : 0));
  }

  const lexer& lex_;
  std::vector<item> items_;
  program& p_;
  std::string_view text_;
  std::size_t it_ = 0, tk_ = 0;
  token last_{token::chr, "", 1, 0, false};
  std::vector<var> vars_;
  int depth_ = 0;
  int range_depth_ = 0;
  bool dot_root_ = true;     ///< the dot is known to be the data: fields are checked here
  bool dollar_root_ = true;  ///< `$` is the data (not so in a define's body)
  int rootish_refs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Executor: recursion follows the parse nesting, which is capped, and template calls, which
// are capped at go_template::kMaxDepth.

struct exec_error {
  std::string what;
};

class executor {
 public:
  executor(const program& p, const template_data& data) : p_(p), name_(&p.name) {
    value root;
    root.kind = value::root;
    root.data = &data;
    root.root_type = p.root_type;
    vars_.push_back({"$", root});
  }

  std::string run() {
    // A copy: the dot must not live in vars_, which a declaration may reallocate.
    const value root = vars_.front().second;
    exec_list(p_.root, root);
    return std::move(out_);
  }

 private:
  enum class flow { normal, brk, cont };

  /// Go's state.at: the node an error names.
  void at(const site& s) { cur_ = &s; }

  /// Go's state.errorf: `template: name:line:col: executing "name" at <node>: what`.
  [[noreturn]] void fail(const std::string& what) const {
    std::string head = "template: ";
    if (cur_)
      head += location(p_.name, cur_->line, cur_->col) + ": executing " + quote(*name_) + " at <" +
              cur_->src + ">: ";
    else if (!name_->empty())
      head += *name_ + ": ";
    throw exec_error{head + what};
  }

  void step() {
    if (++steps_ > kMaxSteps)
      fail("template execution exceeds " + std::to_string(kMaxSteps) + " steps");
  }

  void emit(const std::string& s) {
    out_ += s;
    if (out_.size() > go_template::kMaxOutput)
      fail("template output exceeds " + std::to_string(go_template::kMaxOutput) + " bytes");
  }

  flow exec_list(int list, const value& dot) {
    for (const int idx : p_.lists[static_cast<std::size_t>(list)]) {
      const flow f = exec_node(p_.nodes[static_cast<std::size_t>(idx)], dot);
      if (f != flow::normal) return f;
    }
    return flow::normal;
  }

  /// One level of execution's recursion, while it lives.
  class nested {
   public:
    explicit nested(executor& e) : e_(e) {
      if (++e_.nesting_ > kMaxExecNesting)
        e_.fail("template execution nests deeper than " + std::to_string(kMaxExecNesting) +
                " levels");
    }
    ~nested() { --e_.nesting_; }
    nested(const nested&) = delete;
    nested& operator=(const nested&) = delete;

   private:
    executor& e_;
  };

  flow exec_node(const node& n, const value& dot) {
    at(n);
    step();
    std::optional<nested> level;
    if (n.kind != node::literal && n.kind != node::action) level.emplace(*this);
    switch (n.kind) {
      case node::literal:
        emit(n.text);
        return flow::normal;
      case node::action: {
        const auto& pl = p_.pipes[static_cast<std::size_t>(n.pipes[0])];
        const value v = eval_pipeline(pl, dot, true);
        if (pl.decl.empty()) emit(print_value(v));
        return flow::normal;
      }
      case node::break_:
        return flow::brk;
      case node::continue_:
        return flow::cont;
      case node::if_: {
        const std::size_t mark = vars_.size();
        flow f = flow::normal;
        bool done = false;
        for (std::size_t k = 0; k < n.pipes.size() && !done; ++k) {
          const auto& pl = p_.pipes[static_cast<std::size_t>(n.pipes[k])];
          if (truth(eval_pipeline(pl, dot, true))) {
            f = exec_list(n.lists[k], dot);
            done = true;
          }
        }
        if (!done && n.else_list >= 0) f = exec_list(n.else_list, dot);
        vars_.resize(mark);
        return f;
      }
      case node::with: {
        const std::size_t mark = vars_.size();
        const value v = eval_pipeline(p_.pipes[static_cast<std::size_t>(n.pipes[0])], dot, true);
        flow f = flow::normal;
        if (truth(v))
          f = exec_list(n.lists[0], v);
        else if (n.else_list >= 0)
          f = exec_list(n.else_list, dot);
        vars_.resize(mark);
        return f;
      }
      case node::range:
        return exec_range(n, dot);
      case node::template_:
        exec_template(n, dot);
        return flow::normal;
    }
    return flow::normal;
  }

  /// Go's walkTemplate: the callee starts with no variable but `$`, its dot.
  void exec_template(const node& n, const value& dot) {
    const auto it = p_.templates.find(n.text);
    if (it == p_.templates.end()) fail("template " + quote(n.text) + " not defined");
    if (calls_ >= go_template::kMaxDepth)
      fail("exceeded maximum template depth (" + std::to_string(go_template::kMaxDepth) + ")");
    const value v = n.pipes.empty()
                        ? value{}
                        : eval_pipeline(p_.pipes[static_cast<std::size_t>(n.pipes[0])], dot, true);
    auto caller_vars = std::exchange(vars_, std::vector<std::pair<std::string, value>>{{"$", v}});
    const std::string* caller = std::exchange(name_, &n.text);
    ++calls_;
    exec_list(it->second, v);
    --calls_;
    name_ = caller;
    vars_ = std::move(caller_vars);
  }

  flow exec_range(const node& n, const value& dot) {
    const auto& pl = p_.pipes[static_cast<std::size_t>(n.pipes[0])];
    const std::size_t mark = vars_.size();
    const value v = eval_pipeline(pl, dot, false);
    for (const auto& name : pl.decl) vars_.push_back({name, value{}});
    const std::size_t body_mark = vars_.size();
    const auto one = [&](value key, value elem) {
      step();
      if (pl.decl.size() == 1) vars_[mark].second = elem;
      if (pl.decl.size() == 2) {
        vars_[mark].second = std::move(key);
        vars_[mark + 1].second = elem;
      }
      const flow f = exec_list(n.lists[0], elem);
      vars_.resize(body_mark);
      return f;
    };
    bool empty = true;
    switch (v.kind) {
      case value::list:
        empty = v.l->empty();
        for (std::size_t i = 0; i < v.l->size(); ++i)
          if (one(value::of_int(static_cast<std::int64_t>(i)), value::of_string((*v.l)[i])) ==
              flow::brk)
            break;
        break;
      case value::map:
        empty = v.m->empty();
        for (const auto& [k, x] : *v.m)
          if (one(value::of_string(k), value::of_string(x)) == flow::brk) break;
        break;
      case value::invalid:
        break;
      default:
        fail("range can't iterate over " + print_value(v));
    }
    flow f = flow::normal;
    if (empty && n.else_list >= 0) {
      vars_.resize(body_mark);
      f = exec_list(n.else_list, dot);
    }
    vars_.resize(mark);
    return f;
  }

  value eval_pipeline(const pipeline& pl, const value& dot, bool declare) {
    value v;
    bool piped = false;
    for (const auto& c : pl.cmds) {
      v = eval_command(c, dot, piped ? &v : nullptr);
      piped = true;
    }
    if (!declare) return v;
    for (const auto& name : pl.decl) {
      if (pl.assign) {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
          if (it->first == name) {
            it->second = v;
            break;
          }
      } else {
        vars_.push_back({name, v});
      }
    }
    return v;
  }

  /// Go's evalCommand: a function gets the arguments; so may the last field of a chain, which
  /// refuses them; anything else refuses them.
  value eval_command(const command& c, const value& dot, const value* final) {
    step();
    const operand& first = c.args.front();
    if (first.kind == operand::func) return call(first, c, dot, final);
    const bool has_args = c.args.size() > 1 || final;
    if (first.kind == operand::nil) {
      at(first);
      if (has_args) fail("can't give argument to non-function " + first.src);
      fail("nil is not a command");
    }
    return eval_arg(first, dot, has_args);
  }

  value eval_arg(const operand& o, const value& dot, bool has_args = false) {
    at(o);
    const bool chained = !o.chain.empty();
    if (has_args && !chained && o.kind != operand::field)
      fail("can't give argument to non-function " + o.src);
    value v;
    switch (o.kind) {
      case operand::field:
        v = dot;
        break;
      case operand::variable:
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
          if (it->first == o.name) {
            v = it->second;
            break;
          }
        break;
      case operand::dot:
        return dot;
      case operand::func: {  // a function as an argument is called without arguments
        const command c{{o}, {o}};
        v = call(o, c, dot, nullptr);
        at(o);  // not the local command, which ends here
        return v;
      }
      case operand::str:
        return value::of_string(o.name);
      case operand::integer:
        if (o.overflows) fail(o.src + " overflows int");
        return value::of_int(o.i);
      case operand::floating:
        return value::of_float(o.f);
      case operand::boolean:
        return value::of_bool(o.b);
      case operand::nil:
        return value{};
      case operand::paren: {
        const nested level(*this);
        v = eval_pipeline(p_.pipes[static_cast<std::size_t>(o.pipe)], dot, true);
        at(o);
        break;
      }
    }
    for (std::size_t k = 0; k < o.chain.size(); ++k)
      v = field(v, o.chain[k], has_args && k + 1 == o.chain.size());
    return v;
  }

  /// Go's evalField on the data (a struct), a map or anything else.
  value field(const value& v, const std::string& name, bool has_args) const {
    switch (v.kind) {
      case value::root: {
        const auto it = v.data->find(name);
        if (it == v.data->end() && !p_.fields.contains(name))
          fail("can't evaluate field " + name + " in type " + type_name(v));
        if (has_args) fail(name + " has arguments but cannot be invoked as function");
        return it == v.data->end() ? value::of_string("") : value::of(it->second);
      }
      case value::map: {
        if (has_args) fail(name + " is not a method but has arguments");
        if (const auto it = v.m->find(name); it != v.m->end()) return value::of_string(it->second);
        return value{};  // missingkey=default: an invalid value, printed <no value>
      }
      case value::invalid:
        return value{};
      default:
        fail("can't evaluate field " + name + " in type " + type_name(v));
    }
  }

  /// The count of arguments a builtin takes: exactly `n`, or at least `n` when `variadic`.
  static std::pair<std::size_t, bool> arity(const std::string& name) {
    if (name == "not" || name == "len") return {1, false};
    if (name == "ne" || name == "lt" || name == "le" || name == "gt" || name == "ge")
      return {2, false};
    if (name == "print" || name == "println" || name == "html" || name == "js" ||
        name == "urlquery")
      return {0, true};
    return {1, true};  // and, or, index, slice, call, eq, printf
  }

  /// printf's format, a Go string parameter: evalArg's and validateType's errors.
  std::string format_of(const command& c, const value* final, const value& dot) {
    if (c.args.size() < 2) {
      if (final->kind == value::string) return final->s;
      fail(final->kind == value::invalid
               ? std::string("invalid value; expected string")
               : "wrong type for value; expected string; got " + type_name(*final));
    }
    const operand& o = c.args[1];
    at(o);
    switch (o.kind) {
      case operand::nil:
        fail("cannot assign nil to string");
      case operand::integer:
      case operand::floating:
      case operand::boolean:
        fail("expected string; found " + o.src);
      default:
        break;
    }
    const value v = eval_arg(o, dot);
    if (v.kind == value::string) return v.s;
    if (v.kind == value::invalid) fail("invalid value; expected string");
    fail("wrong type for value; expected string; got " + type_name(v));
  }

  value call(const operand& fn, const command& c, const value& dot, const value* final) {
    at(fn);
    const std::string& name = fn.name;
    const std::size_t count = c.args.size() - 1 + (final ? 1 : 0);
    const auto [want, variadic] = arity(name);
    if (variadic ? count < want : count != want)
      fail("wrong number of args for " + name + ": want " + (variadic ? "at least " : "") +
           std::to_string(want) + " got " + std::to_string(count));
    const auto nth = [&](std::size_t k) -> value {
      if (1 + k < c.args.size()) return eval_arg(c.args[1 + k], dot);
      return *final;
    };
    const auto error = [&](const std::string& what) {
      at(c);
      fail("error calling " + name + ": " + what);
    };
    if (name == "and" || name == "or") {
      value v;
      for (std::size_t k = 0; k < count; ++k) {
        v = nth(k);
        if (truth(v) != (name == "and")) return v;
      }
      return v;
    }
    if (name == "printf") {
      const std::string format = format_of(c, final, dot);
      std::vector<value> args;
      for (std::size_t k = 1; k < count; ++k) args.push_back(nth(k));
      auto s = sprintf(format, args);
      if (!s) limit(c);
      return value::of_string(std::move(*s));
    }
    std::vector<value> args;
    for (std::size_t k = 0; k < count; ++k) args.push_back(nth(k));
    if (name == "not") return value::of_bool(!truth(args[0]));
    if (name == "len") {
      const auto& a = args[0];
      if (a.kind == value::string) return value::of_int(static_cast<std::int64_t>(a.s.size()));
      if (a.kind == value::list) return value::of_int(static_cast<std::int64_t>(a.l->size()));
      if (a.kind == value::map) return value::of_int(static_cast<std::int64_t>(a.m->size()));
      error("len of " +
            (a.kind == value::invalid ? std::string("nil pointer") : "type " + type_name(a)));
    }
    if (name == "index") {
      value item = args[0];
      for (std::size_t k = 1; k < count; ++k) {
        const value& key = args[k];
        if (item.kind == value::invalid) error("index of untyped nil");
        if (item.kind == value::map) {
          if (key.kind != value::string)
            error("value has type " + type_name(key) + "; should be string");
          const auto it = item.m->find(key.s);
          item = value::of_string(it == item.m->end() ? "" : it->second);
        } else if (item.kind == value::list || item.kind == value::string) {
          if (key.kind != value::integer)
            error("cannot index slice/array with type " + type_name(key));
          const std::size_t size = item.kind == value::list ? item.l->size() : item.s.size();
          if (key.i < 0 || static_cast<std::uint64_t>(key.i) >= size)
            error("index out of range: " + std::to_string(key.i));
          const auto i = static_cast<std::size_t>(key.i);
          item = item.kind == value::list ? value::of_string((*item.l)[i])
                                          : value::of_int(static_cast<unsigned char>(item.s[i]));
        } else {
          error("can't index item of type " + type_name(item));
        }
      }
      return item;
    }
    if (name == "slice") {
      const value& item = args[0];
      if (item.kind == value::invalid) error("slice of untyped nil");
      if (item.kind != value::list && item.kind != value::string)
        error("can't slice item of type " + type_name(item));
      if (count > 4) error("too many slice indexes: " + std::to_string(count - 1));
      if (item.kind == value::string && count == 4) error("cannot 3-index slice a string");
      const std::size_t size = item.kind == value::list ? item.l->size() : item.s.size();
      std::int64_t idx[3] = {0, static_cast<std::int64_t>(size), static_cast<std::int64_t>(size)};
      for (std::size_t k = 1; k < count; ++k) {
        if (args[k].kind != value::integer)
          error("cannot index slice/array with type " + type_name(args[k]));
        if (args[k].i < 0 || static_cast<std::uint64_t>(args[k].i) > size)
          error("index out of range: " + std::to_string(args[k].i));
        idx[k - 1] = args[k].i;
      }
      if (idx[0] > idx[1])
        error("invalid slice index: " + std::to_string(idx[0]) + " > " + std::to_string(idx[1]));
      if (count == 4 && idx[1] > idx[2])
        error("invalid slice index: " + std::to_string(idx[1]) + " > " + std::to_string(idx[2]));
      const auto b = static_cast<std::size_t>(idx[0]), e = static_cast<std::size_t>(idx[1]);
      if (item.kind == value::string) return value::of_string(item.s.substr(b, e - b));
      value v;
      v.kind = value::list;
      v.l = std::make_shared<const string_list>(item.l->begin() + static_cast<std::ptrdiff_t>(b),
                                                item.l->begin() + static_cast<std::ptrdiff_t>(e));
      return v;
    }
    if (name == "call") {
      if (args[0].kind == value::invalid) error("call of nil");
      error("non-function of type " + type_name(args[0]));
    }
    if (name == "eq" || name == "ne" || name == "lt" || name == "le" || name == "gt" ||
        name == "ge") {
      if (name == "eq") {
        if (count == 1) error("missing argument for comparison");
        for (std::size_t k = 1; k < count; ++k)
          if (equal(args[0], args[k], error)) return value::of_bool(true);
        return value::of_bool(false);
      }
      if (name == "ne") return value::of_bool(!equal(args[0], args[1], error));
      const bool lt = less(args[0], args[1], error);
      if (name == "lt") return value::of_bool(lt);
      if (name == "ge") return value::of_bool(!lt);
      const bool le = lt || equal(args[0], args[1], error);
      return value::of_bool(name == "le" ? le : !le);
    }
    std::string s;
    if (name == "print") {
      s = sprint(args);
    } else if (name == "println") {
      s = sprintln(args);
    } else {
      const std::string joined =
          args.size() == 1 && args[0].kind == value::string ? args[0].s : sprint(args);
      s = name == "html" ? html_escape(joined)
          : name == "js" ? js_escape(joined)
                         : query_escape(joined);
    }
    if (s.size() > go_template::kMaxOutput) limit(c);
    return value::of_string(std::move(s));
  }

  [[noreturn]] void limit(const command& c) {
    at(c);
    fail("template output exceeds " + std::to_string(go_template::kMaxOutput) + " bytes");
  }

  template <typename Error>
  static bool equal(const value& a, const value& b, const Error& error) {
    const bool an = a.kind == value::invalid;
    const bool bn = b.kind == value::invalid;
    if (an || bn) return an && bn;
    if (a.kind != b.kind) error("incompatible types for comparison");
    switch (a.kind) {
      case value::boolean:
        return a.b == b.b;
      case value::integer:
        return a.i == b.i;
      case value::floating:
        return a.f == b.f;
      case value::string:
        return a.s == b.s;
      default:
        error("non-comparable type " + print_value(a) + ": " + type_name(a));
    }
    return false;
  }

  template <typename Error>
  static bool less(const value& a, const value& b, const Error& error) {
    const auto basic = [](const value& v) {
      return v.kind == value::integer || v.kind == value::floating || v.kind == value::string;
    };
    if (!basic(a) || !basic(b)) error("invalid type for comparison");
    if (a.kind != b.kind) error("incompatible types for comparison");
    if (a.kind == value::integer) return a.i < b.i;
    if (a.kind == value::floating) return a.f < b.f;
    return a.s < b.s;
  }

  const program& p_;
  const std::string* name_;  ///< the template executing, for `executing "name"`
  const site* cur_ = nullptr;
  std::string out_;
  std::vector<std::pair<std::string, value>> vars_;
  std::size_t steps_ = 0;
  int calls_ = 0;
  int nesting_ = 0;
};

}  // namespace

result<go_template> go_template::parse(std::string_view text, const std::set<std::string>& fields,
                                       std::string* error, std::string_view name) {
  auto p = std::make_shared<program>();
  p->fields = fields;
  p->name = std::string(name);
  p->root_type = fields.contains("Resource") && !fields.contains("Series")
                     ? "schema.GroupResource"
                     : "naming.queryTemplateArgs";
  try {
    lexer lex(text);
    parser(lex, lex.run(), *p, text).run();
  } catch (const parse_error& e) {
    if (error) *error = "template: " + location(p->name, e.line, e.col) + ": " + e.what;
    return errc::bad_request;
  }
  go_template t;
  t.program_ = std::move(p);
  return t;
}

result<std::string> go_template::execute(const template_data& data, std::string* error) const {
  if (!program_) return std::string();
  try {
    return executor(*program_, data).run();
  } catch (const exec_error& e) {
    if (error) *error = e.what;
    return errc::bad_request;
  }
}

std::string go_template::render(const template_data& data) const {
  auto r = execute(data);
  return r ? std::move(*r) : std::string();
}

bool go_template::uses(const std::string& field) const {
  if (!program_) return false;
  if (program_->whole) return true;
  const auto it = program_->used.lower_bound({field, ""});
  return it != program_->used.end() && it->first == field;
}

bool go_template::uses(const std::string& field, const std::string& key) const {
  if (!program_) return false;
  return program_->whole || program_->used.contains({field, "*"}) ||
         program_->used.contains({field, key});
}

}  // namespace gma::adapters::prometheus
