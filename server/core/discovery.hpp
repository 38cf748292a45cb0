#pragma once
/// @file Discovery documents: APIGroupList, APIGroup and APIResourceList for the metrics groups.

#include <string>
#include <vector>

#include "server/core/go_json.hpp"

namespace gma::core {

inline constexpr const char* kCustomGroup = "custom.metrics.k8s.io";
inline constexpr const char* kExternalGroup = "external.metrics.k8s.io";

/// A metric as discovery lists it.
struct custom_metric_info {
  std::string group_resource;  ///< GroupResource.String(): "pods", "deployments.apps"
  bool namespaced;
  std::string metric;
  friend bool operator==(const custom_metric_info&, const custom_metric_info&) = default;
};

struct external_metric_info {
  std::string metric;
  bool namespaced = true;
  friend bool operator==(const external_metric_info&, const external_metric_info&) = default;
};

/// GET /apis: both groups, v1beta2 preferred for custom metrics, and metrics.k8s.io when
/// `resource_metrics` (resource rules are configured).
json api_group_list(bool resource_metrics = false);
/// GET /apis/{group}; an empty json when the group is not ours (metrics.k8s.io is ours only
/// with `resource_metrics`).
json api_group(const std::string& group, bool resource_metrics = false);
/// GET /apis/custom.metrics.k8s.io/{version}. Never empty: with nothing discovered it lists
/// custom-metrics-apiserver's placeholder ("/custommetric"), so kubectl does not warn.
json custom_resource_list(const std::string& version,
                          const std::vector<custom_metric_info>& metrics);
/// GET /apis/external.metrics.k8s.io/v1beta1; placeholder "externalmetric" when empty.
json external_resource_list(const std::vector<external_metric_info>& metrics);

}  // namespace gma::core
