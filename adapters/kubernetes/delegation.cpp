#include "adapters/kubernetes/delegation.hpp"

#include <nlohmann/json.hpp>

#include <optional>

#include "server/core/change_watcher.hpp"
#include "server/core/json_access.hpp"
#include "server/core/log.hpp"

namespace gma::adapters::kubernetes {
namespace {

using nlohmann::json;
using std::chrono::seconds;
// k8s.io/apiserver's delegating clients give a review 10 s.
constexpr auto kReviewTimeout = seconds(10);

net::awaitable<result<json>> async_post(http_client::transport& client, std::string path,
                                        json body) {
  std::string payload = body.dump();
  std::string content_type = "application/json";
  auto res =
      co_await client.async_request(http_client::bhttp::verb::post, std::move(path),
                                    std::move(payload), std::move(content_type), kReviewTimeout);
  if (!res) co_return make_error_code(errc::kubernetes_unavailable);
  if (res->status != 200 && res->status != 201) {
    core::log::warning("review request answered HTTP " + std::to_string(res->status) + ": " +
                       res->body.substr(0, 300));
    co_return make_error_code(errc::kubernetes_unavailable);
  }
  auto doc = json::parse(res->body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    co_return make_error_code(errc::kubernetes_unavailable);
  co_return doc;
}

}  // namespace

token_review_client::token_review_client(http_client::transport& client) : client_(client) {}

net::awaitable<result<std::optional<core::user_info>>> token_review_client::async_review_token(
    std::string token) {
  json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", std::move(token)}}}};
  std::string path = "/apis/authentication.k8s.io/v1/tokenreviews";
  auto doc = co_await async_post(client_, std::move(path), std::move(review));
  if (!doc) co_return doc.error();
  const auto& status = core::object_at(*doc, "status");
  if (!core::bool_at(status, "authenticated", false)) {
    if (status.contains("error"))
      core::log::verbose(1, "token rejected: " + core::string_at(status, "error"));
    co_return std::optional<core::user_info>();
  }
  const auto& user = core::object_at(status, "user");
  core::user_info info;
  info.name = core::string_at(user, "username");
  info.uid = core::string_at(user, "uid");
  for (const auto& g : core::array_at(user, "groups"))
    if (g.is_string()) info.groups.push_back(g.get<std::string>());
  const json& extra = core::object_at(user, "extra");
  for (const auto& [k, values] : extra.items())
    for (const auto& v : values)
      if (v.is_string()) info.extra[k].push_back(v.get<std::string>());
  co_return std::optional<core::user_info>(std::move(info));
}

access_review_client::access_review_client(http_client::transport& client) : client_(client) {}

net::awaitable<result<core::authorization_decision>> access_review_client::async_review_access(
    core::request_attributes a) {
  json spec = json::object();
  if (a.resource_request) {
    json attributes = json::object();
    const auto set = [&](const char* key, const std::string& value) {
      if (!value.empty()) attributes[key] = value;
    };
    set("namespace", a.namespace_);
    set("verb", a.verb);
    set("group", a.api_group);
    set("version", a.api_version);
    set("resource", a.resource);
    set("subresource", a.subresource);
    set("name", a.name);
    spec["resourceAttributes"] = std::move(attributes);
  } else {
    spec["nonResourceAttributes"] = {{"path", a.path}, {"verb", a.verb}};
  }
  spec["user"] = a.user.name;
  if (!a.user.groups.empty()) spec["groups"] = a.user.groups;
  if (!a.user.extra.empty()) spec["extra"] = a.user.extra;
  if (!a.user.uid.empty()) spec["uid"] = a.user.uid;
  json review = {{"apiVersion", "authorization.k8s.io/v1"},
                 {"kind", "SubjectAccessReview"},
                 {"spec", std::move(spec)}};
  std::string path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
  auto doc = co_await async_post(client_, std::move(path), std::move(review));
  if (!doc) co_return doc.error();
  const auto& status = core::object_at(*doc, "status");
  if (status.contains("evaluationError"))
    core::log::verbose(
        1, "SubjectAccessReview evaluation error: " + core::string_at(status, "evaluationError"));
  co_return core::authorization_decision{
      core::bool_at(status, "allowed", false) && !core::bool_at(status, "denied", false),
      core::string_at(status, "reason")};
}

net::awaitable<result<std::map<std::string, std::string>>> async_get_configmap_data(
    http_client::transport& client, std::string namespace_, std::string name) {
  std::string path = "/api/v1/namespaces/" + http_client::url_encode(namespace_) + "/configmaps/" +
                     http_client::url_encode(name);
  auto res = co_await client.async_get(std::move(path), kReviewTimeout);
  if (!res || res->status != 200) {
    core::log::warning("reading ConfigMap " + namespace_ + "/" + name +
                       " from the Kubernetes API at " + client.target().url() + " failed: " +
                       (res ? "HTTP " + std::to_string(res->status) : res.error().message()));
    co_return make_error_code(errc::kubernetes_unavailable);
  }
  const auto doc = json::parse(res->body, nullptr, false);
  std::map<std::string, std::string> data;
  const json& fields = core::object_at(doc, "data");
  for (const auto& [k, v] : fields.items())
    if (v.is_string()) data[k] = v.get<std::string>();
  co_return data;
}

namespace {

/// The ConfigMap's data now; nullopt (logged) when it cannot be read.
net::awaitable<std::optional<std::map<std::string, std::string>>> async_configmap_snapshot(
    http_client::transport& client, std::string namespace_, std::string name) {
  auto data = co_await async_get_configmap_data(client, std::move(namespace_), std::move(name));
  if (!data) co_return std::nullopt;
  co_return std::move(*data);
}

}  // namespace

net::awaitable<void> async_watch_configmap(
    http_client::transport& client, std::string namespace_, std::string name,
    std::chrono::seconds interval,
    std::function<void(const std::map<std::string, std::string>&)> on_change) {
  core::change_watcher<std::map<std::string, std::string>> watcher(
      [&client, namespace_, name] { return async_configmap_snapshot(client, namespace_, name); },
      [on_change](const std::map<std::string, std::string>& data) {
        on_change(data);
        return true;
      });
  co_await watcher.async_run(interval);
}

}  // namespace gma::adapters::kubernetes
