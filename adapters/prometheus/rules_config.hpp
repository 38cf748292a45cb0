#pragma once
/// @file prometheus-adapter's rules file (`--config`): `rules`, `externalRules` and
/// `resourceRules`, loaded strictly: an unknown key, a wrong type, a bad regular
/// expression (RE2, as Go's regexp), a template that does not parse, or a rule that cannot
/// work is an error naming the file and line. Loaded configs are immutable; thread-safe.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "adapters/prometheus/go_template.hpp"

namespace re2 {
class RE2;
}

namespace gma::adapters::prometheus {

/// A Kubernetes resource in plural form with its API group ("" for core).
struct group_resource {
  std::string group;
  std::string resource;
  /// GroupResource.String(): "pods", "deployments.apps".
  std::string str() const { return group.empty() ? resource : resource + "." + group; }
  friend auto operator<=>(const group_resource&, const group_resource&) = default;
};

/// The plural form of a resource name as a RESTMapper would give it ("pod" -> "pods").
std::string plural_resource(const std::string& resource);
/// The singular form ("pods" -> "pod"), for resources.template.
std::string singular_resource(const std::string& resource);

struct series_filter {
  bool is;  ///< is: keep matching names; isNot: drop them
  std::shared_ptr<const re2::RE2> regex;
};

struct resource_mapping {
  std::map<std::string, group_resource> overrides;  ///< label -> resource
  std::optional<go_template> label_template;        ///< resources.template (.Group, .Resource)
  std::shared_ptr<const re2::RE2> template_regex;   ///< the template as an anchored regex
  bool namespaced = true;

  /// The resource a series label stands for, if any.
  std::optional<group_resource> resource_for_label(const std::string& label) const;
  /// The series label that stands for a resource, if any.
  std::optional<std::string> label_for_resource(const group_resource& resource) const;
};

struct discovery_rule {
  std::string series_query;
  std::vector<series_filter> filters;  ///< seriesFilters, then name.matches as an `is`
  resource_mapping resources;
  std::shared_ptr<const re2::RE2> name_matches;
  std::string name_as;
  go_template metrics_query;
  int line = 0;  ///< where the rule starts, for messages
  /// Identifies the rule by what it says, not where: equal for the same rule after a reload
  /// that changed other rules, different when this one changed. Tags the rule's cached answers.
  std::string fingerprint;

  /// The metric name this rule serves for a series name, or nullopt when a filter drops it.
  std::optional<std::string> metric_name(const std::string& series_name) const;
};

/// How one resource (cpu or memory) of metrics.k8s.io is read: prometheus-adapter's
/// ResourceRule.
struct resource_query_rule {
  go_template container_query;  ///< empty when the file has none: its requests fail
  go_template node_query;
  resource_mapping resources;   ///< which labels name the pod, namespace and node
  std::string container_label;  ///< the label that names the container
  bool has_container_query = false;
  bool has_node_query = false;
  int line = 0;
};

/// `resourceRules`: what metrics.k8s.io serves.
struct resource_rules {
  resource_query_rule cpu;
  resource_query_rule memory;
  /// Only reported in every item, as prometheus-adapter does: the queries set their own ranges.
  std::chrono::milliseconds window{0};
  int line = 0;
  /// As discovery_rule::fingerprint: tags cached answers, changes when the rules change.
  std::string fingerprint;
};

struct rules_config {
  std::vector<discovery_rule> rules;           ///< custom.metrics.k8s.io
  std::vector<discovery_rule> external_rules;  ///< external.metrics.k8s.io
  std::optional<resource_rules> resource;      ///< metrics.k8s.io, when present
  std::string source;                          ///< file name, for logs
};

/// "file:line: reason".
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses a rules file's text; `file_name` is used in messages. Throws config_error.
/// `warnings` receives non-fatal remarks (a rule without a query, which loads as in
/// prometheus-adapter but cannot answer).
rules_config parse_rules(const std::string& text, const std::string& file_name,
                         std::vector<std::string>* warnings = nullptr);

/// Prometheus' model.ParseDuration ("5m", "1h30m", "250ms", "0"); nullopt when it is not one.
std::optional<std::chrono::milliseconds> parse_prometheus_duration(const std::string& text);

/// Walks Go's Regexp.Expand syntax ($1, ${1}, ${name}, $name, $$): literal text is copied and
/// each reference is replaced by resolve(reference).
std::string expand_template(const std::string& templ,
                            const std::function<std::string(const std::string&)>& resolve);

/// Go's Regexp.Expand of `templ` ($1, ${1}, ${name}, $name, $$) with the submatches of `re`
/// on `input`; the empty string when it does not match.
std::string expand_name(const re2::RE2& re, const std::string& input, const std::string& templ);

}  // namespace gma::adapters::prometheus
