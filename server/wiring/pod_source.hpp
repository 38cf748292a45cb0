#pragma once
/// @file The pods that labelSelector requests select from: a list-and-watch cache of the
/// Kubernetes API (--lister-kubeconfig or in-cluster), or nothing without access.
///
/// @par Thread safety
/// Construct and start() before the io_context runs; lister() is then safe from any thread.

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "adapters/http_client/http_client.hpp"
#include "adapters/kubernetes/pod_cache.hpp"
#include "server/core/supervisor.hpp"

namespace gma::wiring {

class pod_source {
 public:
  /// Throws std::runtime_error when the kubeconfig does not load. `registry` receives the pod
  /// cache's gma_pod_cache_* gauges and must outlive the source.
  pod_source(boost::asio::io_context& ioc, const std::string& lister_kubeconfig,
             prometheus::Registry& registry);

  /// nullptr without Kubernetes access.
  const core::pod_lister* lister() const { return pods_.get(); }
  const core::readiness_source* readiness() const { return pods_.get(); }

  /// Starts the list-and-watch loop under `loops`.
  void start(core::supervisor& loops);

 private:
  boost::asio::io_context& ioc_;
  std::unique_ptr<adapters::http_client::http_client> http_;
  std::unique_ptr<adapters::kubernetes::pod_cache> pods_;
};

}  // namespace gma::wiring
