#pragma once
/// @file OAuth access tokens for managed Prometheus from a cloud's workload identity
/// (--prometheus-auth-provider): Google's metadata server token (Google Cloud Managed Service
/// for Prometheus) or an Azure AD token exchanged for the pod's federated token (Azure Monitor
/// managed Prometheus). A loop fetches a token and refreshes it before it expires; every request
/// to Prometheus sends the current one, and fails as unavailable (503) while there is none.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http_client/http_client.hpp"

namespace gma::adapters::prometheus {

/// An access token and how long it lasts, as a token endpoint answered.
struct token_grant {
  std::string access_token;
  std::chrono::seconds expires_in{0};
};

/// Parses a successful OAuth 2.0 token response (RFC 6749 5.1) as the GKE metadata server and
/// Azure AD write it: {"access_token", "expires_in", "token_type"}. `expires_in` may be a number
/// or, as Azure AD's v1 endpoint writes it, a string of digits; `token_type`, when present, must
/// be Bearer (any case). nullopt with the reason in `why` otherwise. Pure; thread-safe.
std::optional<token_grant> parse_token_response(std::string_view body, std::string& why);

/// A failed token response in words: the status and, for OAuth's error JSON (RFC 6749 5.2, as
/// Azure AD sends it), `error` and `error_description`; else the start of the body.
std::string token_error_summary(unsigned status, std::string_view body);

/// How long after it was issued a token of `expires_in` is refreshed: at 80% of its life, but at
/// least 5 minutes before it expires when it lasts long enough for both to leave half of it, and
/// never sooner than half its life (so a short-lived token is not asked for in a busy loop).
/// At least 1 s.
std::chrono::seconds refresh_after(std::chrono::seconds expires_in);

/// Which cloud, and where its token endpoint is.
struct cloud_token_settings {
  enum class provider { gcp, azure };
  provider which = provider::gcp;
  /// gcp: the metadata server's token URL; azure: {authority host}{tenant}/oauth2/v2.0/token.
  std::string token_url;
  // azure only
  std::string client_id;             ///< AZURE_CLIENT_ID
  std::string federated_token_file;  ///< AZURE_FEDERATED_TOKEN_FILE, re-read for every exchange
  std::string scope = "https://prometheus.monitor.azure.com/.default";
  /// Deadline of one token request.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  /// Back-off between failed attempts: doubling from first_retry up to max_retry.
  std::chrono::milliseconds first_retry{std::chrono::seconds(1)};
  std::chrono::milliseconds max_retry{std::chrono::seconds(30)};
};

/// The token source of --prometheus-auth-provider.
///
/// @par Thread safety
/// current_token() may be called from any thread while async_run() runs on one executor.
/// The source must outlive the run.
class cloud_token_source final : public http_client::token_source {
 public:
  /// Throws std::runtime_error for a token URL that is not http(s)://host[:port]/path.
  explicit cloud_token_source(cloud_token_settings settings);

  /// The current token while it has not expired, else why there is none (which names the
  /// provider, the endpoint and the last failure). Never waits.
  http_client::bearer_token current_token() override;

  /// Fetches a token, then fetches the next one refresh_after() its predecessor, retrying
  /// failures with back-off while the current one stays in use until it expires. Never ends
  /// by itself; run it under the supervisor ("prometheus-token").
  boost::asio::awaitable<void> async_run();

  /// One fetch; true when it brought a token. For one-shot commands that run no loop.
  boost::asio::awaitable<bool> async_fetch_once();

  /// "gcp" or "azure", for log lines.
  const char* provider_name() const noexcept;

 private:
  /// Asks the endpoint once; a token on success, else nullopt and the reason in `why`.
  boost::asio::awaitable<std::optional<token_grant>> async_request(http_client::http_client& http,
                                                                   std::string& why);
  /// Asks once and records the outcome; the delay before the next attempt.
  boost::asio::awaitable<std::chrono::milliseconds> async_attempt(http_client::http_client& http,
                                                                  int failures_before);

  const cloud_token_settings settings_;
  http_client::options endpoint_options_;
  std::mutex mutex_;
  std::string token_;                                   // guarded by mutex_
  std::chrono::steady_clock::time_point expires_at_{};  // guarded by mutex_
  std::string last_failure_;                            // guarded by mutex_
};

}  // namespace gma::adapters::prometheus
