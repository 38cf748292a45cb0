#pragma once
/// @file Pods' names and labels in a compact form, for a cluster of tens of thousands of pods:
/// an index by namespace, each namespace's pods sorted by name, and every label key and value
/// stored once in a string pool and referred to by a 32-bit id.
///
/// @par Thread safety
/// None: the pod cache guards its store with a mutex. Values are movable, not copyable.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/core/label_selector.hpp"
#include "server/core/resource_metrics.hpp"

namespace gma::adapters::kubernetes {

/// Distinct strings stored once each, referred to by id, with a count of users so that an id
/// no pod uses any more is given to the next new string.
class string_pool {
 public:
  string_pool() = default;
  string_pool(const string_pool&) = delete;
  string_pool& operator=(const string_pool&) = delete;
  string_pool(string_pool&&) = default;
  string_pool& operator=(string_pool&&) = default;

  /// The id of `text`, one more user counted.
  std::uint32_t acquire(std::string_view text);
  /// One user of `id` fewer; the last one frees it.
  void release(std::uint32_t id);
  std::optional<std::uint32_t> find(std::string_view text) const;
  std::string_view at(std::uint32_t id) const { return entries_[id].text; }
  /// Strings in use.
  std::size_t size() const { return index_.size(); }
  /// Bytes held, estimated from the containers' sizes.
  std::size_t bytes() const;

 private:
  struct entry {
    std::string text;
    std::uint32_t users = 0;
  };
  std::deque<entry> entries_;  // a deque: growing it leaves the strings where index_ sees them
  std::vector<std::uint32_t> free_;
  std::unordered_map<std::string_view, std::uint32_t> index_;  // views of entries_' texts
};

/// A label of a stored pod: ids in the store's pool.
struct label_ids {
  std::uint32_t key;
  std::uint32_t value;
};

/// A pod's labels as read, before they are stored: (key, value) pairs.
using label_list = std::vector<std::pair<std::string, std::string>>;

class pod_store {
 public:
  pod_store() = default;
  pod_store(pod_store&&) = default;
  pod_store& operator=(pod_store&&) = default;

  /// Adds the pod or replaces its labels: a sorted insert, for watch events.
  void put(std::string_view namespace_, std::string_view name, const label_list& labels);
  /// Adds a pod of a list, in any order; finish_list() must follow before any other use.
  /// Whatever the order the API server lists in, building the store stays O(n log n).
  void append(std::string_view namespace_, std::string_view name, const label_list& labels);
  /// Sorts what append() added; of a pod listed twice (it changed while the list was paged)
  /// the later listing is kept.
  void finish_list();
  /// False when there was no such pod.
  bool erase(std::string_view namespace_, std::string_view name);

  /// Appends the names of the pods of `namespace_` that `selector` selects, in name order.
  /// Allocates only for the names it appends.
  void select(std::string_view namespace_, const core::label_selector& selector,
              std::vector<std::string>& names) const;
  /// Appends the pods (or nodes, stored in namespace "") of `namespace_`, or of every namespace
  /// (nullopt), that `selector` selects, with their labels, sorted by namespace then name.
  void select_objects(const std::optional<std::string>& namespace_,
                      const core::label_selector& selector,
                      std::vector<core::listed_object>& out) const;
  /// The labels of one pod, for tests and `check`; nullopt when there is no such pod.
  std::optional<core::label_map> labels_of(std::string_view namespace_,
                                           std::string_view name) const;

  std::size_t pods() const { return pods_; }
  std::size_t namespaces() const { return namespaces_.size(); }
  /// Bytes held, estimated from the containers' sizes and capacities.
  std::size_t bytes() const;

 private:
  struct stored_pod {
    std::string name;
    std::vector<label_ids> labels;  // sorted by key id
  };
  /// The value of label `key` of `pod`, if it has one.
  std::optional<std::string_view> value_of(const stored_pod& pod,
                                           std::optional<std::uint32_t> key) const;
  void release_labels(stored_pod& pod);
  /// Calls visit(pod) for each of `pods` that `selector` selects, in order.
  template <class Visit>
  void for_each_selected(const std::vector<stored_pod>& pods, const core::label_selector& selector,
                         Visit&& visit) const;
  /// The label ids of `labels`, sorted by key id, each acquired once.
  std::vector<label_ids> acquire_labels(const label_list& labels);

  string_pool pool_;
  std::map<std::string, std::vector<stored_pod>, std::less<>> namespaces_;  // sorted by name
  std::size_t pods_ = 0;
};

}  // namespace gma::adapters::kubernetes
