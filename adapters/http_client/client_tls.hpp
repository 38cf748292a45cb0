#pragma once
/// @file The one way this process builds a TLS client context: to Prometheus (flags or a
/// kubeconfig), to the Kubernetes API (kubeconfig or in-cluster) and for delegated auth.
/// TLS 1.2 is the minimum everywhere, as Go's crypto/tls client defaults to. Start-up code:
/// throws std::runtime_error naming what did not load.

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>

namespace gma::adapters::http_client {

struct client_tls_settings {
  /// PEM CA bundle that verifies the server; nullopt: the system's CAs. A bundle without a
  /// certificate is an error, never a silent fallback to the system's CAs.
  std::optional<std::string> ca_pem;
  /// kubeconfig's insecure-skip-tls-verify: no verification at all.
  bool insecure_skip_verify = false;
  /// PEM client certificate chain and key for mutual TLS; both empty: none.
  std::string client_cert_pem;
  std::string client_key_pem;
};

/// A client context verifying the peer (unless told not to) with TLS 1.2 or newer. Host-name
/// verification and SNI are set per connection by http_client.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(
    const client_tls_settings& settings);

}  // namespace gma::adapters::http_client
