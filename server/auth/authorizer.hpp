#pragma once
/// @file Delegated authorization: always-allowed paths and the system:masters group skip the
/// review; everything else is a SubjectAccessReview, with allowed and denied answers cached
/// for their own TTLs.
///
/// @par Thread safety
/// async_authorize may run concurrently; the cache is thread-safe. The reviewer is borrowed
/// and must outlive the authorizer.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "server/core/auth_types.hpp"
#include "server/core/ttl_cache.hpp"

namespace gma::auth {

struct authorization_options {
  std::vector<std::string> always_allow_paths{"/healthz", "/readyz", "/livez"};
  std::chrono::seconds allowed_ttl{10};
  std::chrono::seconds denied_ttl{10};
};

/// The decision cache's key: equal for two requests exactly when a SubjectAccessReview sees
/// the same user and attributes (the path counts for non-resource requests only). Each field
/// is written with its length and each list with its size, so no two different requests share
/// a key, and no JSON document is built on every request.
std::string authorization_cache_key(const core::request_attributes& attributes);

class authorizer {
 public:
  authorizer(core::access_reviewer& reviewer, authorization_options options);

  /// errc::kubernetes_unavailable when the review could not be made (never an implicit allow).
  /// `attributes` is borrowed until the returned awaitable completes: co_await it at once,
  /// with a named object (copied only when a review is needed).
  boost::asio::awaitable<result<core::authorization_decision>> async_authorize(
      const core::request_attributes& attributes);

  /// True for a path in --authorization-always-allow-paths ("/x" exact, "/x/*" prefix).
  bool always_allowed(const std::string& path) const;

 private:
  core::access_reviewer& reviewer_;
  authorization_options options_;
  core::ttl_cache<std::string, core::authorization_decision> cache_;
};

}  // namespace gma::auth
