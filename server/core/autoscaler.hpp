#pragma once
/// @file A HorizontalPodAutoscaler as `explain-hpa` needs it: its scale target, replica bounds,
/// metrics with their targets, and scaling behaviour, read from the JSON of
/// `autoscaling/v2`, `v2beta2` or `v2beta1` into one shape. Value types; thread-safe once built.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/core/error.hpp"
#include "server/core/quantity.hpp"

namespace gma::core::hpa {

/// The `type` of a metric source, as the HPA names it.
enum class source_type { pods, object, external, resource, container_resource };
/// The `target.type` of a metric.
enum class target_type { value, average_value, utilization };

/// "Pods", "Object", "External", "Resource", "ContainerResource".
const char* source_name(source_type type);
/// "Value", "AverageValue", "Utilization".
const char* target_name(target_type type);

/// A scaleTargetRef or an Object metric's describedObject.
struct object_reference {
  std::string api_version;  ///< "apps/v1"
  std::string kind;         ///< "Deployment"
  std::string name;
  /// The API group of api_version: "apps" for "apps/v1", "" for "v1".
  std::string group() const;
  /// The plural resource name guessed from the kind as client-go's UnsafeGuessKindToResource
  /// does: "deployments", "ingresses", "policies".
  std::string plural() const;
  /// The resource as the metrics APIs name it: "deployments.apps", "services", "pods".
  std::string group_resource() const;
};

struct metric_spec {
  source_type type = source_type::pods;
  std::string name;  ///< the metric's name; for Resource metrics the resource ("cpu")
  /// The metric's label selector as labels.Selector.String() writes it ("gpu-type=tesla-v100");
  /// empty for none.
  std::string selector;
  object_reference described_object;  ///< Object metrics only
  std::string container;              ///< ContainerResource metrics only
  target_type target = target_type::average_value;
  quantity target_quantity;             ///< for value and average_value
  std::int32_t target_utilization = 0;  ///< percent, for utilization
};

/// One direction of `spec.behavior`, with the API's defaults filled in.
struct scaling_rules {
  struct policy {
    std::string type;  ///< "Pods" or "Percent"
    std::int32_t value = 0;
    std::int32_t period_seconds = 0;
  };
  std::int32_t stabilization_window_seconds = 0;
  std::string select_policy = "Max";  ///< "Max", "Min" or "Disabled"
  std::vector<policy> policies;
  std::optional<double> tolerance;  ///< behavior.<direction>.tolerance (KEP-4951), when set
};

/// spec.behavior: the API defaults both directions as soon as either is given.
struct behavior_rules {
  scaling_rules scale_up;
  scaling_rules scale_down;
};

struct autoscaler {
  std::string api_version;  ///< as read: "autoscaling/v2", "autoscaling/v2beta1", ...
  std::string namespace_;
  std::string name;
  object_reference scale_target;
  std::int32_t min_replicas = 1;  ///< the API's default when unset
  std::int32_t max_replicas = 0;
  /// As written; an HPA with none gets the API's default, CPU at 80% utilisation.
  std::vector<metric_spec> metrics;
  /// Set only when spec.behavior is (with the API's defaults for what it leaves out): the
  /// controller then limits the rate with its policies instead of the fixed scale-up limit.
  std::optional<behavior_rules> behavior;
};

/// A pod the scale target's selector picks, as the controller groups it.
struct pod_status {
  std::string name;
  std::string phase = "Running";  ///< "Running", "Pending", "Failed", "Succeeded"
  bool deleted = false;           ///< metadata.deletionTimestamp is set
  bool ready = true;              ///< the Ready condition is True
};

/// What the HPA controller reads of its scale target: its `scale` subresource.
struct scale_target_state {
  std::string selector;              ///< status.selector, as labels.Selector.String() wrote it
  std::int32_t spec_replicas = 0;    ///< the controller's "current replicas"
  std::int32_t status_replicas = 0;  ///< what AverageValue targets of Object and External divide by
};

/// Reads an autoscaling/v1 Scale (GET .../deployments/NAME/scale). errc::bad_request with
/// `error` when it has no status.selector, which the controller needs to pick pods.
result<scale_target_state> read_scale(const nlohmann::json& scale, std::string& error);

/// Reads a Pod's phase, deletionTimestamp and Ready condition.
pod_status read_pod_status(const nlohmann::json& pod);

/// Reads a HorizontalPodAutoscaler object. On failure `error` names the field and why
/// ("spec.metrics[1].external.target.averageValue: quantities must match the regular
/// expression ..."); autoscaling/v1 is refused, since it has no metrics list.
result<autoscaler> parse_autoscaler(const nlohmann::json& object, std::string& error);

/// A metav1.LabelSelector object ({matchLabels, matchExpressions}) as
/// labels.Selector.String() writes it after LabelSelectorAsSelector: requirements sorted by
/// key, set values sorted. errc::invalid_selector with `error` for an unknown operator.
result<std::string> selector_string(const nlohmann::json& selector, std::string& error);

}  // namespace gma::core::hpa
