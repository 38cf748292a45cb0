#include "adapters/kubernetes/pod_cache.hpp"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>

#include "server/core/json_stream.hpp"
#include "server/core/log.hpp"
#include "server/core/strings.hpp"

namespace gma::adapters::kubernetes {
namespace {

using std::chrono::seconds;
using clock = std::chrono::steady_clock;
constexpr auto kRequestTimeout = seconds(60);
constexpr int kWatchSeconds = 300;
constexpr std::size_t kPageSize = 500;
// An event line larger than this is not a pod: the watch stops rather than grow without bound.
constexpr std::size_t kMaxEventBytes = 16 * 1024 * 1024;

// How much of an answer that is not a list or watch (an error page, a Status) a log line shows.
constexpr std::size_t kRefusalBytes = 300;

/// Keeps the start of a refusal's body in `start`; false once it holds all a log line shows,
/// so the rest is not read.
bool keep_start(std::string& start, std::string_view piece) {
  start.append(piece.substr(0, kRefusalBytes - std::min(start.size(), kRefusalBytes)));
  return start.size() < kRefusalBytes;
}

/// Reads the metadata of a pod object whose members are at depth `base` (a list item or a watch
/// event's object), in either form: a Pod or a PartialObjectMetadata.
class pod_fields {
 public:
  explicit pod_fields(std::size_t base) : base_(base) {}

  pod_metadata pod;
  std::string resource_version;

  void clear() {
    pod.namespace_.clear();
    pod.name.clear();
    pod.labels.clear();
    resource_version.clear();
  }
  /// A string somewhere in the object (the reader is inside it).
  void on_string(const core::json_reader& r, std::string_view value) {
    if (r.key_at(base_) != "metadata") return;
    if (r.depth() == base_ + 1) {
      const auto key = r.key_at(base_ + 1);
      if (key == "name") pod.name.assign(value);
      if (key == "namespace") pod.namespace_.assign(value);
      if (key == "resourceVersion") resource_version.assign(value);
    } else if (r.depth() == base_ + 2 && r.key_at(base_ + 1) == "labels" &&
               !r.array_at(base_ + 2)) {
      set_label(r.key_at(base_ + 2), value);
    }
  }
  /// A value that is not a string: a key that repeats with one takes back its earlier string,
  /// as a document keeps a key's last value and only strings count.
  void on_other(const core::json_reader& r) { forget(r, r.depth()); }
  /// A container begins: as on_other for the key that holds it.
  void on_enter(const core::json_reader& r) { forget(r, r.depth() - 1); }

 private:
  /// Forgets the field or label held by the value at `level`.
  void forget(const core::json_reader& r, std::size_t level) {
    if (r.key_at(base_) != "metadata" || level > r.depth()) return;
    if (level == base_ + 1) {
      const auto key = r.key_at(base_ + 1);
      if (key == "name") pod.name.clear();
      if (key == "namespace") pod.namespace_.clear();
    } else if (level == base_ + 2 && r.key_at(base_ + 1) == "labels" && !r.array_at(base_ + 2)) {
      std::erase_if(pod.labels, [&](const auto& l) { return l.first == r.key_at(base_ + 2); });
    }
  }

  void set_label(std::string_view key, std::string_view value) {
    for (auto& [k, v] : pod.labels)
      if (k == key) {
        v.assign(value);
        return;
      }
    pod.labels.emplace_back(key, value);
  }

  std::size_t base_;
};

/// A PodList or PartialObjectMetadataList, read as it arrives: each item is handed over as it
/// ends, so memory follows one item.
class list_reader final : public core::json_reader {
 public:
  explicit list_reader(std::function<void(pod_metadata&)> on_pod) : on_pod_(std::move(on_pod)) {}

  bool is_object = false;
  bool has_items = false;
  std::string continue_token;
  std::string resource_version;

 private:
  bool in_item() const { return depth() >= 3 && key_at(1) == "items" && array_at(2); }

  bool on_enter(bool array) override {
    if (depth() == 1) is_object = !array;
    if (depth() == 2 && key_at(1) == "items") has_items = array;
    if (depth() == 3 && in_item()) {
      item_.clear();
      in_object_item_ = !array;
    } else if (depth() > 3 && in_object_item_ && in_item()) {
      item_.on_enter(*this);
    }
    return true;
  }
  bool on_leave() override {
    if (depth() == 3 && in_item() && in_object_item_) {
      in_object_item_ = false;
      if (!item_.pod.name.empty()) on_pod_(item_.pod);
    }
    return true;
  }
  bool on_string(std::string_view value) override {
    if (depth() == 2 && key_at(1) == "metadata") {
      if (key_at(2) == "continue") continue_token.assign(value);
      if (key_at(2) == "resourceVersion") resource_version.assign(value);
    } else if (in_object_item_ && in_item()) {
      item_.on_string(*this, value);
    }
    return true;
  }
  bool on_number(double) override { return on_other(); }
  bool on_other() override {
    if (in_object_item_ && in_item()) item_.on_other(*this);
    return true;
  }

  std::function<void(pod_metadata&)> on_pod_;
  pod_fields item_{3};
  bool in_object_item_ = false;
};

/// One watch event: {"type": ..., "object": a pod, a bookmark or a Status}.
class event_reader final : public core::json_reader {
 public:
  bool is_object = false;
  bool has_object = false;
  std::string type;
  std::string message;
  int code = 0;
  pod_fields object{2};

 private:
  bool on_enter(bool array) override {
    if (depth() == 1) is_object = !array;
    if (depth() == 2 && key_at(1) == "object") {
      has_object = !array;
      object.clear();
    } else if (depth() > 2 && key_at(1) == "object") {
      object.on_enter(*this);
    }
    return true;
  }
  bool on_string(std::string_view value) override {
    if (depth() == 1 && key_at(1) == "type") type.assign(value.substr(0, 32));
    if (depth() >= 2 && key_at(1) == "object") {
      if (depth() == 2 && key_at(2) == "message") message.assign(value.substr(0, 500));
      object.on_string(*this, value);
    }
    return true;
  }
  bool on_number(double value) override {
    if (at(2, "code") && key_at(1) == "object" && value >= 0 && value < 1000)
      code = static_cast<int>(value);
    return on_other();
  }
  bool on_other() override {
    if (depth() >= 2 && key_at(1) == "object") object.on_other(*this);
    return true;
  }
};

}  // namespace

std::optional<pod_list_page> decode_pod_list(std::string_view body) {
  pod_list_page page;
  list_reader reader([&](pod_metadata& pod) {
    core::label_map labels(pod.labels.begin(), pod.labels.end());
    page.pods[pod.namespace_].insert_or_assign(pod.name, std::move(labels));
  });
  if (!core::parse_json(body, reader) || !reader.is_object || !reader.has_items)
    return std::nullopt;
  page.continue_token = std::move(reader.continue_token);
  page.resource_version = std::move(reader.resource_version);
  return page;
}

std::optional<watch_event> decode_watch_event(std::string_view line) {
  event_reader reader;
  if (!core::parse_json(line, reader) || !reader.is_object) return std::nullopt;
  watch_event event;
  event.type = std::move(reader.type);
  event.resource_version = std::move(reader.object.resource_version);
  event.message = std::move(reader.message);
  event.code = reader.code;
  if (reader.has_object && !reader.object.pod.name.empty())
    event.pod = std::move(reader.object.pod);
  return event;
}

watched_resource watched_resource::pods() { return {"pods", "pod", "", true}; }
watched_resource watched_resource::running_pods() {
  // As prometheus-adapter's and metrics-server's pod informers: a pod leaving Running arrives
  // as DELETED, as the API server filters watches.
  return {"pods", "running_pod", "status.phase=Running", false};
}
watched_resource watched_resource::nodes() { return {"nodes", "node", "", false}; }

std::string watched_resource::words() const {
  std::string out = name;
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

namespace {

::prometheus::Gauge& cache_gauge(::prometheus::Registry& registry, const watched_resource& kind,
                                 const std::string& suffix, const std::string& help) {
  return ::prometheus::BuildGauge()
      .Name("gma_" + kind.name + "_cache_" + suffix)
      .Help(help)
      .Register(registry)
      .Add({});
}

}  // namespace

pod_cache::pod_cache(http_client::http_client& client, ::prometheus::Registry& registry,
                     watched_resource kind)
    : client_(client),
      kind_(std::move(kind)),
      pods_gauge_(
          cache_gauge(registry, kind_, kind_.plural,
                      "Objects (" + kind_.plural + ") held by the " + kind_.words() + " cache.")),
      bytes_gauge_(cache_gauge(registry, kind_, "bytes",
                               "Bytes the " + kind_.words() + " cache holds for its " +
                                   kind_.plural +
                                   "' names and labels, estimated from its containers; updated "
                                   "after each list and watch.")),
      list_bytes_gauge_(cache_gauge(registry, kind_, "last_list_bytes",
                                    "Bytes of the pages of the last " + kind_.words() + " list.")),
      list_duration_gauge_(
          cache_gauge(registry, kind_, "last_list_duration_seconds",
                      "How long the last " + kind_.words() + " list took, all pages.")) {}

std::string pod_cache::accept(bool list) const {
  if (metadata_refused_) return "application/json";
  return list ? kAcceptMetadataList : kAcceptMetadata;
}

void pod_cache::update_size_metrics() {
  std::shared_lock lock(mutex_);
  pods_gauge_.Set(static_cast<double>(store_.pods()));
  bytes_gauge_.Set(static_cast<double>(store_.bytes()));
}

net::awaitable<bool> pod_cache::async_list() {
  const auto started = clock::now();
  pod_store fresh;
  std::string continue_token;
  std::string version;
  std::uint64_t bytes = 0;
  bool paged = true;
  while (true) {
    // The first page from the API server's watch cache (resourceVersion=0), as informers ask,
    // unless the watch expired; later pages follow the continue token alone, as the API
    // requires.
    std::vector<std::string> params;
    if (paged) params.push_back("limit=" + std::to_string(kPageSize));
    if (!continue_token.empty()) {
      params.push_back("continue=" + http_client::url_encode(continue_token));
    } else if (list_from_cache_) {
      params.push_back("resourceVersion=0");
    }
    if (!kind_.field_selector.empty())
      params.push_back("fieldSelector=" + http_client::url_encode(kind_.field_selector));
    std::string target =
        "/api/v1/" + kind_.plural + (params.empty() ? "" : "?" + core::join(params, "&"));
    list_reader reader(
        [&](pod_metadata& pod) { fresh.append(pod.namespace_, pod.name, pod.labels); });
    core::json_push_parser parser(reader);
    unsigned status = 0;
    std::string refusal;  // the start of a body that is not a list
    std::string transport_reason;
    http_client::body_handler handler{[&](const http_client::response_head& head) {
                                        status = head.status;
                                        return true;
                                      },
                                      [&](std::string_view piece) {
                                        bytes += piece.size();
                                        if (status == 200) return parser.feed(piece);
                                        return keep_start(refusal, piece);
                                      },
                                      [&](const std::string& why) { transport_reason = why; }};
    http_client::outgoing_request request{
        http_client::bhttp::verb::get, std::move(target), {}, {}, accept(true)};
    auto res = co_await client_.async_request_streamed(std::move(request), kRequestTimeout,
                                                       std::move(handler));
    if (!res) {
      core::log::warning(where() + ": listing " + kind_.plural + " failed: " +
                         (transport_reason.empty() ? res.error().message() : transport_reason));
      co_return false;
    }
    if (*res == 406 && !metadata_refused_) {
      core::log::info(
          "the Kubernetes API refuses PartialObjectMetadata (406 Not Acceptable): listing and "
          "watching full " +
          kind_.plural + " instead");
      metadata_refused_ = true;
      continue;  // the same page again
    }
    if (*res == 410 && !continue_token.empty()) {
      // The continue token outlived etcd's compaction: as client-go's pager, list again in
      // one answer, which is read as it arrives all the same.
      core::log::info("the " + kind_.words() +
                      " list's continue token expired; listing again without paging");
      fresh = pod_store{};
      continue_token.clear();
      paged = false;
      continue;
    }
    if (*res != 200) {
      core::log::warning(where() + ": listing " + kind_.plural + " failed: HTTP " +
                         std::to_string(*res) + ": " + core::printable(refusal, kRefusalBytes));
      co_return false;
    }
    if (!parser.finish() || !reader.is_object || !reader.has_items) {
      core::log::warning(where() + ": listing " + kind_.plural + ": the response is not a list" +
                         (parser.error().empty() ? "" : ": " + parser.error()));
      co_return false;
    }
    continue_token = std::move(reader.continue_token);
    version = std::move(reader.resource_version);
    if (continue_token.empty()) break;
  }
  fresh.finish_list();
  const auto count = fresh.pods();
  {
    std::unique_lock lock(mutex_);
    store_ = std::move(fresh);
    synced_ = true;
  }
  resource_version_ = version;
  list_from_cache_ = true;
  list_bytes_gauge_.Set(static_cast<double>(bytes));
  list_duration_gauge_.Set(std::chrono::duration<double>(clock::now() - started).count());
  update_size_metrics();
  core::log::verbose(1, kind_.words() + " cache synced: " + std::to_string(count) + " " +
                            kind_.plural + " at resourceVersion " + version + " (" +
                            std::to_string(bytes) + " bytes listed)");
  co_return true;
}

bool pod_cache::apply_event(std::string_view line) {
  const auto event = decode_watch_event(line);
  if (!event) return true;  // partial garbage is skipped
  if (event->type == "ERROR") {
    core::log::info(kind_.words() +
                    " watch ended by the API server: " + core::printable(event->message, 300));
    // 410 Gone: the API server's cache no longer reaches our version; the next list reads
    // from etcd rather than from that cache, which may be as far behind.
    if (event->code == 410) list_from_cache_ = false;
    return false;
  }
  if (!event->resource_version.empty()) resource_version_ = event->resource_version;
  if (event->type == "BOOKMARK" || !event->pod) return true;
  const auto& pod = *event->pod;
  std::unique_lock lock(mutex_);
  if (event->type == "DELETED") {
    store_.erase(pod.namespace_, pod.name);
  } else if (event->type == "ADDED" || event->type == "MODIFIED") {
    store_.put(pod.namespace_, pod.name, pod.labels);
  }
  pods_gauge_.Set(static_cast<double>(store_.pods()));
  return true;
}

net::awaitable<void> pod_cache::async_watch() {
  std::string pending;
  bool keep_going = true;
  unsigned status = 0;
  std::string refusal;
  std::string transport_reason;
  http_client::body_handler handler{
      [&](const http_client::response_head& head) {
        status = head.status;
        return true;
      },
      [&](std::string_view data) {
        if (status != 200) {
          return keep_start(refusal, data);
        }
        pending.append(data);
        std::size_t start = 0;
        std::size_t newline;
        while (keep_going && (newline = pending.find('\n', start)) != std::string::npos) {
          keep_going = apply_event(std::string_view(pending).substr(start, newline - start));
          start = newline + 1;
        }
        pending.erase(0, start);
        return keep_going && pending.size() < kMaxEventBytes;
      },
      [&](const std::string& why) { transport_reason = why; }};
  http_client::outgoing_request request{
      http_client::bhttp::verb::get,
      "/api/v1/" + kind_.plural +
          "?watch=1&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(kWatchSeconds) +
          "&resourceVersion=" + http_client::url_encode(resource_version_) +
          (kind_.field_selector.empty()
               ? ""
               : "&fieldSelector=" + http_client::url_encode(kind_.field_selector)),
      {},
      {},
      accept(false)};
  auto res = co_await client_.async_watch(std::move(request), seconds(kWatchSeconds + 30),
                                          std::move(handler));
  update_size_metrics();
  if (!res) {
    core::log::warning(where() + ": the " + kind_.words() + " watch failed: " +
                       (transport_reason.empty() ? res.error().message() : transport_reason));
    resource_version_.clear();
  } else if (*res == 406 && !metadata_refused_) {
    core::log::info(
        "the Kubernetes API refuses PartialObjectMetadata watches (406 Not Acceptable): "
        "watching full " +
        kind_.plural + " instead");
    metadata_refused_ = true;  // watched again at once, from the same version
  } else if (*res != 200 || !keep_going) {
    if (*res == 410) list_from_cache_ = false;  // as an ERROR event's 410: read etcd next
    if (*res != 200)
      core::log::warning(where() + ": the " + kind_.words() + " watch answered HTTP " +
                         std::to_string(*res) + ": " + core::printable(refusal, kRefusalBytes));
    if (pending.size() >= kMaxEventBytes)
      core::log::warning(kind_.words() + " watch: an event is larger than " +
                         std::to_string(kMaxEventBytes) + " bytes; listing again");
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
  store_.select(namespace_, selector, names);
  return names;
}

result<std::vector<core::listed_object>> pod_cache::list_objects(
    const std::optional<std::string>& namespace_, const core::label_selector& selector) const {
  std::shared_lock lock(mutex_);
  if (!synced_) return errc::kubernetes_unavailable;
  std::vector<core::listed_object> objects;
  store_.select_objects(namespace_, selector, objects);
  return objects;
}

std::optional<core::label_map> pod_cache::labels_of(std::string_view namespace_,
                                                    std::string_view name) const {
  std::shared_lock lock(mutex_);
  return store_.labels_of(namespace_, name);
}

std::vector<core::health_check> pod_cache::readiness_checks() const {
  std::shared_lock lock(mutex_);
  std::string check = kind_.name;
  std::replace(check.begin(), check.end(), '_', '-');
  return {{check + "-cache-sync", synced_,
           synced_ ? "" : "the " + kind_.words() + " list has not been read yet",
           kind_.required_for_readiness}};
}

}  // namespace gma::adapters::kubernetes
