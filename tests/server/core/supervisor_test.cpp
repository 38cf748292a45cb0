#include "server/core/supervisor.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

namespace gma::core {
namespace {

namespace net = boost::asio;
using std::chrono::milliseconds;

supervisor_options fast() { return {milliseconds(20), milliseconds(80), std::chrono::hours(1)}; }

net::awaitable<void> sleep_for(milliseconds d) {
  net::steady_timer t(co_await net::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(net::use_awaitable);
}

health_check check_named(const supervisor& s, const std::string& name) {
  for (auto& c : s.readiness_checks())
    if (c.name == name) return c;
  return {"missing", false, ""};
}

TEST(Supervisor, RestartsALoopThatThrowsAndReportsItDownMeanwhile) {
  net::io_context ioc;
  supervisor loops(fast());
  int runs = 0;
  std::vector<bool> seen_ok_while_down;
  loops.spawn(ioc.get_executor(), "watch", [&]() -> net::awaitable<void> {
    if (++runs <= 2) throw std::runtime_error("a JSON field of an unexpected type");
    co_await sleep_for(milliseconds(10'000));  // the third run keeps running
  });
  // While the first failure waits out its back-off, the check fails with the reason.
  ioc.run_for(milliseconds(5));
  const auto down = check_named(loops, "loop-watch");
  EXPECT_FALSE(down.ok);
  EXPECT_NE(down.reason.find("a JSON field of an unexpected type"), std::string::npos)
      << down.reason;
  ioc.run_for(milliseconds(200));
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(loops.restarts("watch"), 2);
  EXPECT_TRUE(check_named(loops, "loop-watch").ok);
}

TEST(Supervisor, BackOffGrowsAndIsCapped) {
  net::io_context ioc;
  supervisor loops(fast());
  std::vector<std::chrono::steady_clock::time_point> starts;
  loops.spawn(ioc.get_executor(), "flaky", [&]() -> net::awaitable<void> {
    starts.push_back(std::chrono::steady_clock::now());
    co_return;  // ends at once, every time
  });
  ioc.run_for(milliseconds(450));
  ASSERT_GE(starts.size(), 5u);
  const auto gap = [&](std::size_t i) {
    return std::chrono::duration_cast<milliseconds>(starts[i + 1] - starts[i]).count();
  };
  EXPECT_GE(gap(0), 20);  // 20, 40, 80, then capped at 80
  EXPECT_GE(gap(1), 40);
  EXPECT_GE(gap(2), 80);
  EXPECT_LT(gap(3), 80 * 3);
}

TEST(Supervisor, StoppedLoopsAreNotRestarted) {
  net::io_context ioc;
  supervisor loops(fast());
  int runs = 0;
  loops.spawn(ioc.get_executor(), "listener", [&]() -> net::awaitable<void> {
    ++runs;
    co_return;
  });
  loops.stop();
  ioc.run_for(milliseconds(100));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(loops.restarts("listener"), 0);
}

}  // namespace
}  // namespace gma::core
