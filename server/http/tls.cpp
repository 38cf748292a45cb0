#include "server/http/tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <boost/system/system_error.hpp>
#include <filesystem>
#include <stdexcept>

#include "server/core/log.hpp"

namespace gma::http {
namespace {

namespace fs = std::filesystem;

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* p) const { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("generating the self-signed certificate: ") + what);
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void write_self_signed(const fs::path& cert_path, const fs::path& key_path) {
  pkey_ptr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "key");
  x509_ptr cert(X509_new());
  check(cert != nullptr, "certificate");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial) == 1, "serial");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 60 * 60);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = "localhost@" + std::to_string(std::time(nullptr));
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  // Self-signed and its own CA, so clients can trust it with --certificate-authority.
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
  check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "signature");

  fs::create_directories(cert_path.parent_path());
  FILE* key_file = std::fopen(key_path.c_str(), "wx");
  check(key_file != nullptr, "cannot create the key file");
  fs::permissions(key_path, fs::perms::owner_read | fs::perms::owner_write);
  const bool key_ok = PEM_write_PrivateKey(key_file, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(key_file);
  check(key_ok, "writing the key");
  FILE* cert_file = std::fopen(cert_path.c_str(), "w");
  check(cert_file != nullptr, "cannot create the certificate file");
  const bool cert_ok = PEM_write_X509(cert_file, cert.get());
  std::fclose(cert_file);
  check(cert_ok, "writing the certificate");
}

}  // namespace

certificate_files ensure_serving_certificate(const std::string& cert_file,
                                             const std::string& key_file,
                                             const std::string& cert_dir) {
  if (!cert_file.empty() || !key_file.empty()) {
    if (cert_file.empty() || key_file.empty())
      throw std::runtime_error("--tls-cert-file and --tls-private-key-file must be given together");
    return {cert_file, key_file};
  }
  const fs::path cert = fs::path(cert_dir) / "apiserver.crt";
  const fs::path key = fs::path(cert_dir) / "apiserver.key";
  if (!fs::exists(cert) || !fs::exists(key)) {
    fs::remove(cert);
    fs::remove(key);
    write_self_signed(cert, key);
    log::info("generated a self-signed serving certificate for localhost and 127.0.0.1 in " +
              cert.string());
  }
  return {cert.string(), key.string()};
}

std::shared_ptr<boost::asio::ssl::context> make_server_context(const certificate_files& files) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  try {
    ctx->use_certificate_chain_file(files.cert_file);
    ctx->use_private_key_file(files.key_file, ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("loading the serving certificate " + files.cert_file + " / " +
                             files.key_file + ": " + e.what());
  }
  return ctx;
}

}  // namespace gma::http
