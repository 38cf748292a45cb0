// The HPA controller's arithmetic, on vectors taken from the text of the Kubernetes
// documentation's "Horizontal Pod Autoscaling" page (section "Algorithm details") and the
// behaviour it describes for missing pods, several metrics and the replica bounds.
#include "server/core/replica_calculator.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gma::core::hpa {
namespace {

metric_spec pods_metric(const std::string& name, const std::string& average) {
  metric_spec m;
  m.type = source_type::pods;
  m.name = name;
  m.target = target_type::average_value;
  m.target_quantity = *quantity::parse(average);
  return m;
}

metric_spec external_metric(const std::string& name, target_type type, const std::string& target) {
  metric_spec m;
  m.type = source_type::external;
  m.name = name;
  m.target = type;
  m.target_quantity = *quantity::parse(target);
  return m;
}

autoscaler with_metrics(std::vector<metric_spec> metrics, std::int32_t min = 1,
                        std::int32_t max = 10) {
  autoscaler hpa;
  hpa.api_version = "autoscaling/v2";
  hpa.min_replicas = min;
  hpa.max_replicas = max;
  hpa.metrics = std::move(metrics);
  return hpa;
}

/// Running, ready pods named p0, p1, ...
std::vector<pod_status> running(std::size_t n) {
  std::vector<pod_status> pods;
  for (std::size_t i = 0; i < n; ++i) pods.push_back({"p" + std::to_string(i)});
  return pods;
}

cluster_view cluster(std::int32_t replicas, std::vector<pod_status> pods) {
  return {replicas, replicas, std::move(pods)};
}

/// One reading with these milli-values for p0, p1, ...
metric_reading values(std::vector<std::int64_t> milli) {
  metric_reading r;
  for (std::size_t i = 0; i < milli.size(); ++i)
    r.values.emplace_back("p" + std::to_string(i), milli[i]);
  return r;
}

// "if the current metric value is 200m, and the desired value is 100m, the number of replicas
// will be doubled, since 200.0 / 100.0 == 2.0"
TEST(ReplicaCalculator, DoublesWhenTheValueIsTwiceTheTarget) {
  const auto d = decide(with_metrics({pods_metric("m", "100m")}), {values({200, 200})},
                        cluster(2, running(2)), {});
  ASSERT_TRUE(d.metrics[0].valid);
  EXPECT_DOUBLE_EQ(*d.metrics[0].ratio, 2.0);
  EXPECT_EQ(*d.metrics[0].current_milli, 200);
  EXPECT_EQ(d.metrics[0].proposal, 4);
  EXPECT_EQ(d.desired, 4);
  EXPECT_EQ(d.metrics[0].reason,
            "average 200m over 2 pods / target 100m = ratio 2, outside the tolerance: ceil(2 x 2 "
            "pods) = 4");
}

// "If the current value is instead 50m, you'll halve the number of replicas"
TEST(ReplicaCalculator, HalvesWhenTheValueIsHalfTheTarget) {
  const auto d = decide(with_metrics({pods_metric("m", "100m")}), {values({50, 50, 50, 50})},
                        cluster(4, running(4)), {});
  EXPECT_EQ(d.metrics[0].proposal, 2);
  EXPECT_EQ(d.desired, 2);
}

// "The control plane skips any scaling action if the ratio is sufficiently close to 1.0
// (within a globally-configurable tolerance, 0.1 by default)."
TEST(ReplicaCalculator, StaysWithinTheTolerance) {
  auto d = decide(with_metrics({pods_metric("m", "100m")}), {values({105, 105, 105})},
                  cluster(3, running(3)), {});
  EXPECT_EQ(d.desired, 3);
  EXPECT_NE(d.metrics[0].reason.find("within the tolerance: stays at 3"), std::string::npos);
  // The bounds themselves are within, as (1 - 0.1) <= r <= (1 + 0.1) in float64; just past
  // them is not.
  for (std::int64_t bound : {90, 110}) {
    d = decide(with_metrics({pods_metric("m", "100m")}), {values({bound, bound, bound})},
               cluster(3, running(3)), {});
    EXPECT_EQ(d.desired, 3) << bound;
  }
  d = decide(with_metrics({pods_metric("m", "100m")}), {values({111, 111, 111})},
             cluster(3, running(3)), {});
  EXPECT_EQ(d.desired, 4);
  d = decide(with_metrics({pods_metric("m", "100m")}), {values({89, 89, 89})},
             cluster(3, running(3)), {});
  EXPECT_EQ(d.desired, 3);  // ceil(0.89 x 3) = 3: outside, but the ceiling keeps it
  // --tolerance widens it.
  d = decide(with_metrics({pods_metric("m", "100m")}), {values({111, 111, 111})},
             cluster(3, running(3)), {0.2, 0.2});
  EXPECT_EQ(d.desired, 3);
}

// The seed's GPU vector: 89.5 and 54 per pod against averageValue 80 average to 71.75, a ratio
// of 0.897, just outside the tolerance: ceil(0.897 x 2) = 2, so the count stays.
TEST(ReplicaCalculator, AveragesInIntegerMilliUnits) {
  const auto d = decide(with_metrics({pods_metric("gpu_utilization", "80")}),
                        {values({89500, 54000})}, cluster(2, running(2)), {});
  EXPECT_EQ(*d.metrics[0].current_milli, 71750);
  EXPECT_NEAR(*d.metrics[0].ratio, 0.896875, 1e-9);
  EXPECT_EQ(d.desired, 2);
  // 1 + 2 over 2 pods is 1 milli-unit, not 1.5, as the controller's int64 division gives.
  const auto odd =
      decide(with_metrics({pods_metric("m", "1")}), {values({1, 2})}, cluster(2, running(2)), {});
  EXPECT_EQ(*odd.metrics[0].current_milli, 1);
}

// "If there were any missing metrics, the control plane recomputes the average more
// conservatively, assuming those pods were consuming 100% of the desired value in case of a
// scale down, and 0% in case of a scale up."
TEST(ReplicaCalculator, MissingPodsCountAtTheTargetOnAScaleDown) {
  // p2 has no metric: (50 + 50 + 100) / 3 = 66 -> ratio 0.66 -> ceil(1.98) = 2, not 1.
  const auto d = decide(with_metrics({pods_metric("m", "100m")}), {values({50, 50})},
                        cluster(3, running(3)), {});
  EXPECT_EQ(d.metrics[0].proposal, 2);
  EXPECT_EQ(d.desired, 2);
  EXPECT_EQ(d.metrics[0].reason,
            "average 50m over 2 pods / target 100m = ratio 0.5; 1 pod without a metric (p2) "
            "counted at the target, as on a scale-down: the ratio becomes 0.66: ceil(0.66 x 3 "
            "pods) = 2");
}

TEST(ReplicaCalculator, MissingPodsCountAtZeroOnAScaleUp) {
  // (200 + 200 + 0) / 3 = 133 -> ratio 1.33 -> ceil(3.99) = 4.
  const auto d = decide(with_metrics({pods_metric("m", "100m")}), {values({200, 200})},
                        cluster(3, running(3)), {});
  EXPECT_EQ(d.metrics[0].proposal, 4);
  EXPECT_NE(d.metrics[0].reason.find("counted at 0, as on a scale-up"), std::string::npos);
}

// "If taking the missing metrics into account would reverse the direction of scaling or bring
// it within the tolerance, the scaling action is skipped."
TEST(ReplicaCalculator, MissingPodsThatReverseOrDampTheChangeKeepTheCount) {
  // Within: (120 x 3 + 0) / 4 = 90 -> 0.9.
  auto d = decide(with_metrics({pods_metric("m", "100m")}), {values({120, 120, 120})},
                  cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 4);
  EXPECT_NE(d.metrics[0].reason.find("within the tolerance: stays at 4"), std::string::npos);
  // Reversed: (130 x 2 + 0 + 0) / 4 = 65 -> 0.65 < 1 < 1.3.
  d = decide(with_metrics({pods_metric("m", "100m")}), {values({130, 130})}, cluster(4, running(4)),
             {});
  EXPECT_EQ(d.desired, 4);
  EXPECT_NE(d.metrics[0].reason.find("on the other side of 1: stays at 4"), std::string::npos);
}

// "any pods ... not yet ready ... are set aside", and on a scale-up they count as 0.
TEST(ReplicaCalculator, PendingPodsCountAtZeroOnAScaleUpAndFailedPodsAreIgnored) {
  auto pods = running(4);
  pods[2].phase = "Pending";
  pods[3].phase = "Failed";
  metric_reading r = values({200, 200, 900, 900});
  const auto d = decide(with_metrics({pods_metric("m", "100m")}), {r}, cluster(4, pods), {});
  // p2 pending -> 0, p3 failed -> dropped: (200 + 200 + 0) / 3 = 133 -> ceil(1.33 x 3) = 4.
  EXPECT_EQ(d.metrics[0].proposal, 4);
  EXPECT_NE(d.metrics[0].reason.find("1 pod pending (p2) counted at 0"), std::string::npos);
}

TEST(ReplicaCalculator, NoPodsOrNoMetricsAreErrorsAsTheControllerWordsThem) {
  // An empty answer fails in the metrics client, before the pods are looked at.
  auto d =
      decide(with_metrics({pods_metric("m", "100m")}), {values({})}, cluster(2, running(2)), {});
  EXPECT_EQ(d.metrics[0].reason, "no metrics returned from custom metrics API");
  d = decide(with_metrics({pods_metric("m", "100m")}), {values({100})}, cluster(2, {}), {});
  EXPECT_FALSE(d.metrics[0].valid);
  EXPECT_EQ(d.metrics[0].reason, "no pods returned by selector while calculating replica count");
  EXPECT_FALSE(d.able_to_scale);
  EXPECT_EQ(d.desired, 2);
  auto pods = running(1);
  pods[0].phase = "Pending";
  d = decide(with_metrics({pods_metric("m", "100m")}), {values({100})}, cluster(1, pods), {});
  EXPECT_EQ(d.metrics[0].reason,
            "did not receive metrics for targeted pods (pods might be unready)");
}

// "the HorizontalPodAutoscaler ... will calculate proposed replica counts for each metric, and
// then choose the one with the highest replica count."
TEST(ReplicaCalculator, SeveralMetricsTakeTheLargestProposal) {
  auto hpa =
      with_metrics({pods_metric("gpu", "80"), external_metric("queue", target_type::value, "10")});
  metric_reading queue;
  queue.values = {{"item", 20000}};  // 20 / 10 = 2 x 2 ready pods = 4
  const auto d = decide(hpa, {values({96000, 96000}), queue}, cluster(2, running(2)), {});
  EXPECT_EQ(d.metrics[0].proposal, 3);  // 96 / 80 = 1.2 x 2 pods
  EXPECT_EQ(d.metrics[1].proposal, 4);
  EXPECT_EQ(d.desired, 4);
  EXPECT_EQ(d.deciding_metric, 1u);
  EXPECT_EQ(d.reason, "External metric queue proposes 4, the largest of 2 proposals");
}

// A metric that cannot be read blocks a scale-down but not a scale-up (horizontal.go).
TEST(ReplicaCalculator, AFailingMetricBlocksOnlyAScaleDown) {
  auto hpa = with_metrics({pods_metric("gpu", "80"), pods_metric("missing", "1")});
  metric_reading broken;
  broken.error =
      "unable to fetch metrics from custom metrics API: the server could not find the "
      "metric missing for pods";
  auto d = decide(hpa, {values({40000, 40000}), broken}, cluster(2, running(2)), {});
  EXPECT_FALSE(d.able_to_scale);
  EXPECT_EQ(d.desired, 2);
  EXPECT_NE(d.reason.find("blocks"), std::string::npos);
  d = decide(hpa, {values({160000, 160000}), broken}, cluster(2, running(2)), {});
  EXPECT_TRUE(d.able_to_scale);
  EXPECT_EQ(d.desired, 4);
  // Every metric failing blocks too.
  d = decide(with_metrics({pods_metric("missing", "1")}), {broken}, cluster(2, running(2)), {});
  EXPECT_FALSE(d.able_to_scale);
  EXPECT_NE(d.reason.find("no metric could be read"), std::string::npos);
}

TEST(ReplicaCalculator, ClampsToMinAndMaxAndTheScaleUpLimit) {
  // max(2 x 6, 4) = 12 is above maxReplicas 10: maxReplicas wins.
  auto d = decide(with_metrics({pods_metric("m", "1")}, 1, 10),
                  {values({2000, 2000, 2000, 2000, 2000, 2000})}, cluster(6, running(6)), {});
  EXPECT_EQ(d.metrics[0].proposal, 12);
  EXPECT_EQ(d.desired, 10);
  EXPECT_NE(d.reason.find("above maxReplicas 10, so 10"), std::string::npos);
  // From 2 replicas one sync goes to at most max(2 x 2, 4) = 4.
  d = decide(with_metrics({pods_metric("m", "1")}, 1, 20), {values({5000, 5000})},
             cluster(2, running(2)), {});
  EXPECT_EQ(d.metrics[0].proposal, 10);
  EXPECT_EQ(d.desired, 4);
  EXPECT_NE(d.reason.find("scale-up limit max(2 x 2, 4) = 4"), std::string::npos);
  // Below minReplicas.
  d = decide(with_metrics({pods_metric("m", "1")}, 3, 10), {values({100, 100, 100, 100})},
             cluster(4, running(4)), {});
  EXPECT_EQ(d.metrics[0].proposal, 1);
  EXPECT_EQ(d.desired, 3);
  // A current count outside the bounds is clamped before metrics are looked at.
  d = decide(with_metrics({pods_metric("m", "1")}, 1, 3), {values({1000, 1000, 1000, 1000, 1000})},
             cluster(5, running(5)), {});
  EXPECT_EQ(d.desired, 3);
  EXPECT_NE(d.reason.find("above maxReplicas 3"), std::string::npos);
}

TEST(ReplicaCalculator, ZeroReplicasWithAMinimumMeansScalingIsDisabled) {
  const auto d = decide(with_metrics({pods_metric("m", "1")}), {values({})}, cluster(0, {}), {});
  EXPECT_FALSE(d.able_to_scale);
  EXPECT_EQ(d.desired, 0);
  EXPECT_NE(d.reason.find("ScalingDisabled"), std::string::npos);
}

// External metrics: "value" compares the sum of the items with the target and multiplies by the
// ready pods; "averageValue" divides the value by the current replicas, and proposes
// ceil(value / target).
TEST(ReplicaCalculator, ExternalValueAndAverageValue) {
  metric_reading items;
  items.values = {{"gpu-0", 89500}, {"gpu-1", 54000}};  // sum 143500
  auto d =
      decide(with_metrics({external_metric("gpu.utilization", target_type::average_value, "80")}),
             {items}, cluster(2, running(2)), {});
  // 143.5 / (80 x 2) = 0.897: outside the tolerance -> ceil(143.5 / 80) = 2.
  EXPECT_EQ(*d.metrics[0].current_milli, 71750);
  EXPECT_EQ(d.metrics[0].proposal, 2);
  // Four items summing to 480 over 4 replicas: 480 / 320 = 1.5 -> ceil(480 / 80) = 6.
  items.values = {{"a", 89000}, {"b", 90000}, {"c", 54000}, {"d", 247000}};
  d = decide(with_metrics({external_metric("q", target_type::average_value, "80")}), {items},
             cluster(4, running(4)), {});
  EXPECT_EQ(d.metrics[0].proposal, 6);
  EXPECT_EQ(d.metrics[0].reason,
            "sum of 4 items 480 / (target 80 x 4 replicas) = ratio 1.5, outside the tolerance: "
            "ceil(480 / 80) = 6");
  // Value: 30 / 10 = 3 x 3 ready pods (one of 4 not ready) = 9.
  metric_reading queue;
  queue.values = {{"queue", 30000}};
  auto pods = running(4);
  pods[3].ready = false;
  d = decide(with_metrics({external_metric("queue", target_type::value, "10")}, 1, 20), {queue},
             cluster(4, pods), {});
  EXPECT_EQ(d.metrics[0].proposal, 9);
  EXPECT_EQ(d.desired, 8);  // the scale-up limit max(2 x 4, 4)
  // No items is an error, as the HPA gets one.
  metric_reading none;
  d = decide(with_metrics({external_metric("queue", target_type::value, "10")}), {none},
             cluster(2, running(2)), {});
  EXPECT_FALSE(d.metrics[0].valid);
}

TEST(ReplicaCalculator, BehaviorPoliciesLimitTheRate) {
  auto hpa = with_metrics({pods_metric("m", "1")}, 1, 100);
  hpa.behavior = behavior_rules{scaling_rules{0, "Max", {{"Pods", 2, 60}}, std::nullopt},
                                scaling_rules{300, "Max", {{"Percent", 50, 60}}, std::nullopt}};
  // Up: 4 pods at 5 propose 20; Pods 2 allows 6.
  auto d = decide(hpa, {values({5000, 5000, 5000, 5000})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 6);
  EXPECT_NE(d.reason.find("behavior.scaleUp allows now (6)"), std::string::npos);
  // Down: 4 pods at 0.1 propose 1; Percent 50 allows 2.
  d = decide(hpa, {values({100, 100, 100, 100})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 2);
  // Disabled freezes that direction.
  hpa.behavior->scale_down.select_policy = "Disabled";
  d = decide(hpa, {values({100, 100, 100, 100})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 4);
  hpa.behavior->scale_up.select_policy = "Disabled";
  d = decide(hpa, {values({5000, 5000, 5000, 5000})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 4);
  // selectPolicy Min takes the smallest change, Max the largest: up from 4, Pods 2 allows 6 and
  // Percent 100 allows 8; down from 7, Percent 25 allows 7 x 0.75 = 5.25, truncated to 5, and
  // Pods 1 allows 6.
  hpa.behavior->scale_up = scaling_rules{0, "Min", {{"Pods", 2, 60}, {"Percent", 100, 60}}, {}};
  d = decide(hpa, {values({5000, 5000, 5000, 5000})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 6);
  hpa.behavior->scale_up = scaling_rules{0, "Max", {{"Pods", 2, 60}, {"Percent", 100, 60}}, {}};
  d = decide(hpa, {values({5000, 5000, 5000, 5000})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.desired, 8);
  // Percent up rounds up: 3 x 1.5 = 4.5 -> 5.
  hpa.behavior->scale_up = scaling_rules{0, "Max", {{"Percent", 50, 60}}, {}};
  d = decide(hpa, {values({5000, 5000, 5000})}, cluster(3, running(3)), {});
  EXPECT_EQ(d.desired, 5);
  hpa.behavior->scale_down = scaling_rules{300, "Min", {{"Percent", 25, 60}, {"Pods", 1, 60}}, {}};
  d = decide(hpa, {values({100, 100, 100, 100, 100, 100, 100})}, cluster(7, running(7)), {});
  EXPECT_EQ(d.desired, 6);
  hpa.behavior->scale_down.select_policy = "Max";
  d = decide(hpa, {values({100, 100, 100, 100, 100, 100, 100})}, cluster(7, running(7)), {});
  EXPECT_EQ(d.desired, 5);
}

// At exactly the target the controller fills in no missing pod: 1 is within the tolerance.
TEST(ReplicaCalculator, MissingPodsAtExactlyTheTargetChangeNothing) {
  const auto d =
      decide(with_metrics({pods_metric("m", "80")}), {values({80000})}, cluster(4, running(4)), {});
  EXPECT_EQ(d.metrics[0].proposal, 4);
  EXPECT_NE(d.metrics[0].reason.find("exactly the target"), std::string::npos);
}

// Filling in missing pods can give a count that moves against the recomputed ratio: then the
// count stays (replica_calculator.go's last check).
TEST(ReplicaCalculator, AProposalAgainstTheRecomputedRatioKeepsTheCount) {
  // 7 replicas, 3 pods listed, two at 300 against 100 and one missing: ratio 3 fills the
  // missing pod with 0, (300 + 300 + 0) / 3 = 200, ratio 2: ceil(2 x 3 pods) = 6 is below 7
  // while the ratio says up.
  auto pods = running(3);
  const auto d = decide(with_metrics({pods_metric("m", "100m")}, 1, 20), {values({300, 300})},
                        cluster_view{7, 7, pods}, {});
  EXPECT_EQ(d.metrics[0].proposal, 7);
  EXPECT_NE(d.metrics[0].reason.find("would move against the ratio: stays at 7"),
            std::string::npos);
}

// Object metrics: Value multiplies by the ready pods; AverageValue divides by the target's
// status.replicas, which differs from spec.replicas during a rollout; one value, exactly.
TEST(ReplicaCalculator, ObjectMetrics) {
  metric_spec object;
  object.type = source_type::object;
  object.name = "requests_per_second";
  object.described_object = {"v1", "Service", "triton"};
  object.target = target_type::value;
  object.target_quantity = *quantity::parse("100");
  metric_reading one;
  one.values = {{"triton", 300000}};
  auto pods = running(3);
  pods[2].ready = false;  // 2 ready of 3
  auto d = decide(with_metrics({object}, 1, 20), {one}, cluster_view{3, 3, pods}, {});
  EXPECT_EQ(d.metrics[0].proposal, 6);  // 300 / 100 = 3 x 2 ready
  // A terminating pod that is still Running and Ready counts as ready.
  pods[2].ready = true;
  pods[2].deleted = true;
  d = decide(with_metrics({object}, 1, 20), {one}, cluster_view{3, 3, pods}, {});
  EXPECT_EQ(d.metrics[0].proposal, 9);
  // AverageValue 100 per pod, status.replicas 4 while spec.replicas is 3 (a surge pod):
  // 300 / (100 x 4) = 0.75 -> ceil(300 / 100) = 3; with status 3 it would be within.
  object.target = target_type::average_value;
  d = decide(with_metrics({object}, 1, 20), {one}, cluster_view{3, 4, running(3)}, {});
  EXPECT_NEAR(*d.metrics[0].ratio, 0.75, 1e-12);
  EXPECT_EQ(*d.metrics[0].current_milli, 75000);
  EXPECT_EQ(d.metrics[0].proposal, 3);
  d = decide(with_metrics({object}, 1, 20), {one}, cluster_view{3, 3, running(3)}, {});
  EXPECT_NE(d.metrics[0].reason.find("within the tolerance"), std::string::npos);
  // Two values for one object is the client's error.
  metric_reading two;
  two.values = {{"a", 1000}, {"b", 1000}};
  d = decide(with_metrics({object}), {two}, cluster(3, running(3)), {});
  EXPECT_EQ(d.metrics[0].reason,
            "the custom metrics API server returned 2 results when we asked for exactly one");
}

// From zero (minReplicas 0, with HPAScaleToZero): a Value metric proposes ceil(ratio).
TEST(ReplicaCalculator, ScaleFromZero) {
  metric_reading queue;
  queue.values = {{"q", 25000}};
  const auto d = decide(with_metrics({external_metric("queue", target_type::value, "10")}, 0, 10),
                        {queue}, cluster_view{0, 0, std::vector<pod_status>{}}, {});
  EXPECT_EQ(d.metrics[0].proposal, 3);
  EXPECT_EQ(d.desired, 3);
}

TEST(ReplicaCalculator, SkippedResourceMetricsNeitherProposeNorFail) {
  metric_spec cpu;
  cpu.type = source_type::resource;
  cpu.name = "cpu";
  cpu.target = target_type::utilization;
  cpu.target_utilization = 80;
  metric_reading skipped;
  skipped.skipped = "metrics-server serves Resource metrics";
  const auto d = decide(with_metrics({cpu, pods_metric("m", "1")}), {skipped, values({500, 500})},
                        cluster(2, running(2)), {});
  EXPECT_TRUE(d.metrics[0].skipped);
  EXPECT_TRUE(d.able_to_scale);
  EXPECT_EQ(d.desired, 1);
  // Said plainly: the controller counts it.
  ASSERT_FALSE(d.unknowns.empty());
  EXPECT_NE(d.unknowns[0].find("Resource metric cpu is not read here"), std::string::npos);
  // A failing metric next to a skipped one: the reason names the condition by the metric's type.
  metric_reading broken;
  broken.error = "HTTP 404 NotFound: the server could not find the metric m for pods";
  const auto blocked = decide(with_metrics({cpu, pods_metric("m", "1")}), {skipped, broken},
                              cluster(2, running(2)), {});
  EXPECT_NE(blocked.reason.find("depends on those not read here"), std::string::npos);
  EXPECT_NE(blocked.reason.find("reason FailedGetPodsMetric"), std::string::npos);
}

TEST(MilliText, CanonicalQuantities) {
  EXPECT_EQ(milli_text(71750), "71750m");
  EXPECT_EQ(milli_text(80000), "80");
  EXPECT_EQ(milli_text(0), "0");
}

// The seed's three HPA forms read into one shape.
TEST(ParseAutoscaler, TheSeedsThreeForms) {
  const auto v2 = nlohmann::json::parse(R"({
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "gpu", "namespace": "ml"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "triton"},
             "minReplicas": 1, "maxReplicas": 4,
             "metrics": [
               {"type": "Pods", "pods": {"metric": {"name": "gpu_utilization"},
                                          "target": {"type": "AverageValue", "averageValue": "80"}}},
               {"type": "External", "external": {
                  "metric": {"name": "gpu.utilization",
                             "selector": {"matchLabels": {"gpu-type": "tesla-v100"}}},
                  "target": {"type": "AverageValue", "averageValue": 80}}}]}})");
  std::string error;
  auto hpa = parse_autoscaler(v2, error);
  ASSERT_TRUE(hpa) << error;
  EXPECT_EQ(hpa->scale_target.group_resource(), "deployments.apps");
  ASSERT_EQ(hpa->metrics.size(), 2u);
  EXPECT_EQ(hpa->metrics[0].type, source_type::pods);
  EXPECT_EQ(hpa->metrics[0].target_quantity.milli_value(), 80000);
  EXPECT_EQ(hpa->metrics[1].selector, "gpu-type=tesla-v100");
  EXPECT_FALSE(hpa->behavior);

  auto v2beta2 = v2;
  v2beta2["apiVersion"] = "autoscaling/v2beta2";
  ASSERT_TRUE(parse_autoscaler(v2beta2, error)) << error;

  const auto v2beta1 = nlohmann::json::parse(R"({
    "apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "gpu", "namespace": "ml"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "triton"},
             "maxReplicas": 4,
             "metrics": [
               {"type": "Pods", "pods": {"metricName": "gpu_utilization", "targetAverageValue": "80"}},
               {"type": "External", "external": {"metricName": "gpu.utilization",
                  "metricSelector": {"matchLabels": {"gpu-type": "tesla-v100"}},
                  "targetAverageValue": "80"}},
               {"type": "Object", "object": {"target": {"kind": "Service", "name": "triton"},
                  "metricName": "requests", "targetValue": "10"}}]}})");
  hpa = parse_autoscaler(v2beta1, error);
  ASSERT_TRUE(hpa) << error;
  EXPECT_EQ(hpa->min_replicas, 1);
  EXPECT_EQ(hpa->metrics[1].type, source_type::external);
  EXPECT_EQ(hpa->metrics[1].target, target_type::average_value);
  EXPECT_EQ(hpa->metrics[1].selector, "gpu-type=tesla-v100");
  EXPECT_EQ(hpa->metrics[2].described_object.group_resource(), "services");
  EXPECT_EQ(hpa->metrics[2].target, target_type::value);
}

TEST(ParseAutoscaler, ErrorsNameTheField) {
  std::string error;
  auto bad =
      nlohmann::json::parse(R"({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 2,
             "metrics": [{"type": "External", "external": {"metric": {"name": "q"},
                          "target": {"type": "AverageValue", "averageValue": "ten"}}}]}})");
  EXPECT_FALSE(parse_autoscaler(bad, error));
  EXPECT_EQ(error, "spec.metrics[0].external.target.averageValue: \"ten\" is not a quantity");
  bad["apiVersion"] = "autoscaling/v1";
  EXPECT_FALSE(parse_autoscaler(bad, error));
  EXPECT_NE(error.find("autoscaling/v1 has no metrics list"), std::string::npos);
  bad = nlohmann::json::parse(R"({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}}})");
  EXPECT_FALSE(parse_autoscaler(bad, error));
  EXPECT_EQ(error, "spec.maxReplicas: required");
}

TEST(ParseAutoscaler, NoMetricsMeansTheDefaultCpuTarget) {
  std::string error;
  const auto hpa = parse_autoscaler(nlohmann::json::parse(R"({"apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler", "spec": {"scaleTargetRef": {"kind": "Deployment",
    "name": "x"}, "maxReplicas": 2, "behavior": {"scaleDown": {"selectPolicy": "Disabled"}}}})"),
                                    error);
  ASSERT_TRUE(hpa) << error;
  ASSERT_EQ(hpa->metrics.size(), 1u);
  EXPECT_EQ(hpa->metrics[0].type, source_type::resource);
  EXPECT_EQ(hpa->metrics[0].target_utilization, 80);
  // behavior's defaults fill what is not given.
  ASSERT_TRUE(hpa->behavior);
  EXPECT_EQ(hpa->behavior->scale_up.policies.size(), 2u);
  EXPECT_EQ(hpa->behavior->scale_down.select_policy, "Disabled");
  EXPECT_EQ(hpa->behavior->scale_down.stabilization_window_seconds, 300);
}

TEST(SelectorString, SortedAsLabelsSelectorStringWritesIt) {
  std::string error;
  const auto s = selector_string(nlohmann::json::parse(R"({"matchLabels": {"z": "1", "a": "2"},
    "matchExpressions": [{"key": "m", "operator": "In", "values": ["y", "x"]},
                         {"key": "b", "operator": "DoesNotExist"},
                         {"key": "n", "operator": "NotIn", "values": ["q"]},
                         {"key": "e", "operator": "Exists"}]})"),
                                 error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(*s, "a=2,!b,e,m in (x,y),n notin (q),z=1");
  EXPECT_FALSE(selector_string(nlohmann::json::parse(R"({"matchExpressions": [{"key": "a",
    "operator": "Near"}]})"),
                               error));
  EXPECT_EQ(error, "\"Near\" is not a valid label selector operator");
}

}  // namespace
}  // namespace gma::core::hpa

namespace gma::core::hpa {
namespace {

TEST(ParseAutoscaler, ToleranceIsReadExactly) {
  std::string error;
  const auto hpa = parse_autoscaler(nlohmann::json::parse(R"({"apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler", "spec": {"scaleTargetRef": {"kind": "Deployment",
    "name": "x"}, "maxReplicas": 2, "behavior": {"scaleUp": {"tolerance": "0.0125"},
    "scaleDown": {"tolerance": "50m"}}}})"),
                                    error);
  ASSERT_TRUE(hpa) << error;
  EXPECT_DOUBLE_EQ(*hpa->behavior->scale_up.tolerance, 0.0125);
  EXPECT_DOUBLE_EQ(*hpa->behavior->scale_down.tolerance, 0.05);
}

TEST(ParseAutoscaler, MalformedShapesAreFieldErrorsNotExceptions) {
  const char* shapes[] = {
      R"({"metrics": {"type": "Pods"}})",
      R"({"metrics": [{"type": "External", "external": {"metric": {"name": "q",
          "selector": {"matchExpressions": ["x"]}}, "target": {"type": "Value", "value": "1"}}}]})",
      R"({"metrics": [{"type": "External", "external": {"metric": {"name": "q",
          "selector": {"matchLabels": ["a"]}}, "target": {"type": "Value", "value": "1"}}}]})",
      R"({"behavior": {"scaleUp": {"policies": {"type": "Pods"}}}})",
      R"({"metrics": [["Pods"]]})",
      R"({"behavior": {"scaleUp": {"policies": [["Pods"]]}}})",
  };
  for (const char* extra : shapes) {
    auto spec = nlohmann::json::parse(extra);
    spec["scaleTargetRef"] = {{"kind", "Deployment"}, {"name", "x"}};
    spec["maxReplicas"] = 2;
    const nlohmann::json object = {
        {"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"spec", spec}};
    std::string error;
    EXPECT_FALSE(parse_autoscaler(object, error)) << extra;
    EXPECT_FALSE(error.empty()) << extra;
  }
}

TEST(ReadScale, TheSubresourceTheControllerReads) {
  std::string error;
  auto scale = read_scale(nlohmann::json::parse(R"({"kind": "Scale", "apiVersion":
    "autoscaling/v1", "spec": {"replicas": 3}, "status": {"replicas": 4,
    "selector": "app=triton"}})"),
                          error);
  ASSERT_TRUE(scale) << error;
  EXPECT_EQ(scale->selector, "app=triton");
  EXPECT_EQ(scale->spec_replicas, 3);
  EXPECT_EQ(scale->status_replicas, 4);
  // spec.replicas is omitempty: absent is 0.
  scale = read_scale(nlohmann::json::parse(R"({"spec": {}, "status": {"replicas": 0,
    "selector": "a=b"}})"),
                     error);
  ASSERT_TRUE(scale) << error;
  EXPECT_EQ(scale->spec_replicas, 0);
  EXPECT_FALSE(read_scale(nlohmann::json::parse(R"({"spec": {"replicas": 1}, "status":
    {"replicas": 1}})"),
                          error));
  EXPECT_EQ(error,
            "status.selector: empty: the HPA controller needs it to select the target's pods");
}

TEST(ReadPodStatus, PhaseDeletionAndReadiness) {
  auto pod = read_pod_status(nlohmann::json::parse(R"({"metadata": {"name": "p",
    "deletionTimestamp": "2026-11-29T16:00:00Z"}, "status": {"phase": "Running", "conditions":
    [{"type": "Ready", "status": "True"}]}})"));
  EXPECT_EQ(pod.name, "p");
  EXPECT_TRUE(pod.deleted);
  EXPECT_TRUE(pod.ready);
  EXPECT_EQ(pod.phase, "Running");
  pod = read_pod_status(nlohmann::json::parse(R"({"metadata": {"name": 7}, "status": {"phase":
    "Pending", "conditions": [{"type": "Ready", "status": "False"}, "junk"]}})"));
  EXPECT_EQ(pod.name, "");
  EXPECT_FALSE(pod.ready);
  EXPECT_EQ(pod.phase, "Pending");
}

}  // namespace
}  // namespace gma::core::hpa
