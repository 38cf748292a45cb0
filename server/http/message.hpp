#pragma once
/// @file What the transport hands to a handler and gets back: one HTTP request, one reply, and
/// the request_handler interface the server calls. Handlers (the API, the auth guard) depend on
/// these types, never on sockets or TLS.

#include <any>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/core/status.hpp"

namespace gma::http {

/// The TLS client's certificate chain, taken once per connection and shared by each of its
/// requests, with room for one conclusion about it (a memo). The transport verifies nothing:
/// which CA vouches for the chain is the authenticator's call, and verifying it costs
/// signature checks. The memo lets the authenticator make that call once per connection (and
/// per CA configuration) instead of once per request.
///
/// @par Thread safety
/// der() is immutable. recall() and remember() may be called from any thread; they lock a
/// mutex of this connection only (its requests are answered one at a time, so it is
/// uncontended).
class client_certificate_chain {
 public:
  /// `der`: leaf first, DER.
  explicit client_certificate_chain(std::vector<std::string> der) : der_(std::move(der)) {}

  const std::vector<std::string>& der() const noexcept { return der_; }

  /// What remember() stored under `key` as a T; nullptr when nothing was, or it was stored
  /// under another key (the verifier's configuration has changed since) or as another type.
  template <class T>
  std::shared_ptr<const T> recall(std::uint64_t key) const {
    std::lock_guard lock(mutex_);
    if (memo_key_ != key) return nullptr;
    const auto* value = std::any_cast<std::shared_ptr<const T>>(&memo_);
    return value ? *value : nullptr;
  }

  /// Stores `value` under `key`, replacing what was stored before: a connection keeps one
  /// conclusion, the one for the configuration in force.
  template <class T>
  void remember(std::uint64_t key, std::shared_ptr<const T> value) const {
    std::lock_guard lock(mutex_);
    memo_key_ = key;
    memo_ = std::move(value);
  }

 private:
  const std::vector<std::string> der_;
  // A cache of a pure function of der_ and the key: logically const.
  mutable std::mutex mutex_;
  mutable std::uint64_t memo_key_ = 0;  // guarded by mutex_
  mutable std::any memo_;               // guarded by mutex_; a std::shared_ptr<const T>
};

/// One HTTP request as the transport hands it over.
struct request {
  std::string method;
  std::string target;
  /// Header fields with lower-case names, in arrival order; repeated fields repeat.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The TLS client's certificate chain, shared by every request of the connection; nullptr
  /// without a client certificate.
  std::shared_ptr<const client_certificate_chain> client_chain;
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
