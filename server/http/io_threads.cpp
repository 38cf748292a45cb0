#include "server/http/io_threads.hpp"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace gma::http {
namespace {

namespace fs = std::filesystem;

/// Fewer threads than this and one handler that takes long stalls every other connection.
constexpr unsigned kMinThreads = 2;
/// The most --threads accepts (config/options.cpp): a default must be a value the flag could
/// have given, whatever a quota or a huge machine's affinity mask says.
constexpr unsigned kMaxThreads = 1024;

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
}

std::optional<std::int64_t> integer(std::string_view text) {
  text = trimmed(text);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<cpu_quota> quota_of(std::optional<std::int64_t> quota,
                                  std::optional<std::int64_t> period) {
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return cpu_quota{*quota, *period};
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// `base`/`path` and each of its ancestors up to `base`, innermost first; only those that
/// exist, but for `base`, always last. In a container with its own cgroup namespace `path` is
/// "/", so this is just `base`. Built downwards from `base`, part by part, so that it never
/// climbs above `base` (as walking parent_path() up from a `base` ending in '/' would).
std::vector<fs::path> cgroup_dirs(const fs::path& base, std::string_view path) {
  const fs::path relative = fs::path(trimmed(path)).relative_path();
  // A path outside the namespace's root ("/../..") names nothing under `base`.
  const bool inside = std::none_of(relative.begin(), relative.end(),
                                   [](const fs::path& part) { return part == ".."; });
  std::vector<fs::path> levels;  // outermost first, below `base`
  fs::path dir = base;
  for (const auto& part : inside ? relative : fs::path()) {
    if (part.empty() || part == ".") continue;
    dir /= part;
    levels.push_back(dir);
  }
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (auto level = levels.rbegin(); level != levels.rend(); ++level)
    if (fs::is_directory(*level, ec)) dirs.push_back(*level);
  dirs.push_back(base);
  return dirs;
}

/// The cgroup path of this process for `controller` ("" for the v2 unified hierarchy) in
/// /proc/self/cgroup ("0::/path", "4:cpu,cpuacct:/path"); "/" when it is not listed.
std::string cgroup_path(std::string_view proc_self_cgroup, std::string_view controller) {
  std::istringstream lines{std::string(proc_self_cgroup)};
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string_view controllers(line.data() + first + 1, second - first - 1);
    bool match = controller.empty() && controllers.empty();
    for (std::size_t start = 0; !controller.empty() && start <= controllers.size();) {
      const auto comma = std::min(controllers.find(',', start), controllers.size());
      if (controllers.substr(start, comma - start) == controller) match = true;
      start = comma + 1;
    }
    if (match) return line.substr(second + 1);
  }
  return "/";
}

/// CPUs in this process's affinity mask (a cpuset); 0 when it cannot be read.
unsigned affinity_cpus() {
  // cpu_set_t holds 1024 CPUs; a bigger machine needs a bigger set (EINVAL otherwise).
  for (int cpus = CPU_SETSIZE; cpus <= 64 * CPU_SETSIZE; cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (!set) return 0;
    const std::size_t size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, set);
    const bool ok = sched_getaffinity(0, size, set) == 0;
    const int count = ok ? CPU_COUNT_S(size, set) : 0;
    CPU_FREE(set);
    if (ok) return static_cast<unsigned>(count);
    if (errno != EINVAL) return 0;
  }
  return 0;
}

}  // namespace

unsigned cpu_quota::whole_cpus() const {
  if (quota_us <= 0 || period_us <= 0) return 0;
  // Rounded up without quota_us + period_us - 1, which overflows for a quota near 2^63.
  const std::int64_t cpus = quota_us / period_us + (quota_us % period_us != 0 ? 1 : 0);
  // Saturated, not truncated: a huge quota truncated could become a tiny one and win as the
  // tightest level.
  constexpr auto kMost = std::numeric_limits<unsigned>::max();
  return cpus >= static_cast<std::int64_t>(kMost) ? kMost : static_cast<unsigned>(cpus);
}

std::string cpu_quota::text() const {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", static_cast<double>(quota_us) / period_us);
  return buffer;
}

std::optional<cpu_quota> cgroup_v2_cpu_quota(std::string_view cpu_max) {
  cpu_max = trimmed(cpu_max);
  const auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  // "max" parses as no number: no limit.
  return quota_of(integer(cpu_max.substr(0, space)), integer(cpu_max.substr(space + 1)));
}

std::optional<cpu_quota> cgroup_v1_cpu_quota(std::string_view cfs_quota_us,
                                             std::string_view cfs_period_us) {
  // -1 is no limit, and quota_of() refuses it with anything not positive.
  return quota_of(integer(cfs_quota_us), integer(cfs_period_us));
}

io_thread_choice io_threads_for(const cgroup_cpu_files& files, unsigned affinity_cpus) {
  std::optional<cpu_quota> tightest;
  const auto consider = [&](std::optional<cpu_quota> quota) {
    if (quota && (!tightest || quota->whole_cpus() < tightest->whole_cpus())) tightest = quota;
  };
  for (const auto& cpu_max : files.v2_cpu_max) consider(cgroup_v2_cpu_quota(cpu_max));
  for (const auto& [quota, period] : files.v1_cfs_quota_period)
    consider(cgroup_v1_cpu_quota(quota, period));

  unsigned cpus = 0;
  std::string reason;
  if (tightest) {
    cpus = tightest->whole_cpus();
    reason = "cgroup CPU quota " + tightest->text();
  } else {
    reason = "no cgroup CPU quota";
  }
  if (affinity_cpus > 0) {
    if (cpus == 0 || affinity_cpus < cpus) cpus = affinity_cpus;
    reason += ", " + std::to_string(affinity_cpus) + (affinity_cpus == 1 ? " CPU" : " CPUs") +
              " in the affinity mask";
  } else {
    reason += ", affinity mask unknown";
  }
  if (cpus < kMinThreads) {
    cpus = kMinThreads;
    reason += ", at least " + std::to_string(kMinThreads);
  } else if (cpus > kMaxThreads) {
    cpus = kMaxThreads;
    reason += ", at most " + std::to_string(kMaxThreads);
  }
  return {cpus, reason};
}

cgroup_cpu_files read_cgroup_cpu_files(const fs::path& cgroup_root,
                                       std::string_view proc_self_cgroup) {
  cgroup_cpu_files files;
  // Only allocation can throw here (the filesystem calls take an error_code, the streams do
  // not throw); a process that cannot allocate this much still starts, as if nothing limited.
  try {
    std::error_code ec;
    if (fs::exists(cgroup_root / "cgroup.controllers", ec)) {  // v2, the unified hierarchy
      for (const auto& dir : cgroup_dirs(cgroup_root, cgroup_path(proc_self_cgroup, "")))
        if (auto cpu_max = read_file(dir / "cpu.max"))
          files.v2_cpu_max.push_back(std::move(*cpu_max));
      return files;
    }
    for (const char* mount : {"cpu,cpuacct", "cpuacct,cpu", "cpu"}) {  // v1
      if (!fs::is_directory(cgroup_root / mount, ec)) continue;
      for (const auto& dir :
           cgroup_dirs(cgroup_root / mount, cgroup_path(proc_self_cgroup, "cpu"))) {
        auto quota = read_file(dir / "cpu.cfs_quota_us");
        auto period = read_file(dir / "cpu.cfs_period_us");
        if (quota && period)
          files.v1_cfs_quota_period.emplace_back(std::move(*quota), std::move(*period));
      }
      break;
    }
  } catch (const std::exception&) {
    return {};
  }
  return files;
}

io_thread_choice usable_io_threads() {
  return io_threads_for(
      read_cgroup_cpu_files("/sys/fs/cgroup", read_file("/proc/self/cgroup").value_or("")),
      affinity_cpus());
}

}  // namespace gma::http
