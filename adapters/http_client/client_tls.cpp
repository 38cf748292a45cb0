#include "adapters/http_client/client_tls.hpp"

#include <boost/system/system_error.hpp>
#include <stdexcept>

namespace gma::adapters::http_client {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_client_tls_context(const client_tls_settings& settings) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                   ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (settings.insecure_skip_verify) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    if (!settings.ca_pem) {
      ctx->set_default_verify_paths(ec);
    } else if (settings.ca_pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      throw std::runtime_error("loading the CA bundle: it contains no PEM certificate");
    } else {
      ctx->add_certificate_authority(boost::asio::buffer(*settings.ca_pem), ec);
    }
    if (ec) throw std::runtime_error("loading the CA bundle: " + ec.message());
    ctx->set_verify_mode(ssl::verify_peer);
  }
  if (!settings.client_cert_pem.empty() || !settings.client_key_pem.empty()) {
    ctx->use_certificate_chain(boost::asio::buffer(settings.client_cert_pem), ec);
    if (ec) throw std::runtime_error("loading the client certificate: " + ec.message());
    ctx->use_private_key(boost::asio::buffer(settings.client_key_pem), ssl::context::pem, ec);
    if (ec) throw std::runtime_error("loading the client key: " + ec.message());
  }
  return ctx;
}

}  // namespace gma::adapters::http_client
