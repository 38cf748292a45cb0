#include "adapters/kubernetes/pod_cache.hpp"

#include <nlohmann/json.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>

#include "server/core/json_access.hpp"
#include "server/core/log.hpp"

namespace gma::adapters::kubernetes {
namespace {

using std::chrono::seconds;
constexpr auto kRequestTimeout = seconds(30);
constexpr int kWatchSeconds = 300;

struct pod_key {
  std::string namespace_;
  std::string name;
  core::label_map labels;
};

bool read_pod(const nlohmann::json& pod, pod_key& out) {
  const auto& meta = core::object_at(pod, "metadata");
  out.namespace_ = core::string_at(meta, "namespace");
  out.name = core::string_at(meta, "name");
  for (const auto& [k, v] : core::object_at(meta, "labels").items())
    if (v.is_string()) out.labels[k] = v.get<std::string>();
  return !out.name.empty();
}

}  // namespace

std::optional<pod_list_page> decode_pod_list(std::string_view body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.contains("items") || !doc["items"].is_array()) return std::nullopt;
  pod_list_page page;
  for (const auto& item : doc["items"]) {
    pod_key pod;
    if (read_pod(item, pod)) page.pods[pod.namespace_][pod.name] = std::move(pod.labels);
  }
  const auto& meta = core::object_at(doc, "metadata");
  page.continue_token = core::string_at(meta, "continue");
  page.resource_version = core::string_at(meta, "resourceVersion");
  return page;
}

pod_cache::pod_cache(http_client::http_client& client) : client_(client) {}

net::awaitable<bool> pod_cache::async_list() {
  pods_by_namespace pods;
  std::string continue_token;
  std::string version;
  do {
    std::string target = "/api/v1/pods?limit=500";
    if (!continue_token.empty()) target += "&continue=" + http_client::url_encode(continue_token);
    auto res = co_await client_.async_get(std::move(target), kRequestTimeout);
    if (!res) {
      core::log::warning("listing pods failed: " + res.error().message());
      co_return false;
    }
    if (res->status != 200) {
      core::log::warning("listing pods failed: HTTP " + std::to_string(res->status) + ": " +
                         res->body.substr(0, 300));
      co_return false;
    }
    auto page = decode_pod_list(res->body);
    if (!page) {
      core::log::warning("listing pods: the response is not a PodList");
      co_return false;
    }
    // A pod on two pages (it moved while we paged) keeps its later labels.
    for (auto& [ns, names] : page->pods)
      for (auto& [name, labels] : names) pods[ns].insert_or_assign(name, std::move(labels));
    continue_token = std::move(page->continue_token);
    version = std::move(page->resource_version);
  } while (!continue_token.empty());
  std::size_t count = 0;
  for (const auto& [ns, names] : pods) count += names.size();
  {
    std::unique_lock lock(mutex_);
    pods_ = std::move(pods);
    synced_ = true;
  }
  resource_version_ = version;
  core::log::verbose(
      1, "pod cache synced: " + std::to_string(count) + " pods at resourceVersion " + version);
  co_return true;
}

bool pod_cache::apply_event(std::string_view line) {
  const auto event = nlohmann::json::parse(line, nullptr, false);
  if (event.is_discarded() || !event.is_object()) return true;  // partial garbage is skipped
  const std::string type = core::string_at(event, "type");
  const auto& object = core::object_at(event, "object");
  if (type == "ERROR") {
    core::log::info("pod watch ended by the API server: " + core::string_at(object, "message"));
    return false;
  }
  resource_version_ =
      core::string_at(core::object_at(object, "metadata"), "resourceVersion", resource_version_);
  if (type == "BOOKMARK") return true;
  pod_key pod;
  if (!read_pod(object, pod)) return true;
  std::unique_lock lock(mutex_);
  if (type == "DELETED") {
    auto ns = pods_.find(pod.namespace_);
    if (ns != pods_.end()) {
      ns->second.erase(pod.name);
      if (ns->second.empty()) pods_.erase(ns);
    }
  } else if (type == "ADDED" || type == "MODIFIED") {
    pods_[pod.namespace_][pod.name] = std::move(pod.labels);
  }
  return true;
}

net::awaitable<void> pod_cache::async_watch() {
  std::string pending;
  bool keep_going = true;
  std::string target = "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=" +
                       std::to_string(kWatchSeconds) +
                       "&resourceVersion=" + http_client::url_encode(resource_version_);
  std::function<bool(std::string_view)> on_data = [&](std::string_view data) {
    pending.append(data);
    std::size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      if (!apply_event(std::string_view(pending).substr(0, newline))) keep_going = false;
      pending.erase(0, newline + 1);
    }
    // An event line larger than this is not a pod; stop rather than grow without bound.
    return keep_going && pending.size() < 16 * 1024 * 1024;
  };
  auto status = co_await client_.async_stream(std::move(target), std::move(on_data),
                                              seconds(kWatchSeconds + 30));
  if (!status) {
    core::log::warning("pod watch failed: " + status.error().message());
    resource_version_.clear();
  } else if (*status != 200 || !keep_going) {
    if (*status != 200) core::log::warning("pod watch answered HTTP " + std::to_string(*status));
    resource_version_.clear();  // relist
  }
}

net::awaitable<void> pod_cache::async_run() {
  // A (re)started loop serves nothing until it has listed again: what the last run left may
  // be stale by any amount.
  {
    std::unique_lock lock(mutex_);
    synced_ = false;
  }
  resource_version_.clear();
  net::steady_timer timer(co_await net::this_coro::executor);
  auto backoff = seconds(1);
  while (true) {
    if (resource_version_.empty()) {
      if (!co_await async_list()) {
        timer.expires_after(backoff);
        co_await timer.async_wait(net::use_awaitable);
        backoff = std::min(backoff * 2, seconds(30));
        continue;
      }
      backoff = seconds(1);
    }
    co_await async_watch();
    if (resource_version_.empty()) {
      // The watch broke: wait before listing again, so a failing API server is not hammered.
      timer.expires_after(backoff);
      co_await timer.async_wait(net::use_awaitable);
      backoff = std::min(backoff * 2, seconds(30));
    }
  }
}

result<std::vector<std::string>> pod_cache::list_pod_names(
    const std::string& namespace_, const core::label_selector& selector) const {
  std::shared_lock lock(mutex_);
  if (!synced_) return errc::kubernetes_unavailable;
  std::vector<std::string> names;
  const auto ns = pods_.find(namespace_);
  if (ns == pods_.end()) return names;
  // Without a selector every pod is listed (to leave deleted pods' series out): one
  // allocation for the list, not one per doubling.
  if (selector.empty()) names.reserve(ns->second.size());
  for (const auto& [name, labels] : ns->second)
    if (selector.matches(labels)) names.push_back(name);
  return names;
}

std::vector<core::health_check> pod_cache::readiness_checks() const {
  std::shared_lock lock(mutex_);
  return {{"pod-cache-sync", synced_, synced_ ? "" : "the pod list has not been read yet"}};
}

}  // namespace gma::adapters::kubernetes
