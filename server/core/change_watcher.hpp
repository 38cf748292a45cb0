#pragma once
/// @file Poll-and-compare watching, the one mechanism behind every reload: the serving
/// certificate, the client CA files, the rules file (a ConfigMap volume swaps a symlink, which
/// inotify on the file does not see) and the extension-apiserver-authentication ConfigMap.
///
/// A watcher reads a snapshot of its source every interval and hands it to `apply` when it
/// differs from the one in force. `apply` says whether the snapshot is now in force; a snapshot
/// it refuses (say, a certificate written before its key) is offered again on the next poll.
///
/// @par Thread safety
/// One watcher runs on one strand: async_run(), async_check() and remember() must not run
/// concurrently. `read` and `apply` run on that strand.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "server/core/text_file.hpp"

namespace gma::core {

template <class Snapshot>
class change_watcher {
 public:
  /// The source's current state; nullopt when it cannot be read now (the reader logs why),
  /// which keeps what is in force.
  using read_fn = std::function<boost::asio::awaitable<std::optional<Snapshot>>()>;
  /// True when `snapshot` is now in force, false to offer it again on the next poll.
  using apply_fn = std::function<bool(const Snapshot& snapshot)>;

  /// `in_force` is what the component was started from; without it the first check applies.
  change_watcher(read_fn read, apply_fn apply, std::optional<Snapshot> in_force = std::nullopt)
      : read_(std::move(read)), apply_(std::move(apply)), in_force_(std::move(in_force)) {}

  /// Reads the source once and applies it if it changed.
  boost::asio::awaitable<void> async_check() {
    auto now = co_await read_();
    if (!now || (in_force_ && *in_force_ == *now)) co_return;
    if (apply_(*now)) in_force_ = std::move(*now);
  }

  /// Checks now, then every `interval`, until the coroutine is cancelled.
  boost::asio::awaitable<void> async_run(std::chrono::steady_clock::duration interval) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (true) {
      co_await async_check();
      timer.expires_after(interval);
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
  }

  /// Records a snapshot applied by other means (a SIGHUP reload), so it is not applied twice.
  void remember(Snapshot in_force) { in_force_ = std::move(in_force); }

 private:
  read_fn read_;
  apply_fn apply_;
  std::optional<Snapshot> in_force_;
};

/// A reader for change_watcher<std::string> over files (see read_files_fingerprint).
inline change_watcher<std::string>::read_fn file_contents_reader(std::vector<std::string> paths,
                                                                 std::string what) {
  // A plain lambda that calls a coroutine taking its arguments by value: a coroutine lambda
  // would refer to captures owned by the std::function.
  struct read {
    static boost::asio::awaitable<std::optional<std::string>> async_files(
        std::vector<std::string> paths, std::string what) {
      co_return read_files_fingerprint(paths, what);
    }
  };
  return
      [paths = std::move(paths), what = std::move(what)] { return read::async_files(paths, what); };
}

}  // namespace gma::core
