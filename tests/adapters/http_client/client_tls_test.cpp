#include "adapters/http_client/client_tls.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace gma::adapters::http_client {
namespace {

long options_of(const client_tls_settings& settings) {
  return static_cast<long>(SSL_CTX_get_options(make_client_tls_context(settings)->native_handle()));
}

TEST(ClientTls, RefusesTls10And11Everywhere) {
  for (const bool insecure : {false, true}) {
    client_tls_settings settings;
    settings.insecure_skip_verify = insecure;
    const long options = options_of(settings);
    EXPECT_NE(options & SSL_OP_NO_TLSv1, 0);
    EXPECT_NE(options & SSL_OP_NO_TLSv1_1, 0);
    EXPECT_EQ(options & SSL_OP_NO_TLSv1_2, 0);
  }
}

TEST(ClientTls, VerifiesThePeerUnlessToldNotTo) {
  client_tls_settings settings;
  EXPECT_EQ(SSL_CTX_get_verify_mode(make_client_tls_context(settings)->native_handle()),
            SSL_VERIFY_PEER);
  settings.insecure_skip_verify = true;
  EXPECT_EQ(SSL_CTX_get_verify_mode(make_client_tls_context(settings)->native_handle()),
            SSL_VERIFY_NONE);
}

TEST(ClientTls, BrokenPemIsAStartUpErrorThatSaysWhat) {
  client_tls_settings settings;
  settings.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  try {
    make_client_tls_context(settings);
    FAIL() << "a broken CA bundle was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CA bundle"), std::string::npos) << e.what();
  }
  // An empty CA file must not fall back to trusting every public CA.
  settings.ca_pem = "";
  EXPECT_THROW(make_client_tls_context(settings), std::runtime_error);
  settings = {};
  settings.client_cert_pem = "garbage";
  EXPECT_THROW(make_client_tls_context(settings), std::runtime_error);
}

}  // namespace
}  // namespace gma::adapters::http_client
