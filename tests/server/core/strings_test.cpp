#include "server/core/strings.hpp"

#include <gtest/gtest.h>

namespace gma::core {
namespace {

TEST(PercentDecode, FormAndPathRules) {
  EXPECT_EQ(percent_decode("a+b%2Cc", true), "a b,c");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("%2a", false), "*");
  EXPECT_EQ(percent_decode("%41%42", false), "AB");
  EXPECT_FALSE(percent_decode("%2", false).has_value());
  EXPECT_FALSE(percent_decode("%", true).has_value());
  EXPECT_FALSE(percent_decode("%zz", false).has_value());
}

TEST(Printable, NoControlCharactersAndACutIsMarked) {
  EXPECT_EQ(printable("403 Forbidden\nI0101 fake log line", 100),
            "403 Forbidden I0101 fake log line");
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  EXPECT_EQ(printable("abc", 3), "abc");
  EXPECT_EQ(printable(std::string("a\0b\x7f", 4), 10), "a b ");
}

TEST(AsciiLower, FoldsOnlyAsciiLetters) {
  EXPECT_EQ(ascii_lower("X-Remote-User"), "x-remote-user");
  EXPECT_EQ(ascii_lower("GET"), "get");
  // UTF-8 bytes and digits are kept, whatever the locale.
  EXPECT_EQ(ascii_lower("Ünï-42"), "Ünï-42");
  EXPECT_EQ(ascii_lower(""), "");
}

}  // namespace
}  // namespace gma::core
