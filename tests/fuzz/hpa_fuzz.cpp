// Fuzz target: the HorizontalPodAutoscaler reader and the controller's arithmetic of
// explain-hpa (server/core/autoscaler, server/core/replica_calculator). The input is JSON as a
// user's manifest or the cluster gives it; a readable HPA is then decided on readings drawn from
// the input's bytes. Beyond not crashing or throwing:
//  - a failed read says why (a non-empty error);
//  - every metric gets an outcome, and a valid one a reason;
//  - with the current count within [minReplicas, maxReplicas] and a proposal taken, the
//    desired count is within those bounds too;
//  - the scale subresource and pod readers accept any JSON.

#include <nlohmann/json.hpp>

#include "server/core/replica_calculator.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;
using namespace gma::core::hpa;

namespace {

/// Readings and a cluster from the input's bytes: values of either sign and size, a few pods
/// in each phase, replica counts around the HPA's bounds.
struct world {
  std::vector<metric_reading> readings;
  cluster_view cluster;
};

world world_from(const autoscaler& hpa, std::string_view bytes) {
  std::size_t at = 0;
  const auto next = [&]() -> std::uint8_t {
    return bytes.empty() ? 0 : static_cast<std::uint8_t>(bytes[at++ % bytes.size()]);
  };
  world w;
  const std::size_t pods = next() % 6;
  std::vector<pod_status> listed;
  for (std::size_t i = 0; i < pods; ++i) {
    static const char* kPhases[] = {"Running", "Running", "Pending", "Failed"};
    listed.push_back(
        {"p" + std::to_string(i), kPhases[next() % 4], next() % 5 == 0, next() % 3 != 0});
  }
  if (next() % 7 != 0) w.cluster.pods = listed;
  w.cluster.spec_replicas = static_cast<std::int32_t>(next() % 12);
  w.cluster.status_replicas = w.cluster.spec_replicas + static_cast<std::int32_t>(next() % 3);
  for (std::size_t m = 0; m < hpa.metrics.size(); ++m) {
    metric_reading r;
    const std::uint8_t kind = next();
    if (kind % 11 == 0) r.error = "HTTP 404 NotFound";
    if (kind % 13 == 0) r.skipped = "not read";
    const std::size_t n = next() % 5;
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t value = static_cast<std::int64_t>(next()) * 1000 + next();
      if (next() % 17 == 0) value = -value;
      if (next() % 29 == 0) value = INT64_MAX;
      r.values.emplace_back("p" + std::to_string(next() % 7), value);
    }
    w.readings.push_back(std::move(r));
  }
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  fuzz::guarded([&] {
    const auto object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) return;
    std::string error;
    (void)read_scale(object, error);
    (void)read_pod_status(object);
    const auto hpa = parse_autoscaler(object, error);
    if (!hpa) {
      GMA_FUZZ_CHECK(!error.empty(), "a refused HPA says why");
      return;
    }
    GMA_FUZZ_CHECK(!hpa->metrics.empty(), "an HPA has its metrics or the default CPU one");
    const auto w = world_from(*hpa, text);
    for (const tolerances tol : {tolerances{}, tolerances{0, 0}, tolerances{0.5, 0.01}}) {
      const auto d = decide(*hpa, w.readings, w.cluster, tol);
      GMA_FUZZ_CHECK(d.metrics.size() == hpa->metrics.size(), "one outcome per metric");
      for (const auto& o : d.metrics) GMA_FUZZ_CHECK(!o.reason.empty(), "every outcome says why");
      const std::int32_t current = w.cluster.spec_replicas;
      const bool in_range = current >= hpa->min_replicas && current <= hpa->max_replicas;
      if (in_range && d.able_to_scale && d.metrics_proposal &&
          !(current == 0 && hpa->min_replicas != 0))
        GMA_FUZZ_CHECK(d.desired >= hpa->min_replicas && d.desired <= hpa->max_replicas,
                       "desired " + std::to_string(d.desired) + " outside [" +
                           std::to_string(hpa->min_replicas) + ", " +
                           std::to_string(hpa->max_replicas) + "]");
    }
  });
  return 0;
}
