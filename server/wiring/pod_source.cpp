#include "server/wiring/pod_source.hpp"

#include <boost/asio/strand.hpp>

#include "server/core/log.hpp"
#include "server/wiring/cluster.hpp"

namespace gma::wiring {

pod_source::pod_source(boost::asio::io_context& ioc, const std::string& lister_kubeconfig,
                       prometheus::Registry& registry, bool watch_nodes)
    : ioc_(ioc) {
  const auto access = cluster_access_from(lister_kubeconfig);
  if (!access) {
    core::log::warning(
        "no Kubernetes access (no --lister-kubeconfig and not in a cluster): requests that "
        "select pods with labelSelector will get 503" +
        std::string(watch_nodes ? ", and so will metrics.k8s.io" : ""));
    return;
  }
  core::log::info("watching pods" + std::string(watch_nodes ? " and nodes" : "") + " through " +
                  access->description);
  http_ = std::make_unique<adapters::http_client::http_client>(ioc.get_executor(),
                                                               access->client_options);
  pods_ = std::make_unique<adapters::kubernetes::pod_cache>(*http_, registry);
  if (watch_nodes)
    nodes_ = std::make_unique<adapters::kubernetes::pod_cache>(
        *http_, registry, adapters::kubernetes::watched_resource::nodes());
}

void pod_source::start(core::supervisor& loops) {
  if (pods_)
    loops.spawn(boost::asio::make_strand(ioc_), "pod-watch", [this] { return pods_->async_run(); });
  if (nodes_)
    loops.spawn(boost::asio::make_strand(ioc_), "node-watch",
                [this] { return nodes_->async_run(); });
}

}  // namespace gma::wiring
