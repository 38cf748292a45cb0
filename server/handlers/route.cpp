#include "server/handlers/route.hpp"

#include <array>
#include <vector>

#include "server/core/discovery.hpp"
#include "server/core/request_path.hpp"
#include "server/core/resource_metrics.hpp"

namespace gma::handlers {
namespace {

bool is_version(std::string_view group, std::string_view version) {
  if (group == core::kCustomGroup) return version == "v1beta1" || version == "v1beta2";
  if (group == core::kResourceMetricsGroup) return version == core::kResourceMetricsVersion;
  return group == core::kExternalGroup && version == "v1beta1";
}

std::string normalise_resource(std::string resource) {
  if (resource == "pod") return "pods";
  if (resource == "namespace") return "namespaces";
  return resource;
}

/// The segments after /apis/metrics.k8s.io/v1beta1, as metrics-server installs them.
route match_resource_metrics(const std::vector<std::string>& rest) {
  const std::size_t n = rest.size();
  if ((n == 1 || n == 2) && rest[0] == "nodes")
    return resource_metrics_route{"nodes", std::nullopt, n == 2 ? rest[1] : ""};
  if (n == 1 && rest[0] == "pods") return resource_metrics_route{"pods", std::nullopt, ""};
  if ((n == 3 || n == 4) && rest[0] == "namespaces" && rest[2] == "pods")
    return resource_metrics_route{"pods", rest[1], n == 4 ? rest[3] : ""};
  return not_found_route{};
}

route match(const std::vector<std::string>& s) {
  const std::size_t n = s.size();
  if (n == 1 && (s[0] == "healthz" || s[0] == "livez" || s[0] == "readyz"))
    return health_route{s[0], ""};
  if (n == 2 && (s[0] == "healthz" || s[0] == "livez" || s[0] == "readyz"))
    return health_route{s[0], s[1]};
  if (n == 1 && s[0] == "version") return version_route{};
  if (n == 1 && s[0] == "metrics") return self_metrics_route{};
  if (n == 0 || s[0] != "apis") return not_found_route{};
  if (n == 1) return group_list_route{};
  const std::string& group = s[1];
  if (group != core::kCustomGroup && group != core::kExternalGroup &&
      group != core::kResourceMetricsGroup)
    return not_found_route{};
  if (n == 2) return group_route{group};
  if (!is_version(group, s[2])) return not_found_route{};
  if (n == 3) return resource_list_route{group, s[2]};
  const auto rest = std::vector<std::string>(s.begin() + 3, s.end());
  for (const auto& segment : rest)
    if (segment.empty()) return not_found_route{};
  if (group == core::kResourceMetricsGroup) return match_resource_metrics(rest);
  if (group == core::kExternalGroup) {
    if (rest.size() == 3 && rest[0] == "namespaces") return external_metric_route{rest[1], rest[2]};
    return not_found_route{};
  }
  if (rest.size() == 5 && rest[0] == "namespaces")
    return custom_metric_route{s[2], rest[1], normalise_resource(rest[2]), rest[3], rest[4]};
  if (rest.size() == 4 && rest[0] == "namespaces" && rest[2] == "metrics")
    return custom_metric_route{s[2], "", "namespaces", rest[1], rest[3]};
  if (rest.size() == 3)
    return custom_metric_route{s[2], "", normalise_resource(rest[0]), rest[1], rest[2]};
  return not_found_route{};
}

}  // namespace

parsed_target parse_target(std::string_view target) {
  auto parsed = core::parse_request_path(target);
  if (!parsed.valid) return {not_found_route{}, std::move(parsed.query)};
  return {match(parsed.segments), std::move(parsed.query)};
}

const char* route_label(const route& r) {
  struct visitor {
    const char* operator()(const not_found_route&) const { return "not_found"; }
    const char* operator()(const group_list_route&) const { return "discovery"; }
    const char* operator()(const group_route&) const { return "discovery"; }
    const char* operator()(const resource_list_route&) const { return "discovery"; }
    const char* operator()(const custom_metric_route&) const { return "custom_metric"; }
    const char* operator()(const external_metric_route&) const { return "external_metric"; }
    const char* operator()(const resource_metrics_route&) const { return "resource_metrics"; }
    const char* operator()(const health_route&) const { return "health"; }
    const char* operator()(const version_route&) const { return "version"; }
    const char* operator()(const self_metrics_route&) const { return "metrics"; }
  };
  return std::visit(visitor{}, r);
}

namespace {

template <std::size_t... Kinds>
const char* label_of_kind(std::size_t route_kind, std::index_sequence<Kinds...>) {
  // Every alternative is default-constructible: the label of each kind, computed once.
  static const std::array<const char*, sizeof...(Kinds)> labels = {
      route_label(route(std::in_place_index<Kinds>))...};
  return route_kind < labels.size() ? labels[route_kind] : "not_found";
}

}  // namespace

const char* route_label(std::size_t route_kind) {
  return label_of_kind(route_kind, std::make_index_sequence<kRouteKinds>());
}

}  // namespace gma::handlers
