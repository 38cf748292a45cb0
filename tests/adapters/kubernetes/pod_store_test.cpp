// The compact pod store: labels interned once, selection without a label map per pod, and the
// pool giving back what no pod uses.
#include "adapters/kubernetes/pod_store.hpp"

#include <gtest/gtest.h>

namespace gma::adapters::kubernetes {
namespace {

std::vector<std::string> select(const pod_store& store, const char* ns, const char* selector) {
  std::vector<std::string> names;
  store.select(ns, *core::label_selector::parse(selector), names);
  return names;
}

TEST(PodStore, SelectsAsTheLabelMapSelectorDoes) {
  pod_store store;
  store.put("ml", "c", {{"app", "triton"}, {"gpus", "4"}});
  store.put("ml", "a", {{"app", "triton"}, {"gpus", "1"}, {"canary", "true"}});
  store.put("ml", "b", {{"app", "vllm"}});
  store.put("other", "a", {{"app", "triton"}});
  EXPECT_EQ(select(store, "ml", ""), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(select(store, "ml", "app=triton"), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(select(store, "ml", "app!=triton"), (std::vector<std::string>{"b"}));
  EXPECT_EQ(select(store, "ml", "app in (vllm,x),!canary"), (std::vector<std::string>{"b"}));
  EXPECT_EQ(select(store, "ml", "gpus>2"), (std::vector<std::string>{"c"}));
  EXPECT_EQ(select(store, "ml", "canary"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(select(store, "ml", "nobody-has-this=1"), (std::vector<std::string>{}));
  EXPECT_EQ(select(store, "ml", "nobody-has-this!=1"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(select(store, "ml", "app=never-seen"), (std::vector<std::string>{}));
  EXPECT_EQ(select(store, "none", ""), (std::vector<std::string>{}));
  EXPECT_EQ(store.pods(), 4u);
  EXPECT_EQ(store.namespaces(), 2u);
}

TEST(PodStore, ReplacingAndErasingGiveBackLabelsNoPodUses) {
  pod_store store;
  store.put("ml", "a", {{"app", "triton"}, {"pod-template-hash", "5d8f7c9b6"}});
  store.put("ml", "b", {{"app", "triton"}, {"pod-template-hash", "5d8f7c9b6"}});
  store.put("ml", "a", {{"app", "triton"}, {"pod-template-hash", "7c9d4k2mn"}});
  EXPECT_EQ(*store.labels_of("ml", "a"),
            (core::label_map{{"app", "triton"}, {"pod-template-hash", "7c9d4k2mn"}}));
  EXPECT_EQ(select(store, "ml", "pod-template-hash=5d8f7c9b6"), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(store.erase("ml", "b"));
  EXPECT_FALSE(store.erase("ml", "b"));
  // The old hash is gone from the pool: a selector on it finds no key value at all.
  EXPECT_EQ(select(store, "ml", "pod-template-hash=5d8f7c9b6"), (std::vector<std::string>{}));
  EXPECT_TRUE(store.erase("ml", "a"));
  EXPECT_EQ(store.pods(), 0u);
  EXPECT_EQ(store.namespaces(), 0u);
  EXPECT_FALSE(store.labels_of("ml", "a"));
}

TEST(PodStore, SharedLabelsAreStoredOnce) {
  // 1000 pods of one Deployment: their labels take a few pool entries, and the store's size
  // grows with the pods, not with their label text.
  pod_store one;
  one.put("ml", "pod-0",
          {{"app.kubernetes.io/name", "triton-inference-server"},
           {"app.kubernetes.io/part-of", "llm-serving"}});
  pod_store many;
  for (int i = 0; i < 1000; ++i)
    many.put("ml", "pod-" + std::to_string(i),
             {{"app.kubernetes.io/name", "triton-inference-server"},
              {"app.kubernetes.io/part-of", "llm-serving"}});
  const double per_pod = static_cast<double>(many.bytes() - one.bytes()) / 999;
  EXPECT_LT(per_pod, 120) << per_pod;
}

TEST(StringPool, ReusesTheIdsOfFreedStrings) {
  string_pool pool;
  const auto a = pool.acquire("a");
  EXPECT_EQ(pool.acquire("a"), a);
  const auto b = pool.acquire("b");
  pool.release(a);
  EXPECT_EQ(pool.find("a"), a);
  pool.release(a);
  EXPECT_FALSE(pool.find("a"));
  EXPECT_EQ(pool.acquire("c"), a);
  EXPECT_EQ(pool.at(a), "c");
  EXPECT_EQ(pool.at(b), "b");
  EXPECT_EQ(pool.size(), 2u);
}

}  // namespace
}  // namespace gma::adapters::kubernetes
