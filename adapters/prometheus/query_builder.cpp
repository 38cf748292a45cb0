#include "adapters/prometheus/query_builder.hpp"

#include <cctype>
#include <cstdio>
#include <cstring>

namespace gma::adapters::prometheus {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string escape_regex(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::strchr("\\.+*?()|[]{}^$", c) != nullptr && c != '\0') out += '\\';
    out += c;
  }
  return out;
}

std::string prometheus_label_name(std::string_view key) {
  std::string out;
  if (!key.empty() && std::isdigit(static_cast<unsigned char>(key.front()))) out += '_';
  for (unsigned char c : key) out += (std::isalnum(c) || c == '_') && c < 0x80 ? char(c) : '_';
  return out;
}

result<std::vector<matcher>> selector_matchers(const core::label_selector& selector,
                                               std::string* error_message) {
  std::vector<matcher> out;
  const auto alternation = [](const std::vector<std::string>& values) {
    std::string re;
    for (std::size_t i = 0; i < values.size(); ++i) re += (i ? "|" : "") + escape_regex(values[i]);
    return re;
  };
  for (const auto& r : selector.requirements()) {
    const std::string label = prometheus_label_name(r.key);
    switch (r.op) {
      case core::selector_op::equals:
      case core::selector_op::double_equals:
        out.push_back({label, "=", r.values.front()});
        break;
      case core::selector_op::not_equals:
        out.push_back({label, "!=", r.values.front()});
        break;
      case core::selector_op::in:
        out.push_back({label, "=~", alternation(r.values)});
        break;
      case core::selector_op::not_in:
        out.push_back({label, "!~", alternation(r.values)});
        break;
      case core::selector_op::exists:
        out.push_back({label, "!=", ""});
        break;
      case core::selector_op::does_not_exist:
        out.push_back({label, "=", ""});
        break;
      case core::selector_op::greater_than:
      case core::selector_op::less_than:
        if (error_message)
          *error_message =
              "label selector operators '>' and '<' are not supported for metric "
              "labels (requirement on \"" +
              r.key + "\")";
        return errc::invalid_selector;
    }
  }
  return out;
}

std::string render_matchers(const std::vector<matcher>& matchers) {
  std::string out;
  for (const auto& m : matchers) {
    if (!out.empty()) out += ',';
    out += m.label + m.op + quote(m.value);
  }
  return out;
}

}  // namespace gma::adapters::prometheus
