#pragma once
// Reads one series of a prometheus-cpp registry the way /metrics would show it, for tests that
// assert on self-metrics.

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <map>
#include <string>

namespace gma::testing {

/// The value of the counter or gauge `name` with exactly `labels`, or the sample count of such
/// a histogram; -1 when the registry has no such series.
inline double series_value(::prometheus::Registry& registry, const std::string& name,
                           const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> found;
      for (const auto& label : metric.label) found[label.name] = label.value;
      if (found != labels) continue;
      switch (family.type) {
        case ::prometheus::MetricType::Histogram:
          return static_cast<double>(metric.histogram.sample_count);
        case ::prometheus::MetricType::Gauge:
          return metric.gauge.value;
        default:
          return metric.counter.value;
      }
    }
  }
  return -1;
}

}  // namespace gma::testing
