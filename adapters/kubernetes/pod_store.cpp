#include "adapters/kubernetes/pod_store.hpp"

#include <algorithm>

namespace gma::adapters::kubernetes {

std::uint32_t string_pool::acquire(std::string_view text) {
  if (const auto it = index_.find(text); it != index_.end()) {
    ++entries_[it->second].users;
    return it->second;
  }
  std::uint32_t id = 0;
  if (free_.empty()) {
    id = static_cast<std::uint32_t>(entries_.size());
    entries_.emplace_back();
  } else {
    id = free_.back();
    free_.pop_back();
  }
  auto& e = entries_[id];
  e.text.assign(text);
  e.users = 1;
  index_.emplace(e.text, id);
  return id;
}

void string_pool::release(std::uint32_t id) {
  auto& e = entries_[id];
  if (--e.users > 0) return;
  index_.erase(e.text);
  e.text.clear();
  e.text.shrink_to_fit();
  free_.push_back(id);
}

std::optional<std::uint32_t> string_pool::find(std::string_view text) const {
  const auto it = index_.find(text);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::size_t string_pool::bytes() const {
  std::size_t total = entries_.size() * sizeof(entry) + free_.capacity() * sizeof(std::uint32_t) +
                      index_.bucket_count() * sizeof(void*) +
                      // a hash node: the next pointer, the key and id, the cached hash
                      index_.size() * (sizeof(void*) + sizeof(std::string_view) +
                                       sizeof(std::uint32_t) + 4 + sizeof(std::size_t) + 16);
  for (const auto& e : entries_)
    if (e.text.capacity() > 15) total += e.text.capacity() + 1;  // beyond the short-string buffer
  return total;
}

namespace {

template <class Pods>
auto find_pod(Pods& pods, std::string_view name) {
  return std::lower_bound(pods.begin(), pods.end(), name,
                          [](const auto& pod, std::string_view n) { return pod.name < n; });
}

}  // namespace

void pod_store::release_labels(stored_pod& pod) {
  for (const auto& l : pod.labels) {
    pool_.release(l.key);
    pool_.release(l.value);
  }
  pod.labels.clear();
}

void pod_store::put(std::string_view namespace_, std::string_view name, const label_list& labels) {
  auto ns = namespaces_.find(namespace_);
  if (ns == namespaces_.end()) ns = namespaces_.emplace(std::string(namespace_), 0).first;
  auto& pods = ns->second;
  auto it = find_pod(pods, name);
  if (it == pods.end() || it->name != name) {
    it = pods.insert(it, stored_pod{std::string(name), {}});
    ++pods_;
  }
  // Acquired before the old ones are released, so the strings both share are kept.
  auto ids = acquire_labels(labels);
  release_labels(*it);
  it->labels = std::move(ids);
}

std::vector<label_ids> pod_store::acquire_labels(const label_list& labels) {
  std::vector<label_ids> ids;
  ids.reserve(labels.size());
  for (const auto& [key, value] : labels) ids.push_back({pool_.acquire(key), pool_.acquire(value)});
  std::sort(ids.begin(), ids.end(), [](label_ids a, label_ids b) { return a.key < b.key; });
  return ids;
}

void pod_store::append(std::string_view namespace_, std::string_view name,
                       const label_list& labels) {
  auto ns = namespaces_.find(namespace_);
  if (ns == namespaces_.end()) ns = namespaces_.emplace(std::string(namespace_), 0).first;
  ns->second.push_back(stored_pod{std::string(name), acquire_labels(labels)});
}

void pod_store::finish_list() {
  pods_ = 0;
  for (auto& [ns, pods] : namespaces_) {
    // Stable: of equal names, the later listing is last.
    std::stable_sort(pods.begin(), pods.end(),
                     [](const stored_pod& a, const stored_pod& b) { return a.name < b.name; });
    std::size_t kept = 0;
    for (std::size_t i = 0; i < pods.size(); ++i) {
      if (i + 1 < pods.size() && pods[i + 1].name == pods[i].name) {
        release_labels(pods[i]);
        continue;
      }
      if (kept != i) pods[kept] = std::move(pods[i]);
      ++kept;
    }
    pods.resize(kept);
    pods.shrink_to_fit();
    pods_ += kept;
  }
}

bool pod_store::erase(std::string_view namespace_, std::string_view name) {
  const auto ns = namespaces_.find(namespace_);
  if (ns == namespaces_.end()) return false;
  auto& pods = ns->second;
  const auto it = find_pod(pods, name);
  if (it == pods.end() || it->name != name) return false;
  release_labels(*it);
  pods.erase(it);
  --pods_;
  if (pods.empty()) namespaces_.erase(ns);
  return true;
}

std::optional<std::string_view> pod_store::value_of(const stored_pod& pod,
                                                    std::optional<std::uint32_t> key) const {
  if (!key) return std::nullopt;
  const auto it = std::lower_bound(pod.labels.begin(), pod.labels.end(), *key,
                                   [](label_ids l, std::uint32_t k) { return l.key < k; });
  if (it == pod.labels.end() || it->key != *key) return std::nullopt;
  return pool_.at(it->value);
}

template <class Visit>
void pod_store::for_each_selected(const std::vector<stored_pod>& pods,
                                  const core::label_selector& selector, Visit&& visit) const {
  // Each requirement's key looked up once: a key no pod has is absent from every pod.
  std::vector<std::optional<std::uint32_t>> keys;
  keys.reserve(selector.requirements().size());
  for (const auto& r : selector.requirements()) keys.push_back(pool_.find(r.key));
  for (const auto& pod : pods) {
    bool selected = true;
    for (std::size_t i = 0; selected && i < keys.size(); ++i)
      selected = selector.requirements()[i].matches_value(value_of(pod, keys[i]));
    if (selected) visit(pod);
  }
}

void pod_store::select(std::string_view namespace_, const core::label_selector& selector,
                       std::vector<std::string>& names) const {
  const auto ns = namespaces_.find(namespace_);
  if (ns == namespaces_.end()) return;
  if (selector.empty()) names.reserve(names.size() + ns->second.size());
  for_each_selected(ns->second, selector,
                    [&](const stored_pod& pod) { names.push_back(pod.name); });
}

void pod_store::select_objects(const std::optional<std::string>& namespace_,
                               const core::label_selector& selector,
                               std::vector<core::listed_object>& out) const {
  const auto add = [&](const std::string& ns, const std::vector<stored_pod>& pods) {
    for_each_selected(pods, selector, [&](const stored_pod& pod) {
      core::listed_object o{ns, pod.name, {}};
      for (const auto& l : pod.labels) o.labels.emplace(pool_.at(l.key), pool_.at(l.value));
      out.push_back(std::move(o));
    });
  };
  if (!namespace_) {
    for (const auto& [ns, pods] : namespaces_) add(ns, pods);  // sorted by namespace
    return;
  }
  if (const auto ns = namespaces_.find(*namespace_); ns != namespaces_.end())
    add(ns->first, ns->second);
}

std::optional<core::label_map> pod_store::labels_of(std::string_view namespace_,
                                                    std::string_view name) const {
  const auto ns = namespaces_.find(namespace_);
  if (ns == namespaces_.end()) return std::nullopt;
  const auto it = find_pod(ns->second, name);
  if (it == ns->second.end() || it->name != name) return std::nullopt;
  core::label_map labels;
  for (const auto& l : it->labels) labels.emplace(pool_.at(l.key), pool_.at(l.value));
  return labels;
}

std::size_t pod_store::bytes() const {
  std::size_t total = pool_.bytes();
  for (const auto& [ns, pods] : namespaces_) {
    total += ns.capacity() + 64;  // the map node
    total += pods.capacity() * sizeof(stored_pod);
    for (const auto& pod : pods) {
      if (pod.name.capacity() > 15) total += pod.name.capacity() + 1;
      total += pod.labels.capacity() * sizeof(label_ids);
    }
  }
  return total;
}

}  // namespace gma::adapters::kubernetes
