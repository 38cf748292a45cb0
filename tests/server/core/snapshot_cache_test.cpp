#include "server/core/snapshot_cache.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

namespace gma::core {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using cache_t = snapshot_cache<int>;
using clock = cache_t::clock;

/// A fake backend: counts fetches, answers `next` (or `failure`), and, while `hold` is set,
/// keeps each fetch waiting until release() so that requests can pile up on it.
struct fake_backend {
  net::io_context& ioc;
  int fetches = 0;
  int next = 1;
  std::optional<errc> failure;
  bool hold = false;
  std::shared_ptr<net::steady_timer> gate;

  cache_t::source source(std::string tag = "rule-1") {
    return {std::move(tag), "the test rule",
            [this]() -> net::awaitable<result<cache_t::value_ptr>> {
              ++fetches;
              if (hold) {
                gate = std::make_shared<net::steady_timer>(ioc, clock::time_point::max());
                auto keep = gate;
                co_await keep->async_wait(net::as_tuple(net::use_awaitable));
              }
              if (failure) co_return make_error_code(*failure);
              co_return std::make_shared<const int>(next);
            }};
  }
  void release() {
    hold = false;
    if (gate) gate->cancel();
  }
};

class SnapshotCache : public ::testing::Test {
 protected:
  net::io_context ioc;
  clock::time_point now = clock::time_point() + 1000h;
  fake_backend backend{ioc};

  std::unique_ptr<cache_t> make(snapshot_cache_options options = {}) {
    options.wait_limit = 6s;
    return std::make_unique<cache_t>(ioc.get_executor(), options, [this] { return now; });
  }

  /// Requests `key` and runs the io_context until the answer is there.
  result<cache_t::answer> get(cache_t& cache, const std::string& key, std::string tag = "rule-1") {
    auto ticket = cache.request(key, [&] { return backend.source(tag); });
    std::optional<result<cache_t::answer>> out;
    net::co_spawn(
        ioc, cache.async_wait(std::move(ticket)),
        [&](std::exception_ptr, result<cache_t::answer> r) { out.emplace(std::move(r)); });
    ioc.restart();
    ioc.run();
    return std::move(*out);
  }

  void settle() {  // lets started refreshes end
    ioc.restart();
    ioc.run();
  }
};

TEST_F(SnapshotCache, ServesFromMemoryUntilTheTtlEnds) {
  auto cache = make({.ttl = 10s});
  auto first = get(*cache, "a");
  ASSERT_TRUE(first);
  EXPECT_EQ(*first->value, 1);
  EXPECT_EQ(first->outcome, cache_outcome::miss);
  backend.next = 2;
  now += 9s;
  auto second = get(*cache, "a");
  EXPECT_EQ(*second->value, 1);
  EXPECT_EQ(second->outcome, cache_outcome::hit);
  EXPECT_EQ(backend.fetches, 1);
}

TEST_F(SnapshotCache, PastTheTtlTheOldAnswerIsServedAtOnceWhileARefreshRuns) {
  auto cache = make({.ttl = 10s});
  ASSERT_TRUE(get(*cache, "a"));
  backend.next = 2;
  now += 11s;
  auto stale = get(*cache, "a");
  EXPECT_EQ(*stale->value, 1);
  EXPECT_EQ(stale->outcome, cache_outcome::stale);
  EXPECT_EQ(backend.fetches, 2);  // the refresh it started
  auto fresh = get(*cache, "a");
  EXPECT_EQ(*fresh->value, 2);
  EXPECT_EQ(fresh->outcome, cache_outcome::hit);
}

TEST_F(SnapshotCache, ConcurrentRequestsShareOneFetch) {
  auto cache = make();
  backend.hold = true;
  std::vector<cache_t::ticket> tickets;
  for (int i = 0; i < 50; ++i)
    tickets.push_back(cache->request("a", [&] { return backend.source(); }));
  std::vector<result<cache_t::answer>> answers;
  for (auto& t : tickets)
    net::co_spawn(ioc, cache->async_wait(std::move(t)),
                  [&](std::exception_ptr, result<cache_t::answer> r) { answers.push_back(r); });
  ioc.run_for(50ms);  // every request is waiting now
  EXPECT_TRUE(answers.empty());
  backend.release();
  settle();
  ASSERT_EQ(answers.size(), 50u);
  EXPECT_EQ(backend.fetches, 1);
  int misses = 0;
  for (const auto& a : answers) {
    ASSERT_TRUE(a);
    EXPECT_EQ(*a->value, 1);
    misses += a->outcome == cache_outcome::miss;
  }
  EXPECT_EQ(misses, 1);  // the other 49 were coalesced
}

TEST_F(SnapshotCache, ReadSnapshotsAreRefreshedAheadAndUnreadOnesDropped) {
  auto cache = make({.ttl = 10s, .keep_warm_for = 60s});
  ASSERT_TRUE(get(*cache, "read"));
  ASSERT_TRUE(get(*cache, "unread"));
  backend.next = 2;
  now += 7s;
  cache->tick();  // not yet 3/4 of the TTL
  settle();
  EXPECT_EQ(backend.fetches, 2);
  now += 1s;  // 8 s: both refreshed before they expire
  cache->tick();
  settle();
  EXPECT_EQ(backend.fetches, 4);
  now += 3s;  // 11 s after the first fetch, 3 s after the refresh: fresh, no wait
  auto answer = get(*cache, "read");
  EXPECT_EQ(answer->outcome, cache_outcome::hit);
  EXPECT_EQ(*answer->value, 2);
  // "unread" was last read at 0 s: past keep_warm_for it is neither refreshed nor kept.
  now += 50s;  // 61 s
  cache->tick();
  settle();
  EXPECT_EQ(cache->size(), 1u);
  const int before = backend.fetches;
  for (int i = 0; i < 20; ++i) {  // nobody reads "read" any more either
    now += 8s;
    cache->tick();
    settle();
  }
  EXPECT_EQ(cache->size(), 0u);
  EXPECT_LE(backend.fetches - before, 8);  // refreshed only while warm
}

TEST_F(SnapshotCache, StaleWindowThenTheBackendsErrorThenRecovery) {
  auto cache = make({.ttl = 10s, .serve_stale_for = 60s});
  ASSERT_TRUE(get(*cache, "a"));
  backend.failure = errc::backend_unavailable;
  now += 11s;
  EXPECT_EQ(get(*cache, "a")->outcome, cache_outcome::stale);
  settle();    // the refresh failed
  now += 58s;  // 69 s: still within ttl + serve_stale_for
  auto late = get(*cache, "a");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->outcome, cache_outcome::stale);
  EXPECT_EQ(*late->value, 1);
  settle();   // its refresh failed too
  now += 4s;  // 73 s: no longer servable; the request waits for a fetch, which fails
  const int before = backend.fetches;
  auto gone = get(*cache, "a");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), errc::backend_unavailable);
  EXPECT_EQ(backend.fetches, before + 1);
  // Within the retry gap the failure is answered without asking again.
  auto again = get(*cache, "a");
  EXPECT_FALSE(again);
  EXPECT_EQ(backend.fetches, before + 1);
  backend.failure.reset();
  backend.next = 3;
  now += 3s;
  auto back = get(*cache, "a");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back->value, 3);
}

TEST_F(SnapshotCache, NoStaleWindowMeansTheErrorAfterTheTtl) {
  auto cache = make({.ttl = 10s, .serve_stale_for = 0s});
  ASSERT_TRUE(get(*cache, "a"));
  backend.failure = errc::backend_error;
  now += 11s;
  auto answer = get(*cache, "a");
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), errc::backend_error);
}

TEST_F(SnapshotCache, AWaitEndsAtTheLimitWhenTheFetchHangs) {
  backend.hold = true;
  std::optional<result<cache_t::answer>> out;
  const auto started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point answered;
  // Real time here: the wait limit is a timer. 6 s is too long for a unit test, so a cache
  // with a short one.
  cache_t quick(ioc.get_executor(), {.wait_limit = 100ms}, [this] { return now; });
  auto quick_ticket = quick.request("a", [&] { return backend.source(); });
  net::co_spawn(ioc, quick.async_wait(std::move(quick_ticket)),
                [&](std::exception_ptr, result<cache_t::answer> r) {
                  answered = std::chrono::steady_clock::now();
                  out.emplace(std::move(r));
                });
  ioc.run_for(2s);
  ASSERT_TRUE(out);
  EXPECT_FALSE(*out);
  EXPECT_EQ(out->error(), errc::backend_unavailable);
  EXPECT_LT(answered - started, 1s);
  backend.release();
  settle();
}

TEST_F(SnapshotCache, TheLeastRecentlyReadIsDroppedWhenFull) {
  auto cache = make({.max_entries = 3});
  ASSERT_TRUE(get(*cache, "a"));
  ASSERT_TRUE(get(*cache, "b"));
  ASSERT_TRUE(get(*cache, "c"));
  ASSERT_TRUE(get(*cache, "a"));  // b is now the least recently read
  ASSERT_TRUE(get(*cache, "d"));
  EXPECT_EQ(cache->size(), 3u);
  EXPECT_EQ(backend.fetches, 4);
  EXPECT_EQ(get(*cache, "a")->outcome, cache_outcome::hit);
  EXPECT_EQ(get(*cache, "c")->outcome, cache_outcome::hit);
  EXPECT_EQ(get(*cache, "b")->outcome, cache_outcome::miss);
  EXPECT_EQ(cache->size(), 3u);
}

TEST_F(SnapshotCache, DropIfRemovesOnlyTheSelectedTags) {
  auto cache = make();
  ASSERT_TRUE(get(*cache, "a", "rule-1"));
  ASSERT_TRUE(get(*cache, "b", "rule-2"));
  EXPECT_EQ(cache->drop_if([](const std::string& tag) { return tag == "rule-1"; }), 1u);
  EXPECT_EQ(get(*cache, "b", "rule-2")->outcome, cache_outcome::hit);
  EXPECT_EQ(get(*cache, "a", "rule-1")->outcome, cache_outcome::miss);
}

TEST_F(SnapshotCache, ZeroTtlFetchesForEveryRequest) {
  auto cache = make({.ttl = 0s});
  auto first = get(*cache, "a");
  auto second = get(*cache, "a");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->outcome, cache_outcome::miss);
  EXPECT_EQ(second->outcome, cache_outcome::miss);
  EXPECT_EQ(backend.fetches, 2);
  EXPECT_EQ(cache->size(), 0u);
}

// Uncached, a request's fetches still overlap: start() launches one while the requester runs
// the other in its own coroutine.
TEST_F(SnapshotCache, ZeroTtlFetchesOfOneRequestOverlap) {
  auto cache = make({.ttl = 0s});
  backend.hold = true;
  auto first = cache->request("a", [&] { return backend.source(); });
  cache->start(first);
  ioc.run_for(20ms);  // the started fetch is now held at the gate
  EXPECT_EQ(backend.fetches, 1);
  backend.hold = false;  // the second fetch, run by async_wait, answers at once
  auto second = cache->request("b", [&] { return backend.source(); });
  std::vector<int> answered;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto b = co_await cache->async_wait(std::move(second));
        answered.push_back(*b->value);
        backend.release();
        auto a = co_await cache->async_wait(std::move(first));
        answered.push_back(*a->value);
      },
      net::detached);
  settle();
  EXPECT_EQ(answered, (std::vector<int>{1, 1}));
  EXPECT_EQ(backend.fetches, 2);
}

/// A source that answers `value`, or fails with `failure`.
cache_t::source fixed_source(int value, std::optional<errc> failure = std::nullopt) {
  return {"rule", "the test rule", [=]() -> net::awaitable<result<cache_t::value_ptr>> {
            if (failure) co_return make_error_code(*failure);
            co_return std::make_shared<const int>(value);
          }};
}

// Uncached (TTL 0), the last ticket's fetch runs in the waiting coroutine and ends first, so
// the answer's order is not the order the fetches ended in; cached, both orders agree.
TEST_F(SnapshotCache, WaitAllAnswersInTicketOrderOrTheFirstFailureInThatOrder) {
  for (const auto ttl : {0s, 10s}) {
    auto cache = make({.ttl = ttl});
    const auto wait_all = [&](std::vector<cache_t::ticket> tickets) {
      std::optional<result<std::vector<cache_t::value_ptr>>> out;
      net::co_spawn(ioc, cache->async_wait_all(std::move(tickets)),
                    [&](std::exception_ptr, auto r) { out.emplace(std::move(r)); });
      settle();
      return std::move(*out);
    };
    std::vector<cache_t::ticket> tickets;
    for (int v : {3, 1, 2})
      tickets.push_back(cache->request("ok" + std::to_string(v), [&] { return fixed_source(v); }));
    auto all = wait_all(std::move(tickets));
    ASSERT_TRUE(all) << "ttl " << ttl.count();
    std::vector<int> values;
    for (const auto& v : *all) values.push_back(*v);
    EXPECT_EQ(values, (std::vector<int>{3, 1, 2}));

    tickets.clear();
    tickets.push_back(cache->request("a", [&] { return fixed_source(1); }));
    tickets.push_back(cache->request("b", [&] { return fixed_source(2, errc::metric_not_found); }));
    tickets.push_back(
        cache->request("c", [&] { return fixed_source(3, errc::backend_unavailable); }));
    auto failed = wait_all(std::move(tickets));
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error(), make_error_code(errc::metric_not_found)) << "ttl " << ttl.count();
  }
}

TEST_F(SnapshotCache, OldestAgeIsTheAgeOfTheOldestSnapshot) {
  auto cache = make();
  EXPECT_EQ(cache->oldest_age(), clock::duration::zero());
  ASSERT_TRUE(get(*cache, "a"));
  now += 4s;
  ASSERT_TRUE(get(*cache, "b"));
  now += 1s;
  EXPECT_EQ(cache->oldest_age(), 5s);
}

}  // namespace
}  // namespace gma::core
