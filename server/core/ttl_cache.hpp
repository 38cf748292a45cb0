#pragma once
/// @file A bounded map whose entries expire: the TokenReview and SubjectAccessReview caches of
/// delegated auth (k8s.io/apiserver caches both the same way).
///
/// @par Thread safety
/// Every member may be called from any thread; one mutex guards the map, and no lock is held
/// while the caller computes a value.

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>

namespace gma::core {

template <class Key, class Value, class Clock = std::chrono::steady_clock>
class ttl_cache {
 public:
  using time_point = typename Clock::time_point;

  /// At most `max_entries` are kept; see put() for what happens when it is full.
  explicit ttl_cache(std::size_t max_entries) : max_entries_(max_entries) {}

  /// The value stored for `key` if it has not expired at `now`.
  std::optional<Value> get(const Key& key, time_point now = Clock::now()) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end() || it->second.expires <= now) return std::nullopt;
    return it->second.value;
  }

  /// Stores `value` until `now + ttl`. When the cache is full, expired entries are dropped
  /// first and, if that frees nothing, everything: a flood of distinct keys (tokens, users)
  /// can cost a review per request but never unbounded memory.
  void put(Key key, Value value, typename Clock::duration ttl, time_point now = Clock::now()) {
    std::lock_guard lock(mutex_);
    if (entries_.size() >= max_entries_ && !entries_.contains(key)) {
      std::erase_if(entries_, [&](const auto& e) { return e.second.expires <= now; });
      if (entries_.size() >= max_entries_) entries_.clear();
    }
    entries_.insert_or_assign(std::move(key), entry{now + ttl, std::move(value)});
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct entry {
    time_point expires;
    Value value;
  };
  const std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::map<Key, entry> entries_;  // guarded by mutex_
};

}  // namespace gma::core
