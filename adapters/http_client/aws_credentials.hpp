#pragma once
/// @file AWS credentials for SigV4, found as the AWS SDKs find them, and kept fresh: the
/// environment's keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then IRSA's
/// web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, exchanged with STS
/// AssumeRoleWithWebIdentity), then the container endpoint of EKS Pod Identity
/// (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE). And the
/// request_signer that signs every request of an http_client with them.
///
/// @par Thread safety
/// aws_credentials: current() from any thread at any time; async_keep_fresh() runs as one
/// loop at a time. sigv4_signer: sign() from any thread. Both are shared (shared_ptr) by the
/// http_client that signs and the loop that refreshes.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adapters/http_client/aws_sigv4.hpp"
#include "adapters/http_client/http_client.hpp"
#include "server/core/error.hpp"

namespace gma::adapters::http_client {

/// Where the credentials come from, and what it takes to get them.
struct aws_credential_source {
  enum class kind { environment, web_identity, container };
  kind from = kind::environment;
  /// environment: the keys themselves.
  sigv4::credentials keys;
  /// web_identity: AssumeRoleWithWebIdentity at `sts_endpoint` for `role_arn`, with the token
  /// read from `token_file` (re-read at each refresh: the kubelet rotates it).
  std::string role_arn;
  std::string session_name;
  std::string sts_endpoint;
  /// container: a GET of `url` with `Authorization:` the contents of `token_file` (re-read at
  /// each refresh), or `token` when there is no file.
  std::string url;
  std::string token;
  std::string token_file;
  /// PEM CA bundle for an https STS or container endpoint (AWS_CA_BUNDLE); empty: system CAs.
  std::string ca_file;

  /// For log lines: "environment (AWS_ACCESS_KEY_ID)", "web identity ... via https://sts...".
  std::string describe() const;
};

/// Reads a variable of the environment; nullptr when unset. Tests pass a map.
using environment_lookup = std::function<const char*(const char*)>;

/// The first source the AWS SDKs would use, from the environment: keys, then web identity,
/// then the container endpoint. `region` (the signing region) is STS's region unless AWS_REGION
/// or AWS_DEFAULT_REGION says otherwise. The STS endpoint is `sts_endpoint` when given
/// (--prometheus-sigv4-sts-endpoint), else AWS_ENDPOINT_URL_STS, else the global
/// https://sts.amazonaws.com with AWS_STS_REGIONAL_ENDPOINTS=legacy, else the regional
/// https://sts.<region>.amazonaws.com (.com.cn in China). Throws std::runtime_error saying what
/// to set when there is none, or what is wrong with what is set.
aws_credential_source aws_credential_source_from(const environment_lookup& env,
                                                 const std::string& region,
                                                 const std::string& sts_endpoint);

/// The credentials of one source, fetched again before they expire.
class aws_credentials {
 public:
  /// Temporary credentials are refreshed this long before their Expiration (as aws-sdk-go-v2's
  /// container provider does).
  static constexpr std::chrono::minutes kRefreshBefore{5};

  explicit aws_credentials(aws_credential_source source);

  /// The credentials to sign with now, or why there are none (not fetched yet, the last fetch
  /// failed, or they expired). Never waits for a fetch.
  result<sigv4::credentials> current(std::string& why) const;

  /// True when the source gives temporary credentials that need async_keep_fresh().
  bool refreshes() const { return source_.from != aws_credential_source::kind::environment; }

  /// Fetches the credentials, then again kRefreshBefore their expiration, forever. A failed
  /// fetch is logged and thrown (std::runtime_error) so that the supervisor retries with its
  /// back-off and shows it in readiness; credentials fetched before stay in use until they
  /// expire. Returns at once for keys that do not expire.
  boost::asio::awaitable<void> async_keep_fresh();

  /// True once a fetch has ended (or for keys that do not expire).
  bool first_fetch_done() const;

  /// One fetch: true when it gave credentials (for one-shot commands).
  boost::asio::awaitable<bool> async_fetch_once();

  const aws_credential_source& source() const { return source_; }

 private:
  boost::asio::awaitable<result<sigv4::credentials>> async_fetch(std::string& why);

  const aws_credential_source source_;
  mutable std::mutex mutex_;
  std::optional<sigv4::credentials> credentials_;  // guarded by mutex_
  std::string last_error_;                         // guarded by mutex_
  bool fetched_ = false;                           // guarded by mutex_
};

/// Signs requests with SigV4 using the current credentials.
class sigv4_signer final : public request_signer {
 public:
  sigv4_signer(std::shared_ptr<aws_credentials> credentials, sigv4::signing_scope scope);

  std::string sign(bhttp::request<bhttp::string_body>& request) const override;
  bool refreshes() const override { return credentials_->refreshes(); }
  bool first_fetch_done() const override { return credentials_->first_fetch_done(); }
  net::awaitable<void> async_keep_fresh() override { return credentials_->async_keep_fresh(); }
  net::awaitable<bool> async_fetch_once() override { return credentials_->async_fetch_once(); }

 private:
  std::shared_ptr<aws_credentials> credentials_;
  sigv4::signing_scope scope_;
};

}  // namespace gma::adapters::http_client
