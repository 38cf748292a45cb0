#pragma once
/// @file Request targets of the metrics APIs, parsed into what they ask for. Pure functions.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace gma::handlers {

struct group_list_route {};
struct group_route {
  std::string group;
};
struct resource_list_route {
  std::string group;
  std::string version;
};
/// custom.metrics.k8s.io object metrics; namespace empty for cluster-scoped objects.
struct custom_metric_route {
  std::string version;
  std::string namespace_;
  std::string resource;  ///< "pods", "namespaces" (for /namespaces/{ns}/metrics/{m}), ...
  std::string name;      ///< object name or "*"
  std::string metric;
};
struct external_metric_route {
  std::string namespace_;
  std::string metric;
};
/// metrics.k8s.io/v1beta1: nodes, or pods in a namespace or (no namespace) in all of them.
struct resource_metrics_route {
  std::string resource;                   ///< "nodes" or "pods"
  std::optional<std::string> namespace_;  ///< pods only; nullopt: every namespace
  std::string name;                       ///< empty for a list
};
struct health_route {
  std::string kind;
  std::string check;
};  ///< healthz, livez, readyz
struct version_route {};
struct self_metrics_route {};
struct not_found_route {};

using route = std::variant<not_found_route, group_list_route, group_route, resource_list_route,
                           custom_metric_route, external_metric_route, resource_metrics_route,
                           health_route, version_route, self_metrics_route>;

/// A parsed request target: route plus form-decoded query parameters.
struct parsed_target {
  route target;
  std::map<std::string, std::string> query;
};

/// Splits the path into percent-decoded segments ("%2A" is "*") and matches the routes of
/// custom-metrics-apiserver; anything else is not_found_route.
parsed_target parse_target(std::string_view target);

/// How many kinds of route there are (route::index() is below it).
inline constexpr std::size_t kRouteKinds = std::variant_size_v<route>;

/// A short name for self-metrics labels: "discovery", "custom", "external", ...
const char* route_label(const route& r);
/// The same for the kind of route `route_kind` (a route::index()); "not_found" beyond them.
const char* route_label(std::size_t route_kind);

}  // namespace gma::handlers
