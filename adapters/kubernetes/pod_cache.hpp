#pragma once
/// @file Pods (or nodes) and their labels, kept current by LIST then WATCH against the
/// Kubernetes API (the informer pattern), so answering "which pods match this selector" never
/// costs a request to the API server. The same cache, given watched_resource::nodes(), holds the
/// nodes metrics.k8s.io answers for.
///
/// Only metadata crosses the wire when the API server offers it, as Kubernetes' metadata
/// informers ask: PartialObjectMetadataList for lists, PartialObjectMetadata for watch events.
/// Bodies are read as they arrive, without a document of them, into a compact pod_store.
///
/// @par Thread safety
/// list_pod_names(), readiness_checks() and labels_of() may be called from any thread while
/// async_run() updates the cache; a shared_mutex guards the store. The transport and the
/// registry must outlive the cache.

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "adapters/http_client/http_client.hpp"
#include "adapters/kubernetes/pod_store.hpp"
#include "server/core/provider.hpp"
#include "server/core/resource_metrics.hpp"

namespace gma::adapters::kubernetes {

namespace net = boost::asio;

/// The Accept headers of metadata-only requests, as client-go's metadata client sends them
/// (JSON only), each falling back to full objects on a server without the metadata form.
inline constexpr const char* kAcceptMetadataList =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
inline constexpr const char* kAcceptMetadata =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

/// One pod as a list or watch event describes it: the metadata the cache keeps.
struct pod_metadata {
  std::string namespace_;
  std::string name;
  label_list labels;
};

/// Pods by namespace, then name, with their labels: a page decoded for tests and fuzzing.
using pods_by_namespace = std::map<std::string, std::map<std::string, core::label_map>>;

/// One page of a PodList or PartialObjectMetadataList.
struct pod_list_page {
  pods_by_namespace pods;        ///< items without a name are left out
  std::string continue_token;    ///< metadata.continue: empty on the last page
  std::string resource_version;  ///< metadata.resourceVersion
};

/// Decodes a whole list body with the reader the cache uses on its pieces; nullopt when it is
/// not a JSON object with an `items` list. Pure, never throws.
std::optional<pod_list_page> decode_pod_list(std::string_view body);

/// A watch event as read: its type, the pod (for ADDED, MODIFIED, DELETED), the
/// resourceVersion of its object, and an ERROR's message and code.
struct watch_event {
  std::string type;
  std::optional<pod_metadata> pod;
  std::string resource_version;
  std::string message;
  int code = 0;
};

/// Decodes one watch event line without a document of it; nullopt when it is not a JSON object.
/// Pure, never throws.
std::optional<watch_event> decode_watch_event(std::string_view line);

/// What a cache lists and watches: a core/v1 cluster-wide collection (/api/v1/<plural>).
struct watched_resource {
  std::string plural;  ///< "pods": the path, log lines and gma_<name>_cache_<plural>
  /// "pod", "running_pod": gma_<name>_cache_*, the readiness check "<name>-cache-sync" (with
  /// '-' for '_'), and log lines (with spaces).
  std::string name;
  std::string field_selector;  ///< sent with every list and watch; empty: every object
  /// Whether /readyz fails until it is listed: pods are needed by every labelSelector request;
  /// running pods and nodes only by metrics.k8s.io.
  bool required_for_readiness = true;

  std::string words() const;

  /// Every pod: what labelSelector requests select from.
  static watched_resource pods();
  /// Pods in phase Running, which metrics.k8s.io answers for, as the reference servers do.
  static watched_resource running_pods();
  static watched_resource nodes();
};

class pod_cache final : public core::pod_lister,
                        public core::object_lister,
                        public core::readiness_source {
 public:
  pod_cache(http_client::http_client& client, ::prometheus::Registry& registry,
            watched_resource kind = watched_resource::pods());

  /// Lists, then watches from the list's resourceVersion; re-lists when the watch expires
  /// (410 Gone) or breaks, with back-off. Runs until cancelled.
  net::awaitable<void> async_run();

  result<std::vector<std::string>> list_pod_names(
      const std::string& namespace_, const core::label_selector& selector) const override;

  result<std::vector<core::listed_object>> list_objects(
      const std::optional<std::string>& namespace_,
      const core::label_selector& selector) const override;

  std::vector<core::health_check> readiness_checks() const override;

  /// Applies one watch event line ({"type":"ADDED","object":{...}}); false when the watch must
  /// restart from a fresh list (an ERROR event, such as 410 Gone). Public for tests.
  bool apply_event(std::string_view line);

  /// The labels of one cached pod; nullopt when it is not cached. For tests.
  std::optional<core::label_map> labels_of(std::string_view namespace_,
                                           std::string_view name) const;

 private:
  /// "Kubernetes API at https://host:port", for log lines.
  std::string where() const { return "Kubernetes API at " + client_.target().url(); }
  /// Lists every pod, page by page, into a new store that replaces the current one.
  net::awaitable<bool> async_list();
  net::awaitable<void> async_watch();
  /// The Accept header for a list (or the watch), as far as the server is known to take it.
  std::string accept(bool list) const;
  void update_size_metrics();

  http_client::http_client& client_;
  const watched_resource kind_;
  mutable std::shared_mutex mutex_;
  pod_store store_;      // guarded by mutex_
  bool synced_ = false;  // guarded by mutex_
  // Only touched by the async_run coroutine:
  std::string resource_version_;
  bool list_from_cache_ = true;    // resourceVersion=0: from the API server's watch cache
  bool metadata_refused_ = false;  // the server answered 406 to the metadata form
  ::prometheus::Gauge& pods_gauge_;
  ::prometheus::Gauge& bytes_gauge_;
  ::prometheus::Gauge& list_bytes_gauge_;
  ::prometheus::Gauge& list_duration_gauge_;
};

}  // namespace gma::adapters::kubernetes
