#include "server/core/replica_calculator.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace gma::core::hpa {
namespace {

/// The controller's int32(math.Ceil(x)), saturating where Go's conversion is undefined.
std::int32_t ceil_count(double x) {
  if (std::isnan(x)) return 0;
  const double c = std::ceil(x);
  if (c >= static_cast<double>(INT32_MAX)) return INT32_MAX;
  if (c <= static_cast<double>(INT32_MIN)) return INT32_MIN;
  return static_cast<std::int32_t>(c);
}

/// Go's int64 addition, which wraps (in C++ a signed overflow is undefined).
std::int64_t go_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

std::string pods_word(std::size_t n) { return std::to_string(n) + (n == 1 ? " pod" : " pods"); }

std::string name_list(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

metric_outcome failure(std::string why) {
  metric_outcome out;
  out.reason = std::move(why);
  return out;
}

/// getUsageRatio: integer milli average over the pods with metrics, and its ratio to target.
std::pair<double, std::int64_t> usage_ratio(const std::map<std::string, std::int64_t>& metrics,
                                            std::int64_t target) {
  std::int64_t total = 0;
  for (const auto& [pod, value] : metrics) total = go_add(total, value);
  const std::int64_t usage = total / static_cast<std::int64_t>(metrics.size());
  return {static_cast<double>(usage) / static_cast<double>(target), usage};
}

/// calcPlainMetricReplicas: a Pods metric with an AverageValue target.
metric_outcome pods_metric(const metric_reading& reading, std::int64_t target,
                           const cluster_view& cluster, const tolerances& tol) {
  const std::int32_t current = cluster.spec_replicas;
  // GetRawMetric fails on an empty answer before any pod is looked at.
  if (reading.values.empty()) return failure("no metrics returned from custom metrics API");
  std::map<std::string, std::int64_t> metrics(reading.values.begin(), reading.values.end());
  if (!cluster.pods)
    return failure(
        "the pods of the scale target could not be listed, and the controller needs "
        "them to tell missing and unready pods apart");
  if (cluster.pods->empty())
    return failure("no pods returned by selector while calculating replica count");
  std::set<std::string> ready, unready, missing, ignored;
  for (const auto& pod : *cluster.pods) {
    if (pod.deleted || pod.phase == "Failed")
      ignored.insert(pod.name);
    else if (pod.phase == "Pending")
      unready.insert(pod.name);
    else if (!metrics.contains(pod.name))
      missing.insert(pod.name);
    else
      ready.insert(pod.name);
  }
  for (const auto& name : ignored) metrics.erase(name);
  for (const auto& name : unready) metrics.erase(name);
  if (metrics.empty())
    return failure("did not receive metrics for targeted pods (pods might be unready)");

  const auto [ratio, usage] = usage_ratio(metrics, target);
  metric_outcome out;
  out.valid = true;
  out.ratio = ratio;
  out.current_milli = usage;
  const std::string average = "average " + milli_text(usage) + " over " +
                              pods_word(metrics.size()) + " / target " + milli_text(target) +
                              " = ratio " + ratio_text(ratio);
  const bool scale_up_with_unready = !unready.empty() && ratio > 1.0;
  if (!scale_up_with_unready && missing.empty()) {
    if (tol.within(ratio)) {
      out.proposal = current;
      out.reason = average + ", within the tolerance: stays at " + std::to_string(current);
    } else {
      out.proposal = ceil_count(ratio * static_cast<double>(ready.size()));
      out.reason = average + ", outside the tolerance: ceil(" + ratio_text(ratio) + " x " +
                   pods_word(ready.size()) + ") = " + std::to_string(out.proposal);
    }
    return out;
  }
  if (!scale_up_with_unready && ratio == 1.0) {
    // Exactly at the target the controller fills in no missing pod, and 1 is within.
    out.proposal = current;
    out.reason = average + ", exactly the target: " + pods_word(missing.size()) +
                 " without a metric change nothing; stays at " + std::to_string(current);
    return out;
  }
  // Fill in the pods the average could not see, on the side that damps the change.
  std::string filled;
  if (!missing.empty()) {
    const bool down = ratio < 1.0;
    for (const auto& name : missing) metrics[name] = down ? target : 0;
    filled += pods_word(missing.size()) + " without a metric (" + name_list(missing) +
              ") counted " +
              (down ? "at the target, as on a scale-down" : "at 0, as on a scale-up");
  }
  if (scale_up_with_unready) {
    for (const auto& name : unready) metrics[name] = 0;
    filled += std::string(filled.empty() ? "" : "; ") + pods_word(unready.size()) + " pending (" +
              name_list(unready) + ") counted at 0, as on a scale-up";
  }
  const double new_ratio = usage_ratio(metrics, target).first;
  const std::string recomputed =
      average + "; " + filled + ": the ratio becomes " + ratio_text(new_ratio);
  if (tol.within(new_ratio)) {
    out.proposal = current;
    out.reason = recomputed + ", within the tolerance: stays at " + std::to_string(current);
  } else if ((ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)) {
    out.proposal = current;
    out.reason = recomputed + ", on the other side of 1: stays at " + std::to_string(current);
  } else {
    const std::int32_t proposal = ceil_count(new_ratio * static_cast<double>(metrics.size()));
    const std::string arithmetic = ": ceil(" + ratio_text(new_ratio) + " x " +
                                   pods_word(metrics.size()) + ") = " + std::to_string(proposal);
    if ((new_ratio < 1.0 && proposal > current) || (new_ratio > 1.0 && proposal < current)) {
      out.proposal = current;
      out.reason = recomputed + arithmetic + " would move against the ratio: stays at " +
                   std::to_string(current);
    } else {
      out.proposal = proposal;
      out.reason = recomputed + arithmetic;
    }
  }
  return out;
}

/// getUsageRatioReplicaCount: Object and External metrics with a Value target.
metric_outcome value_metric(std::int64_t usage, std::int64_t target, const cluster_view& cluster,
                            const tolerances& tol, const std::string& what) {
  metric_outcome out;
  out.valid = true;
  out.current_milli = usage;
  const double ratio = static_cast<double>(usage) / static_cast<double>(target);
  out.ratio = ratio;
  const std::string head = what + " " + milli_text(usage) + " / target " + milli_text(target) +
                           " = ratio " + ratio_text(ratio);
  const std::int32_t current = cluster.spec_replicas;
  if (current == 0) {
    out.proposal = ceil_count(ratio);
    out.reason =
        head + "; at 0 replicas: ceil(" + ratio_text(ratio) + ") = " + std::to_string(out.proposal);
    return out;
  }
  if (tol.within(ratio)) {
    out.proposal = current;
    out.reason = head + ", within the tolerance: stays at " + std::to_string(current);
    return out;
  }
  std::size_t ready_pods = 0;
  std::string counted;
  if (cluster.pods) {
    if (cluster.pods->empty())
      return failure("no pods returned by selector while calculating replica count");
    // getReadyPodsCount: Running and Ready, terminating or not.
    for (const auto& pod : *cluster.pods)
      if (pod.phase == "Running" && pod.ready) ++ready_pods;
    counted = "ready " + pods_word(ready_pods);
  } else {
    ready_pods = static_cast<std::size_t>(current);
    counted = pods_word(ready_pods) +
              " (every current replica taken as ready: the pods could "
              "not be listed)";
  }
  out.proposal = ceil_count(ratio * static_cast<double>(ready_pods));
  out.reason = head + ", outside the tolerance: ceil(" + ratio_text(ratio) + " x " + counted +
               ") = " + std::to_string(out.proposal);
  return out;
}

/// GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas: an AverageValue target.
metric_outcome per_pod_metric(std::int64_t usage, std::int64_t target, const cluster_view& cluster,
                              const tolerances& tol, const std::string& what) {
  metric_outcome out;
  out.valid = true;
  const std::int32_t replicas = cluster.status_replicas;
  const double ratio =
      static_cast<double>(usage) / (static_cast<double>(target) * static_cast<double>(replicas));
  out.ratio = ratio;
  if (replicas > 0)
    out.current_milli = static_cast<std::int64_t>(
        std::ceil(static_cast<double>(usage) / static_cast<double>(replicas)));
  const std::string head = what + " " + milli_text(usage) + " / (target " + milli_text(target) +
                           " x " + std::to_string(replicas) + " replicas) = ratio " +
                           ratio_text(ratio);
  if (tol.within(ratio)) {
    out.proposal = replicas;
    out.reason = head + ", within the tolerance: stays at " + std::to_string(replicas);
  } else {
    out.proposal = ceil_count(static_cast<double>(usage) / static_cast<double>(target));
    out.reason = head + ", outside the tolerance: ceil(" + milli_text(usage) + " / " +
                 milli_text(target) + ") = " + std::to_string(out.proposal);
  }
  return out;
}

metric_outcome one_metric(const metric_spec& spec, const metric_reading& reading,
                          const cluster_view& cluster, const tolerances& tol) {
  if (reading.skipped) {
    metric_outcome out;
    out.skipped = true;
    out.reason = *reading.skipped;
    return out;
  }
  if (reading.error) return failure(*reading.error);
  if (spec.target == target_type::utilization)
    return failure(std::string("a Utilization target is only valid for Resource metrics"));
  const std::int64_t target = spec.target_quantity.milli_value();
  if (target <= 0) return failure("the target must be above 0");
  if (spec.type == source_type::pods) {
    if (spec.target != target_type::average_value)
      return failure("a Pods metric needs an AverageValue target");
    return pods_metric(reading, target, cluster, tol);
  }
  // The metrics client's own errors, in its words.
  if (spec.type == source_type::external && reading.values.empty())
    return failure("no metrics returned from external metrics API");
  if (spec.type == source_type::object && reading.values.size() != 1)
    return failure("the custom metrics API server returned " +
                   std::to_string(reading.values.size()) +
                   " results when we asked for exactly one");
  // The External API's items are summed; an Object metric has one value.
  std::int64_t usage = 0;
  for (const auto& [item, value] : reading.values) usage = go_add(usage, value);
  const std::string what = spec.type == source_type::external && reading.values.size() > 1
                               ? "sum of " + std::to_string(reading.values.size()) + " items"
                               : "value";
  return spec.target == target_type::value ? value_metric(usage, target, cluster, tol, what)
                                           : per_pod_metric(usage, target, cluster, tol, what);
}

/// A policy's limit when no scaling happened within its period (the history is unknown here).
std::int32_t policy_limit(const scaling_rules::policy& p, std::int32_t current, bool up) {
  if (p.type == "Pods") {
    const std::int64_t limit = std::int64_t{current} + (up ? p.value : -std::int64_t{p.value});
    return static_cast<std::int32_t>(std::clamp<std::int64_t>(limit, INT32_MIN, INT32_MAX));
  }
  const double factor = up ? 1.0 + p.value / 100.0 : 1.0 - p.value / 100.0;
  // Up rounds up (math.Ceil), down truncates (int32()).
  return up ? ceil_count(current * factor) : -ceil_count(-(current * factor));
}

/// calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors.
std::int32_t behavior_limit(const scaling_rules& rules, std::int32_t current, bool up) {
  if (rules.select_policy == "Disabled" || rules.policies.empty()) return current;
  // selectPolicy Max picks the largest change: the most replicas up, the fewest down.
  const bool take_max = (rules.select_policy == "Max") == up;
  std::int32_t limit = take_max ? INT32_MIN : INT32_MAX;
  for (const auto& p : rules.policies) {
    const std::int32_t l = policy_limit(p, current, up);
    limit = take_max ? std::max(limit, l) : std::min(limit, l);
  }
  return limit;
}

/// normalizeDesiredReplicas (no behavior): the scale-up limit, then min and max.
void clamp_without_behavior(const autoscaler& hpa, std::int32_t current, decision& d) {
  // scaleUpLimitFactor 2 and scaleUpLimitMinimum 4.
  const std::int32_t scale_up_limit = ceil_count(std::max(2.0 * current, 4.0));
  std::int32_t maximum = hpa.max_replicas;
  std::string too_many = "above maxReplicas " + std::to_string(hpa.max_replicas);
  if (hpa.max_replicas > scale_up_limit) {
    maximum = scale_up_limit;
    too_many = "above the scale-up limit max(2 x " + std::to_string(current) +
               ", 4) = " + std::to_string(scale_up_limit) + " for one sync";
  }
  if (d.desired < hpa.min_replicas) {
    d.reason += "; " + std::to_string(d.desired) + " is below minReplicas, so " +
                std::to_string(hpa.min_replicas);
    d.desired = hpa.min_replicas;
  } else if (d.desired > maximum) {
    d.reason +=
        "; " + std::to_string(d.desired) + " is " + too_many + ", so " + std::to_string(maximum);
    d.desired = maximum;
  }
}

/// normalizeDesiredReplicasWithBehaviors with no scaling events in the policies' periods.
void clamp_with_behavior(const autoscaler& hpa, std::int32_t current, decision& d) {
  if (d.desired > current) {
    const std::int32_t limit =
        std::max(behavior_limit(hpa.behavior->scale_up, current, true), current);
    const std::int32_t maximum = std::min(hpa.max_replicas, limit);
    if (d.desired > maximum) {
      d.reason += "; " + std::to_string(d.desired) + " is above " +
                  (limit < hpa.max_replicas
                       ? "what behavior.scaleUp allows now (" + std::to_string(limit) + ")"
                       : "maxReplicas " + std::to_string(hpa.max_replicas)) +
                  ", so " + std::to_string(maximum);
      d.desired = maximum;
    }
  } else if (d.desired < current) {
    const std::int32_t limit =
        std::min(behavior_limit(hpa.behavior->scale_down, current, false), current);
    const std::int32_t minimum = std::max(hpa.min_replicas, limit);
    if (d.desired < minimum) {
      d.reason += "; " + std::to_string(d.desired) + " is below " +
                  (limit > hpa.min_replicas
                       ? "what behavior.scaleDown allows now (" + std::to_string(limit) + ")"
                       : "minReplicas " + std::to_string(hpa.min_replicas)) +
                  ", so " + std::to_string(minimum);
      d.desired = minimum;
    }
  }
}

std::string metric_label(const metric_spec& spec) {
  return std::string(source_name(spec.type)) + " metric " + spec.name;
}

/// The ScalingActive=False reason the controller gives a metric it could not read.
std::string failed_get_reason(const metric_spec& spec) {
  return "FailedGet" + std::string(source_name(spec.type)) + "Metric";
}

}  // namespace

std::string ratio_text(double ratio, int decimals) {
  if (std::isinf(ratio)) return ratio > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, ratio);
  std::string s = buffer;
  while (s.ends_with("0")) s.pop_back();
  if (s.ends_with(".")) s.pop_back();
  return s;
}

std::string milli_text(std::int64_t milli) {
  const auto q = quantity::parse(std::to_string(milli) + "m");
  return q ? q->to_string() : std::to_string(milli) + "m";
}

decision decide(const autoscaler& hpa, const std::vector<metric_reading>& readings,
                const cluster_view& cluster, const tolerances& tolerance) {
  decision d;
  const std::int32_t current = cluster.spec_replicas;
  std::size_t invalid = 0, counted = 0;
  std::string first_error, first_reason;
  for (std::size_t i = 0; i < hpa.metrics.size(); ++i) {
    const metric_reading none{{}, std::string("not read"), std::nullopt};
    auto outcome =
        one_metric(hpa.metrics[i], i < readings.size() ? readings[i] : none, cluster, tolerance);
    if (!outcome.skipped) ++counted;
    if (outcome.valid && (!d.metrics_proposal || outcome.proposal > *d.metrics_proposal)) {
      d.metrics_proposal = outcome.proposal;
      d.deciding_metric = i;
    }
    if (!outcome.valid && !outcome.skipped) {
      if (invalid++ == 0) {
        first_error = metric_label(hpa.metrics[i]) + ": " + outcome.reason;
        first_reason = failed_get_reason(hpa.metrics[i]);
      }
    }
    d.metrics.push_back(std::move(outcome));
  }
  d.desired = current;
  const std::size_t skipped = hpa.metrics.size() - counted;
  for (std::size_t i = 0; i < d.metrics.size(); ++i)
    if (d.metrics[i].skipped)
      d.unknowns.push_back(metric_label(hpa.metrics[i]) +
                           " is not read here; the controller takes its proposal too, so the "
                           "count may be higher than shown, and a failing metric blocks a "
                           "scale-down only if this one proposes less than the current count");
  if (hpa.behavior)
    d.unknowns.push_back(
        "behavior: the policies' limits assume no scaling within their periods, and the "
        "stabilization windows (scaleUp " +
        std::to_string(hpa.behavior->scale_up.stabilization_window_seconds) + " s, scaleDown " +
        std::to_string(hpa.behavior->scale_down.stabilization_window_seconds) +
        " s) take the controller's earlier recommendations, which only it has");
  else
    d.unknowns.push_back(
        "the scale-down stabilization window (--horizontal-pod-autoscaler-downscale-"
        "stabilization, 5 min by default) keeps the highest recommendation of that window, "
        "which only the controller has: a scale-down may come later than shown");

  // reconcileAutoscaler: disabled, out of range, then the metrics.
  if (current == 0 && hpa.min_replicas != 0) {
    d.able_to_scale = false;
    d.reason = "scaling is disabled: the target has 0 replicas and minReplicas is " +
               std::to_string(hpa.min_replicas) +
               " (condition ScalingActive=False, reason "
               "ScalingDisabled)";
    return d;
  }
  if (current > hpa.max_replicas || current < hpa.min_replicas) {
    const bool above = current > hpa.max_replicas;
    const std::string bound = above ? "maxReplicas" : "minReplicas";
    d.desired = above ? hpa.max_replicas : hpa.min_replicas;
    d.reason = "the current count " + std::to_string(current) + " is " +
               (above ? "above " : "below ") + bound + " " + std::to_string(d.desired) +
               ": the controller sets it to " + bound + " before it looks at metrics";
    return d;
  }
  if (counted == 0) {
    d.reason =
        "no metric was read here, so nothing is proposed: stays at " + std::to_string(current);
    return d;
  }
  // computeReplicasForMetrics: all failing, or a failure with a proposal to shrink, blocks.
  if (invalid >= counted || (invalid > 0 && d.metrics_proposal.value_or(0) < current)) {
    d.able_to_scale = false;
    d.reason = (invalid >= counted
                    ? std::string(skipped ? "no metric read here could be read, and the "
                                            "controller's count depends on those not read here"
                                          : "no metric could be read")
                    : std::string("a metric could not be read and the others propose to scale "
                                  "down, which a failing metric blocks")) +
               " (condition ScalingActive=False, reason " + first_reason + "): stays at " +
               std::to_string(current) + "; first error: " + first_error;
    return d;
  }
  d.desired = *d.metrics_proposal;
  d.reason = metric_label(hpa.metrics[*d.deciding_metric]) + " proposes " +
             std::to_string(d.desired) +
             (counted - invalid > 1
                  ? ", the largest of " + std::to_string(counted - invalid) + " proposals"
                  : "");
  if (invalid > 0)
    d.reason += " (" + std::to_string(invalid) + " failing metric" + (invalid > 1 ? "s" : "") +
                " ignored, since the count does not go down)";
  if (hpa.behavior)
    clamp_with_behavior(hpa, current, d);
  else
    clamp_without_behavior(hpa, current, d);
  return d;
}

}  // namespace gma::core::hpa
