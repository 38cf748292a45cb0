#pragma once
/// @file Who is asking and what they ask for, as k8s.io/apiserver's user.Info and
/// authorizer.Attributes, plus the seams to the cluster's TokenReview and SubjectAccessReview
/// APIs (implemented in adapters/kubernetes). Implementations must be thread-safe.

#include <boost/asio/awaitable.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/core/error.hpp"

namespace gma::core {

struct user_info {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
  friend bool operator==(const user_info&, const user_info&) = default;
};

/// authorizer.Attributes of one request (RequestInfo parsing of its path).
struct request_attributes {
  user_info user;
  std::string verb;  ///< get, list (no name), ...
  bool resource_request = false;
  std::string path;  ///< for non-resource requests
  std::string namespace_;
  std::string api_group;
  std::string api_version;
  std::string resource;
  std::string subresource;
  std::string name;
};

struct authorization_decision {
  bool allowed = false;
  std::string reason;  ///< the reviewer's words, appended to a 403 message
};

class token_reviewer {
 public:
  virtual ~token_reviewer() = default;
  /// TokenReview: the user for a valid token, nullopt for an invalid one;
  /// errc::kubernetes_unavailable when the cluster could not answer.
  virtual boost::asio::awaitable<result<std::optional<user_info>>> async_review_token(
      std::string token) = 0;
};

class access_reviewer {
 public:
  virtual ~access_reviewer() = default;
  /// SubjectAccessReview; errc::kubernetes_unavailable when the cluster could not answer.
  virtual boost::asio::awaitable<result<authorization_decision>> async_review_access(
      request_attributes attributes) = 0;
};

}  // namespace gma::core
