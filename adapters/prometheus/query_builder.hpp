#pragma once
/// @file Turning user input into PromQL safely. Every value from a request passes through
/// quote() (and escape_regex() inside =~), so no selector can change a query's structure.
/// Pure functions; thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "server/core/error.hpp"
#include "server/core/label_selector.hpp"

namespace gma::adapters::prometheus {

/// One PromQL label matcher; `op` is one of "=", "!=", "=~", "!~".
struct matcher {
  std::string label;
  std::string op;
  std::string value;  ///< unquoted; quoted when rendered
  friend bool operator==(const matcher&, const matcher&) = default;
};

/// A double-quoted PromQL string literal holding exactly `s`.
std::string quote(std::string_view s);

/// Escapes RE2 metacharacters, like Go's regexp.QuoteMeta, so `s` matches only itself.
std::string escape_regex(std::string_view s);

/// Maps a Kubernetes label key to a Prometheus label name: every character outside
/// [a-zA-Z0-9_] becomes '_' ("nvidia.com/gpu-type" -> "nvidia_com_gpu_type"), and a leading
/// digit gets a '_' prefix so the name stays valid.
std::string prometheus_label_name(std::string_view key);

/// The matchers for a selector, in the reference adapter's mapping:
/// = and == to =, != to !=, in to =~"a|b", notin to !~"a|b", exists to !="", !k to ="".
/// gt and lt have no PromQL form: errc::invalid_selector with `error_message` set.
result<std::vector<matcher>> selector_matchers(const core::label_selector& selector,
                                               std::string* error_message = nullptr);

/// `label op "value"` joined by ','.
std::string render_matchers(const std::vector<matcher>& matchers);

}  // namespace gma::adapters::prometheus
