#pragma once
/// @file Reading one object (or one list) from the Kubernetes API, for commands that look at
/// the cluster once, such as `explain-hpa`. Not for serving: the server reads pods from its
/// watch cache.
///
/// @par Thread safety
/// Stateless; the transport must outlive the call.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "adapters/http_client/http_client.hpp"
#include "server/core/error.hpp"

namespace gma::adapters::kubernetes {

/// Why a read failed, in words that a user can act on: "HTTP 404: deployments.apps \"x\" not
/// found" (the Status' message), or the transport's reason.
struct read_failure {
  unsigned http_status = 0;  ///< 0 when no answer came
  std::string message;
};

/// GETs `path` ("/apis/apps/v1/namespaces/ns/deployments/x") as JSON. A non-200 answer is
/// errc::backend_error, no answer errc::backend_unavailable and a body that is not a JSON
/// object errc::protocol_error, each with `failure` filled in.
boost::asio::awaitable<result<nlohmann::json>> async_read_object(http_client::transport& client,
                                                                 std::string path,
                                                                 std::chrono::milliseconds timeout,
                                                                 read_failure& failure);

/// The API path of a namespaced object: "/api/v1/namespaces/NS/PLURAL/NAME" for the core
/// group ("v1"), "/apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME" otherwise.
std::string object_path(const std::string& api_version, const std::string& plural,
                        const std::string& namespace_, const std::string& name);

}  // namespace gma::adapters::kubernetes
