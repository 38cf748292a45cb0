#pragma once
/// @file The pods that labelSelector requests select from, and the nodes metrics.k8s.io answers
/// for: list-and-watch caches of the Kubernetes API (--lister-kubeconfig or in-cluster), or
/// nothing without access.
///
/// @par Thread safety
/// Construct and start() before the io_context runs; lister() is then safe from any thread.

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "adapters/http_client/http_client.hpp"
#include "adapters/kubernetes/pod_cache.hpp"
#include "server/core/supervisor.hpp"

namespace gma::wiring {

class pod_source {
 public:
  /// Throws std::runtime_error when the kubeconfig does not load. `registry` receives the pod
  /// cache's gma_pod_cache_* gauges and must outlive the source.
  /// `resource_metrics`: also keep caches of the running pods and the nodes, which
  /// metrics.k8s.io answers for (when the rules have resourceRules).
  pod_source(boost::asio::io_context& ioc, const std::string& lister_kubeconfig,
             prometheus::Registry& registry, bool resource_metrics = false);

  /// nullptr without Kubernetes access.
  const core::pod_lister* lister() const { return pods_.get(); }
  const core::readiness_source* readiness() const { return pods_.get(); }
  /// nullptr without Kubernetes access or without `resource_metrics`.
  const core::object_lister* running_pods() const { return running_pods_.get(); }
  const core::object_lister* nodes() const { return nodes_.get(); }
  /// The readiness of those two caches (informational: they serve only metrics.k8s.io).
  std::vector<const core::readiness_source*> resource_metrics_readiness() const;

  /// Starts the list-and-watch loops under `loops`.
  void start(core::supervisor& loops);

 private:
  boost::asio::io_context& ioc_;
  std::unique_ptr<adapters::http_client::http_client> http_;
  std::unique_ptr<adapters::kubernetes::pod_cache> pods_;
  std::unique_ptr<adapters::kubernetes::pod_cache> running_pods_;
  std::unique_ptr<adapters::kubernetes::pod_cache> nodes_;
};

}  // namespace gma::wiring
