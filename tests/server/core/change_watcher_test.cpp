#include "server/core/change_watcher.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace gma::core {
namespace {

namespace net = boost::asio;

/// A source whose next reads are scripted; nullopt is "cannot read now".
struct scripted_source {
  std::vector<std::optional<std::string>> reads;
  std::size_t next = 0;
  change_watcher<std::string>::read_fn reader() {
    return [this]() -> net::awaitable<std::optional<std::string>> {
      co_return next < reads.size() ? reads[next++] : reads.back();
    };
  }
};

void check(change_watcher<std::string>& watcher, int times = 1) {
  net::io_context ioc;
  for (int i = 0; i < times; ++i) {
    auto done = net::co_spawn(ioc, watcher.async_check(), net::use_future);
    ioc.run();
    ioc.restart();
    done.get();
  }
}

TEST(ChangeWatcher, AppliesOnlyWhatDiffersFromWhatIsInForce) {
  scripted_source source{{"v1", "v1", "v2", "v2"}};
  std::vector<std::string> applied;
  change_watcher<std::string> watcher(
      source.reader(),
      [&](const std::string& s) {
        applied.push_back(s);
        return true;
      },
      "v1");
  check(watcher, 4);
  EXPECT_EQ(applied, std::vector<std::string>{"v2"});
}

TEST(ChangeWatcher, WithoutASnapshotInForceTheFirstReadApplies) {
  scripted_source source{{"data"}};
  int applied = 0;
  change_watcher<std::string> watcher(source.reader(),
                                      [&](const std::string&) { return ++applied, true; });
  check(watcher, 2);
  EXPECT_EQ(applied, 1);
}

TEST(ChangeWatcher, RefusedSnapshotIsOfferedAgainAndUnreadableKeepsTheOld) {
  // A certificate written before its key is refused, then accepted once the pair matches.
  scripted_source source{{std::nullopt, "cert-only", "cert-only", "cert+key"}};
  std::vector<std::string> offered;
  change_watcher<std::string> watcher(
      source.reader(),
      [&](const std::string& s) {
        offered.push_back(s);
        return s == "cert+key";
      },
      "old");
  check(watcher, 5);
  EXPECT_EQ(offered, (std::vector<std::string>{"cert-only", "cert-only", "cert+key"}));
}

TEST(ChangeWatcher, RememberedSnapshotIsNotAppliedAgain) {
  scripted_source source{{"v2"}};
  int applied = 0;
  change_watcher<std::string> watcher(
      source.reader(), [&](const std::string&) { return ++applied, true; }, "v1");
  watcher.remember("v2");  // applied by a SIGHUP reload
  check(watcher);
  EXPECT_EQ(applied, 0);
}

TEST(ChangeWatcher, RunPollsUntilCancelled) {
  scripted_source source{{"a", "b", "c"}};
  std::vector<std::string> applied;
  change_watcher<std::string> watcher(source.reader(), [&](const std::string& s) {
    applied.push_back(s);
    return true;
  });
  net::io_context ioc;
  net::co_spawn(ioc, watcher.async_run(std::chrono::milliseconds(1)), net::detached);
  ioc.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(applied, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(FilesFingerprint, JoinsFilesAndFailsWhenOneIsMissing) {
  const auto dir = std::filesystem::temp_directory_path() / "gma_fingerprint_test";
  std::filesystem::create_directories(dir);
  const auto cert = (dir / "tls.crt").string();
  const auto key = (dir / "tls.key").string();
  std::ofstream(cert) << "CERT";
  std::ofstream(key) << "KEY";
  EXPECT_EQ(read_files_fingerprint({cert}, "test"), "CERT");
  EXPECT_EQ(read_files_fingerprint({cert, key}, "test"), std::string("CERT\0KEY", 8));
  std::filesystem::remove(key);
  EXPECT_EQ(read_files_fingerprint({cert, key}, "test"), std::nullopt);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gma::core
