#include "server/core/ttl_cache.hpp"

#include <gtest/gtest.h>

#include <string>

namespace gma::core {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::seconds;

TEST(TtlCache, ServesUntilExpiry) {
  ttl_cache<std::string, int> cache(8);
  const auto t0 = clock::now();
  cache.put("a", 1, seconds(10), t0);
  EXPECT_EQ(cache.get("a", t0 + seconds(9)), 1);
  EXPECT_EQ(cache.get("a", t0 + seconds(10)), std::nullopt);
  EXPECT_EQ(cache.get("b", t0), std::nullopt);
}

TEST(TtlCache, PutReplacesAndKeepsPerEntryTtl) {
  ttl_cache<std::string, int> cache(8);
  const auto t0 = clock::now();
  cache.put("allowed", 1, seconds(30), t0);
  cache.put("denied", 0, seconds(5), t0);
  EXPECT_EQ(cache.get("denied", t0 + seconds(6)), std::nullopt);
  EXPECT_EQ(cache.get("allowed", t0 + seconds(6)), 1);
  cache.put("allowed", 2, seconds(1), t0 + seconds(6));
  EXPECT_EQ(cache.get("allowed", t0 + seconds(6)), 2);
  EXPECT_EQ(cache.get("allowed", t0 + seconds(8)), std::nullopt);
}

TEST(TtlCache, FullCacheDropsExpiredFirstThenEverything) {
  ttl_cache<int, int> cache(3);
  const auto t0 = clock::now();
  cache.put(1, 1, seconds(1), t0);
  cache.put(2, 2, seconds(100), t0);
  cache.put(3, 3, seconds(100), t0);
  // Full: the expired entry 1 makes room, the live ones stay.
  cache.put(4, 4, seconds(100), t0 + seconds(2));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.get(2, t0 + seconds(2)), 2);
  EXPECT_EQ(cache.get(4, t0 + seconds(2)), 4);
  // Full of live entries: everything goes, so memory stays bounded.
  cache.put(5, 5, seconds(100), t0 + seconds(3));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.get(5, t0 + seconds(3)), 5);
  EXPECT_EQ(cache.get(2, t0 + seconds(3)), std::nullopt);
}

TEST(TtlCache, ReplacingAKeyInAFullCacheEvictsNothing) {
  ttl_cache<int, int> cache(2);
  const auto t0 = clock::now();
  cache.put(1, 1, seconds(100), t0);
  cache.put(2, 2, seconds(100), t0);
  cache.put(2, 20, seconds(100), t0);
  EXPECT_EQ(cache.get(1, t0), 1);
  EXPECT_EQ(cache.get(2, t0), 20);
}

}  // namespace
}  // namespace gma::core
