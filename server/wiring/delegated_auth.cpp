#include "server/wiring/delegated_auth.hpp"

#include <boost/asio/strand.hpp>

#include "server/core/log.hpp"
#include "server/wiring/cluster.hpp"
#include "server/wiring/reload.hpp"

namespace gma::wiring {
namespace {

/// Why the server must not start without --insecure-skip-auth; empty when auth is configured.
std::string missing_auth_configuration(const config::options& opts, const auth_clusters& clusters) {
  std::string missing;
  if (opts.client_ca_file.empty() && opts.requestheader_client_ca_file.empty() &&
      !clusters.authentication)
    missing +=
        " authentication needs --requestheader-client-ca-file or --client-ca-file, or "
        "--authentication-kubeconfig (or running in a cluster) to read them from "
        "kube-system/extension-apiserver-authentication;";
  if (!clusters.authorization)
    missing +=
        " authorization needs --authorization-kubeconfig (or running in a cluster) for "
        "SubjectAccessReviews;";
  return missing;
}

/// Trusts what kube-apiserver publishes in the ConfigMap, and follows its changes.
void use_configmap_data(auth::authenticator& authn,
                        const std::map<std::string, std::string>& data) {
  try {
    authn.set_config(
        std::make_shared<const auth::authentication_config>(auth::config_from_configmap(data)));
    core::log::info("loaded client CAs from kube-system/extension-apiserver-authentication");
  } catch (const std::exception& e) {
    core::log::warning(std::string("kube-system/extension-apiserver-authentication: ") + e.what());
  }
}

}  // namespace

auth_clusters auth_clusters_from(const config::options& opts) {
  return {cluster_access_from(opts.authentication_kubeconfig),
          cluster_access_from(opts.authorization_kubeconfig)};
}

bool auth_allows_start(const config::options& opts, const auth_clusters& clusters) {
  if (opts.insecure_skip_auth) {
    core::log::warning(
        "--insecure-skip-auth is set: authentication and authorization are OFF and anyone who "
        "can reach this server can read every metric");
    return true;
  }
  const auto missing = missing_auth_configuration(opts, clusters);
  if (missing.empty()) return true;
  core::log::error(
      "refusing to start: delegated authentication and authorization are not "
      "configured, so anyone who can reach the port could read every metric:" +
      missing + " or pass --insecure-skip-auth to serve without them (local testing only).");
  return false;
}

delegated_auth::delegated_auth(boost::asio::io_context& ioc, const config::options& opts,
                               auth_clusters clusters, prometheus::Registry& registry)
    : ioc_(ioc),
      registry_(registry),
      ca_files_{opts.client_ca_file,
                opts.requestheader_client_ca_file,
                opts.requestheader_allowed_names,
                opts.requestheader_username_headers,
                opts.requestheader_group_headers,
                opts.requestheader_extra_headers_prefix} {
  if (opts.insecure_skip_auth) return;
  if (clusters.authentication) {
    authn_http_ = std::make_unique<adapters::http_client::http_client>(
        ioc.get_executor(), clusters.authentication->client_options);
    token_reviews_ = std::make_unique<adapters::kubernetes::token_review_client>(*authn_http_);
    core::log::info("authenticating tokens through " + clusters.authentication->description);
  }
  authn_ = std::make_unique<auth::authenticator>(token_reviews_.get(),
                                                 opts.authentication_token_webhook_cache_ttl);
  if (!ca_files_.empty())
    authn_->set_config(
        std::make_shared<const auth::authentication_config>(auth::config_from_files(ca_files_)));
  authz_http_ = std::make_unique<adapters::http_client::http_client>(
      ioc.get_executor(), clusters.authorization->client_options);
  access_reviews_ = std::make_unique<adapters::kubernetes::access_review_client>(*authz_http_);
  authz_ = std::make_unique<auth::authorizer>(
      *access_reviews_,
      auth::authorization_options{opts.authorization_always_allow_paths,
                                  opts.authorization_webhook_cache_authorized_ttl,
                                  opts.authorization_webhook_cache_unauthorized_ttl});
  core::log::info("authorizing through " + clusters.authorization->description);
}

http::request_handler& delegated_auth::guard(http::request_handler& inner) {
  if (!authn_) return inner;
  guarded_ = std::make_unique<auth::guarded_handler>(*authn_, *authz_, inner, registry_);
  return *guarded_;
}

void delegated_auth::start(core::supervisor& loops) {
  if (!authn_) return;
  if (!ca_files_.empty()) {
    loops.spawn(boost::asio::make_strand(ioc_), "client-ca-files",
                [this] { return authn_->async_watch_files(ca_files_, kReloadInterval); });
  } else if (authn_http_) {
    loops.spawn(boost::asio::make_strand(ioc_), "extension-apiserver-authentication", [this] {
      return adapters::kubernetes::async_watch_configmap(
          *authn_http_, "kube-system", "extension-apiserver-authentication", kReloadInterval,
          [this](const std::map<std::string, std::string>& data) {
            use_configmap_data(*authn_, data);
          });
    });
  }
}

}  // namespace gma::wiring
