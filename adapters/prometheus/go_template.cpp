#include "adapters/prometheus/go_template.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>

namespace gma::adapters::prometheus {
namespace {

constexpr std::size_t kMaxSteps = 1'000'000;

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
  enum kind_t { invalid, nil, boolean, integer, floating, string, list, map, root } kind = invalid;
  bool b = false;
  std::int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<const string_list> l;
  std::shared_ptr<const string_map> m;
  const template_data* data = nullptr;

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
  static value of_nil() {
    value x;
    x.kind = nil;
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
    case value::nil:
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
    case value::nil:
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
      return "struct";
  }
  return "";
}

/// strconv.FormatFloat(f, 'g', -1, 64): the shortest digits, exponent form iff X < -4 || X >= 21
/// is JavaScript's rule; Go's %v uses X < -4 || X >= 6 (see the reference, §8).
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

std::string quote(std::string_view s, char q = '"') {
  std::string out(1, q);
  static const char* hex = "0123456789abcdef";
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
    } else if (r >= 0x20 && r < 0x7F) {
      out += static_cast<char>(r);
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
    } else if (r < 0xA0 || r == 0xAD || r == 0xFEFF) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(r));
      out += buf;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out += q;
  return out;
}

/// fmt's %v, as `<<pipeline>>` prints a value.
std::string print_value(const value& v) {
  switch (v.kind) {
    case value::invalid:
      return "<no value>";
    case value::nil:
      return "<nil>";
    case value::boolean:
      return v.b ? "true" : "false";
    case value::integer:
      return std::to_string(v.i);
    case value::floating:
      return go_float(v.f);
    case value::string:
      return v.s;
    case value::list: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.l->size(); ++i) out += (i ? " " : "") + (*v.l)[i];
      return out + "]";
    }
    case value::map: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [k, x] : *v.m) {
        out += (first ? "" : " ") + k + ":" + x;
        first = false;
      }
      return out + "]";
    }
    case value::root: {
      // Go prints a struct's fields in declaration order: prometheus-adapter's
      // queryTemplateArgs, then schema.GroupResource; other names follow, sorted.
      static const std::vector<std::string> kOrder = {
          "Series",       "LabelMatchers", "LabelValuesByName", "GroupBy",
          "GroupBySlice", "Group",         "Resource"};
      std::string out = "{";
      bool first = true;
      const auto add = [&](const template_value& x) {
        out += (first ? "" : " ") + print_value(value::of(x));
        first = false;
      };
      for (const auto& name : kOrder)
        if (const auto it = v.data->find(name); it != v.data->end()) add(it->second);
      for (const auto& [k, x] : *v.data)
        if (std::find(kOrder.begin(), kOrder.end(), k) == kOrder.end()) add(x);
      return out + "}";
    }
  }
  return "";
}

/// fmt.Sprint: a space between operands when neither is a string.
std::string sprint(const std::vector<value>& args) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && args[i].kind != value::string && args[i - 1].kind != value::string) out += ' ';
    out += print_value(args[i]);
  }
  return out;
}

std::string sprintln(const std::vector<value>& args) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) out += (i ? " " : "") + print_value(args[i]);
  return out + "\n";
}

// ---------------------------------------------------------------------------------------------
// printf

struct spec {
  bool minus = false, plus = false, sharp = false, zero = false, space = false;
  int width = -1, prec = -1;
  char verb = 'v';
};

std::string pad(std::string s, const spec& sp, bool numeric) {
  const auto n = rune_count(s);
  if (sp.width < 0 || n >= static_cast<std::size_t>(sp.width)) return s;
  const std::size_t fill = static_cast<std::size_t>(sp.width) - n;
  if (sp.minus) return s + std::string(fill, ' ');
  if (sp.zero) {
    std::size_t at = 0;
    if (numeric && !s.empty() && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) at = 1;
    if (numeric && s.size() > at + 1 && s[at] == '0' && (s[at + 1] == 'x' || s[at + 1] == 'X'))
      at += 2;
    if (numeric && (s.find("Inf") != std::string::npos || s.find("NaN") != std::string::npos))
      return std::string(fill, ' ') + s;
    s.insert(at, fill, '0');
    return s;
  }
  return std::string(fill, ' ') + s;
}

std::string bad_verb(const spec& sp, const value& v) {
  if (v.kind == value::nil || v.kind == value::invalid)
    return std::string("%!") + sp.verb + "(<nil>)";
  return std::string("%!") + sp.verb + "(" + type_name(v) + "=" + print_value(v) + ")";
}

std::string fmt_int(const spec& sp, std::int64_t i) {
  const bool neg = i < 0;
  const std::uint64_t u = neg ? 0 - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
  int base = 10;
  const char* digits = "0123456789abcdef";
  std::string prefix;
  switch (sp.verb) {
    case 'x':
      base = 16;
      prefix = sp.sharp ? "0x" : "";
      break;
    case 'X':
      base = 16;
      digits = "0123456789ABCDEF";
      prefix = sp.sharp ? "0X" : "";
      break;
    case 'o':
      base = 8;
      prefix = sp.sharp ? "0" : "";
      break;
    case 'O':
      base = 8;
      prefix = "0o";
      break;
    case 'b':
      base = 2;
      prefix = sp.sharp ? "0b" : "";
      break;
    default:
      break;
  }
  std::string d;
  for (std::uint64_t x = u; x > 0; x /= base) d.insert(d.begin(), digits[x % base]);
  if (sp.prec >= 0) {
    if (static_cast<int>(d.size()) < sp.prec) d.insert(0, sp.prec - d.size(), '0');
    if (sp.prec == 0 && u == 0) d.clear();
  } else if (d.empty()) {
    d = "0";
  }
  std::string s = (neg ? "-" : sp.plus ? "+" : sp.space ? " " : "") + prefix + d;
  spec p = sp;
  if (sp.prec >= 0) p.zero = false;
  return pad(std::move(s), p, true);
}

std::string fmt_float(const spec& sp, double f) {
  char verb = sp.verb;
  if (verb == 'v') verb = 'g';
  if ((verb == 'g' || verb == 'G') && sp.prec < 0) {
    std::string s = go_float(f);
    if (verb == 'G') std::transform(s.begin(), s.end(), s.begin(), ::toupper);
    if (sp.plus && f >= 0 && !std::isnan(f) && s[0] != '+')
      s = "+" + s;
    else if (sp.space && f >= 0 && s[0] != '+')
      s = " " + s;
    return pad(std::move(s), sp, true);
  }
  if (std::isinf(f) || std::isnan(f)) {
    std::string s = std::isnan(f) ? "NaN" : f > 0 ? (sp.plus ? "+Inf" : "+Inf") : "-Inf";
    return pad(std::move(s), sp, true);
  }
  std::string fmt = "%";
  if (sp.plus) fmt += '+';
  if (sp.space) fmt += ' ';
  if (sp.sharp) fmt += '#';
  fmt += ".*";
  fmt += verb == 'F' ? 'f' : verb;
  char buf[512];
  const int prec = sp.prec >= 0 ? std::min(sp.prec, 300) : 6;
  if (std::fabs(f) >= 1e300 && (verb == 'f' || verb == 'F')) {
    std::string big(400, '\0');
    const int n = std::snprintf(big.data(), big.size(), fmt.c_str(), prec, f);
    big.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return pad(std::move(big), sp, true);
  }
  const int n = std::snprintf(buf, sizeof buf, fmt.c_str(), prec, f);
  return pad(std::string(buf, n > 0 ? std::min<std::size_t>(n, sizeof buf - 1) : 0), sp, true);
}

std::string hex_string(const spec& sp, std::string_view s) {
  const char* digits = sp.verb == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 15];
  }
  return out;
}

std::string fmt_string(const spec& sp, const std::string& s) {
  std::string t = s;
  if (sp.prec >= 0) {
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
    case 's':
      return pad(std::move(t), sp, false);
    case 'q':
      return pad(quote(t), sp, false);
    case 'x':
    case 'X':
      return pad(hex_string(sp, t), sp, false);
    default:
      return bad_verb(sp, value::of_string(s));
  }
}

std::string fmt_one(const spec& sp, const value& v) {
  if (sp.verb == 'T') return pad(type_name(v), sp, false);
  switch (v.kind) {
    case value::invalid:
    case value::nil:
      if (sp.verb == 'v') return pad("<nil>", sp, false);
      return bad_verb(sp, v);
    case value::boolean:
      if (sp.verb == 'v' || sp.verb == 't') return pad(v.b ? "true" : "false", sp, false);
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
        case 'c': {
          std::string s;
          append_utf8(s, static_cast<std::uint32_t>(v.i));
          return pad(std::move(s), sp, false);
        }
        case 'q': {
          std::string s;
          append_utf8(s, static_cast<std::uint32_t>(v.i));
          return pad(quote(s, '\''), sp, false);
        }
        case 'U': {
          char buf[32];
          std::snprintf(buf, sizeof buf, "U+%04llX", static_cast<unsigned long long>(v.i));
          return pad(buf, sp, false);
        }
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
          return bad_verb(sp, v);
        default:
          return bad_verb(sp, v);
      }
    case value::floating:
      switch (sp.verb) {
        case 'v':
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
          return fmt_float(sp, v.f);
        default:
          return bad_verb(sp, v);
      }
    case value::string:
      return fmt_string(sp, v.s);
    case value::list: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.l->size(); ++i)
        out += (i ? " " : "") + fmt_one(sp, value::of_string((*v.l)[i]));
      return out + "]";
    }
    case value::map: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [k, x] : *v.m) {
        out += (first ? "" : " ") + fmt_one(sp, value::of_string(k)) + ":" +
               fmt_one(sp, value::of_string(x));
        first = false;
      }
      return out + "]";
    }
    case value::root:
      if (sp.verb == 'v' || sp.verb == 's') return pad(print_value(v), sp, false);
      return bad_verb(sp, v);
  }
  return "";
}

std::string sprintf(const std::string& format, const std::vector<value>& args) {
  std::string out;
  std::size_t arg = 0;
  for (std::size_t i = 0; i < format.size();) {
    if (format[i] != '%') {
      out += format[i++];
      continue;
    }
    ++i;
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    spec sp;
    for (; i < format.size(); ++i) {
      const char c = format[i];
      if (c == '-')
        sp.minus = true, sp.zero = false;
      else if (c == '+')
        sp.plus = true;
      else if (c == '#')
        sp.sharp = true;
      else if (c == '0')
        sp.zero = !sp.minus;
      else if (c == ' ')
        sp.space = true;
      else
        break;
    }
    const auto number = [&](int* target) {
      if (i < format.size() && format[i] == '*') {
        ++i;
        if (arg < args.size() && args[arg].kind == value::integer) {
          const auto n = args[arg++].i;
          *target = static_cast<int>(std::clamp<std::int64_t>(n < 0 ? -n : n, 0, 1 << 20));
          if (n < 0 && target == &sp.width) sp.minus = true;
        } else {
          ++arg;
          out += "%!(BADWIDTH)";
        }
        return;
      }
      if (i < format.size() && is_digit(format[i])) {
        int n = 0;
        while (i < format.size() && is_digit(format[i]))
          n = std::min(n * 10 + (format[i++] - '0'), 1 << 20);
        *target = n;
      }
    };
    number(&sp.width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      sp.prec = 0;
      number(&sp.prec);
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    std::uint32_t r = 0;
    std::size_t n = decode_utf8(format, i, &r);
    if (n == 0) n = 1, r = 0xFFFD;
    i += n;
    if (r == '%') {
      out += '%';
      continue;
    }
    if (r >= 0x80) {
      std::string verb;
      append_utf8(verb, r);
      out += "%!" + verb +
             (arg < args.size() ? "(" + type_name(args[arg]) + "=" + print_value(args[arg]) + ")"
                                : "(MISSING)");
      if (arg < args.size()) ++arg;
      continue;
    }
    sp.verb = static_cast<char>(r);
    if (arg >= args.size()) {
      out += std::string("%!") + sp.verb + "(MISSING)";
      continue;
    }
    static const std::string known = "vTtdbcoOqxXUeEfFgGs";
    if (known.find(sp.verb) == std::string::npos) {
      out += bad_verb(sp, args[arg++]);
      continue;
    }
    out += fmt_one(sp, args[arg++]);
  }
  if (arg < args.size()) {
    out += "%!(EXTRA ";
    for (std::size_t k = arg; k < args.size(); ++k) {
      if (k > arg) out += ", ";
      out += args[k].kind == value::nil || args[k].kind == value::invalid
                 ? "<nil>"
                 : type_name(args[k]) + "=" + print_value(args[k]);
    }
    out += ")";
  }
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

struct operand {
  enum kind_t { field, variable, dot, func, str, integer, floating, boolean, nil, paren } kind;
  std::string name;  ///< variable ("$x"), function or string constant
  std::vector<std::string> chain;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;
  int pipe = -1;
  int line = 0, col = 0;
  std::string src;  ///< its text, for execution errors ("at <.X>")
};

struct command {
  std::vector<operand> args;
  int line = 0, col = 0;
  std::string src;
};

struct pipeline {
  std::vector<std::string> decl;
  bool assign = false;
  std::vector<command> cmds;
  int line = 0, col = 0;
};

struct node {
  enum kind_t { literal, action, if_, range, with, break_, continue_ } kind;
  std::string text;
  std::vector<int> pipes;  ///< the action's pipeline; if's conditions; range's, with's
  std::vector<int> lists;  ///< the bodies, one a pipe
  int else_list = -1;
  int line = 0, col = 0;
};

}  // namespace

struct go_template::program {
  std::vector<node> nodes;
  std::vector<std::vector<int>> lists;
  std::vector<pipeline> pipes;
  int root = -1;
  std::set<std::string> fields;
  std::string name;
  std::set<std::pair<std::string, std::string>> used;  ///< (field, key or "*")
  bool whole = false;  ///< the data itself is used, not only named fields
};

namespace {

using program = go_template::program;

std::string where(const std::string& name, int line, int col) {
  return (name.empty() ? "" : name + ":") + std::to_string(line) + ":" + std::to_string(col) + ": ";
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
    comma
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

  std::pair<int, int> at(std::size_t pos) const {
    const auto it = std::upper_bound(starts_.begin(), starts_.end(), pos);
    const std::size_t line = static_cast<std::size_t>(it - starts_.begin());
    return {static_cast<int>(line), static_cast<int>(pos - starts_[line - 1] + 1)};
  }

  [[noreturn]] void fail(std::size_t pos, std::string what) const {
    const auto [l, c] = at(pos);
    throw parse_error{l, c, std::move(what)};
  }

  std::vector<item> run() {
    std::vector<item> items;
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
        if (!lit.empty()) items.push_back({true, std::move(lit), {}, 0, 0});
        break;
      }
      std::size_t p = open + 2;
      if (p + 1 < n && text_[p] == '-' && is_space(text_[p + 1])) {
        while (!lit.empty() && is_space(lit.back())) lit.pop_back();
        p += 2;
      }
      if (!lit.empty()) items.push_back({true, std::move(lit), {}, 0, 0});
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
      item a;
      a.is_text = false;
      std::tie(a.line, a.col) = at(open);
      pos = action(p, open, a.toks, &trim_next);
      items.push_back(std::move(a));
    }
    return items;
  }

 private:
  /// Lexes the action from `p`; returns the position after its closing delimiter.
  std::size_t action(std::size_t p, std::size_t open, std::vector<token>& toks, bool* trim) {
    const std::size_t n = text_.size();
    bool spaced = false;
    const auto push = [&](token::kind_t k, std::string val, std::size_t start) {
      token t{k, std::move(val), 0, 0, spaced, start, p};
      std::tie(t.line, t.col) = at(start);
      toks.push_back(std::move(t));
      spaced = false;
    };
    while (true) {
      if (p >= n) fail(open, "unclosed action");
      const char c = text_[p];
      if (is_space(c)) {
        if (text_.substr(p + 1, 3) == "->>") {
          *trim = true;
          return p + 4;
        }
        spaced = true;
        ++p;
        continue;
      }
      if (text_.substr(p, 2) == ">>") return p + 2;
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
      } else if (is_digit(c) ||
                 ((c == '-' || c == '+') && p + 1 < n &&
                  (is_digit(text_[p + 1]) ||
                   (text_[p + 1] == '.' && p + 2 < n && is_digit(text_[p + 2])))) ||
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
        push(token::lparen, "(", start);
      } else if (c == ')') {
        ++p;
        push(token::rparen, ")", start);
      } else if (c == '|') {
        ++p;
        push(token::pipe, "|", start);
      } else if (c == ',') {
        ++p;
        push(token::comma, ",", start);
      } else if (c == ':' && p + 1 < n && text_[p + 1] == '=') {
        p += 2;
        push(token::declare, ":=", start);
      } else if (c == '=') {
        ++p;
        push(token::assign, "=", start);
      } else {
        std::uint32_t r = 0;
        const auto len = decode_utf8(text_, p, &r);
        fail(p, "unexpected \"" + std::string(text_.substr(p, len ? len : 1)) + "\" in command");
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

/// A Go number constant: int when it has no '.', exponent or 'p'; float64 otherwise.
std::optional<value> parse_number(const std::string& text) {
  std::string t;
  for (char c : text)
    if (c != '_') t += c;
  bool neg = false;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) {
    neg = t[0] == '-';
    t.erase(0, 1);
  }
  if (t.empty()) return std::nullopt;
  const bool hex = t.size() > 1 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
  const bool is_float = hex ? t.find_first_of(".pP") != std::string::npos
                            : t.find_first_of(".eE") != std::string::npos;
  if (is_float) {
    char* end = nullptr;
    const double d = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size() || std::isinf(d)) return std::nullopt;
    return value::of_float(neg ? -d : d);
  }
  int base = 10;
  std::size_t from = 0;
  if (hex) {
    base = 16;
    from = 2;
  } else if (t.size() > 1 && t[0] == '0' && (t[1] == 'b' || t[1] == 'B')) {
    base = 2;
    from = 2;
  } else if (t.size() > 1 && t[0] == '0' && (t[1] == 'o' || t[1] == 'O')) {
    base = 8;
    from = 2;
  } else if (t.size() > 1 && t[0] == '0') {
    base = 8;
    from = 1;
  }
  if (from >= t.size()) return std::nullopt;
  std::uint64_t u = 0;
  const auto r = std::from_chars(t.data() + from, t.data() + t.size(), u, base);
  if (r.ec != std::errc() || r.ptr != t.data() + t.size()) return std::nullopt;
  if (u > static_cast<std::uint64_t>(INT64_MAX) + (neg ? 1 : 0)) return std::nullopt;
  return value::of_int(neg ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u));
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent whose depth is capped at go_template::kMaxDepth.

class parser {
 public:
  parser(std::vector<item> items, program& p, std::string_view text)
      : items_(std::move(items)), p_(p), text_(text) {
    vars_.push_back({"$", true});
  }

  void run() {
    std::string stop;
    p_.root = list(&stop);
    if (!stop.empty()) fail_at(last_, "unexpected {{" + stop + "}}");
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
    static const token none{token::comma, "", 0, 0, false};
    const auto& toks = items_[it_].toks;
    return tk_ + ahead < toks.size() ? toks[tk_ + ahead] : none;
  }
  bool peek_is(token::kind_t k, std::size_t ahead = 0) const {
    return tk_ + ahead < items_[it_].toks.size() && items_[it_].toks[tk_ + ahead].kind == k;
  }
  const token& next() {
    last_ = items_[it_].toks[tk_++];
    return last_;
  }
  void expect_end(const std::string& context) {
    if (more()) fail_at(peek(), "unexpected \"" + peek().val + "\" in " + context);
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
  /// end). After `else` the cursor stays in that action, after the keyword.
  int list(std::string* stop) {
    std::vector<int> nodes;
    stop->clear();
    while (it_ < items_.size()) {
      const item& itm = items_[it_];
      if (itm.is_text) {
        nodes.push_back(add_node({node::literal, itm.text, {}, {}, -1, itm.line, itm.col}));
        ++it_;
        continue;
      }
      tk_ = 0;
      if (!more()) fail_item("missing value for command");
      const token& first = peek();
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
          nodes.push_back(add_node(
              {w == "break" ? node::break_ : node::continue_, "", {}, {}, -1, t.line, t.col}));
          ++it_;
          continue;
        }
        if (w == "define" || w == "template" || w == "block")
          fail_at(first, "unsupported template action \"" + w +
                             "\": named templates are not "
                             "supported");
      }
      const token start = peek();
      node n{node::action, "", {pipe("command", false)}, {}, -1, start.line, start.col};
      ++it_;
      nodes.push_back(add_node(std::move(n)));
    }
    return store(std::move(nodes));
  }

  int store(std::vector<int> nodes) {
    p_.lists.push_back(std::move(nodes));
    return static_cast<int>(p_.lists.size() - 1);
  }

  int control(const std::string& w, const token& kw) {
    enter(kw);
    const std::size_t mark = vars_.size();
    const bool saved_dot = dot_root_;
    node n{w == "if" ? node::if_ : w == "range" ? node::range : node::with,
           "",
           {},
           {},
           -1,
           kw.line,
           kw.col};
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
      if (stop != "end") fail_at(kw, stop.empty() ? "unexpected EOF" : "expected end; found else");
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
    if (more()) std::tie(pl.line, pl.col) = std::pair{peek().line, peek().col};
    // Declarations.
    std::vector<token> decl_toks;
    if (peek_is(token::variable)) {
      if (peek_is(token::declare, 1) || peek_is(token::assign, 1)) {
        decl_toks.push_back(next());
        pl.assign = next().kind == token::assign;
      } else if (peek_is(token::comma, 1)) {
        if (!range_decl) fail_at(peek(1), "too many declarations in " + context);
        if (!peek_is(token::variable, 2) || !peek_is(token::declare, 3))
          fail_at(peek(1), "expected := after range variables");
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
      if (!peek_is(token::rparen)) fail_at(more() ? peek() : last_, "unclosed left paren");
    } else if (more()) {
      fail_at(peek(), "unexpected \"" + peek().val + "\" in " + context);
    }
    const bool rootish = rootish_refs_ > before;
    for (std::size_t k = 0; k < pl.cmds.size(); ++k) {
      const auto& first = pl.cmds[k].args.front();
      if (first.kind == operand::nil) fail_at(last_, "nil is not a command");
      if (k > 0 && (first.kind == operand::str || first.kind == operand::integer ||
                    first.kind == operand::floating || first.kind == operand::boolean ||
                    first.kind == operand::dot))
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

  command cmd(const std::string& context) {
    command c;
    if (!more() || peek_is(token::pipe) || peek_is(token::rparen))
      fail_at(more() ? peek() : last_, "missing value for " + context);
    c.line = peek().line;
    c.col = peek().col;
    const std::size_t from = peek().pos;
    while (more() && !peek_is(token::pipe) && !peek_is(token::rparen)) {
      if (!c.args.empty() && !peek().spaced && peek().kind != token::lparen &&
          c.args.back().kind != operand::paren)
        fail_at(peek(), "missing space?");
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
    operand o{operand::nil, "", {}, 0, 0, false, -1, t.line, t.col};
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
        if (t.val == "$" && !o.chain.empty()) check_field(t, o.chain[0]);
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
        if (t.val == "if" || t.val == "else" || t.val == "end" || t.val == "range" ||
            t.val == "with" || t.val == "break" || t.val == "continue" || t.val == "define" ||
            t.val == "template" || t.val == "block")
          fail_at(t, "unexpected <" + t.val + "> in command");
        if (!builtins().contains(t.val)) fail_at(t, "function \"" + t.val + "\" not defined");
        o.kind = operand::func;
        o.name = t.val;
        return o;
      case token::str:
        o.kind = operand::str;
        o.name = t.val;
        return o;
      case token::number: {
        const auto v = parse_number(t.val);
        if (!v) fail_at(t, "bad number syntax: \"" + t.val + "\"");
        if (more() && !peek().spaced && peek().kind != token::rparen && peek().kind != token::pipe)
          fail_at(t, "bad number syntax: \"" + t.val + peek().val + "\"");
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
        fail_at(t, "unexpected \"" + t.val + "\" in operand");
    }
  }

  void note_root() {
    ++rootish_refs_;
    p_.whole = true;
  }

  std::string source(std::size_t from) const {
    return std::string(text_.substr(from, last_.end > from ? last_.end - from : 0));
  }

  std::vector<item> items_;
  program& p_;
  std::string_view text_;
  std::size_t it_ = 0, tk_ = 0;
  token last_{token::comma, "", 1, 1, false};
  std::vector<var> vars_;
  int depth_ = 0;
  int range_depth_ = 0;
  bool dot_root_ = true;
  int rootish_refs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Executor: recursion follows the parse nesting, which is capped.

struct exec_error {
  std::string what;
};

class executor {
 public:
  executor(const program& p, const template_data& data) : p_(p), data_(data) {
    value root;
    root.kind = value::root;
    root.data = &data;
    vars_.push_back({"$", root});
  }

  std::string run() {
    exec_list(p_.root, vars_.front().second);
    return std::move(out_);
  }

 private:
  enum class flow { normal, brk, cont };

  [[noreturn]] void fail(int line, int col, const std::string& what,
                         const std::string& at = {}) const {
    throw exec_error{where(p_.name, line, col) + "executing \"" +
                     (p_.name.empty() ? std::string("template") : p_.name) + "\"" +
                     (at.empty() ? "" : " at <" + at + ">") + ": " + what};
  }

  void step(int line, int col) {
    if (++steps_ > kMaxSteps)
      fail(line, col, "template execution exceeds " + std::to_string(kMaxSteps) + " steps");
  }

  void emit(const std::string& s, int line, int col) {
    out_ += s;
    if (out_.size() > go_template::kMaxOutput)
      fail(line, col,
           "template output exceeds " + std::to_string(go_template::kMaxOutput) + " bytes");
  }

  flow exec_list(int list, const value& dot) {
    for (const int idx : p_.lists[static_cast<std::size_t>(list)]) {
      const flow f = exec_node(p_.nodes[static_cast<std::size_t>(idx)], dot);
      if (f != flow::normal) return f;
    }
    return flow::normal;
  }

  flow exec_node(const node& n, const value& dot) {
    step(n.line, n.col);
    switch (n.kind) {
      case node::literal:
        emit(n.text, n.line, n.col);
        return flow::normal;
      case node::action: {
        const auto& pl = p_.pipes[static_cast<std::size_t>(n.pipes[0])];
        const value v = eval_pipeline(pl, dot, true);
        if (pl.decl.empty()) emit(print_value(v), n.line, n.col);
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
    }
    return flow::normal;
  }

  flow exec_range(const node& n, const value& dot) {
    const auto& pl = p_.pipes[static_cast<std::size_t>(n.pipes[0])];
    const std::size_t mark = vars_.size();
    const value v = eval_pipeline(pl, dot, false);
    for (const auto& name : pl.decl) vars_.push_back({name, value{}});
    const std::size_t body_mark = vars_.size();
    const auto one = [&](value key, value elem) {
      step(n.line, n.col);
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
      case value::nil:
        break;
      default:
        fail(n.line, n.col, "range can't iterate over " + print_value(v));
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

  value eval_command(const command& c, const value& dot, const value* final) {
    step(c.line, c.col);
    const operand& first = c.args.front();
    if (first.kind == operand::func) return call(first, c, 1, dot, final);
    if (c.args.size() > 1 || final)
      fail(c.line, c.col, "can't give argument to non-function " + describe(first), c.src);
    return eval_arg(first, dot);
  }

  static std::string describe(const operand& o) {
    std::string s;
    switch (o.kind) {
      case operand::variable:
        s = o.name;
        break;
      case operand::dot:
        s = ".";
        break;
      case operand::str:
        s = quote(o.name);
        break;
      case operand::integer:
        s = std::to_string(o.i);
        break;
      case operand::floating:
        s = go_float(o.f);
        break;
      case operand::boolean:
        s = o.b ? "true" : "false";
        break;
      case operand::paren:
        s = "(...)";
        break;
      default:
        break;
    }
    for (const auto& f : o.chain) s += "." + f;
    return s;
  }

  value eval_arg(const operand& o, const value& dot) {
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
      case operand::func: {
        command c{{o}, o.line, o.col, o.src};
        return call(o, c, 1, dot, nullptr);
      }
      case operand::str:
        return value::of_string(o.name);
      case operand::integer:
        return value::of_int(o.i);
      case operand::floating:
        return value::of_float(o.f);
      case operand::boolean:
        return value::of_bool(o.b);
      case operand::nil:
        return value::of_nil();
      case operand::paren:
        v = eval_pipeline(p_.pipes[static_cast<std::size_t>(o.pipe)], dot, true);
        break;
    }
    for (const auto& name : o.chain) v = field(v, name, o);
    return v;
  }

  value field(const value& v, const std::string& name, const operand& o) const {
    switch (v.kind) {
      case value::root: {
        if (const auto it = v.data->find(name); it != v.data->end()) return value::of(it->second);
        if (p_.fields.contains(name)) return value::of_string("");
        fail(o.line, o.col, "can't evaluate field " + name + " in type struct", o.src);
      }
      case value::map: {
        if (const auto it = v.m->find(name); it != v.m->end()) return value::of_string(it->second);
        return value{};
      }
      case value::invalid:
        return value{};
      case value::nil:
        fail(o.line, o.col, "nil pointer evaluating interface {}." + name, o.src);
      default:
        fail(o.line, o.col, "can't evaluate field " + name + " in type " + type_name(v), o.src);
    }
  }

  value call(const operand& fn, const command& c, std::size_t from, const value& dot,
             const value* final) {
    const std::string& name = fn.name;
    const std::size_t count = c.args.size() - from + (final ? 1 : 0);
    const auto nth = [&](std::size_t k) -> value {
      if (from + k < c.args.size()) return eval_arg(c.args[from + k], dot);
      return *final;
    };
    const auto wrong = [&](const std::string& want) {
      fail(fn.line, fn.col,
           "wrong number of args for " + name + ": want " + want + " got " + std::to_string(count),
           c.src);
    };
    const auto error = [&](const std::string& what) {
      fail(fn.line, fn.col, "error calling " + name + ": " + what, c.src);
    };
    if (name == "and" || name == "or") {
      if (count == 0) wrong("at least 1");
      value v;
      for (std::size_t k = 0; k < count; ++k) {
        v = nth(k);
        if (truth(v) != (name == "and")) return v;
      }
      return v;
    }
    std::vector<value> args;
    for (std::size_t k = 0; k < count; ++k) args.push_back(nth(k));
    if (name == "not") {
      if (count != 1) wrong("1");
      return value::of_bool(!truth(args[0]));
    }
    if (name == "len") {
      if (count != 1) wrong("1");
      const auto& a = args[0];
      if (a.kind == value::string) return value::of_int(static_cast<std::int64_t>(a.s.size()));
      if (a.kind == value::list) return value::of_int(static_cast<std::int64_t>(a.l->size()));
      if (a.kind == value::map) return value::of_int(static_cast<std::int64_t>(a.m->size()));
      error("len of " + (a.kind == value::invalid || a.kind == value::nil
                             ? std::string("nil pointer")
                             : "type " + type_name(a)));
    }
    if (name == "index") {
      if (count == 0) wrong("at least 1");
      value item = args[0];
      for (std::size_t k = 1; k < count; ++k) {
        const value& key = args[k];
        if (item.kind == value::invalid || item.kind == value::nil) error("index of untyped nil");
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
      if (count == 0) wrong("at least 1");
      const value& item = args[0];
      if (item.kind == value::invalid || item.kind == value::nil) error("slice of untyped nil");
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
      if (count == 0) wrong("at least 1");
      if (args[0].kind == value::invalid || args[0].kind == value::nil) error("call of nil");
      error("non-function of type " + type_name(args[0]));
    }
    if (name == "eq" || name == "ne" || name == "lt" || name == "le" || name == "gt" ||
        name == "ge") {
      if (name == "eq") {
        if (count == 0) wrong("at least 1");
        if (count == 1) error("missing argument for comparison");
        for (std::size_t k = 1; k < count; ++k)
          if (equal(args[0], args[k], error)) return value::of_bool(true);
        return value::of_bool(false);
      }
      if (count != 2) wrong("2");
      if (name == "ne") return value::of_bool(!equal(args[0], args[1], error));
      const bool lt = less(args[0], args[1], error);
      if (name == "lt") return value::of_bool(lt);
      if (name == "ge") return value::of_bool(!lt);
      const bool le = lt || equal(args[0], args[1], error);
      return value::of_bool(name == "le" ? le : !le);
    }
    for (auto& a : args)
      if (a.kind == value::invalid) a = value::of_nil();
    std::string s;
    if (name == "print") {
      s = sprint(args);
    } else if (name == "println") {
      s = sprintln(args);
    } else if (name == "printf") {
      if (count == 0) wrong("at least 1");
      if (args[0].kind != value::string)
        fail(fn.line, fn.col, "wrong type for value; expected string; got " + type_name(args[0]),
             c.src);
      s = sprintf(args[0].s, std::vector<value>(args.begin() + 1, args.end()));
    } else {
      const std::string joined =
          args.size() == 1 && args[0].kind == value::string ? args[0].s : sprint(args);
      s = name == "html" ? html_escape(joined)
          : name == "js" ? js_escape(joined)
                         : query_escape(joined);
    }
    if (s.size() > go_template::kMaxOutput)
      fail(fn.line, fn.col,
           "template output exceeds " + std::to_string(go_template::kMaxOutput) + " bytes", c.src);
    return value::of_string(std::move(s));
  }

  template <typename Error>
  static bool equal(const value& a, const value& b, const Error& error) {
    const bool an = a.kind == value::invalid || a.kind == value::nil;
    const bool bn = b.kind == value::invalid || b.kind == value::nil;
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
      case value::root:
        return a.data == b.data;
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
  const template_data& data_;
  std::string out_;
  std::vector<std::pair<std::string, value>> vars_;
  std::size_t steps_ = 0;
};

}  // namespace

result<go_template> go_template::parse(std::string_view text, const std::set<std::string>& fields,
                                       std::string* error, std::string_view name) {
  auto p = std::make_shared<program>();
  p->fields = fields;
  p->name = std::string(name);
  try {
    lexer lex(text);
    parser(lex.run(), *p, text).run();
  } catch (const parse_error& e) {
    if (error) *error = where(p->name, e.line, e.col) + e.what;
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
