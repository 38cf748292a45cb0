#include "server/wiring/cluster.hpp"

namespace gma::wiring {

std::optional<adapters::kubernetes::cluster_access> cluster_access_from(
    const std::string& kubeconfig) {
  if (!kubeconfig.empty()) return adapters::kubernetes::load_kubeconfig(kubeconfig);
  if (adapters::kubernetes::in_cluster_available()) return adapters::kubernetes::load_in_cluster();
  return std::nullopt;
}

}  // namespace gma::wiring
