#pragma once
// The cluster's TokenReview and SubjectAccessReview as fakes behind the core seams
// (core::token_reviewer, core::access_reviewer), for tests of the authenticator, the authorizer
// and the auth guard. They answer from fixed rules, count or record what they were asked, and
// can play an unreachable cluster.
//
// Thread safety: safe from any thread (atomics and a mutex).

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/core/auth_types.hpp"

namespace gma::testing {

/// "good-token" is user bob (uid u-7, group team), "hpa-token" user hpa; every other token is
/// invalid.
class fake_token_reviewer final : public core::token_reviewer {
 public:
  boost::asio::awaitable<result<std::optional<core::user_info>>> async_review_token(
      std::string token) override {
    ++reviews;
    if (unavailable) co_return errc::kubernetes_unavailable;
    if (token == "good-token")
      co_return std::optional<core::user_info>(core::user_info{"bob", "u-7", {"team"}, {}});
    if (token == "hpa-token")
      co_return std::optional<core::user_info>(core::user_info{"hpa", "", {}, {}});
    co_return std::optional<core::user_info>();
  }

  std::atomic<int> reviews{0};
  std::atomic<bool> unavailable{false};
};

/// Allows user "hpa" (reason "RBAC: allowed") and denies everyone else ("no RBAC policy
/// matched"); records every review.
class fake_access_reviewer final : public core::access_reviewer {
 public:
  boost::asio::awaitable<result<core::authorization_decision>> async_review_access(
      core::request_attributes attributes) override {
    {
      std::lock_guard lock(mutex_);
      asked_.push_back(attributes);
    }
    if (unavailable) co_return errc::kubernetes_unavailable;
    if (attributes.user.name == "hpa")
      co_return core::authorization_decision{true, "RBAC: allowed"};
    co_return core::authorization_decision{false, "no RBAC policy matched"};
  }

  std::vector<core::request_attributes> asked() const {
    std::lock_guard lock(mutex_);
    return asked_;
  }

  std::atomic<bool> unavailable{false};

 private:
  mutable std::mutex mutex_;
  std::vector<core::request_attributes> asked_;  // guarded by mutex_
};

}  // namespace gma::testing
