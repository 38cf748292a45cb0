#pragma once
/// @file How to reach the Kubernetes API: from a kubeconfig file or from the in-cluster
/// service account. Start-up code: failures throw std::runtime_error with a reason.

#include <memory>
#include <string>

#include "adapters/http_client/http_client.hpp"

namespace gma::adapters::kubernetes {

/// Connection settings for an http_client, ready to use.
struct cluster_access {
  http_client::options client_options;
  std::string description;  ///< for logs: "kubeconfig /path (context x)" or "in-cluster"
};

/// Reads the current context of a kubeconfig: server, CA (file or data, or
/// insecure-skip-tls-verify), client certificate and key (file or data), token or tokenFile.
cluster_access load_kubeconfig(const std::string& path);

/// load_kubeconfig of a kubeconfig's text; `path` names it in messages and relative file
/// names (certificate-authority, client-key, tokenFile, ...) are read from its folder. What
/// the fuzz target calls: it throws std::runtime_error only, never yaml-cpp's exceptions.
cluster_access parse_kubeconfig(const std::string& text, const std::string& path);

/// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and
/// /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}.
/// Throws when not running in a cluster.
cluster_access load_in_cluster();

/// True when the in-cluster environment variables are set.
bool in_cluster_available();

}  // namespace gma::adapters::kubernetes
