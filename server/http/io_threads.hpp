#pragma once
/// @file How many threads run the io_context by default: the CPUs this process may actually
/// use. That is its cgroup CPU quota (a Kubernetes CPU limit), rounded up, or its affinity mask
/// (a cpuset), whichever is smaller, and at least 2. Never std::thread::hardware_concurrency():
/// it counts the node's cores (96 on a GPU node), and threads beyond the quota only add
/// throttling and context switches to a pod limited to a fraction of one CPU.
///
/// The parsing and the choice are pure functions of the files' contents and the affinity
/// count, and the reading takes the cgroup root and /proc/self/cgroup's text, for the tests;
/// usable_io_threads() reads them from /proc and /sys. Thread-safe.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gma::http {

/// A cgroup CPU bandwidth limit: `quota_us` of CPU time every `period_us`.
struct cpu_quota {
  std::int64_t quota_us = 0;
  std::int64_t period_us = 0;
  /// The CPUs it amounts to, rounded up: 50m is 1, 3.5 CPUs are 4. Saturates at the largest
  /// unsigned for a quota of more CPUs than that (cpu.max allows up to 2^63 - 1 us); 0 when
  /// either field is not positive, which is no limit.
  unsigned whole_cpus() const;
  /// The CPUs it amounts to, for logs ("0.05").
  std::string text() const;
};

/// The limit in cgroup v2 cpu.max ("QUOTA PERIOD"); nullopt for "max ..." (no limit) and for
/// text that is not a limit.
std::optional<cpu_quota> cgroup_v2_cpu_quota(std::string_view cpu_max);

/// The limit in cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us; nullopt for a quota of -1
/// (no limit) and for text that is not a limit.
std::optional<cpu_quota> cgroup_v1_cpu_quota(std::string_view cfs_quota_us,
                                             std::string_view cfs_period_us);

/// The CPU files of the process's cgroup and of each ancestor (any level may limit it), as read.
struct cgroup_cpu_files {
  std::vector<std::string> v2_cpu_max;  ///< cpu.max contents
  std::vector<std::pair<std::string, std::string>>
      v1_cfs_quota_period;  ///< cfs_quota_us, cfs_period_us
};

/// The CPU files under `cgroup_root` (/sys/fs/cgroup) for the process whose /proc/self/cgroup
/// reads `proc_self_cgroup`: cpu.max of its v2 cgroup and of each ancestor, innermost first,
/// when `cgroup_root` is the unified hierarchy (has cgroup.controllers); else the cfs files of
/// its v1 cpu controller's cgroup and ancestors. A cgroup path that leaves the root ("/..")
/// reads the root only. Files and directories that do not exist are skipped; never throws
/// (what cannot be read is no limit).
cgroup_cpu_files read_cgroup_cpu_files(const std::filesystem::path& cgroup_root,
                                       std::string_view proc_self_cgroup);

/// What usable_io_threads() chose, and why (for the start-up log line).
struct io_thread_choice {
  unsigned threads = 2;
  std::string reason;
};

/// The default I/O threads: the smallest quota in `files` rounded up, or `affinity_cpus` when
/// that is smaller or nothing limits; at least 2, so that one slow handler never stalls every
/// connection, and at most 1024, the bound of --threads. `affinity_cpus` 0 means unknown.
io_thread_choice io_threads_for(const cgroup_cpu_files& files, unsigned affinity_cpus);

/// io_threads_for() with this process's cgroup files (v2, else v1; from /proc/self/cgroup up to
/// the root of /sys/fs/cgroup) and its sched_getaffinity() count. Files that cannot be read
/// count as no limit.
io_thread_choice usable_io_threads();

}  // namespace gma::http
