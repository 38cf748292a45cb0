#include "server/handlers/resource_metrics_answer.hpp"

#include <algorithm>
#include <set>
#include <vector>

#include "server/core/log.hpp"
#include "server/core/status.hpp"

namespace gma::handlers {
namespace {

using core::json;
using http::reply;
using http::status_reply;

/// A fieldSelector as the generic registry applies it to these objects: only metadata.name and
/// metadata.namespace exist (metrics-server adds nothing to AddObjectMetaFieldsSet).
struct field_requirement {
  std::string field;
  bool equals;
  std::string value;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> pieces(1);
  for (const char c : text) {
    if (c == ',') {
      pieces.emplace_back();
    } else {
      pieces.back() += c;
    }
  }
  return pieces;
}

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

/// fields.ParseSelector's grammar (k=v, k==v, k!=v, comma-separated); the 400 Status of the
/// generic handler for a field it does not know or text it cannot read.
std::optional<core::status_error> parse_field_selector(const std::string& text,
                                                       std::vector<field_requirement>& out) {
  if (text.empty()) return std::nullopt;
  for (const auto& piece : split_commas(text)) {
    field_requirement r;
    std::size_t op;
    std::size_t op_length = 1;
    if ((op = piece.find("!=")) != std::string::npos) {
      r.equals = false;
      op_length = 2;
    } else if ((op = piece.find("==")) != std::string::npos) {
      r.equals = true;
      op_length = 2;
    } else if ((op = piece.find('=')) != std::string::npos) {
      r.equals = true;
    } else {
      return core::bad_request("invalid selector: '" + text + "'; can't understand '" + piece +
                               "'");
    }
    r.field = trimmed(piece.substr(0, op));
    r.value = trimmed(piece.substr(op + op_length));
    if (r.field != "metadata.name" && r.field != "metadata.namespace")
      return core::bad_request("\"" + r.field +
                               "\" is not a known field selector: only \"metadata.name\", "
                               "\"metadata.namespace\"");
    out.push_back(std::move(r));
  }
  return std::nullopt;
}

bool fields_match(const std::vector<field_requirement>& fields, const core::listed_object& o) {
  return std::all_of(fields.begin(), fields.end(), [&](const field_requirement& r) {
    const std::string& actual = r.field == "metadata.name" ? o.name : o.namespace_;
    return (actual == r.value) == r.equals;
  });
}

reply json_reply(const json& body) { return {200, "application/json", core::to_go_json(body)}; }

/// The Status for a failure to read usage or objects; the log line before it says why.
reply failure_reply(const error_code& ec, const std::string& resource, const std::string& target) {
  const std::string singular = resource == "pods" ? "pod" : "node";
  core::log::warning("GET " + target + ": " +
                     (ec == errc::kubernetes_unavailable
                          ? "the " + singular + " list from the Kubernetes API is not read yet"
                          : ec.message()) +
                     " (the warning before this line says why)");
  if (ec == errc::kubernetes_unavailable)
    return status_reply(core::service_unavailable("the " + singular +
                                                  " list has not been read from the Kubernetes "
                                                  "API yet"));
  if (ec == errc::backend_unavailable)
    return status_reply(
        core::service_unavailable("unable to fetch " + singular +
                                  " metrics: the metrics backend (Prometheus) is unavailable"));
  return status_reply(
      core::internal_error("failed reading " + singular + " metrics: " + ec.message()));
}

bool watch_requested(const std::map<std::string, std::string>& query) {
  const auto it = query.find("watch");
  return it != query.end() && (it->second == "true" || it->second == "1");
}

core::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

boost::asio::awaitable<reply> async_answer_resource_metrics(
    const resource_metrics_sources& sources, const resource_metrics_route& route,
    const std::map<std::string, std::string>& query, const std::string& target) {
  if (!sources.provider || !sources.provider->serving())
    co_return status_reply(core::resource_not_found());
  const bool pods = route.resource == "pods";
  if (route.name.empty() && watch_requested(query))
    co_return status_reply(
        core::method_not_supported(core::kResourceMetricsGroup, route.resource, "watch"));

  core::label_selector selector;
  std::vector<field_requirement> fields;
  if (route.name.empty()) {
    if (const auto it = query.find("labelSelector"); it != query.end()) {
      std::string message;
      auto parsed = core::label_selector::parse(it->second, &message);
      if (!parsed) co_return status_reply(core::bad_request(message));
      selector = std::move(*parsed);
    }
    if (const auto it = query.find("fieldSelector"); it != query.end())
      if (auto refusal = parse_field_selector(it->second, fields)) co_return status_reply(*refusal);
  }

  const core::object_lister* lister = pods ? sources.pods : sources.nodes;
  if (!lister && sources.kubernetes_access)
    co_return status_reply(core::service_unavailable(
        "running pods and nodes are watched from the start only when the rules have "
        "resourceRules: restart the adapter to serve metrics.k8s.io after adding them"));
  if (!lister)
    co_return status_reply(core::service_unavailable(
        "metrics.k8s.io needs the " + route.resource +
        " of the cluster: start the adapter with --lister-kubeconfig, or run it in a cluster "
        "with a service account that may list and watch pods and nodes"));
  auto objects = lister->list_objects(pods ? route.namespace_ : std::nullopt, selector);
  if (!objects) co_return failure_reply(objects.error(), route.resource, target);
  std::erase_if(*objects, [&](const core::listed_object& o) {
    return !fields_match(fields, o) || (!route.name.empty() && o.name != route.name);
  });
  if (!route.name.empty() && objects->empty())
    // The lister's own NotFound: metrics-server's pod lister is a metadata lister of "pods";
    // its node lister a typed one, which names the resource "node".
    co_return status_reply(core::object_not_found("", pods ? "pods" : "node", route.name));

  const auto window = sources.provider->window();
  const auto now = now_seconds();
  json items = json::array();
  if (pods) {
    std::set<std::string> namespaces;
    for (const auto& o : *objects) namespaces.insert(o.namespace_);
    std::vector<core::pod_usage> usage;
    if (!namespaces.empty()) {
      auto read =
          co_await sources.provider->async_pod_usage({namespaces.begin(), namespaces.end()});
      if (!read) co_return failure_reply(read.error(), route.resource, target);
      usage = std::move(*read);
    }
    for (const auto& o : *objects) {
      const auto it = std::lower_bound(usage.begin(), usage.end(), std::tie(o.namespace_, o.name),
                                       [](const core::pod_usage& u, const auto& key) {
                                         return std::tie(u.namespace_, u.name) < key;
                                       });
      if (it == usage.end() || it->namespace_ != o.namespace_ || it->name != o.name) continue;
      items.push_back(core::pod_metrics(*it, o.labels, now, window));
    }
  } else {
    std::vector<core::node_usage> usage;
    if (!objects->empty()) {
      auto read = co_await sources.provider->async_node_usage();
      if (!read) co_return failure_reply(read.error(), route.resource, target);
      usage = std::move(*read);
    }
    for (const auto& o : *objects) {
      const auto it = std::lower_bound(
          usage.begin(), usage.end(), o.name,
          [](const core::node_usage& u, const std::string& name) { return u.name < name; });
      if (it == usage.end() || it->name != o.name) continue;
      items.push_back(core::node_metrics(*it, o.labels, now, window));
    }
  }

  const std::string kind = pods ? "PodMetrics" : "NodeMetrics";
  if (!route.name.empty()) {
    if (items.empty()) {
      core::log::verbose(1, "GET " + target + ": Prometheus has no CPU or no memory usage of " +
                                (pods ? "pod " + *route.namespace_ + "/" : "node ") + route.name +
                                "; --v=4 logs the PromQL, `check --explain` runs it");
      co_return status_reply(
          core::object_not_found(core::kResourceMetricsGroup, pods ? "podmetrics" : "nodemetrics",
                                 pods ? *route.namespace_ + "/" + route.name : route.name));
    }
    co_return json_reply(core::resource_metrics_object(kind, std::move(items.front())));
  }
  if (items.empty())
    core::log::verbose(1, [&] {
      return "GET " + target + ": empty answer: " + std::to_string(objects->size()) + " " +
             route.resource + " listed, none with both CPU and memory usage in Prometheus";
    });
  co_return json_reply(core::resource_metrics_list(kind + "List", std::move(items)));
}

}  // namespace gma::handlers
