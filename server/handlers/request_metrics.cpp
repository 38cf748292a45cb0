#include "server/handlers/request_metrics.hpp"

#include <string>
#include <type_traits>
#include <variant>

namespace gma::handlers {
namespace {

/// The metric in `slot`, or the one `make()` finds or adds in its family, kept in `slot`. Two
/// threads that miss at once both call make(), which returns the same metric to both:
/// Family::Add gives back the existing metric for labels it already has.
template <class Metric, class Make>
Metric& resolve(std::atomic<Metric*>& slot, Make&& make) {
  if (Metric* kept = slot.load(std::memory_order_acquire)) return *kept;
  Metric& found = make();
  slot.store(&found, std::memory_order_release);
  return found;
}

/// The kind of not_found_route, where a kind beyond the routes is counted, as route_label()
/// names it.
constexpr std::size_t kNotFoundKind = 0;
static_assert(std::is_same_v<std::variant_alternative_t<kNotFoundKind, route>, not_found_route>);

/// `route_kind` if it is a kind of route, else not_found's: the slots are indexed by it, and a
/// kind out of range must not index past them.
std::size_t known_route_kind(std::size_t route_kind) {
  return route_kind < kRouteKinds ? route_kind : kNotFoundKind;
}

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return buckets;
}

}  // namespace

request_metrics::request_metrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("gma_http_requests_total")
                    .Help("HTTP requests served, by route and status code.")
                    .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("gma_http_request_duration_seconds")
                   .Help("Time to answer HTTP requests, by route.")
                   .Register(registry)),
      counters_(std::make_unique<std::array<counter_slots, kRouteKinds>>()) {}

prometheus::Counter& request_metrics::counter(std::size_t route_kind, unsigned status) {
  route_kind = known_route_kind(route_kind);
  const auto add = [&]() -> prometheus::Counter& {
    return requests_.Add({{"route", route_label(route_kind)}, {"code", std::to_string(status)}});
  };
  if (status < kFirstCode || status >= kFirstCode + kCodes) return add();
  return resolve((*counters_)[route_kind][status - kFirstCode], add);
}

prometheus::Histogram& request_metrics::histogram(std::size_t route_kind) {
  route_kind = known_route_kind(route_kind);
  return resolve(histograms_[route_kind], [&]() -> prometheus::Histogram& {
    return latency_.Add({{"route", route_label(route_kind)}}, latency_buckets());
  });
}

void request_metrics::observe(std::size_t route_kind, unsigned status, double seconds) {
  counter(route_kind, status).Increment();
  histogram(route_kind).Observe(seconds);
}

}  // namespace gma::handlers
