#pragma once
/// @file The seams between the API server and metric backends, modelled on
/// custom-metrics-apiserver's CustomMetricsProvider and ExternalMetricsProvider.
/// Implementations must be safe to call concurrently from several threads.

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/core/discovery.hpp"
#include "server/core/error.hpp"
#include "server/core/label_selector.hpp"
#include "server/core/metric_value.hpp"

namespace gma::core {

/// A custom metric request after routing and selector parsing.
struct custom_metric_query {
  std::string group_resource;  ///< "pods", "namespaces", "nodes", "deployments.apps", ...
  std::string namespace_;      ///< empty for cluster-scoped objects
  std::string name;            ///< the object's name, or "*" for every object
  std::string metric;
  label_selector metric_selector;
  /// For "*": only these objects (the pods a labelSelector picked, or the pods that exist).
  /// nullopt: every object with data. Filters the answer; never part of the backend's query.
  std::optional<std::vector<std::string>> only_names;
};

/// An external metric request.
struct external_metric_query {
  std::string namespace_;
  std::string metric;
  label_selector selector;
};

class custom_metrics_provider {
 public:
  virtual ~custom_metrics_provider() = default;
  /// The values for the described objects; errc::metric_not_found when the metric is unknown
  /// for the resource, or a single named object has no data.
  virtual boost::asio::awaitable<result<std::vector<metric_value>>> async_get_metric(
      custom_metric_query query) = 0;
  /// What discovery found, for the APIResourceList.
  virtual std::vector<custom_metric_info> list_all_metrics() const = 0;
};

class external_metrics_provider {
 public:
  virtual ~external_metrics_provider() = default;
  virtual boost::asio::awaitable<result<std::vector<external_metric_value>>>
  async_get_external_metric(external_metric_query query) = 0;
  virtual std::vector<external_metric_info> list_all_external_metrics() const = 0;
};

/// Pods by label selector, from a list-and-watch cache (never a LIST per request).
class pod_lister {
 public:
  virtual ~pod_lister() = default;
  /// Names of the pods in `namespace_` that match `selector`; errc::kubernetes_unavailable
  /// while the cache has not synced.
  virtual result<std::vector<std::string>> list_pod_names(const std::string& namespace_,
                                                          const label_selector& selector) const = 0;
};

/// One named readiness check for /readyz.
struct health_check {
  std::string name;
  bool ok;
  std::string reason;  ///< why it fails; logged and shown with ?verbose
  /// Whether /readyz fails when this check does. An informational check is still listed with
  /// ?verbose and answered on /readyz/<name>.
  bool required = true;
};

class readiness_source {
 public:
  virtual ~readiness_source() = default;
  virtual std::vector<health_check> readiness_checks() const = 0;
};

}  // namespace gma::core
