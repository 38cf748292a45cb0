#pragma once
// Certificates made in memory for tests of client-certificate authentication: a CA, and leaves
// it signs with a chosen CN, O values, extended key usage and validity. P-256 keys, so making
// them is fast. Each object owns its OpenSSL handles; not copyable; use from one thread at a
// time.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace gma::testing {

/// When a certificate is valid: notBefore and notAfter as seconds from now, or notAfter as an
/// ASN.1 time ("99991231235959Z") for a date no offset from now reaches.
struct validity {
  long not_before_seconds = -3600;
  long not_after_seconds = 24 * 3600;
  const char* not_after_time = nullptr;  ///< when set, instead of not_after_seconds
};

class certificate_authority {
 public:
  explicit certificate_authority(const std::string& common_name, validity valid = {})
      : key_(EVP_EC_gen("P-256")) {
    if (!key_) throw std::runtime_error("EC key generation failed");
    cert_ = make(key_, common_name, {}, nullptr, key_, true, nullptr, valid);
  }
  ~certificate_authority() {
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }
  certificate_authority(const certificate_authority&) = delete;
  certificate_authority& operator=(const certificate_authority&) = delete;

  /// The CA certificate as PEM, for a ca_bundle.
  std::string pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert_);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  }

  /// A leaf certificate signed by this CA, as DER (what the TLS session hands over).
  /// `extended_key_usage` in openssl.cnf syntax, e.g. "clientAuth" or "serverAuth".
  std::string issue(const std::string& common_name,
                    const std::vector<std::string>& organizations = {},
                    const char* extended_key_usage = "clientAuth", validity valid = {}) const {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* leaf =
        make(key, common_name, organizations, cert_, key_, false, extended_key_usage, valid);
    unsigned char* der = nullptr;
    const int n = i2d_X509(leaf, &der);
    std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return out;
  }

 private:
  static void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) throw std::runtime_error(std::string("bad extension ") + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }

  static X509* make(EVP_PKEY* key, const std::string& common_name,
                    const std::vector<std::string>& organizations, X509* issuer,
                    EVP_PKEY* issuer_key, bool is_ca, const char* extended_key_usage,
                    const validity& valid) {
    static long serial = 1;
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), valid.not_before_seconds);
    if (!valid.not_after_time)
      X509_gmtime_adj(X509_getm_notAfter(cert), valid.not_after_seconds);
    else if (ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), valid.not_after_time) != 1)
      throw std::runtime_error(std::string("bad notAfter ") + valid.not_after_time);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    for (const auto& o : organizations)
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509* signer = issuer ? issuer : cert;
    add_extension(cert, signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_extension(cert, signer, NID_key_usage,
                  is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (extended_key_usage) add_extension(cert, signer, NID_ext_key_usage, extended_key_usage);
    X509_sign(cert, issuer_key, EVP_sha256());
    return cert;
  }

  EVP_PKEY* key_;
  X509* cert_;
};

}  // namespace gma::testing
