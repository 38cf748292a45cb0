#include "server/auth/guarded_handler.hpp"

#include "server/auth/request_info.hpp"
#include "server/core/log.hpp"
#include "server/core/request_path.hpp"
#include "server/core/status.hpp"

namespace gma::auth {
using http::status_reply;

guarded_handler::decision_counters::decision_counters(
    prometheus::Family<prometheus::Counter>& family)
    : not_found(family.Add({{"decision", "not_found"}})),
      authn_unavailable(family.Add({{"decision", "authn_unavailable"}})),
      unauthorized(family.Add({{"decision", "unauthorized"}})),
      authz_unavailable(family.Add({{"decision", "authz_unavailable"}})),
      forbidden(family.Add({{"decision", "forbidden"}})),
      allowed(family.Add({{"decision", "allowed"}})) {}

guarded_handler::guarded_handler(authenticator& authn, authorizer& authz,
                                 http::request_handler& inner, prometheus::Registry& registry)
    : authn_(authn),
      authz_(authz),
      inner_(inner),
      decisions_(prometheus::BuildCounter()
                     .Name("gma_auth_decisions_total")
                     .Help("Authentication and authorization outcomes.")
                     .Register(registry)) {}

boost::asio::awaitable<http::reply> guarded_handler::async_handle(http::request req) {
  // A target that names nothing (an encoded '/' in a segment, a malformed escape) is a 404
  // before anyone is asked: authorizing it could review another resource than routing sees.
  const auto parsed = core::parse_request_path(req.target);
  if (!parsed.valid) {
    decisions_.not_found.Increment();
    co_return status_reply(core::resource_not_found());
  }
  auto authn = co_await authn_.async_authenticate(req);
  if (!authn) {
    decisions_.authn_unavailable.Increment();
    core::log::warning(
        "authentication of " + req.method + " " + req.target +
        " failed: the Kubernetes API could not review the token: " + authn.error().message());
    co_return status_reply(core::service_unavailable(
        "authentication is unavailable: the Kubernetes API could not review the token"));
  }
  if (authn->outcome == authentication_outcome::rejected) {
    decisions_.unauthorized.Increment();
    core::log::verbose(1,
                       [&] { return "rejected credentials for " + req.method + " " + req.target; });
    co_return status_reply(core::unauthorized());
  }
  core::request_attributes attributes = request_attributes_for(req.method, req.target, parsed);
  attributes.user = std::move(authn->user);
  auto decision = co_await authz_.async_authorize(attributes);
  if (!decision) {
    decisions_.authz_unavailable.Increment();
    core::log::warning(
        "authorization of " + req.method + " " + req.target + " for user \"" +
        attributes.user.name +
        "\" failed: the Kubernetes API could not review it: " + decision.error().message());
    co_return status_reply(core::service_unavailable(
        "authorization is unavailable: the Kubernetes API could not review the request"));
  }
  if (!decision->allowed) {
    decisions_.forbidden.Increment();
    core::log::verbose(1, [&] {
      return "forbidden: " + req.method + " " + req.target + " for user \"" + attributes.user.name +
             "\"";
    });
    co_return status_reply(core::forbidden(attributes, decision->reason));
  }
  decisions_.allowed.Increment();
  co_return co_await inner_.async_handle(std::move(req));
}

}  // namespace gma::auth
