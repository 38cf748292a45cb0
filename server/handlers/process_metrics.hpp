#pragma once
/// @file The standard process_* metrics that Go's client library exports, so that dashboards
/// and alerts written for prometheus-adapter (or any Go component) work on the adapter.

#include <prometheus/metric_family.h>

#include <string_view>
#include <vector>

namespace gma::handlers {

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds and process_start_time_seconds, read from /proc at the
/// time of the call (a scrape). A value that cannot be read is left out. Thread-safe.
std::vector<prometheus::MetricFamily> collect_process_metrics();

/// The fields of /proc/self/stat's text that the metrics need; nullopt-like zeros when the
/// text does not parse. Exposed for tests.
struct process_stat {
  bool valid = false;
  double cpu_ticks = 0;    ///< utime + stime
  double start_ticks = 0;  ///< since boot
  double virtual_bytes = 0;
  double resident_pages = 0;
};
process_stat parse_proc_stat(std::string_view text);

}  // namespace gma::handlers
