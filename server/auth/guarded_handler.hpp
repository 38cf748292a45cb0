#pragma once
/// @file Authentication then authorization in front of another handler: 401 for rejected
/// credentials, 403 for denied requests, 503 when the cluster cannot be asked.
/// @par Thread safety
/// As the wrapped handler; everything it uses is borrowed and must outlive it.

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "server/auth/authenticator.hpp"
#include "server/auth/authorizer.hpp"
#include "server/http/message.hpp"

namespace gma::auth {

class guarded_handler final : public http::request_handler {
 public:
  guarded_handler(authenticator& authn, authorizer& authz, http::request_handler& inner,
                  prometheus::Registry& registry);

  boost::asio::awaitable<http::reply> async_handle(http::request req) override;

 private:
  authenticator& authn_;
  authorizer& authz_;
  http::request_handler& inner_;
  prometheus::Family<prometheus::Counter>& decisions_;
};

}  // namespace gma::auth
