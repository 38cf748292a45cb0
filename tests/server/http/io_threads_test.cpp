// The default number of I/O threads from cgroup files' contents and an affinity count: the
// quota rounded up, the affinity when smaller or when nothing limits, never fewer than 2.
#include "server/http/io_threads.hpp"

#include <gtest/gtest.h>

namespace gma::http {
namespace {

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

// On this machine, whatever it is: a count within what the process may run on, at least 2.
TEST(IoThreads, ThisProcess) {
  const auto choice = usable_io_threads();
  EXPECT_GE(choice.threads, 2u);
  EXPECT_FALSE(choice.reason.empty());
}

}  // namespace
}  // namespace gma::http
