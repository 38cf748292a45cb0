#pragma once
/// @file The resource metrics API (metrics.k8s.io/v1beta1, what `kubectl top` and CPU/memory
/// HPAs read): its usage types, the seams to a backend and to the cluster's pods and nodes, and
/// its JSON, byte for byte what metrics-server's API layer (which prometheus-adapter serves
/// too) writes. Pure functions and value types; the interfaces' implementations must be safe to
/// call concurrently from several threads.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/core/error.hpp"
#include "server/core/go_json.hpp"
#include "server/core/label_selector.hpp"
#include "server/core/metric_value.hpp"
#include "server/core/quantity.hpp"

namespace gma::core {

inline constexpr const char* kResourceMetricsGroup = "metrics.k8s.io";
inline constexpr const char* kResourceMetricsVersion = "v1beta1";

/// A pod or node as the cluster's list-and-watch cache holds it.
struct listed_object {
  std::string namespace_;  ///< empty for nodes
  std::string name;
  label_map labels;
};

/// Pods or nodes with their labels, from a list-and-watch cache (never a LIST per request).
class object_lister {
 public:
  virtual ~object_lister() = default;
  /// The objects `selector` selects, in one namespace or (nullopt) all, sorted by namespace
  /// then name; errc::kubernetes_unavailable while the cache has not synced.
  virtual result<std::vector<listed_object>> list_objects(
      const std::optional<std::string>& namespace_, const label_selector& selector) const = 0;
};

struct resource_usage {
  quantity cpu;
  quantity memory;
};

struct container_usage {
  std::string name;
  resource_usage usage;
};

struct pod_usage {
  std::string namespace_;
  std::string name;
  sys_seconds timestamp;  ///< of the earliest sample it was made of
  std::vector<container_usage> containers;
};

struct node_usage {
  std::string name;
  sys_seconds timestamp;
  resource_usage usage;
};

class resource_metrics_provider {
 public:
  virtual ~resource_metrics_provider() = default;
  /// Whether the backend's configuration has resource rules now: without them the group is not
  /// served at all.
  virtual bool serving() const = 0;
  /// The window every item reports (the rules' `window`).
  virtual std::chrono::milliseconds window() const = 0;
  /// The usage of every pod with both CPU and memory data in these namespaces, sorted by
  /// namespace then name.
  virtual boost::asio::awaitable<result<std::vector<pod_usage>>> async_pod_usage(
      std::vector<std::string> namespaces) = 0;
  /// The usage of every node with both CPU and memory data, sorted by name.
  virtual boost::asio::awaitable<result<std::vector<node_usage>>> async_node_usage() = 0;
};

/// Go's time.Duration.String() of a whole number of milliseconds: "5m0s", "1h0m0s", "30s",
/// "20.021s", "500ms", "0s".
std::string go_duration_string(std::chrono::milliseconds d);

/// GET /apis/metrics.k8s.io: the APIGroup, as its entry in /apis.
json resource_metrics_group_entry();
/// GET /apis/metrics.k8s.io/v1beta1: nodes and pods, get and list.
json resource_metrics_resource_list();

/// One PodMetrics; `now` is the metadata's creationTimestamp, as both reference servers set it.
json pod_metrics(const pod_usage& usage, const label_map& labels, sys_seconds now,
                 std::chrono::milliseconds window);
json node_metrics(const node_usage& usage, const label_map& labels, sys_seconds now,
                  std::chrono::milliseconds window);
/// A PodMetricsList or NodeMetricsList of items made by the functions above.
json resource_metrics_list(std::string_view kind, json items);
/// With the apiVersion and kind of a single object.
json resource_metrics_object(std::string_view kind, json item);

}  // namespace gma::core
