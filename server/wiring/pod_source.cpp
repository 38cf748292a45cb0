#include "server/wiring/pod_source.hpp"

#include <boost/asio/strand.hpp>

#include "server/core/log.hpp"
#include "server/wiring/cluster.hpp"

namespace gma::wiring {

pod_source::pod_source(boost::asio::io_context& ioc, const std::string& lister_kubeconfig,
                       prometheus::Registry& registry, bool resource_metrics)
    : ioc_(ioc) {
  const auto access = cluster_access_from(lister_kubeconfig);
  if (!access) {
    core::log::warning(
        "no Kubernetes access (no --lister-kubeconfig and not in a cluster): requests that "
        "select pods with labelSelector will get 503" +
        std::string(resource_metrics ? ", and so will metrics.k8s.io" : ""));
    return;
  }
  core::log::info("watching pods" +
                  std::string(resource_metrics ? " (all, and the running ones) and nodes" : "") +
                  " through " + access->description);
  http_ = std::make_unique<adapters::http_client::http_client>(ioc.get_executor(),
                                                               access->client_options);
  pods_ = std::make_unique<adapters::kubernetes::pod_cache>(*http_, registry);
  if (resource_metrics) {
    using adapters::kubernetes::watched_resource;
    running_pods_ = std::make_unique<adapters::kubernetes::pod_cache>(
        *http_, registry, watched_resource::running_pods());
    nodes_ = std::make_unique<adapters::kubernetes::pod_cache>(*http_, registry,
                                                               watched_resource::nodes());
  }
}

void pod_source::start(core::supervisor& loops) {
  if (pods_)
    loops.spawn(boost::asio::make_strand(ioc_), "pod-watch", [this] { return pods_->async_run(); });
  if (running_pods_)
    loops.spawn(boost::asio::make_strand(ioc_), "running-pod-watch",
                [this] { return running_pods_->async_run(); });
  if (nodes_)
    loops.spawn(boost::asio::make_strand(ioc_), "node-watch",
                [this] { return nodes_->async_run(); });
}

std::vector<const core::readiness_source*> pod_source::resource_metrics_readiness() const {
  std::vector<const core::readiness_source*> out;
  if (running_pods_) out.push_back(running_pods_.get());
  if (nodes_) out.push_back(nodes_.get());
  return out;
}

}  // namespace gma::wiring
