#include "server/handlers/process_metrics.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace gma::handlers {
namespace {

// proc(5): the command name may hold spaces and parentheses; fields are counted after the
// last ')'.
TEST(ProcessMetrics, ParsesProcStatWithAnAwkwardCommandName) {
  const std::string text =
      "4242 (gpu (metrics) adapter) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 5 0 "
      "123456 987654321 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto stat = parse_proc_stat(text);
  ASSERT_TRUE(stat.valid);
  EXPECT_EQ(stat.cpu_ticks, 300);  // utime 250 + stime 50
  EXPECT_EQ(stat.start_ticks, 123456);
  EXPECT_EQ(stat.virtual_bytes, 987654321);
  EXPECT_EQ(stat.resident_pages, 4321);
  EXPECT_FALSE(parse_proc_stat("4242 (truncated").valid);
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2 3").valid);
}

TEST(ProcessMetrics, TheStandardFamiliesOfThisProcess) {
  std::map<std::string, double> values;
  for (const auto& family : collect_process_metrics()) {
    ASSERT_EQ(family.metric.size(), 1u) << family.name;
    values[family.name] = family.type == prometheus::MetricType::Counter
                              ? family.metric[0].counter.value
                              : family.metric[0].gauge.value;
  }
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds"})
    EXPECT_TRUE(values.contains(name)) << name;
  EXPECT_GT(values["process_resident_memory_bytes"], 1024 * 1024);
  EXPECT_GE(values["process_virtual_memory_bytes"], values["process_resident_memory_bytes"]);
  EXPECT_GE(values["process_open_fds"], 3);  // stdin, stdout, stderr at least
  EXPECT_GE(values["process_max_fds"], values["process_open_fds"]);
  // Started within the last day, not at the epoch or in the future.
  const double now = static_cast<double>(time(nullptr));
  EXPECT_LE(values["process_start_time_seconds"], now + 1);
  EXPECT_GT(values["process_start_time_seconds"], now - 86400);
}

}  // namespace
}  // namespace gma::handlers
