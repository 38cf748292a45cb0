#pragma once
/// @file The items of custom.metrics.k8s.io MetricValueList (v1beta1 and v1beta2) and
/// external.metrics.k8s.io ExternalMetricValueList, and their exact JSON.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "server/core/go_json.hpp"
#include "server/core/label_selector.hpp"
#include "server/core/quantity.hpp"

namespace gma::core {

using sys_seconds = std::chrono::sys_seconds;

/// core/v1 ObjectReference as custom-metrics-apiserver fills it.
struct object_reference {
  std::string kind;        ///< "Pod", "Namespace", ...
  std::string namespace_;  ///< empty for cluster-scoped objects
  std::string name;
  std::string api_version;  ///< group + "/" + version: "/v1" for core objects
};

/// One custom metric value for one described object.
struct metric_value {
  object_reference described_object;
  std::string metric;
  sys_seconds timestamp;
  quantity value;
};

/// One external metric value for one series.
struct external_metric_value {
  std::string metric;
  label_map labels;
  sys_seconds timestamp;
  quantity value;
};

enum class custom_version { v1beta1, v1beta2 };

/// RFC 3339 in UTC at second precision, as metav1.Time marshals.
std::string format_rfc3339(sys_seconds t);

/// MetricValueList in the given version. `metric_selector` is echoed in every item (`null`
/// when empty), as prometheus-adapter does.
json metric_value_list(custom_version version, const std::vector<metric_value>& items,
                       const label_selector& metric_selector);

json external_metric_value_list(const std::vector<external_metric_value>& items);

}  // namespace gma::core
