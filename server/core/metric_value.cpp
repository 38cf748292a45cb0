#include "server/core/metric_value.hpp"

#include <ctime>

namespace gma::core {
namespace {

json object_reference_json(const object_reference& ref) {
  // Every ObjectReference field is omitempty; declaration order is kind, namespace, name, ...,
  // apiVersion.
  json out = json::object();
  if (!ref.kind.empty()) out["kind"] = ref.kind;
  if (!ref.namespace_.empty()) out["namespace"] = ref.namespace_;
  if (!ref.name.empty()) out["name"] = ref.name;
  if (!ref.api_version.empty()) out["apiVersion"] = ref.api_version;
  return out;
}

}  // namespace

std::string format_rfc3339(sys_seconds t) {
  const std::time_t seconds = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buffer, n);
}

json metric_value_list(custom_version version, const std::vector<metric_value>& items,
                       const label_selector& metric_selector) {
  const json selector = metric_selector.to_label_selector_json();
  json list = json::array();
  for (const auto& item : items) {
    json j = {{"describedObject", object_reference_json(item.described_object)}};
    if (version == custom_version::v1beta2) {
      j["metric"] = {{"name", item.metric}, {"selector", selector}};
      j["timestamp"] = format_rfc3339(item.timestamp);
      j["value"] = item.value.to_string();
    } else {
      j["metricName"] = item.metric;
      j["timestamp"] = format_rfc3339(item.timestamp);
      j["value"] = item.value.to_string();
      j["selector"] = selector;
    }
    list.push_back(std::move(j));
  }
  return {{"kind", "MetricValueList"},
          {"apiVersion", version == custom_version::v1beta2 ? "custom.metrics.k8s.io/v1beta2"
                                                            : "custom.metrics.k8s.io/v1beta1"},
          {"metadata", json::object()},
          {"items", std::move(list)}};
}

json external_metric_value_list(const std::vector<external_metric_value>& items) {
  json list = json::array();
  for (const auto& item : items) {
    json labels = item.labels.empty() ? json(nullptr) : json(json::object());
    for (const auto& [k, v] : item.labels) labels[k] = v;
    list.push_back({{"metricName", item.metric},
                    {"metricLabels", std::move(labels)},
                    {"timestamp", format_rfc3339(item.timestamp)},
                    {"value", item.value.to_string()}});
  }
  return {{"kind", "ExternalMetricValueList"},
          {"apiVersion", "external.metrics.k8s.io/v1beta1"},
          {"metadata", json::object()},
          {"items", std::move(list)}};
}

}  // namespace gma::core
