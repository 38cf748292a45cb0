#pragma once
/// @file Delegated authentication and authorization, as Kubernetes extension API servers do it:
/// client CAs from flags or the extension-apiserver-authentication ConfigMap, TokenReviews and
/// SubjectAccessReviews, each with its own connection to the cluster. Also the refusal to start
/// without it.
///
/// @par Thread safety
/// Construct, guard() and start() before the io_context runs. The io_context and registry are
/// borrowed and must outlive this object.

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>

#include "adapters/http_client/http_client.hpp"
#include "adapters/kubernetes/cluster_access.hpp"
#include "adapters/kubernetes/delegation.hpp"
#include "server/auth/authenticator.hpp"
#include "server/auth/authorizer.hpp"
#include "server/auth/guarded_handler.hpp"
#include "server/config/options.hpp"
#include "server/core/supervisor.hpp"

namespace gma::wiring {

/// The clusters that review tokens and requests (--authentication-kubeconfig,
/// --authorization-kubeconfig, or in-cluster).
struct auth_clusters {
  std::optional<adapters::kubernetes::cluster_access> authentication;
  std::optional<adapters::kubernetes::cluster_access> authorization;
};

/// Reads the kubeconfigs (or the in-cluster account). Throws std::runtime_error for one that
/// does not load.
auth_clusters auth_clusters_from(const config::options& opts);

/// False, with the reason logged, when the server must not start: auth is not configured and
/// --insecure-skip-auth was not given. With --insecure-skip-auth it warns and returns true.
bool auth_allows_start(const config::options& opts, const auth_clusters& clusters);

class delegated_auth {
 public:
  /// With --insecure-skip-auth it does nothing. Throws std::runtime_error for CA files that do
  /// not load.
  delegated_auth(boost::asio::io_context& ioc, const config::options& opts, auth_clusters clusters,
                 prometheus::Registry& registry);

  /// The readiness of the client CA configuration; nullptr with --insecure-skip-auth.
  const core::readiness_source* readiness() const { return authn_.get(); }

  /// A handler that authenticates and authorizes every request before `inner`; `inner` itself
  /// with --insecure-skip-auth. `inner` must outlive this object.
  http::request_handler& guard(http::request_handler& inner);

  /// Starts following the client CAs, under `loops`: the CA files, or else the ConfigMap.
  void start(core::supervisor& loops);

 private:
  boost::asio::io_context& ioc_;
  prometheus::Registry& registry_;
  auth::authentication_files ca_files_;
  std::unique_ptr<adapters::http_client::http_client> authn_http_;
  std::unique_ptr<adapters::http_client::http_client> authz_http_;
  std::unique_ptr<adapters::kubernetes::token_review_client> token_reviews_;
  std::unique_ptr<adapters::kubernetes::access_review_client> access_reviews_;
  std::unique_ptr<auth::authenticator> authn_;
  std::unique_ptr<auth::authorizer> authz_;
  std::unique_ptr<auth::guarded_handler> guarded_;
};

}  // namespace gma::wiring
