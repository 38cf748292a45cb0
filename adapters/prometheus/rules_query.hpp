#pragma once
/// @file Renders a rule's metricsQuery for a request exactly as prometheus-adapter's naming
/// package does: LabelMatchers are the metric-label requirements sorted by key, then the
/// namespace label, then the resource label (`="x"` for one name, `=~"a|b"` for several);
/// GroupBy is the resource label (empty for external rules). Values inside =~ are
/// regex-escaped. Pure; thread-safe.

#include <optional>
#include <string>
#include <vector>

#include "adapters/prometheus/rules_config.hpp"
#include "server/core/label_selector.hpp"

namespace gma::adapters::prometheus {

/// A custom-metrics request against one rule. errc::invalid_selector for `>`/`<`;
/// errc::metric_not_found when the rule maps no label to the resource (or, for a namespaced
/// request, to namespaces); errc::backend_error when metricsQuery fails to execute (an index
/// out of range, ...), with Go's message in `error` when given. A query may render empty (a
/// rule without metricsQuery): the caller decides what that means.
result<std::string> render_custom_query(const discovery_rule& rule, const std::string& series,
                                        const group_resource& resource,
                                        const std::optional<std::string>& namespace_,
                                        const std::vector<std::string>& names,
                                        const core::label_selector& metric_selector,
                                        std::string* error = nullptr);

/// An external-metrics request against one rule; errors as render_custom_query's.
result<std::string> render_external_query(const discovery_rule& rule, const std::string& series,
                                          const std::string& namespace_,
                                          const core::label_selector& selector,
                                          std::string* error = nullptr);

/// A resource rule's containerQuery for every pod of one namespace: LabelMatchers
/// `namespace="ns",pod!=""` (the labels the rule's resources map to namespaces and pods),
/// GroupBy the pod label then containerLabel, as prometheus-adapter's resource provider builds
/// it but for the whole namespace (its answer is shared by every request for the namespace).
/// errc::backend_error when the rule has no containerQuery, maps no label to pods or
/// namespaces, or its query renders empty or fails to execute (Go's message in `error`).
result<std::string> render_container_query(const resource_query_rule& rule,
                                           const std::string& namespace_,
                                           std::string* error = nullptr);

/// A resource rule's nodeQuery for every node: LabelMatchers `node!=""`, GroupBy the node label.
result<std::string> render_node_query(const resource_query_rule& rule,
                                      std::string* error = nullptr);

}  // namespace gma::adapters::prometheus
