#include "server/http/tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <boost/system/system_error.hpp>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "server/core/change_watcher.hpp"
#include "server/core/log.hpp"
#include "server/core/text_file.hpp"

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
  const bool key_ok =
      PEM_write_PrivateKey(key_file, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
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
    core::log::info("generated a self-signed serving certificate for localhost and 127.0.0.1 in " +
                    cert.string());
  }
  return {cert.string(), key.string()};
}

namespace {

const std::map<std::string, const char*>& cipher_names() {
  // Go's crypto/tls names (what --tls-cipher-suites takes) to OpenSSL's.
  static const std::map<std::string, const char*> names = {
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
      {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
      {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
      {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
      {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
      {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
      // TLS 1.3 suites are not configurable (as in Go); they are accepted and always on.
      {"TLS_AES_128_GCM_SHA256", ""},
      {"TLS_AES_256_GCM_SHA384", ""},
      {"TLS_CHACHA20_POLY1305_SHA256", ""},
  };
  return names;
}

}  // namespace

void validate_tls_settings(const tls_settings& settings) {
  if (settings.min_version != "VersionTLS12" && settings.min_version != "VersionTLS13")
    throw std::runtime_error("unsupported --tls-min-version \"" + settings.min_version +
                             "\" (VersionTLS12 or VersionTLS13)");
  for (const auto& suite : settings.cipher_suites)
    if (!cipher_names().contains(suite))
      throw std::runtime_error("unsupported --tls-cipher-suites value \"" + suite + "\"");
}

std::shared_ptr<boost::asio::ssl::context> make_server_context(const tls_settings& settings) {
  namespace ssl = boost::asio::ssl;
  validate_tls_settings(settings);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  if (settings.min_version == "VersionTLS13") ctx->set_options(ssl::context::no_tlsv1_2);
  std::string ciphers;
  for (const auto& suite : settings.cipher_suites) {
    const char* name = cipher_names().at(suite);
    if (*name) ciphers += (ciphers.empty() ? "" : ":") + std::string(name);
  }
  if (!ciphers.empty() && SSL_CTX_set_cipher_list(ctx->native_handle(), ciphers.c_str()) != 1)
    throw std::runtime_error("no usable cipher in --tls-cipher-suites");
  try {
    ctx->use_certificate_chain_file(settings.files.cert_file);
    ctx->use_private_key_file(settings.files.key_file, ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("loading the serving certificate " + settings.files.cert_file + " / " +
                             settings.files.key_file + ": " + e.what());
  }
  if (settings.request_client_certificate) {
    // Ask for a client certificate but let the handshake pass: which CA (client-ca-file or
    // requestheader-client-ca-file) vouches for it is the authenticator's decision. No CA
    // list is sent, so Go clients offer their certificate whatever signed it.
    ctx->set_verify_mode(ssl::verify_peer);
    ctx->set_verify_callback([](bool, ssl::verify_context&) { return true; });
  }
  return ctx;
}

namespace {

std::vector<std::string> certificate_paths(const tls_settings& settings) {
  return {settings.files.cert_file, settings.files.key_file};
}

}  // namespace

reloading_server_context::reloading_server_context(tls_settings settings)
    : settings_(std::move(settings)),
      context_(make_server_context(settings_)),
      loaded_files_(
          core::read_files_fingerprint(certificate_paths(settings_), "serving certificate")) {}

std::shared_ptr<boost::asio::ssl::context> reloading_server_context::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

bool reloading_server_context::reload() {
  try {
    auto next = make_server_context(settings_);
    std::lock_guard lock(mutex_);
    context_ = std::move(next);
  } catch (const std::exception& e) {
    // A rotation writes the certificate and the key one after the other; a mismatched pair
    // is retried on the next check.
    core::log::warning(std::string("serving certificate not reloaded yet: ") + e.what());
    return false;
  }
  core::log::info("reloaded the serving certificate from " + settings_.files.cert_file);
  return true;
}

boost::asio::awaitable<void> reloading_server_context::async_watch(std::chrono::seconds interval) {
  core::change_watcher<std::string> watcher(
      core::file_contents_reader(certificate_paths(settings_), "serving certificate"),
      [this](const std::string&) { return reload(); }, loaded_files_);
  co_await watcher.async_run(interval);
}

}  // namespace gma::http
