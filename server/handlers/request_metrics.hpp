#pragma once
/// @file The API handler's self-metrics: gma_http_requests_total{route,code} and
/// gma_http_request_duration_seconds{route}. Each (route, code) counter and each route's
/// histogram is looked up in its prometheus-cpp family once, on first use, and kept: later
/// requests read the handle with one atomic load instead of building a label map and locking
/// the family. A series appears in /metrics when its first request is answered, as before.
///
/// @par Thread safety
/// observe() may be called from any thread. The registry is borrowed and must outlive this
/// object; the handles point into it (prometheus-cpp never frees a metric it has not been
/// asked to remove).

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>

#include "server/handlers/route.hpp"

namespace gma::handlers {

class request_metrics {
 public:
  explicit request_metrics(prometheus::Registry& registry);

  /// Counts one answer of `status` on the route of kind `route_kind` (route::index()) that took
  /// `seconds`.
  void observe(std::size_t route_kind, unsigned status, double seconds);

 private:
  /// Status codes with a kept handle: 100 to 599. Anything else is looked up every time.
  static constexpr unsigned kFirstCode = 100;
  static constexpr unsigned kCodes = 500;
  using counter_slots = std::array<std::atomic<prometheus::Counter*>, kCodes>;

  prometheus::Counter& counter(std::size_t route_kind, unsigned status);
  prometheus::Histogram& histogram(std::size_t route_kind);

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  /// [route kind][status - kFirstCode]; nullptr until first used. On the heap: 36 KiB.
  std::unique_ptr<std::array<counter_slots, kRouteKinds>> counters_;
  std::array<std::atomic<prometheus::Histogram*>, kRouteKinds> histograms_{};
};

}  // namespace gma::handlers
