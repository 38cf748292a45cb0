#pragma once
/// @file What the transport hands to a handler and gets back: one HTTP request, one reply, and
/// the request_handler interface the server calls. Handlers (the API, the auth guard) depend on
/// these types, never on sockets or TLS.

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/core/status.hpp"

namespace gma::http {

/// One HTTP request as the transport hands it over.
struct request {
  std::string method;
  std::string target;
  /// Header fields with lower-case names, in arrival order; repeated fields repeat.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The TLS client's certificate chain (leaf first, DER), verified by nobody yet; shared by
  /// every request of the connection. nullptr without a client certificate.
  std::shared_ptr<const std::vector<std::string>> client_chain;
};

struct reply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
};

/// A Status error as the reply Kubernetes sends: its code, application/json, Go's JSON.
reply status_reply(const core::status_error& e);

/// Anything that turns a request into a reply; the server calls one of these.
/// @par Thread safety
/// async_handle may run concurrently on many strands.
class request_handler {
 public:
  virtual ~request_handler() = default;
  virtual boost::asio::awaitable<reply> async_handle(request req) = 0;
};

}  // namespace gma::http
