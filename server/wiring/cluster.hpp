#pragma once
/// @file Which Kubernetes API each component talks to.

#include <optional>
#include <string>

#include "adapters/kubernetes/cluster_access.hpp"

namespace gma::wiring {

/// Cluster access from an explicit kubeconfig, else the in-cluster service account, else none.
/// Throws std::runtime_error when the kubeconfig does not load.
std::optional<adapters::kubernetes::cluster_access> cluster_access_from(
    const std::string& kubeconfig);

}  // namespace gma::wiring
