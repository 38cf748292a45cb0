// Verbose lines cost nothing when their level is off: enabled() follows --v, and the lambda
// form builds its message only when the line is written.
#include "server/core/log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace gma::core::log {
namespace {

/// Restores the verbosity a test changed.
struct verbosity_guard {
  explicit verbosity_guard(int level) { set_verbosity(level); }
  ~verbosity_guard() { set_verbosity(0); }
};

TEST(Log, EnabledFollowsTheVerbosity) {
  const verbosity_guard v(2);
  EXPECT_TRUE(enabled(1));
  EXPECT_TRUE(enabled(2));
  EXPECT_FALSE(enabled(3));
}

TEST(Log, LazyMessageIsBuiltOnlyWhenItsLevelIsOn) {
  const verbosity_guard v(1);
  int built = 0;
  const auto message = [&] {
    ++built;
    return std::string("a line from the log test");
  };
  verbose(3, message);
  EXPECT_EQ(built, 0);
  testing::internal::CaptureStderr();
  verbose(1, message);
  const std::string written = testing::internal::GetCapturedStderr();
  EXPECT_EQ(built, 1);
  EXPECT_NE(written.find("] a line from the log test\n"), std::string::npos) << written;
}

}  // namespace
}  // namespace gma::core::log
