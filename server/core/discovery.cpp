#include "server/core/discovery.hpp"

#include "server/core/resource_metrics.hpp"

namespace gma::core {
namespace {

json group_version(const std::string& group, const char* version) {
  return {{"groupVersion", group + "/" + version}, {"version", version}};
}

json group_entry(const std::string& group) {
  if (group == kResourceMetricsGroup) return resource_metrics_group_entry();
  if (group == kCustomGroup) {
    return {{"name", group},
            {"versions",
             json::array({group_version(group, "v1beta2"), group_version(group, "v1beta1")})},
            {"preferredVersion", group_version(group, "v1beta2")}};
  }
  return {{"name", group},
          {"versions", json::array({group_version(group, "v1beta1")})},
          {"preferredVersion", group_version(group, "v1beta1")}};
}

json resource(const std::string& name, bool namespaced, const char* kind) {
  return {{"name", name},
          {"singularName", ""},
          {"namespaced", namespaced},
          {"kind", kind},
          {"verbs", json::array({"get"})}};
}

json resource_list(const std::string& group_version, json resources) {
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group_version},
          {"resources", std::move(resources)}};
}

}  // namespace

json api_group_list(bool resource_metrics) {
  json groups = json::array({group_entry(kCustomGroup), group_entry(kExternalGroup)});
  if (resource_metrics) groups.push_back(group_entry(kResourceMetricsGroup));
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", std::move(groups)}};
}

json api_group(const std::string& group, bool resource_metrics) {
  const bool ours = group == kCustomGroup || group == kExternalGroup ||
                    (resource_metrics && group == kResourceMetricsGroup);
  if (!ours) return {};
  json out = {{"kind", "APIGroup"}, {"apiVersion", "v1"}};
  const json entry = group_entry(group);
  for (const auto& [k, v] : entry.items()) out[k] = v;
  return out;
}

json custom_resource_list(const std::string& version,
                          const std::vector<custom_metric_info>& metrics) {
  json resources = json::array();
  for (const auto& m : metrics)
    resources.push_back(
        resource(m.group_resource + "/" + m.metric, m.namespaced, "MetricValueList"));
  if (resources.empty()) resources.push_back(resource("/custommetric", false, "MetricValueList"));
  return resource_list(std::string(kCustomGroup) + "/" + version, std::move(resources));
}

json external_resource_list(const std::vector<external_metric_info>& metrics) {
  json resources = json::array();
  for (const auto& m : metrics)
    resources.push_back(resource(m.metric, m.namespaced, "ExternalMetricValueList"));
  if (resources.empty())
    resources.push_back(resource("externalmetric", true, "ExternalMetricValueList"));
  return resource_list(std::string(kExternalGroup) + "/v1beta1", std::move(resources));
}

}  // namespace gma::core
