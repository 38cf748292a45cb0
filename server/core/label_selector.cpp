#include "server/core/label_selector.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>

namespace gma::core {
namespace {

enum class token_kind {
  identifier,
  equals,
  double_equals,
  not_equals,
  bang,
  open_paren,
  close_paren,
  comma,
  in,
  not_in,
  greater,
  less,
  end,
  error
};

struct token {
  token_kind kind;
  std::string text;
};

bool is_special(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '<' || c == '>';
}

/// The lexer of labels.Parse: identifiers run until whitespace or a special character.
class lexer {
 public:
  explicit lexer(std::string_view s) : s_(s) {}

  token next() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ >= s_.size()) return {token_kind::end, ""};
    const char c = s_[pos_];
    if (is_special(c)) {
      const std::string_view two = s_.substr(pos_, 2);
      if (two == "==") {
        pos_ += 2;
        return {token_kind::double_equals, "=="};
      }
      if (two == "!=") {
        pos_ += 2;
        return {token_kind::not_equals, "!="};
      }
      ++pos_;
      switch (c) {
        case '=':
          return {token_kind::equals, "="};
        case '!':
          return {token_kind::bang, "!"};
        case '(':
          return {token_kind::open_paren, "("};
        case ')':
          return {token_kind::close_paren, ")"};
        case ',':
          return {token_kind::comma, ","};
        case '>':
          return {token_kind::greater, ">"};
        default:
          return {token_kind::less, "<"};
      }
    }
    const std::size_t start = pos_;
    while (pos_ < s_.size() && !is_special(s_[pos_]) &&
           !std::isspace(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
    std::string word(s_.substr(start, pos_ - start));
    if (word == "in") return {token_kind::in, word};
    if (word == "notin") return {token_kind::not_in, word};
    return {token_kind::identifier, word};
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

/// IsQualifiedName's name part and IsValidLabelValue's body: alphanumeric at both ends.
bool is_label_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(s.front())) ||
      !std::isalnum(static_cast<unsigned char>(s.back())))
    return false;
  return std::all_of(s.begin(), s.end(), is_name_char);
}

std::optional<std::string> validate_key(std::string_view key) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) {
    if (is_label_name(key)) return std::nullopt;
  } else if (is_dns_subdomain(key.substr(0, slash)) && is_label_name(key.substr(slash + 1))) {
    return std::nullopt;
  }
  return "invalid label key \"" + std::string(key) +
         "\": name part must consist of alphanumeric characters, '-', '_' or '.', and must "
         "start and end with an alphanumeric character (at most 63 characters), with an "
         "optional DNS subdomain prefix and '/'";
}

std::optional<std::string> validate_value(std::string_view value) {
  if (value.empty() || is_label_name(value)) return std::nullopt;
  return "invalid label value \"" + std::string(value) +
         "\": a valid label value must be an empty string or consist of alphanumeric "
         "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
         "(at most 63 characters)";
}

class parser {
 public:
  explicit parser(std::string_view s) : lex_(s) { advance(); }

  std::optional<std::string> parse(std::vector<requirement>& out) {
    if (current_.kind == token_kind::end) return std::nullopt;
    while (true) {
      requirement r;
      if (auto err = parse_requirement(r)) return err;
      out.push_back(std::move(r));
      if (current_.kind == token_kind::end) return std::nullopt;
      if (current_.kind != token_kind::comma)
        return "found '" + current_.text + "', expected: ',' or 'end of string'";
      advance();
      if (current_.kind == token_kind::end) return "found end of string, expected: identifier";
    }
  }

 private:
  void advance() { current_ = lex_.next(); }

  std::optional<std::string> parse_requirement(requirement& r) {
    bool negated = false;
    if (current_.kind == token_kind::bang) {
      negated = true;
      advance();
    }
    if (current_.kind != token_kind::identifier)
      return "found '" +
             (current_.kind == token_kind::end ? std::string("end of string") : current_.text) +
             "', expected: !, identifier";
    r.key = current_.text;
    if (auto err = validate_key(r.key)) return err;
    advance();
    if (negated) {
      r.op = selector_op::does_not_exist;
      return std::nullopt;
    }
    switch (current_.kind) {
      case token_kind::end:
      case token_kind::comma:
        r.op = selector_op::exists;
        return std::nullopt;
      case token_kind::equals:
        r.op = selector_op::equals;
        break;
      case token_kind::double_equals:
        r.op = selector_op::double_equals;
        break;
      case token_kind::not_equals:
        r.op = selector_op::not_equals;
        break;
      case token_kind::greater:
        r.op = selector_op::greater_than;
        break;
      case token_kind::less:
        r.op = selector_op::less_than;
        break;
      case token_kind::in:
        r.op = selector_op::in;
        break;
      case token_kind::not_in:
        r.op = selector_op::not_in;
        break;
      default:
        return "found '" + current_.text + "', expected: in, notin, =, ==, !=, gt, lt";
    }
    advance();
    if (r.op == selector_op::in || r.op == selector_op::not_in) return parse_set(r);
    // A single value; an empty one is allowed for equality ("k=").
    if (current_.kind == token_kind::identifier) {
      r.values.push_back(current_.text);
      advance();
    } else if (current_.kind == token_kind::end || current_.kind == token_kind::comma) {
      r.values.emplace_back();
    } else {
      return "found '" + current_.text + "', expected: identifier";
    }
    if (r.op == selector_op::greater_than || r.op == selector_op::less_than) {
      long long parsed = 0;
      const std::string& v = r.values.front();
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
      if (ec != std::errc() || end != v.data() + v.size())
        return "for 'gt', 'lt' operators, the value must be an integer, got \"" + v + "\"";
      return std::nullopt;
    }
    return validate_value(r.values.front());
  }

  std::optional<std::string> parse_set(requirement& r) {
    if (current_.kind != token_kind::open_paren)
      return "found '" + current_.text + "', expected: '('";
    advance();
    std::set<std::string> values;
    // "()" is the set of the empty value, as labels.Parse reads it and Requirement.String()
    // writes that set ("(,)" prints as "()"), so the loop below takes it like "(,)".
    while (true) {
      if (current_.kind == token_kind::identifier) {
        values.insert(current_.text);
        advance();
      } else if (current_.kind == token_kind::comma || current_.kind == token_kind::close_paren) {
        values.insert("");  // "(a,)" carries an empty value, as in labels.Parse
      } else {
        return "found '" + current_.text + "', expected: ',', ')' or identifier";
      }
      if (current_.kind == token_kind::close_paren) {
        advance();
        break;
      }
      if (current_.kind != token_kind::comma)
        return "found '" + current_.text + "', expected: ',' or ')'";
      advance();
    }
    for (const auto& v : values)
      if (auto err = validate_value(v)) return err;
    r.values.assign(values.begin(), values.end());
    return std::nullopt;
  }

  lexer lex_;
  token current_{token_kind::end, ""};
};

const char* op_text(selector_op op) {
  switch (op) {
    case selector_op::equals:
      return "=";
    case selector_op::double_equals:
      return "==";
    case selector_op::not_equals:
      return "!=";
    case selector_op::in:
      return " in ";
    case selector_op::not_in:
      return " notin ";
    case selector_op::greater_than:
      return ">";
    case selector_op::less_than:
      return "<";
    default:
      return "";
  }
}

}  // namespace

bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  return std::isalnum(static_cast<unsigned char>(s.front())) &&
         std::isalnum(static_cast<unsigned char>(s.back()));
}

bool requirement::matches(const label_map& labels) const {
  const auto it = labels.find(key);
  return matches_value(it == labels.end() ? std::nullopt
                                          : std::optional<std::string_view>(it->second));
}

bool requirement::matches_value(std::optional<std::string_view> value) const {
  const bool has = value.has_value();
  const auto contains = [&](std::string_view v) {
    return std::binary_search(values.begin(), values.end(), v, std::less<>{});
  };
  switch (op) {
    case selector_op::equals:
    case selector_op::double_equals:
    case selector_op::in:
      return has && contains(*value);
    case selector_op::not_equals:
    case selector_op::not_in:
      return !has || !contains(*value);
    case selector_op::exists:
      return has;
    case selector_op::does_not_exist:
      return !has;
    case selector_op::greater_than:
    case selector_op::less_than: {
      if (!has) return false;
      long long label = 0;
      long long limit = 0;
      const std::string_view s = *value;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), label);
      if (ec != std::errc() || end != s.data() + s.size()) return false;
      std::from_chars(values.front().data(), values.front().data() + values.front().size(), limit);
      return op == selector_op::greater_than ? label > limit : label < limit;
    }
  }
  return false;
}

result<label_selector> label_selector::parse(std::string_view text, std::string* error_message) {
  label_selector selector;
  parser p(text);
  if (auto err = p.parse(selector.requirements_)) {
    if (error_message) *error_message = "unable to parse requirement: " + *err;
    return errc::invalid_selector;
  }
  std::stable_sort(selector.requirements_.begin(), selector.requirements_.end(),
                   [](const requirement& a, const requirement& b) { return a.key < b.key; });
  return selector;
}

bool label_selector::matches(const label_map& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const requirement& r) { return r.matches(labels); });
}

std::string label_selector::to_string() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ',';
    if (r.op == selector_op::does_not_exist) out += '!';
    out += r.key;
    if (r.op == selector_op::exists || r.op == selector_op::does_not_exist) continue;
    out += op_text(r.op);
    if (r.op == selector_op::in || r.op == selector_op::not_in) {
      out += '(';
      for (std::size_t i = 0; i < r.values.size(); ++i) out += (i ? "," : "") + r.values[i];
      out += ')';
    } else {
      out += r.values.front();
    }
  }
  return out;
}

json label_selector::to_label_selector_json() const {
  if (requirements_.empty()) return nullptr;
  json match_labels = json::object();
  json expressions = json::array();
  for (const auto& r : requirements_) {
    const auto expression = [&](const char* op, const std::vector<std::string>& values) {
      json e = {{"key", r.key}, {"operator", op}};
      if (!values.empty()) e["values"] = values;
      expressions.push_back(std::move(e));
    };
    switch (r.op) {
      case selector_op::equals:
      case selector_op::double_equals:
        match_labels[r.key] = r.values.front();
        break;
      case selector_op::in:
        expression("In", r.values);
        break;
      case selector_op::not_in:
      case selector_op::not_equals:
        expression("NotIn", r.values);
        break;
      case selector_op::exists:
        expression("Exists", {});
        break;
      case selector_op::does_not_exist:
        expression("DoesNotExist", {});
        break;
      default:
        break;  // gt/lt have no LabelSelector form; requests with them are refused
    }
  }
  json out = json::object();
  if (!match_labels.empty()) out["matchLabels"] = std::move(match_labels);
  if (!expressions.empty()) out["matchExpressions"] = std::move(expressions);
  return out;
}

}  // namespace gma::core
