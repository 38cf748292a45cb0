#pragma once
/// @file Authentication then authorization in front of another handler: 401 for rejected
/// credentials, 403 for denied requests, 503 when the cluster cannot be asked.
/// @par Thread safety
/// As the wrapped handler; everything it uses (the registry included) is borrowed and must
/// outlive it. The self-metric handles are resolved once, at construction: a request only
/// increments a counter, never looks one up in its family.

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
  /// gma_auth_decisions_total, one counter per outcome. Every outcome is known in advance, so
  /// each series exists (at 0) from the start, as Prometheus' guidelines recommend.
  struct decision_counters {
    explicit decision_counters(prometheus::Family<prometheus::Counter>& family);
    prometheus::Counter& not_found;
    prometheus::Counter& authn_unavailable;
    prometheus::Counter& unauthorized;
    prometheus::Counter& authz_unavailable;
    prometheus::Counter& forbidden;
    prometheus::Counter& allowed;
  };

  authenticator& authn_;
  authorizer& authz_;
  http::request_handler& inner_;
  const decision_counters decisions_;
};

}  // namespace gma::auth
