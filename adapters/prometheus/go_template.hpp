#pragma once
/// @file The part of Go's text/template that prometheus-adapter rules use, with its `<<` `>>`
/// delimiters: field references (`<<.Series>>`), `index` with a string key
/// (`<<index .LabelValuesByName "pods">>`) and trim markers (`<<-`, `->>`). Anything else is
/// refused when the template is parsed, naming the construct. Immutable once parsed;
/// thread-safe.

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "server/core/error.hpp"

namespace gma::adapters::prometheus {

/// A value as Go's fmt prints it: a string, a []string ("[a b]") or a map[string]string
/// ("map[k:v]", keys sorted).
using template_value =
    std::variant<std::string, std::vector<std::string>, std::map<std::string, std::string>>;
using template_data = std::map<std::string, template_value>;

class go_template {
 public:
  /// Parses `text`; `fields` are the names a `.Field` may use. On failure `error` says why
  /// ("unsupported template action \"range .X\"", "unknown field .Foo", ...).
  static result<go_template> parse(std::string_view text, const std::set<std::string>& fields,
                                   std::string* error);

  /// Renders with `data`; a field missing from `data` renders as Go's zero value.
  std::string render(const template_data& data) const;

  /// True when the template refers to the field, directly or through index.
  bool uses(const std::string& field) const;
  /// True when the template prints the map `field` whole or its entry `key`.
  bool uses(const std::string& field, const std::string& key) const;

 private:
  struct node {
    enum kind_t { text, field, index } kind;
    std::string value;  ///< the text, or the field name
    std::string key;    ///< for index
  };
  std::vector<node> nodes_;
};

}  // namespace gma::adapters::prometheus
