#pragma once
/// @file The HorizontalPodAutoscaler controller's arithmetic, for `explain-hpa`: from the values
/// a metrics API answered to the replica count the controller would choose, with the reason in
/// words at every step. It follows k8s.io/kubernetes pkg/controller/podautoscaler
/// (replica_calculator.go and horizontal.go) as the Kubernetes documentation describes it:
/// milli-unit integer averages, the tolerance, missing and unready pods on either side of the
/// target, the largest proposal across metrics, a failing metric blocking scale-down, the
/// minReplicas/maxReplicas clamps and the scale-up limit. What needs the controller's history
/// (stabilization windows, and scaling already done within a policy's period) is assumed
/// empty and listed in decision::unknowns. Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/core/autoscaler.hpp"

namespace gma::core::hpa {

/// `--horizontal-pod-autoscaler-tolerance` (0.1) in each direction, or an HPA's own
/// behavior.scaleUp/scaleDown.tolerance.
struct tolerances {
  double scale_down = 0.1;
  double scale_up = 0.1;
  /// (1 - scale_down) <= ratio <= (1 + scale_up): no change.
  bool within(double ratio) const { return 1.0 - scale_down <= ratio && ratio <= 1.0 + scale_up; }
};

/// What one metric read.
struct metric_reading {
  /// Pods metrics: the milli-value of each pod; Object and External metrics: of each item.
  std::vector<std::pair<std::string, std::int64_t>> values;
  /// Set when the metric could not be read: the Status message the HPA would also get.
  std::optional<std::string> error;
  /// Set when the metric was not read at all, and why (Resource metrics belong to
  /// metrics.k8s.io). Such a metric is neither a proposal nor a failure here.
  std::optional<std::string> skipped;
};

/// What the controller knows of the cluster at this sync.
struct cluster_view {
  std::int32_t spec_replicas = 0;  ///< the scale target's spec.replicas: "current replicas"
  /// The scale target's status.replicas (surge pods included), which AverageValue targets of
  /// Object and External metrics divide by.
  std::int32_t status_replicas = 0;
  /// The pods the scale target's selector picks; nullopt when they could not be listed.
  std::optional<std::vector<pod_status>> pods;
};

struct metric_outcome {
  bool valid = false;  ///< a proposal was made
  bool skipped = false;
  std::int32_t proposal = 0;
  std::optional<double> ratio;                ///< current / target as the controller computed it
  std::optional<std::int64_t> current_milli;  ///< the value the HPA's status would show
  std::string reason;                         ///< in words, with the numbers
};

struct decision {
  std::vector<metric_outcome> metrics;  ///< one per autoscaler::metrics, in order
  /// The largest valid proposal and the metric that made it; nullopt when none was valid.
  std::optional<std::int32_t> metrics_proposal;
  std::optional<std::size_t> deciding_metric;
  std::int32_t desired = 0;  ///< what the controller would set spec.replicas to
  /// False when the controller would leave the count alone because of an error or because
  /// scaling is disabled; desired is then the current count.
  bool able_to_scale = true;
  std::string reason;                 ///< how `desired` came about, in words
  std::vector<std::string> unknowns;  ///< what only the controller's history could tell
};

/// The controller's decision for `hpa` given what each metric read (`readings` parallels
/// hpa.metrics) and the cluster's state.
decision decide(const autoscaler& hpa, const std::vector<metric_reading>& readings,
                const cluster_view& cluster, const tolerances& tolerance);

/// A ratio with at most `decimals` decimals, trailing zeros dropped: "0.896875", "0.8", "2".
/// The reasons use six, so that the ceil() they show can be checked by hand.
std::string ratio_text(double ratio, int decimals = 6);

/// A milli-value as a canonical Quantity string: 71750 -> "71750m", 80000 -> "80".
std::string milli_text(std::int64_t milli);

}  // namespace gma::core::hpa
