#include "adapters/prometheus/connection.hpp"

#include <cstdlib>
#include <stdexcept>

#include "adapters/http_client/aws_credentials.hpp"
#include "adapters/http_client/client_tls.hpp"
#include "server/core/log.hpp"
#include "server/core/text_file.hpp"

namespace gma::adapters::prometheus {
namespace {

/// Reads a file named by a flag, failing at start rather than at the first query.
std::string read_flag_file(const char* flag, const std::string& path) {
  const auto text = core::read_text_file(path);
  if (!text) throw std::runtime_error(std::string(flag) + " " + path + ": cannot read the file");
  return *text;
}

}  // namespace

http_client::options client_options(const connection_settings& settings) {
  http_client::options out;
  if (settings.cluster_transport) {
    out.tls_context = settings.cluster_transport->tls_context;
    out.headers = settings.cluster_transport->headers;
    out.bearer_token_file = settings.cluster_transport->bearer_token_file;
  }
  out.target = settings.target;
  const bool own_tls = !settings.ca_file.empty() || !settings.client_cert_file.empty();
  if (settings.target.tls && (own_tls || !out.tls_context)) {
    http_client::client_tls_settings tls;
    if (!settings.ca_file.empty())
      tls.ca_pem = read_flag_file("--prometheus-ca-file", settings.ca_file);
    if (!settings.client_cert_file.empty()) {
      tls.client_cert_pem =
          read_flag_file("--prometheus-client-tls-cert-file", settings.client_cert_file);
      tls.client_key_pem =
          read_flag_file("--prometheus-client-tls-key-file", settings.client_key_file);
    }
    try {
      out.tls_context = http_client::make_client_tls_context(tls);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("TLS to Prometheus: ") + e.what());
    }
  }
  if (!settings.token_file.empty()) {
    read_flag_file("--prometheus-token-file", settings.token_file);
    out.bearer_token_file = settings.token_file;
  }
  for (const auto& header : settings.headers) out.headers.push_back(header);
  if (!settings.sigv4_region.empty()) {
    auto source =
        http_client::aws_credential_source_from([](const char* name) { return std::getenv(name); },
                                                settings.sigv4_region, settings.sigv4_sts_endpoint);
    core::log::info("signing requests to Prometheus with AWS SigV4 (region " +
                    settings.sigv4_region + ", service " + settings.sigv4_service +
                    ") with credentials from " + source.describe());
    out.signer = std::make_shared<http_client::sigv4_signer>(
        std::make_shared<http_client::aws_credentials>(std::move(source)),
        http_client::sigv4::signing_scope{settings.sigv4_region, settings.sigv4_service});
  }
  return out;
}

}  // namespace gma::adapters::prometheus
