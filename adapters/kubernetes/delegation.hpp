#pragma once
/// @file The cluster's authentication and authorization APIs, for delegated auth: TokenReview,
/// SubjectAccessReview, and the extension-apiserver-authentication ConfigMap.
/// @par Thread safety
/// Safe for concurrent use; the transport (the http_client in production, a fake in tests) is
/// borrowed and must outlive this object.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "adapters/http_client/http_client.hpp"
#include "server/core/auth_types.hpp"

namespace gma::adapters::kubernetes {

namespace net = boost::asio;

class token_review_client final : public core::token_reviewer {
 public:
  explicit token_review_client(http_client::transport& client);
  net::awaitable<result<std::optional<core::user_info>>> async_review_token(
      std::string token) override;

 private:
  http_client::transport& client_;
};

class access_review_client final : public core::access_reviewer {
 public:
  explicit access_review_client(http_client::transport& client);
  net::awaitable<result<core::authorization_decision>> async_review_access(
      core::request_attributes attributes) override;

 private:
  http_client::transport& client_;
};

/// GET of a ConfigMap's data; errc::kubernetes_unavailable on any failure (logged).
net::awaitable<result<std::map<std::string, std::string>>> async_get_configmap_data(
    http_client::transport& client, std::string namespace_, std::string name);

/// Reads the ConfigMap now and every `interval`, calling `on_change` with its data whenever
/// it differs from the last call (a failed read is logged and retried). Runs until cancelled.
net::awaitable<void> async_watch_configmap(
    http_client::transport& client, std::string namespace_, std::string name,
    std::chrono::seconds interval,
    std::function<void(const std::map<std::string, std::string>&)> on_change);

}  // namespace gma::adapters::kubernetes
