#pragma once
/// @file Pods and their labels, kept current by LIST then WATCH against the Kubernetes API
/// (the informer pattern), so answering "which pods match this selector" never costs a
/// request to the API server.
///
/// @par Thread safety
/// list_pod_names() may be called from any thread while async_run() updates the cache;
/// a shared_mutex guards the map. The http_client must outlive the cache.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "adapters/http_client/http_client.hpp"
#include "server/core/provider.hpp"

namespace gma::adapters::kubernetes {

namespace net = boost::asio;

/// Pods by namespace, then name, with their labels.
using pods_by_namespace = std::map<std::string, std::map<std::string, core::label_map>>;

/// One page of a PodList answer.
struct pod_list_page {
  pods_by_namespace pods;        ///< items without a name are left out
  std::string continue_token;    ///< metadata.continue: empty on the last page
  std::string resource_version;  ///< metadata.resourceVersion
};

/// Decodes a PodList body; nullopt when it is not JSON with an `items` list. Pure, never
/// throws; apart from the I/O so that it can be tested and fuzzed.
std::optional<pod_list_page> decode_pod_list(std::string_view body);

class pod_cache final : public core::pod_lister, public core::readiness_source {
 public:
  explicit pod_cache(http_client::http_client& client);

  /// Lists, then watches from the list's resourceVersion; re-lists when the watch expires
  /// (410 Gone) or breaks, with back-off. Runs until cancelled.
  net::awaitable<void> async_run();

  result<std::vector<std::string>> list_pod_names(
      const std::string& namespace_, const core::label_selector& selector) const override;

  std::vector<core::health_check> readiness_checks() const override;

  /// Applies one watch event line ({"type":"ADDED","object":{...}}); false when the watch must
  /// restart from a fresh list (an ERROR event, such as 410 Gone). Public for tests.
  bool apply_event(std::string_view line);

 private:
  net::awaitable<bool> async_list();
  net::awaitable<void> async_watch();

  http_client::http_client& client_;
  mutable std::shared_mutex mutex_;
  // namespace -> pod name -> labels; guarded by mutex_
  pods_by_namespace pods_;
  bool synced_ = false;           // guarded by mutex_
  std::string resource_version_;  // only touched by the async_run coroutine
};

}  // namespace gma::adapters::kubernetes
