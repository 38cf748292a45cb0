#pragma once
/// @file Go's text/template language as prometheus-adapter's templates use it, with `<<` `>>`
/// delimiters: trim markers and comments; if / else if / else, range (slices, and maps in
/// sorted key order, with `$i, $v :=`), with, break, continue and variables; pipelines,
/// parenthesised arguments, field and map access (`.LabelValuesByName.pod`); the builtins
/// and, or, not, len, index, slice, call, eq, ne, lt, le, gt, ge, print, printf, println, html,
/// js and urlquery. Named templates (define, template, block) are refused. A function Go does
/// not have is refused by name (`function "foo" not defined`), and a field the data does not
/// have is refused at parse time where the dot is known to be the data.
///
/// Bounded: nesting deeper than 100 levels is refused at parse time; a rendering over 1 MiB,
/// or over a million steps, stops with an error. Immutable once parsed; thread-safe.

#include <map>
#include <memory>
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
  /// The deepest nesting of if/range/with and parentheses parse() accepts.
  static constexpr int kMaxDepth = 100;
  /// The largest rendering execute() produces.
  static constexpr std::size_t kMaxOutput = std::size_t{1} << 20;

  /// Parses `text`; `fields` are the names a `.Field` of the data may use. On failure `error`
  /// says why and where ("3:7: function \"foo\" not defined", "1:3: unknown template field
  /// .Foo", ...), prefixed by `name:` when a name is given.
  static result<go_template> parse(std::string_view text, const std::set<std::string>& fields,
                                   std::string* error, std::string_view name = {});

  /// Renders with `data`; a field missing from `data` renders as an empty string. On an
  /// execution error (Go's `executing ...`) returns errc::bad_request and sets `error`.
  result<std::string> execute(const template_data& data, std::string* error = nullptr) const;

  /// execute(), with an execution error rendering as an empty string.
  std::string render(const template_data& data) const;

  /// True when the template may refer to the field, directly or through index or a variable.
  bool uses(const std::string& field) const;
  /// True when the template may print the map `field` whole or its entry `key`.
  bool uses(const std::string& field, const std::string& key) const;

  struct program;  ///< the parsed template; defined in go_template.cpp

 private:
  std::shared_ptr<const program> program_;
};

}  // namespace gma::adapters::prometheus
