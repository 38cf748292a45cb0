#pragma once
/// @file Kubernetes label selectors (k8s.io/apimachinery/pkg/labels): parsing with the same
/// grammar and validation, matching against a label set, and the metav1.LabelSelector form
/// that metrics responses echo. Value types: copyable, thread-safe once built.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/core/error.hpp"
#include "server/core/go_json.hpp"

namespace gma::core {

using label_map = std::map<std::string, std::string>;

enum class selector_op {
  equals,
  double_equals,
  not_equals,
  in,
  not_in,
  exists,
  does_not_exist,
  greater_than,
  less_than
};

/// One requirement such as `app in (a,b)`. `values` is sorted and de-duplicated.
struct requirement {
  std::string key;
  selector_op op;
  std::vector<std::string> values;

  bool matches(const label_map& labels) const;
  /// Whether a label set whose value under `key` is `value` (nullopt: it has no such label)
  /// meets the requirement. Allocates nothing, for matching labels stored in other forms.
  bool matches_value(std::optional<std::string_view> value) const;
  friend bool operator==(const requirement&, const requirement&) = default;
};

/// A DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', at most 253): the form of
/// Kubernetes object names and of label-key prefixes.
bool is_dns_subdomain(std::string_view s);

/// A conjunction of requirements, sorted by key as labels.Parse sorts them.
class label_selector {
 public:
  /// The empty selector, which matches everything.
  label_selector() = default;

  /// Parses the Kubernetes selector syntax (`a=b,c!=d,e in (f,g),h,!i,j>3`). The error message
  /// explains what is wrong and is safe to show to the client.
  static result<label_selector> parse(std::string_view text, std::string* error_message = nullptr);

  bool empty() const noexcept { return requirements_.empty(); }
  const std::vector<requirement>& requirements() const noexcept { return requirements_; }
  bool matches(const label_map& labels) const;

  /// Requirement.String() joined by ",", as Selector.String() writes it.
  std::string to_string() const;

  /// metav1.ParseToLabelSelector's result as JSON: equality requirements in matchLabels, the
  /// rest in matchExpressions; `null` for an empty selector.
  json to_label_selector_json() const;

 private:
  std::vector<requirement> requirements_;
};

}  // namespace gma::core
