#include "server/core/resource_metrics.hpp"

namespace gma::core {
namespace {

json group_version() {
  return {{"groupVersion", std::string(kResourceMetricsGroup) + "/" + kResourceMetricsVersion},
          {"version", kResourceMetricsVersion}};
}

json resource(const char* name, bool namespaced, const char* kind) {
  // singularName is "" and there is no watch: metrics-server's storages return "" from
  // GetSingularName and implement only Getter and Lister.
  return {{"name", name},
          {"singularName", ""},
          {"namespaced", namespaced},
          {"kind", kind},
          {"verbs", json::array({"get", "list"})}};
}

/// ObjectMeta as both reference servers fill it: name, namespace, the response's time as
/// creationTimestamp, and the object's labels (left out when there are none).
json object_meta(const std::string& namespace_, const std::string& name, const label_map& labels,
                 sys_seconds now) {
  json meta = {{"name", name}};
  if (!namespace_.empty()) meta["namespace"] = namespace_;
  meta["creationTimestamp"] = format_rfc3339(now);
  if (!labels.empty()) {
    json l = json::object();
    for (const auto& [k, v] : labels) l[k] = v;  // sorted, as Go marshals a map
    meta["labels"] = std::move(l);
  }
  return meta;
}

json usage_json(const resource_usage& usage) {
  return {{"cpu", usage.cpu.to_string()}, {"memory", usage.memory.to_string()}};
}

}  // namespace

std::string go_duration_string(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms == 0) return "0s";
  std::string sign;
  if (ms < 0) {
    sign = "-";
    ms = -ms;
  }
  if (ms < 1000) return sign + std::to_string(ms) + "ms";
  const auto hours = ms / 3'600'000;
  const auto minutes = ms / 60'000 % 60;
  const auto seconds = ms / 1000 % 60;
  std::string fraction;
  if (const auto milli = ms % 1000) {
    fraction = std::to_string(1000 + milli).substr(1);  // three digits
    while (fraction.back() == '0') fraction.pop_back();
    fraction = "." + fraction;
  }
  std::string out = sign;
  if (hours) out += std::to_string(hours) + "h";
  if (hours || minutes) out += std::to_string(minutes) + "m";
  return out + std::to_string(seconds) + fraction + "s";
}

json resource_metrics_group_entry() {
  return {{"name", kResourceMetricsGroup},
          {"versions", json::array({group_version()})},
          {"preferredVersion", group_version()}};
}

json resource_metrics_resource_list() {
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", std::string(kResourceMetricsGroup) + "/" + kResourceMetricsVersion},
          {"resources", json::array({resource("nodes", false, "NodeMetrics"),
                                     resource("pods", true, "PodMetrics")})}};
}

json pod_metrics(const pod_usage& usage, const label_map& labels, sys_seconds now,
                 std::chrono::milliseconds window) {
  json containers = json::array();
  for (const auto& c : usage.containers)
    containers.push_back({{"name", c.name}, {"usage", usage_json(c.usage)}});
  return {{"metadata", object_meta(usage.namespace_, usage.name, labels, now)},
          {"timestamp", format_rfc3339(usage.timestamp)},
          {"window", go_duration_string(window)},
          {"containers", std::move(containers)}};
}

json node_metrics(const node_usage& usage, const label_map& labels, sys_seconds now,
                  std::chrono::milliseconds window) {
  return {{"metadata", object_meta("", usage.name, labels, now)},
          {"timestamp", format_rfc3339(usage.timestamp)},
          {"window", go_duration_string(window)},
          {"usage", usage_json(usage.usage)}};
}

json resource_metrics_list(std::string_view kind, json items) {
  return {{"kind", kind},
          {"apiVersion", std::string(kResourceMetricsGroup) + "/" + kResourceMetricsVersion},
          {"metadata", json::object()},
          {"items", std::move(items)}};
}

json resource_metrics_object(std::string_view kind, json item) {
  json out = {{"kind", kind},
              {"apiVersion", std::string(kResourceMetricsGroup) + "/" + kResourceMetricsVersion}};
  for (auto& [k, v] : item.items()) out[k] = std::move(v);
  return out;
}

}  // namespace gma::core
