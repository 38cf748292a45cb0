#include "server/handlers/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace gma::handlers {
namespace {

/// A family of one unlabelled gauge (or counter) with `value`.
prometheus::MetricFamily single(const char* name, const char* help, double value,
                                prometheus::MetricType type = prometheus::MetricType::Gauge) {
  prometheus::MetricFamily family{name, help, type, {}};
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The system's boot time in Unix seconds (btime of /proc/stat); 0 when unknown.
double read_boot_time() {
  std::istringstream lines(read_file("/proc/stat"));
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  return 0;
}

}  // namespace

process_stat parse_proc_stat(std::string_view text) {
  // The command name, field 2, is in parentheses and may itself hold spaces and ')': the
  // fields that follow start after the last ')'.
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return {};
  std::vector<double> fields;  // from field 3 (state) on; state is not a number
  std::size_t pos = close + 1;
  while (pos < text.size()) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    const auto end = std::min(text.find(' ', pos), text.size());
    if (end == pos) break;
    double value = 0;
    std::from_chars(text.data() + pos, text.data() + end, value);
    fields.push_back(value);
    pos = end;
  }
  // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24; fields[0] is field 3.
  if (fields.size() < 22) return {};
  return {true, fields[14 - 3] + fields[15 - 3], fields[22 - 3], fields[23 - 3], fields[24 - 3]};
}

std::vector<prometheus::MetricFamily> collect_process_metrics() {
  std::vector<prometheus::MetricFamily> out;
  const auto stat = parse_proc_stat(read_file("/proc/self/stat"));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (stat.valid && ticks > 0) {
    out.push_back(single("process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.", stat.cpu_ticks / ticks,
                         prometheus::MetricType::Counter));
    out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                         stat.resident_pages * page));
    out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                         stat.virtual_bytes));
    // Fixed for the life of the system: read once, not on every scrape.
    static const double boot = read_boot_time();
    if (boot > 0)
      out.push_back(single("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           boot + stat.start_ticks / ticks));
  }
  std::error_code ec;
  double open = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++open;
  if (!ec) out.push_back(single("process_open_fds", "Number of open file descriptors.", open));
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0)
    out.push_back(single("process_max_fds", "Maximum number of open file descriptors.",
                         static_cast<double>(limit.rlim_cur)));
  return out;
}

}  // namespace gma::handlers
