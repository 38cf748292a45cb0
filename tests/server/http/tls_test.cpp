#include "server/http/tls.hpp"

#include <gtest/gtest.h>

namespace gma::http {
namespace {

TEST(TlsSettings, AcceptsKubernetesNamesAndRefusesOthers) {
  tls_settings s;
  s.cipher_suites = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA",
                     "TLS_AES_128_GCM_SHA256"};
  EXPECT_NO_THROW(validate_tls_settings(s));
  s.min_version = "VersionTLS13";
  EXPECT_NO_THROW(validate_tls_settings(s));
  s.min_version = "VersionTLS10";
  EXPECT_THROW(validate_tls_settings(s), std::runtime_error);
  s.min_version = "VersionTLS12";
  s.cipher_suites = {"TLS_RSA_WITH_RC4_128_SHA"};
  EXPECT_THROW(validate_tls_settings(s), std::runtime_error);
}

}  // namespace
}  // namespace gma::http
