#pragma once
/// @file How to reach Prometheus: prometheus-adapter's connection flags turned into options for
/// an http_client. Start-up code: throws std::runtime_error naming the flag whose file does not
/// load.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/http_client/http_client.hpp"

namespace gma::adapters::prometheus {

struct connection_settings {
  http_client::endpoint target;                              ///< --prometheus-url
  std::string ca_file;                                       ///< --prometheus-ca-file
  std::string client_cert_file;                              ///< --prometheus-client-tls-cert-file
  std::string client_key_file;                               ///< --prometheus-client-tls-key-file
  std::string token_file;                                    ///< --prometheus-token-file
  std::vector<std::pair<std::string, std::string>> headers;  ///< --prometheus-header
  /// --prometheus-auth-config or --prometheus-auth-incluster: a whole transport (CA, token,
  /// client certificate) read by the caller from a kubeconfig or the service account. The
  /// file flags above override its TLS settings.
  std::optional<http_client::options> cluster_transport;
  /// --prometheus-sigv4-region (empty: no signing), --prometheus-sigv4-service and
  /// --prometheus-sigv4-sts-endpoint.
  std::string sigv4_region;
  std::string sigv4_service = "aps";
  std::string sigv4_sts_endpoint;
};

/// The http_client options for `settings`: TLS 1.2+ verifying against --prometheus-ca-file (or
/// the system CAs, or the cluster transport's CA), the token and the extra headers, and with a
/// SigV4 region a signer whose credentials come from this process' environment (throws
/// std::runtime_error when it holds none).
http_client::options client_options(const connection_settings& settings);

}  // namespace gma::adapters::prometheus
