#pragma once
/// @file Answers every route of the server: discovery, custom, external and resource metrics,
/// health, version and our own /metrics. Transport-free: it takes a method and target and returns a
/// status, content type and body, so it is tested without sockets.
///
/// @par Thread safety
/// async_handle may run concurrently on many strands. The providers, lister, readiness
/// sources and registry are borrowed and must outlive the handler.

#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "server/core/provider.hpp"
#include "server/handlers/request_metrics.hpp"
#include "server/handlers/resource_metrics_answer.hpp"
#include "server/http/message.hpp"

namespace gma::handlers {

struct handler_dependencies {
  core::custom_metrics_provider* custom = nullptr;
  core::external_metrics_provider* external = nullptr;
  /// nullptr when the server has no Kubernetes access.
  const core::pod_lister* pods = nullptr;
  std::vector<const core::readiness_source*> readiness;
  prometheus::Registry* registry = nullptr;
  std::string version = "v0.0.0";
  /// metrics.k8s.io: not served without a provider, or while it has no resource rules.
  resource_metrics_sources resource_metrics;
};

class api_handler final : public http::request_handler {
 public:
  explicit api_handler(handler_dependencies deps);

  boost::asio::awaitable<http::reply> async_handle(http::request req) override;

 private:
  /// The answer; sets `route_kind` (a route::index()) as soon as the target is parsed.
  boost::asio::awaitable<http::reply> async_dispatch(const http::request& req,
                                                     std::size_t& route_kind);

  handler_dependencies deps_;
  request_metrics metrics_;
};

}  // namespace gma::handlers
