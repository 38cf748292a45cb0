#include "adapters/prometheus/rules_query.hpp"

#include <map>

#include "adapters/prometheus/query_builder.hpp"
#include "server/core/strings.hpp"

namespace gma::adapters::prometheus {
namespace {

struct query_parts {
  std::vector<matcher> matchers;
  std::map<std::string, std::string> values_by_name;
};

result<query_parts> selector_parts(const core::label_selector& selector) {
  auto matchers = selector_matchers(selector);
  if (!matchers) return matchers.error();
  query_parts parts{std::move(*matchers), {}};
  for (const auto& r : selector.requirements())
    parts.values_by_name[prometheus_label_name(r.key)] = core::join(r.values, "|");
  return parts;
}

/// An execution error (a field of a string, an index out of range, ...) fails the request with
/// a 500, as prometheus-adapter's query building does; Go's message goes to `error`.
result<std::string> render(const go_template& query, const std::string& series,
                           const query_parts& parts, const std::vector<std::string>& group_by,
                           std::string* error) {
  auto text = query.execute({{"Series", series},
                             {"LabelMatchers", render_matchers(parts.matchers)},
                             {"LabelValuesByName", parts.values_by_name},
                             {"GroupBy", core::join(group_by, ",")},
                             {"GroupBySlice", group_by}},
                            error);
  if (!text) return errc::backend_error;
  return text;
}

/// Every object the resource label names (`label!=""`), in one namespace when given.
result<std::string> render_resource_query(const go_template& query,
                                          const resource_mapping& resources, const char* resource,
                                          const std::optional<std::string>& namespace_,
                                          std::vector<std::string> group_by, std::string* error) {
  const auto object_label = resources.label_for_resource({"", resource});
  if (!object_label) return errc::backend_error;
  query_parts parts;
  if (namespace_) {
    const auto namespace_label = resources.label_for_resource({"", "namespaces"});
    if (!namespace_label) return errc::backend_error;
    parts.matchers.push_back({*namespace_label, "=", *namespace_});
    parts.values_by_name[*namespace_label] = *namespace_;
  }
  parts.matchers.push_back({*object_label, "!=", ""});
  parts.values_by_name[*object_label] = "";
  group_by.insert(group_by.begin(), *object_label);
  auto text = render(query, "", parts, group_by, error);
  if (text && text->empty()) return errc::backend_error;
  return text;
}

}  // namespace

result<std::string> render_container_query(const resource_query_rule& rule,
                                           const std::string& namespace_, std::string* error) {
  if (!rule.has_container_query) return errc::backend_error;
  return render_resource_query(rule.container_query, rule.resources, "pods", namespace_,
                               {rule.container_label}, error);
}

result<std::string> render_node_query(const resource_query_rule& rule, std::string* error) {
  if (!rule.has_node_query) return errc::backend_error;
  return render_resource_query(rule.node_query, rule.resources, "nodes", std::nullopt, {}, error);
}

result<std::string> render_custom_query(const discovery_rule& rule, const std::string& series,
                                        const group_resource& resource,
                                        const std::optional<std::string>& namespace_,
                                        const std::vector<std::string>& names,
                                        const core::label_selector& metric_selector,
                                        std::string* error) {
  auto parts = selector_parts(metric_selector);
  if (!parts) return parts.error();
  const auto resource_label = rule.resources.label_for_resource(resource);
  if (!resource_label) return errc::metric_not_found;
  if (namespace_) {
    const auto namespace_label = rule.resources.label_for_resource({"", "namespaces"});
    if (!namespace_label) return errc::metric_not_found;
    parts->matchers.push_back({*namespace_label, "=", *namespace_});
    parts->values_by_name[*namespace_label] = *namespace_;
  }
  if (names.size() == 1) {
    parts->matchers.push_back({*resource_label, "=", names.front()});
  } else if (names.empty()) {
    parts->matchers.push_back({*resource_label, "!=", ""});  // every object with data
  } else {
    std::vector<std::string> escaped;
    for (const auto& n : names) escaped.push_back(escape_regex(n));
    parts->matchers.push_back({*resource_label, "=~", core::join(escaped, "|")});
  }
  parts->values_by_name[*resource_label] = core::join(names, "|");
  return render(rule.metrics_query, series, *parts, {*resource_label}, error);
}

result<std::string> render_external_query(const discovery_rule& rule, const std::string& series,
                                          const std::string& namespace_,
                                          const core::label_selector& selector,
                                          std::string* error) {
  auto parts = selector_parts(selector);
  if (!parts) return parts.error();
  if (rule.resources.namespaced) {
    const auto namespace_label = rule.resources.label_for_resource({"", "namespaces"});
    if (!namespace_label) return errc::metric_not_found;  // refused at load time already
    parts->matchers.push_back({*namespace_label, "=", namespace_});
    parts->values_by_name[*namespace_label] = namespace_;
  }
  return render(rule.metrics_query, series, *parts, {}, error);
}

}  // namespace gma::adapters::prometheus
