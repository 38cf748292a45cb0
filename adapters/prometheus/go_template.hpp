#pragma once
/// @file Go's text/template language as prometheus-adapter's templates use it, with `<<` `>>`
/// delimiters: trim markers and comments; if / else if / else, range (slices, and maps in
/// sorted key order, with `$i, $v :=`), with, break, continue and variables; define, template
/// and block; pipelines, parenthesised arguments, field and map access
/// (`.LabelValuesByName.pod`); the builtins and, or, not, len, index, slice, call, eq, ne, lt,
/// le, gt, ge, print, printf (fmt's verbs, flags, widths, precisions and `%[n]` indexes),
/// println, html, js and urlquery. A function Go does not have is refused by name
/// (`function "foo" not defined`), and a field the data does not have is refused at parse time
/// where the dot is known to be the data. Not supported: complex number constants.
///
/// Errors read as Go's: `template: NAME:LINE:COL: ...` at parse (Go gives no column there) and
/// `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...` at execution, the column counting
/// bytes from 0 as Go's does.
///
/// Bounded: nesting deeper than 100 levels is refused at parse time; template calls deeper than
/// 100 (Go allows 100000), execution nesting deeper than 1000 levels, a rendering over 1 MiB, or
/// over a million steps, stop with an error. Immutable once parsed; thread-safe.

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
  /// The deepest nesting of if/range/with and parentheses parse() accepts, and of template
  /// calls execute() runs.
  static constexpr int kMaxDepth = 100;
  /// The largest rendering execute() produces.
  static constexpr std::size_t kMaxOutput = std::size_t{1} << 20;

  /// Parses `text`, the template named `name` (which `<<template "name">>` calls, and which a
  /// define of that name replaces when the text is only white space, as in Go); `fields` are the
  /// names a `.Field` of the data may use. On failure `error` says why and where, as Go does
  /// ("template: metricsQuery:3:6: function \"foo\" not defined").
  static result<go_template> parse(std::string_view text, const std::set<std::string>& fields,
                                   std::string* error, std::string_view name = {});

  /// Renders with `data`; a field missing from `data` renders as an empty string. On an
  /// execution error returns errc::bad_request and sets `error` to Go's message
  /// ("template: q:1:2: executing \"q\" at <index .GroupBySlice 9>: error calling index: ...").
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
