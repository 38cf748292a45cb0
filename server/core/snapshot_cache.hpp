#pragma once
/// @file Answers of a slow backend kept in memory, so that the backend's load grows with the
/// distinct questions asked, not with how often they are asked:
/// - a snapshot is served for `ttl` after its query started;
/// - concurrent requests for a snapshot being fetched share that one fetch (coalescing);
/// - a snapshot read within `keep_warm_for` is refreshed in the background before it expires
///   (tick()), so steady-state requests never wait on the backend; one nobody reads is dropped;
/// - while refreshes fail or hang, the last good snapshot is still served, at once, until
///   `ttl + serve_stale_for` after its fetch; after that requests wait for a fetch again, and
///   a failure is remembered for a short retry gap instead of being asked again per request;
/// - at most `max_entries` snapshots, the least recently read dropped first.
/// With a zero TTL nothing is kept or shared: every request is a fetch of its own.
///
/// @par Thread safety
/// Every member may be called from any thread: one mutex guards the entries, and no lock is
/// held while fetching or waiting. async_wait() must be awaited on a strand (as a session's
/// requests are) or a single-threaded executor: its wake-up is posted there, and must not run
/// before the wait starts. Fetches run as coroutines of their own on the executor given
/// at construction, so a cancelled request never cancels a fetch others wait for. The cache
/// must outlive those coroutines (the io_context's pending work is destroyed before the
/// components, see http::stoppable_io_context).

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/core/error.hpp"
#include "server/core/log.hpp"

namespace gma::core {

/// How a request was answered, for gma_metric_cache_requests_total.
enum class cache_outcome {
  hit,        ///< a snapshot younger than the TTL
  miss,       ///< this request started the fetch (or met a remembered failure)
  stale,      ///< past the TTL, served while its refresh runs or fails
  coalesced,  ///< waited for a fetch another request started
};

struct snapshot_cache_options {
  std::chrono::milliseconds ttl{std::chrono::seconds(10)};  ///< 0: no caching at all
  std::chrono::milliseconds serve_stale_for{std::chrono::minutes(1)};
  std::size_t max_entries = 10000;
  /// A snapshot read within this window is refreshed ahead; one not read for longer is dropped.
  std::chrono::milliseconds keep_warm_for{std::chrono::seconds(30)};
  /// How long a request waits for a fetch at most: the backend's own deadline plus a margin.
  std::chrono::milliseconds wait_limit{std::chrono::seconds(6)};
};

template <class Value>
class snapshot_cache {
 public:
  using clock = std::chrono::steady_clock;
  using value_ptr = std::shared_ptr<const Value>;
  using fetcher = std::function<boost::asio::awaitable<result<value_ptr>>()>;

  /// How to fetch (and later refresh) a snapshot. Built only when the cache needs it, so that
  /// a hit costs no query rendering.
  struct source {
    std::string tag;   ///< a group of snapshots, for drop_if (the rule they come from)
    std::string what;  ///< for log lines: "the rule at rules.yaml:12 in namespace ml"
    fetcher fetch;
  };

  struct answer {
    value_ptr value;
    cache_outcome outcome;
  };

 private:
  struct flight;
  /// A fetch decided under the lock and launched after it is released.
  struct pending_fetch {
    std::string key;
    std::string what;
    fetcher fetch;
    std::shared_ptr<flight> to;
    bool shared;  ///< its result is stored under `key`
  };

 public:
  /// What request() found: an answer now, or a fetch to wait for with async_wait().
  class ticket {
   public:
    cache_outcome outcome() const { return outcome_; }

   private:
    friend class snapshot_cache;
    std::optional<result<answer>> ready_;
    std::shared_ptr<flight> pending_;
    std::optional<pending_fetch> unlaunched_;  ///< a zero TTL's fetch, not started yet
    cache_outcome outcome_ = cache_outcome::miss;
  };

  /// `now` is the clock (a test's fake one); fetches run on `executor`.
  snapshot_cache(
      boost::asio::any_io_executor executor, snapshot_cache_options options,
      std::function<clock::time_point()> now = [] { return clock::now(); })
      : executor_(std::move(executor)), options_(options), now_(std::move(now)) {}

  snapshot_cache(const snapshot_cache&) = delete;
  snapshot_cache& operator=(const snapshot_cache&) = delete;

  const snapshot_cache_options& options() const { return options_; }

  /// Looks `key` up and, when no snapshot may be served, starts or joins its fetch; never
  /// blocks. `make_source()` is called only when the key is not cached yet. Ask for every
  /// snapshot a request needs before waiting for any, so that their fetches run concurrently.
  template <class MakeSource>
  ticket request(const std::string& key, MakeSource&& make_source) {
    ticket t;
    if (options_.ttl.count() == 0) {
      // No caching: a fetch of its own, shared with nobody, run by async_wait() in the
      // requester's own coroutine (no hand-off to another) unless start() launched it first.
      auto fetch = prepare(std::string(), make_source(), false);
      t.pending_ = fetch.to;
      t.unlaunched_.emplace(std::move(fetch));
      return t;
    }
    std::optional<pending_fetch> fetch;
    {
      std::lock_guard lock(mutex_);
      lookup(key, make_source, t, fetch);
    }
    if (fetch) launch(std::move(*fetch));  // after unlocking: the fetch may end at once
    return t;
  }

  /// Starts a zero TTL's fetch now, in a coroutine of its own, so that it runs while the
  /// requester waits for another ticket. Nothing for other tickets.
  void start(ticket& t) {
    if (!t.unlaunched_) return;
    launch(std::move(*t.unlaunched_));
    t.unlaunched_.reset();
  }

  /// The ticket's answer: at once, or when its fetch ends. A fetch that fails, or does not end
  /// within wait_limit, is the fetch's error or errc::backend_unavailable; so is a cancelled
  /// wait (the fetch goes on for the others).
  boost::asio::awaitable<result<answer>> async_wait(ticket t) {
    if (t.ready_) co_return std::move(*t.ready_);
    if (t.unlaunched_) {
      auto fetch = std::move(*t.unlaunched_);
      t.unlaunched_.reset();
      co_await run(std::move(fetch));  // sets the flight's outcome; nobody else waits for it
    }
    const auto executor = co_await boost::asio::this_coro::executor;
    auto timer = std::make_shared<boost::asio::steady_timer>(executor, options_.wait_limit);
    bool wait = false;
    {
      std::lock_guard lock(mutex_);
      if (!t.pending_->outcome) {
        t.pending_->waiters.push_back(timer);
        wait = true;
      }
    }
    // Woken early by finish() (it cancels the timer), or at wait_limit, or by cancellation.
    if (wait) co_await timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    std::optional<result<value_ptr>> fetched;
    {
      std::lock_guard lock(mutex_);
      fetched = t.pending_->outcome;
    }
    if (!fetched) co_return make_error_code(errc::backend_unavailable);
    if (!*fetched) co_return fetched->error();
    co_return answer{**fetched, t.outcome_};
  }

  /// The answers of all `tickets`, in their order, or the first failure in that order
  /// (whatever order the fetches ended in). Every fetch runs while the last ticket's (which,
  /// uncached, runs in this coroutine) is awaited, so the wait costs the slowest, not the sum.
  boost::asio::awaitable<result<std::vector<value_ptr>>> async_wait_all(
      std::vector<ticket> tickets) {
    for (std::size_t i = 0; i + 1 < tickets.size(); ++i) start(tickets[i]);
    std::vector<std::optional<result<answer>>> answers(tickets.size());
    for (std::size_t i = tickets.size(); i-- > 0;)
      answers[i].emplace(co_await async_wait(std::move(tickets[i])));
    std::vector<value_ptr> out;
    out.reserve(answers.size());
    for (auto& a : answers) {
      if (!*a) co_return a->error();
      out.push_back(std::move((*a)->value));
    }
    co_return out;
  }

  /// One pass of the refresher: drops snapshots not read within keep_warm_for and starts the
  /// refresh of those read within it once they are 3/4 of the TTL old.
  void tick() {
    std::vector<pending_fetch> refreshes;
    {
      std::lock_guard lock(mutex_);
      const auto now = now_();
      for (auto it = entries_.begin(); it != entries_.end();) {
        entry& e = it->second;
        const bool warm = now - e.last_read <= options_.keep_warm_for;
        if (!warm && !e.in_flight) {
          lru_.erase(e.lru);
          it = entries_.erase(it);
          continue;
        }
        // A fetch outlives its deadline only if the backend's client failed to enforce it:
        // forget it, so the key is asked again instead of waiting on it for good.
        if (e.in_flight && now - e.in_flight->started > 2 * options_.wait_limit)
          e.in_flight.reset();
        if (warm && e.value && !e.in_flight && now >= e.retry_at &&
            now - e.fetched_at >= refresh_after(e)) {
          refreshes.push_back(prepare(it->first, e.src, true));
          e.in_flight = refreshes.back().to;
        }
        ++it;
      }
    }
    for (auto& fetch : refreshes) launch(std::move(fetch));
  }

  /// How often tick() should run: often enough to refresh well before the TTL ends.
  std::chrono::milliseconds tick_interval() const {
    return std::clamp(options_.ttl / 8, std::chrono::milliseconds(50),
                      std::chrono::milliseconds(1000));
  }

  /// Ticks every tick_interval() until cancelled; `after_tick` runs after each (self-metrics).
  boost::asio::awaitable<void> async_run_refresher(std::function<void()> after_tick) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (true) {
      tick();
      if (after_tick) after_tick();
      timer.expires_after(tick_interval());
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
  }

  /// Drops every snapshot whose source tag `drop(tag)` selects (the rules a reload removed).
  /// A fetch in flight ends for its waiters but is not stored.
  template <class Predicate>
  std::size_t drop_if(Predicate drop) {
    std::lock_guard lock(mutex_);
    std::size_t dropped = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (drop(it->second.src.tag)) {
        lru_.erase(it->second.lru);
        it = entries_.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    return dropped;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

  /// The age of the oldest snapshot that may still be served, zero when none: how far behind
  /// the backend the answers may be.
  clock::duration oldest_age() const {
    std::lock_guard lock(mutex_);
    const auto now = now_();
    clock::duration oldest{};
    for (const auto& [key, e] : entries_)
      if (e.value && now - e.fetched_at < options_.ttl + options_.serve_stale_for)
        oldest = std::max(oldest, now - e.fetched_at);
    return oldest;
  }

 private:
  struct flight {
    clock::time_point started;
    std::optional<result<value_ptr>> outcome;                         // guarded by mutex_
    std::vector<std::shared_ptr<boost::asio::steady_timer>> waiters;  // guarded by mutex_
  };
  struct entry {
    source src;
    std::list<std::string>::iterator lru;
    clock::time_point last_read;
    value_ptr value{};  ///< the last good snapshot, if still servable
    clock::time_point fetched_at;
    clock::duration fetch_took{};  ///< how long the last good fetch took
    std::shared_ptr<flight> in_flight;
    clock::time_point retry_at;  ///< no new fetch before this, after a failure
    error_code last_error;
    bool stale_logged = false;  ///< warned once that this snapshot is served after a failure
    bool slow_logged = false;   ///< said once that it is served while its refresh runs
  };
  using entry_map = std::unordered_map<std::string, entry>;

  /// When a snapshot's refresh starts: at 3/4 of the TTL, or earlier by what its last fetch
  /// took (and a tick), so a slow but healthy backend still answers before the TTL ends.
  clock::duration refresh_after(const entry& e) const {
    const clock::duration lead =
        std::max<clock::duration>(options_.ttl / 4, e.fetch_took + tick_interval());
    return std::max<clock::duration>(options_.ttl - lead, clock::duration::zero());
  }
  /// After a failed fetch, how long the key is not asked again.
  clock::duration retry_gap() const {
    return std::clamp<clock::duration>(options_.ttl / 4, std::chrono::milliseconds(100),
                                       std::chrono::seconds(5));
  }

  /// Adds an entry, first dropping the least recently read one when full. Holds mutex_.
  typename entry_map::iterator insert(const std::string& key, source src, clock::time_point now) {
    if (entries_.size() >= options_.max_entries && !lru_.empty()) {
      entries_.erase(lru_.back());  // a fetch in flight for it still ends for its waiters
      lru_.pop_back();
    }
    lru_.push_front(key);
    entry e;
    e.src = std::move(src);
    e.lru = lru_.begin();
    e.last_read = now;
    return entries_.emplace(key, std::move(e)).first;
  }

  /// Says once per snapshot that it is served past its TTL: a warning when its refresh failed,
  /// at --v=1 while the refresh is merely still running (a slow but healthy backend).
  void log_stale_once(entry& e, clock::duration age) {
    if (e.last_error ? e.stale_logged : e.slow_logged) return;
    const auto seconds = [](clock::duration d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count());
    };
    const std::string limit =
        "; it is served until it is " + seconds(options_.ttl + options_.serve_stale_for) + "s old";
    if (e.last_error) {
      e.stale_logged = true;
      log::warning("serving the answer of " + e.src.what + " from " + seconds(age) +
                   "s ago: its refresh failed (" + e.last_error.message() + ")" + limit);
    } else {
      e.slow_logged = true;
      log::verbose(1, [&] {
        return "serving the answer of " + e.src.what + " from " + seconds(age) +
               "s ago: its refresh has not ended yet" + limit;
      });
    }
  }

  pending_fetch prepare(std::string key, const source& src, bool shared) {
    auto f = std::make_shared<flight>();
    f->started = now_();
    return {std::move(key), src.what, src.fetch, std::move(f), shared};
  }

  /// Runs the fetch in a coroutine of its own. Called without the lock.
  void launch(pending_fetch fetch) {
    boost::asio::co_spawn(executor_, run(std::move(fetch)),
                          [](const std::exception_ptr&) {});  // run() lets nothing escape
  }

  /// The body of request() for a cached key, under the lock: fills the ticket and, when a
  /// fetch must start, `fetch`.
  template <class MakeSource>
  void lookup(const std::string& key, MakeSource& make_source, ticket& t,
              std::optional<pending_fetch>& fetch) {
    const auto now = now_();
    auto it = entries_.find(key);
    if (it == entries_.end()) it = insert(key, make_source(), now);
    entry& e = it->second;
    e.last_read = now;
    lru_.splice(lru_.begin(), lru_, e.lru);
    if (e.value) {
      const auto age = now - e.fetched_at;
      if (age < options_.ttl) {
        t.ready_.emplace(answer{e.value, cache_outcome::hit});
        t.outcome_ = cache_outcome::hit;
        return;
      }
      if (age < options_.ttl + options_.serve_stale_for) {
        if (!e.in_flight && now >= e.retry_at) {
          fetch = prepare(key, e.src, true);
          e.in_flight = fetch->to;
        }
        log_stale_once(e, age);
        t.ready_.emplace(answer{e.value, cache_outcome::stale});
        t.outcome_ = cache_outcome::stale;
        return;
      }
      e.value.reset();  // too old to serve: free it, and wait for a fetch like a new key
    }
    if (e.in_flight) {
      t.pending_ = e.in_flight;
      t.outcome_ = cache_outcome::coalesced;
    } else if (now < e.retry_at) {
      t.ready_.emplace(e.last_error);  // failed a moment ago: do not ask again per request
    } else {
      fetch = prepare(key, e.src, true);
      t.pending_ = e.in_flight = fetch->to;
    }
  }

  boost::asio::awaitable<void> run(pending_fetch fetch) {
    std::optional<result<value_ptr>> fetched;
    try {
      fetched.emplace(co_await fetch.fetch());
    } catch (const boost::system::system_error& e) {
      // A request cancelled while it ran its own fetch (a zero TTL, at shutdown) is not an error.
      if (e.code() != boost::asio::error::operation_aborted)
        log::error("fetching the answer of " + fetch.what + " failed: " + e.what());
      fetched.emplace(make_error_code(errc::backend_unavailable));
    } catch (const std::exception& e) {
      log::error("fetching the answer of " + fetch.what + " failed: " + e.what());
      fetched.emplace(make_error_code(errc::backend_error));
    } catch (...) {
      log::error("fetching the answer of " + fetch.what + " failed with an unknown exception");
      fetched.emplace(make_error_code(errc::backend_error));
    }
    finish(fetch.key, fetch.to, std::move(*fetched), fetch.shared);
  }

  void finish(const std::string& key, const std::shared_ptr<flight>& f, result<value_ptr> fetched,
              bool shared) {
    std::vector<std::shared_ptr<boost::asio::steady_timer>> waiters;
    {
      std::lock_guard lock(mutex_);
      f->outcome = fetched;
      waiters.swap(f->waiters);
      const auto it = shared ? entries_.find(key) : entries_.end();
      if (it != entries_.end() && it->second.in_flight == f) {
        entry& e = it->second;
        e.in_flight.reset();
        if (fetched) {
          e.value = *fetched;
          e.fetched_at = f->started;
          e.fetch_took = now_() - f->started;
          e.last_error = {};
          e.retry_at = {};
          if (e.stale_logged) log::info("the answer of " + e.src.what + " is fresh again");
          e.stale_logged = false;
          e.slow_logged = false;
        } else {
          e.last_error = fetched.error();
          e.retry_at = now_() + retry_gap();
        }
      }
    }
    // Each timer is touched only on its own executor (the waiting request's strand).
    for (auto& timer : waiters)
      boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
  }

  boost::asio::any_io_executor executor_;
  const snapshot_cache_options options_;
  const std::function<clock::time_point()> now_;
  mutable std::mutex mutex_;
  entry_map entries_;           // guarded by mutex_
  std::list<std::string> lru_;  // most recently read first; guarded by mutex_
};

}  // namespace gma::core
