#pragma once
/// @file The serving certificate: loaded from files, or a self-signed one for
/// localhost/127.0.0.1 generated into --cert-dir. Start-up code: throws std::runtime_error.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace gma::http {

struct certificate_files {
  std::string cert_file;
  std::string key_file;
};

/// Returns the files to serve: the given pair, or <cert_dir>/apiserver.{crt,key}, generated
/// (EC P-256, one year, SAN localhost and 127.0.0.1) when they do not exist yet.
certificate_files ensure_serving_certificate(const std::string& cert_file,
                                             const std::string& key_file,
                                             const std::string& cert_dir);

/// How the server speaks TLS (the --tls-* flags).
struct tls_settings {
  certificate_files files;
  /// "VersionTLS12" (default) or "VersionTLS13", as Kubernetes spells them.
  std::string min_version = "VersionTLS12";
  /// Go/IANA cipher suite names; empty keeps OpenSSL's defaults. TLS 1.3 suites are fixed.
  std::vector<std::string> cipher_suites;
  /// Ask clients for a certificate (verified later, per CA, by the authenticator).
  bool request_client_certificate = false;
};

/// Checks --tls-min-version and --tls-cipher-suites; throws std::runtime_error naming the
/// first unknown value.
void validate_tls_settings(const tls_settings& settings);

/// A server context for the settings. Throws std::runtime_error when files do not load.
std::shared_ptr<boost::asio::ssl::context> make_server_context(const tls_settings& settings);

/// The serving context, rebuilt when the certificate or key file changes (cert-manager
/// rotation) so new connections get the new certificate; open connections keep theirs.
/// @par Thread safety
/// current() may be called from any thread while async_watch() runs.
class reloading_server_context {
 public:
  explicit reloading_server_context(tls_settings settings);
  std::shared_ptr<boost::asio::ssl::context> current() const;
  /// Checks the files every `interval` and reloads them when their contents changed; a broken
  /// new pair keeps the old one and is tried again. Runs until cancelled.
  boost::asio::awaitable<void> async_watch(std::chrono::seconds interval);

 private:
  /// Builds a context from the files; false (logged) when they do not load.
  bool reload();

  tls_settings settings_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;  // guarded by mutex_
  std::optional<std::string> loaded_files_;             // what context_ was first built from
};

}  // namespace gma::http
