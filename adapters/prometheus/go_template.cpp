#include "adapters/prometheus/go_template.hpp"

#include <cctype>
#include <optional>

namespace gma::adapters::prometheus {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s.front()))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

/// Go's %v of each value kind.
std::string format(const template_value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* list = std::get_if<std::vector<std::string>>(&v)) {
    std::string out = "[";
    for (std::size_t i = 0; i < list->size(); ++i) out += (i ? " " : "") + (*list)[i];
    return out + "]";
  }
  const auto& map = std::get<std::map<std::string, std::string>>(v);
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, val] : map) {
    out += (first ? "" : " ") + k + ":" + val;
    first = false;
  }
  return out + "]";
}

/// Reads a Go double-quoted string literal; nullopt when `s` is not exactly one.
std::optional<std::string> string_literal(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return std::nullopt;
  std::string out;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\') {
      if (i + 2 >= s.size()) return std::nullopt;
      const char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else if (s[i] == '"') {
      return std::nullopt;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

result<go_template> go_template::parse(std::string_view text, const std::set<std::string>& fields,
                                       std::string* error) {
  const auto fail = [&](std::string why) -> result<go_template> {
    if (error) *error = std::move(why);
    return errc::bad_request;
  };
  go_template t;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find("<<", pos);
    std::string literal(text.substr(pos, open == std::string_view::npos ? text.npos : open - pos));
    if (open == std::string_view::npos) {
      t.nodes_.push_back({node::text, std::move(literal), ""});
      break;
    }
    const auto close = text.find(">>", open + 2);
    if (close == std::string_view::npos) return fail("unclosed action: missing \">>\"");
    std::string_view action = text.substr(open + 2, close - open - 2);
    bool trim_left = false;
    bool trim_right = false;
    if (action.starts_with("- ") || action == "-") {
      trim_left = true;
      action.remove_prefix(1);
    }
    if (action.ends_with(" -")) {
      trim_right = true;
      action.remove_suffix(1);
    }
    if (trim_left)
      while (!literal.empty() && std::isspace(static_cast<unsigned char>(literal.back())))
        literal.pop_back();
    if (!literal.empty()) t.nodes_.push_back({node::text, std::move(literal), ""});
    action = trim(action);
    if (action.starts_with("/*") && action.ends_with("*/")) {
      // a comment
    } else if (action.starts_with(".")) {
      const std::string name(action.substr(1));
      if (!is_identifier(name))
        return fail("unsupported template action \"" + std::string(action) + "\"");
      if (!fields.contains(name)) return fail("unknown template field ." + name);
      t.nodes_.push_back({node::field, name, ""});
    } else if (action.starts_with("index ")) {
      std::string_view args = trim(action.substr(6));
      const auto space = args.find(' ');
      const std::string_view target = args.substr(0, space);
      const auto key =
          space == std::string_view::npos ? std::nullopt : string_literal(trim(args.substr(space)));
      if (!target.starts_with(".") || !is_identifier(target.substr(1)) || !key)
        return fail("unsupported template action \"" + std::string(action) +
                    "\": only index .Field \"key\" is supported");
      const std::string name(target.substr(1));
      if (!fields.contains(name)) return fail("unknown template field ." + name);
      t.nodes_.push_back({node::index, name, *key});
    } else {
      const auto word = action.substr(0, action.find_first_of(" \t"));
      return fail("unsupported template action \"" + std::string(action) + "\"" +
                  (word.empty() ? "" : " (\"" + std::string(word) + "\" is not supported)"));
    }
    pos = close + 2;
    if (trim_right)
      while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  }
  return t;
}

std::string go_template::render(const template_data& data) const {
  std::string out;
  for (const auto& n : nodes_) {
    if (n.kind == node::text) {
      out += n.value;
      continue;
    }
    const auto it = data.find(n.value);
    if (it == data.end()) continue;
    if (n.kind == node::field) {
      out += format(it->second);
    } else if (const auto* map = std::get_if<std::map<std::string, std::string>>(&it->second)) {
      if (auto found = map->find(n.key); found != map->end()) out += found->second;
    }
  }
  return out;
}

bool go_template::uses(const std::string& field) const {
  for (const auto& n : nodes_)
    if (n.kind != node::text && n.value == field) return true;
  return false;
}

bool go_template::uses(const std::string& field, const std::string& key) const {
  for (const auto& n : nodes_)
    if ((n.kind == node::field || (n.kind == node::index && n.key == key)) && n.value == field)
      return true;
  return false;
}

}  // namespace gma::adapters::prometheus
