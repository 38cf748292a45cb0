#pragma once
/// @file Delegated authentication as Kubernetes extension API servers do it: front-proxy
/// (request-header) certificates, client certificates, bearer tokens through TokenReview
/// (cached), and system:anonymous for everything else. The methods form a union.
///
/// A client's certificate chain is verified once per connection, not once per request: the
/// verdict (who the chain is, under which configuration) is kept with the connection's chain
/// (http::client_certificate_chain) and reused by its later requests. set_config() (a CA
/// rotation) applies to new connections at once, and to open ones at their next request, which
/// verifies the chain again against the new CAs: a connection whose CA was removed is no longer
/// authenticated by it. Within one configuration each CA's answer has its own lifetime: a
/// chain it verified is checked again when the chain expires (its earliest notAfter), a chain
/// it refused after a minute (a notBefore a little ahead of this clock may have passed).
///
/// @par Thread safety
/// async_authenticate may run concurrently with set_config. Configuration is an immutable
/// snapshot swapped under a mutex, with a generation number requests read without it; the
/// token cache is thread-safe. The token reviewer is borrowed and must outlive the
/// authenticator.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/auth/client_certificates.hpp"
#include "server/core/auth_types.hpp"
#include "server/core/provider.hpp"
#include "server/core/ttl_cache.hpp"
#include "server/http/message.hpp"

namespace gma::auth {

/// Where trust comes from; built from flags and files, or from the
/// kube-system/extension-apiserver-authentication ConfigMap.
struct authentication_config {
  std::shared_ptr<const ca_bundle> client_ca;         ///< --client-ca-file
  std::shared_ptr<const ca_bundle> requestheader_ca;  ///< --requestheader-client-ca-file
  std::vector<std::string> allowed_names;             ///< empty: any CN
  std::vector<std::string> username_headers{"x-remote-user"};
  std::vector<std::string> group_headers{"x-remote-group"};
  std::vector<std::string> extra_headers_prefixes{"x-remote-extra-"};
  std::string source;  ///< for logs and /readyz
};

/// The --client-ca-file / --requestheader-* flags.
struct authentication_files {
  std::string client_ca_file;
  std::string requestheader_client_ca_file;
  std::vector<std::string> allowed_names;
  std::vector<std::string> username_headers;
  std::vector<std::string> group_headers;
  std::vector<std::string> extra_headers_prefixes;
  bool empty() const { return client_ca_file.empty() && requestheader_client_ca_file.empty(); }
};

/// Reads the CA files named by the flags. Throws std::runtime_error naming the bad file.
authentication_config config_from_files(const authentication_files& files);

/// Builds a config from the ConfigMap's data (CA PEMs, JSON arrays of header names).
/// Throws std::runtime_error with the key that is malformed.
authentication_config config_from_configmap(const std::map<std::string, std::string>& data);

enum class authentication_outcome { authenticated, anonymous, rejected };

struct authentication_result {
  authentication_outcome outcome;
  core::user_info user;
};

class authenticator final : public core::readiness_source {
 public:
  /// The time certificates are verified at and kept answers expire by.
  using time_source = std::function<std::chrono::system_clock::time_point()>;

  /// `tokens` may be nullptr: bearer tokens are then not looked at (as without a webhook).
  /// `now`: the system clock but in tests, which move time past a certificate's notAfter or a
  /// refusal's minute. Called from any thread.
  authenticator(core::token_reviewer* tokens, std::chrono::seconds token_cache_ttl,
                time_source now = &std::chrono::system_clock::now);

  void set_config(std::shared_ptr<const authentication_config> config);
  std::shared_ptr<const authentication_config> config() const;

  /// "authentication-config": ready once a configuration has been loaded.
  std::vector<core::health_check> readiness_checks() const override;

  /// Reloads the CA files every `interval` when their contents change (certificate rotation);
  /// a file that does not load keeps the previous configuration. Runs until cancelled.
  boost::asio::awaitable<void> async_watch_files(authentication_files files,
                                                 std::chrono::seconds interval);

  /// rejected: a bearer token that the cluster says is invalid (401).
  /// errc::kubernetes_unavailable: a token that could not be reviewed.
  boost::asio::awaitable<result<authentication_result>> async_authenticate(
      const http::request& req);

 private:
  struct chain_verdict;

  /// Verifies `der_chain` at `now` against the CAs of `config` (nullptr: nothing verifies),
  /// but for a CA whose answer in `kept` (a verdict under the same configuration, or nullptr)
  /// still holds at `now`: that answer is kept as it is.
  static chain_verdict verify_chain(std::shared_ptr<const authentication_config> config,
                                    const std::vector<std::string>& der_chain,
                                    std::chrono::system_clock::time_point now,
                                    const chain_verdict* kept);

  /// What the connection's chain proves under the configuration in force: the one kept with
  /// the chain, or a new verification on a connection's first request, after set_config(),
  /// or of the CAs whose answer has expired.
  std::shared_ptr<const chain_verdict> verdict_for(
      const http::client_certificate_chain& chain) const;

  core::token_reviewer* tokens_;
  time_source now_;
  std::chrono::seconds token_cache_ttl_;
  mutable std::mutex mutex_;
  std::shared_ptr<const authentication_config> config_;  // guarded by mutex_
  /// Identifies config_ (unique in the process): a chain's verdict is valid for this number
  /// only. Written with config_ under mutex_; read without it on every request.
  std::atomic<std::uint64_t> generation_;
  /// sha256(token) -> the user, or nullopt for a rejected token.
  core::ttl_cache<std::string, std::optional<core::user_info>> token_cache_;
};

}  // namespace gma::auth
