// The default number of I/O threads from cgroup files' contents and an affinity count: the
// quota rounded up, the affinity when smaller or when nothing limits, never fewer than 2.
#include "server/http/io_threads.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>

namespace gma::http {
namespace {

namespace fs = std::filesystem;

unsigned v2(std::vector<std::string> cpu_max, unsigned affinity) {
  return io_threads_for({std::move(cpu_max), {}}, affinity).threads;
}

unsigned v1(std::string quota, std::string period, unsigned affinity) {
  return io_threads_for({{}, {{std::move(quota), std::move(period)}}}, affinity).threads;
}

// A pod with a 50m CPU limit on a 96-core node: not 96 threads, and not 1.
TEST(IoThreads, FiftyMillicoresIsTwo) {
  EXPECT_EQ(v2({"5000 100000\n"}, 96), 2u);
  EXPECT_EQ(v1("5000\n", "100000\n", 96), 2u);
}

TEST(IoThreads, FractionalQuotaRoundsUp) {
  EXPECT_EQ(v2({"350000 100000\n"}, 96), 4u);
  EXPECT_EQ(v2({"400000 100000\n"}, 96), 4u);
  EXPECT_EQ(v1("350000", "100000", 96), 4u);
}

TEST(IoThreads, NoQuotaIsTheAffinity) {
  EXPECT_EQ(v2({"max 100000\n"}, 6), 6u);
  EXPECT_EQ(v1("-1\n", "100000\n", 6), 6u);
  EXPECT_EQ(io_threads_for({}, 6).threads, 6u);  // no cgroup files at all
}

TEST(IoThreads, AffinitySmallerThanTheQuotaWins) { EXPECT_EQ(v2({"800000 100000"}, 3), 3u); }

TEST(IoThreads, AtLeastTwo) {
  EXPECT_EQ(v2({"max 100000"}, 1), 2u);
  EXPECT_EQ(v2({"200000 100000"}, 1), 2u);
  EXPECT_EQ(io_threads_for({}, 0).threads, 2u);  // the affinity could not be read
}

// Any level of the hierarchy may limit the process: the tightest counts; unreadable text and
// levels without a limit do not.
TEST(IoThreads, TightestLevelOfTheHierarchyCounts) {
  EXPECT_EQ(v2({"max 100000", "300000 100000", "600000 100000"}, 16), 3u);
  EXPECT_EQ(v2({"garbage", "", "max", "700000 100000"}, 16), 7u);
  EXPECT_EQ(io_threads_for({{}, {{"-1", "100000"}, {"250000", "50000"}}}, 16).threads, 5u);
}

TEST(IoThreads, ReasonSaysWhy) {
  const auto choice = io_threads_for({{"5000 100000"}, {}}, 96);
  EXPECT_EQ(choice.reason, "cgroup CPU quota 0.05, 96 CPUs in the affinity mask, at least 2");
  EXPECT_EQ(io_threads_for({{"max 100000"}, {}}, 8).reason,
            "no cgroup CPU quota, 8 CPUs in the affinity mask");
  EXPECT_EQ(io_threads_for({{"max 100000"}, {}}, 1).reason,
            "no cgroup CPU quota, 1 CPU in the affinity mask, at least 2");
}

TEST(CgroupQuota, ParsesBothVersions) {
  const auto q = cgroup_v2_cpu_quota("150000 100000\n");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->whole_cpus(), 2u);
  EXPECT_EQ(q->text(), "1.5");
  EXPECT_FALSE(cgroup_v2_cpu_quota("max 100000").has_value());
  EXPECT_FALSE(cgroup_v2_cpu_quota("0 100000").has_value());
  EXPECT_FALSE(cgroup_v2_cpu_quota("100000 0").has_value());
  EXPECT_FALSE(cgroup_v2_cpu_quota("100000").has_value());
  EXPECT_FALSE(cgroup_v1_cpu_quota("-1", "100000").has_value());
  EXPECT_FALSE(cgroup_v1_cpu_quota("", "100000").has_value());
  EXPECT_EQ(cgroup_v1_cpu_quota("100000", "100000")->whole_cpus(), 1u);
}

// cpu.max allows a quota up to 2^63 - 1 us: rounding up must not overflow, and a count beyond
// `unsigned` saturates instead of wrapping (2^32 + 1 CPUs truncated would be 1).
TEST(CgroupQuota, HugeQuotasSaturate) {
  constexpr auto kMostUnsigned = std::numeric_limits<unsigned>::max();
  const std::int64_t most = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ((cpu_quota{most, 1}.whole_cpus()), kMostUnsigned);
  EXPECT_EQ((cpu_quota{most, most}.whole_cpus()), 1u);
  EXPECT_EQ((cpu_quota{most, most - 1}.whole_cpus()), 2u);
  EXPECT_EQ((cpu_quota{17592186044415, 1000}.whole_cpus()), kMostUnsigned);
  EXPECT_EQ((cpu_quota{4294967297, 1}.whole_cpus()), kMostUnsigned);
  EXPECT_EQ((cpu_quota{static_cast<std::int64_t>(kMostUnsigned) - 1, 1}.whole_cpus()),
            kMostUnsigned - 1);
  // Not a limit at all.
  EXPECT_EQ((cpu_quota{0, 100000}.whole_cpus()), 0u);
  EXPECT_EQ((cpu_quota{-1, 100000}.whole_cpus()), 0u);
  EXPECT_EQ((cpu_quota{100000, 0}.whole_cpus()), 0u);
  EXPECT_EQ((cpu_quota{100000, -5}.whole_cpus()), 0u);
}

// Whatever the quota or the affinity, the default is one --threads accepts: 2 to 1024.
TEST(IoThreads, AtMostTheFlagsBound) {
  EXPECT_EQ(v2({"9223372036854775807 1"}, 0), 1024u);
  EXPECT_EQ(v2({"17592186044415 1000"}, 0), 1024u);
  EXPECT_EQ(v2({"9223372036854775807 1"}, 8), 8u);
  EXPECT_EQ(v1("9223372036854775807", "1", 0), 1024u);
  EXPECT_EQ(io_threads_for({}, 4096).threads, 1024u);  // a very big machine's affinity
  EXPECT_EQ(io_threads_for({}, 4096).reason,
            "no cgroup CPU quota, 4096 CPUs in the affinity mask, at most 1024");
  EXPECT_EQ(v2({"200000000 100000"}, 0), 1024u);
}

// A huge level never wins as the tightest: truncated to unsigned, 2^32 + 1 CPUs would be 1.
TEST(IoThreads, HugeLevelDoesNotWinAsTheTightest) {
  EXPECT_EQ(v2({"4294967297 1", "300000 100000"}, 0), 3u);
  EXPECT_EQ(v2({"300000 100000", "4294967297 1"}, 0), 3u);
  EXPECT_EQ(v2({"17592186044415 1000", "500000 100000"}, 16), 5u);
}

// Values that are no limit: not positive, not numbers, out of int64's range.
TEST(IoThreads, NonPositiveOrGarbageIsNoQuota) {
  for (const char* cpu_max :
       {"-100000 100000", "0 100000", "100000 -1", "100000 0", "x 100000", "100000 y",
        "99999999999999999999 100000", "100000 99999999999999999999", "1.5 1", "100000 100000 1"}) {
    SCOPED_TRACE(cpu_max);
    EXPECT_FALSE(cgroup_v2_cpu_quota(cpu_max).has_value());
    EXPECT_EQ(v2({cpu_max}, 6), 6u);
  }
  EXPECT_EQ(v1("-5", "100000", 6), 6u);
  EXPECT_EQ(v1("100000", "0", 6), 6u);
  EXPECT_EQ(v1("abc", "100000", 6), 6u);
}

/// A scratch directory tree for one test, removed after it.
class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    base_ = fs::temp_directory_path() /
            (std::string("gma_cgroup_") + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(base_);
    fs::create_directories(root());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  /// What stands for /sys/fs/cgroup.
  fs::path root() const { return base_ / "root"; }
  /// A directory beside root(), outside it.
  fs::path outside() const { return base_ / "outside"; }

  /// Writes `text` to `path`, making its directories.
  static void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  /// A cgroup v2 hierarchy under root().
  void unified() const { write(root() / "cgroup.controllers", "cpuset cpu io memory pids\n"); }

 private:
  fs::path base_;
};

// A v2 hierarchy: cpu.max of the process's cgroup and of each ancestor, innermost first; the
// root's too. The tightest of them counts, whichever level it is at.
TEST_F(CgroupTree, V2ReadsEveryLevelAndTheTightestWins) {
  unified();
  write(root() / "cpu.max", "max 100000\n");
  write(root() / "kubepods" / "cpu.max", "800000 100000\n");
  write(root() / "kubepods" / "pod1" / "cpu.max", "250000 100000\n");
  write(root() / "kubepods" / "pod1" / "ctr" / "cpu.max", "max 100000\n");
  const auto files = read_cgroup_cpu_files(root(), "0::/kubepods/pod1/ctr\n");
  EXPECT_EQ(files.v2_cpu_max, (std::vector<std::string>{"max 100000\n", "250000 100000\n",
                                                        "800000 100000\n", "max 100000\n"}));
  EXPECT_TRUE(files.v1_cfs_quota_period.empty());
  EXPECT_EQ(io_threads_for(files, 16).threads, 3u);
}

// A v1 hierarchy: the cpu controller's line (cpu,cpuacct here) of /proc/self/cgroup, its
// cgroup and ancestors in the cpu,cpuacct mount. Other controllers' paths do not count.
TEST_F(CgroupTree, V1ReadsTheCpuControllersCgroup) {
  const auto cpu = root() / "cpu,cpuacct";
  write(cpu / "cpu.cfs_quota_us", "-1\n");
  write(cpu / "cpu.cfs_period_us", "100000\n");
  write(cpu / "kubepods" / "cpu.cfs_quota_us", "600000\n");
  write(cpu / "kubepods" / "cpu.cfs_period_us", "100000\n");
  write(cpu / "kubepods" / "pod1" / "cpu.cfs_quota_us", "350000\n");
  write(cpu / "kubepods" / "pod1" / "cpu.cfs_period_us", "100000\n");
  write(cpu / "elsewhere" / "cpu.cfs_quota_us", "50000\n");
  write(cpu / "elsewhere" / "cpu.cfs_period_us", "100000\n");
  const auto files = read_cgroup_cpu_files(root(),
                                           "12:memory:/elsewhere\n"
                                           "4:cpu,cpuacct:/kubepods/pod1\n"
                                           "1:name=systemd:/elsewhere\n");
  using pair = std::pair<std::string, std::string>;
  EXPECT_EQ(files.v1_cfs_quota_period,
            (std::vector<pair>{
                {"350000\n", "100000\n"}, {"600000\n", "100000\n"}, {"-1\n", "100000\n"}}));
  EXPECT_TRUE(files.v2_cpu_max.empty());
  EXPECT_EQ(io_threads_for(files, 16).threads, 4u);
}

// A cgroup path outside the namespace's root ("/.." in a container with its own cgroup
// namespace) reads the root only, never a directory beside it.
TEST_F(CgroupTree, PathOutsideTheRootReadsTheRootOnly) {
  unified();
  write(root() / "cpu.max", "max 100000\n");
  write(outside() / "cpu.max", "100000 100000\n");
  write(outside() / "pod" / "cpu.max", "100000 100000\n");
  for (const char* self : {"0::/../outside\n", "0::/../outside/pod\n", "0::/a/../../outside\n"}) {
    SCOPED_TRACE(self);
    EXPECT_EQ(read_cgroup_cpu_files(root(), self).v2_cpu_max,
              std::vector<std::string>{"max 100000\n"});
  }
}

// A root given with a trailing '/' is the same root: the levels stop at it.
TEST_F(CgroupTree, RootWithATrailingSlash) {
  unified();
  write(root() / "cpu.max", "max 100000\n");
  write(root() / "pod" / "cpu.max", "300000 100000\n");
  write(root().parent_path() / "cpu.max", "100000 100000\n");  // above the root: never read
  EXPECT_EQ(read_cgroup_cpu_files(root().string() + "/", "0::/pod/\n").v2_cpu_max,
            (std::vector<std::string>{"300000 100000\n", "max 100000\n"}));
}

// Lines that are not "id:controllers:path" are skipped; without the v2 line the process is in
// the root cgroup.
TEST_F(CgroupTree, GarbageLinesAreSkipped) {
  unified();
  write(root() / "pod" / "cpu.max", "300000 100000\n");
  EXPECT_EQ(read_cgroup_cpu_files(root(), "garbage\n\n:\n0::/pod\n").v2_cpu_max,
            std::vector<std::string>{"300000 100000\n"});
  EXPECT_TRUE(read_cgroup_cpu_files(root(), "garbage\nno colons at all").v2_cpu_max.empty());
  EXPECT_TRUE(read_cgroup_cpu_files(root(), "").v2_cpu_max.empty());
}

// Missing files and directories are no limit: the affinity decides.
TEST_F(CgroupTree, MissingFilesAreNoQuota) {
  unified();  // v2 without any cpu.max (the cpu controller not enabled)
  auto files = read_cgroup_cpu_files(root(), "0::/kubepods/pod1\n");
  EXPECT_TRUE(files.v2_cpu_max.empty());
  EXPECT_EQ(io_threads_for(files, 6).threads, 6u);
  // The process's cgroup is missing, its parent is there.
  write(root() / "kubepods" / "cpu.max", "400000 100000\n");
  files = read_cgroup_cpu_files(root(), "0::/kubepods/pod1\n");
  EXPECT_EQ(files.v2_cpu_max, std::vector<std::string>{"400000 100000\n"});
  // v1 with a quota but no period: not a pair, so nothing.
  fs::remove(root() / "cgroup.controllers");
  write(root() / "cpu" / "cpu.cfs_quota_us", "100000\n");
  files = read_cgroup_cpu_files(root(), "3:cpu:/\n");
  EXPECT_TRUE(files.v1_cfs_quota_period.empty());
  EXPECT_TRUE(files.v2_cpu_max.empty());
  // No hierarchy at all, or a root that is not there.
  fs::remove_all(root() / "cpu");
  EXPECT_TRUE(read_cgroup_cpu_files(root(), "0::/\n").v2_cpu_max.empty());
  files = read_cgroup_cpu_files(root() / "absent", "0::/\n");
  EXPECT_TRUE(files.v2_cpu_max.empty());
  EXPECT_TRUE(files.v1_cfs_quota_period.empty());
}

// A cpu.max that cannot be read as a file (a directory in its place) is no limit.
TEST_F(CgroupTree, UnreadableFileIsNoQuota) {
  unified();
  fs::create_directories(root() / "pod" / "cpu.max");
  const auto files = read_cgroup_cpu_files(root(), "0::/pod\n");
  EXPECT_EQ(io_threads_for(files, 6).threads, 6u);
}

// On this machine, whatever it is: a count within what the process may run on, at least 2.
TEST(IoThreads, ThisProcess) {
  const auto choice = usable_io_threads();
  EXPECT_GE(choice.threads, 2u);
  EXPECT_FALSE(choice.reason.empty());
}

}  // namespace
}  // namespace gma::http
