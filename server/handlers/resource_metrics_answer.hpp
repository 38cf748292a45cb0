#pragma once
/// @file The answers of metrics.k8s.io/v1beta1 (`kubectl top`, CPU and memory HPAs): NodeMetrics
/// and PodMetrics, single or listed, with labelSelector and fieldSelector, as metrics-server's
/// API layer answers them. Transport-free; safe to run concurrently (the provider and listers
/// are borrowed and thread-safe).

#include <boost/asio/awaitable.hpp>
#include <map>
#include <string>

#include "server/core/resource_metrics.hpp"
#include "server/handlers/route.hpp"
#include "server/http/message.hpp"

namespace gma::handlers {

struct resource_metrics_sources {
  core::resource_metrics_provider* provider = nullptr;  ///< nullptr: the group is not served
  const core::object_lister* pods = nullptr;  ///< running pods; nullptr without Kubernetes access
  const core::object_lister* nodes = nullptr;
  /// Whether the server reaches the Kubernetes API at all (it may, without the two caches
  /// above, when resourceRules came with a reload): which 503 to answer without them.
  bool kubernetes_access = false;
};

/// The reply to `route` with the request's query parameters; `target` is for log lines.
boost::asio::awaitable<http::reply> async_answer_resource_metrics(
    const resource_metrics_sources& sources, const resource_metrics_route& route,
    const std::map<std::string, std::string>& query, const std::string& target);

}  // namespace gma::handlers
