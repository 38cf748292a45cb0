#include "server/wiring/prometheus_backend.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <stdexcept>

#include "adapters/kubernetes/cluster_access.hpp"
#include "adapters/prometheus/cloud_token.hpp"
#include "adapters/prometheus/connection.hpp"
#include "adapters/prometheus/default_rules.hpp"
#include "server/core/log.hpp"
#include "server/core/text_file.hpp"
#include "server/wiring/reload.hpp"

namespace gma::wiring {
namespace {

namespace prom = adapters::prometheus;

/// The environment variable `name`, or empty.
std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

/// --prometheus-auth-provider's token source. The Azure workload identity webhook sets the
/// AZURE_* variables in the pod; without them the exchange cannot work, so the start fails.
std::shared_ptr<prom::cloud_token_source> cloud_token_source(const config::options& opts) {
  prom::cloud_token_settings settings;
  if (opts.prometheus_auth_provider == "gcp") {
    settings.token_url = opts.prometheus_gcp_metadata_url;
  } else {
    settings.which = prom::cloud_token_settings::provider::azure;
    settings.client_id = env("AZURE_CLIENT_ID");
    settings.federated_token_file = env("AZURE_FEDERATED_TOKEN_FILE");
    const std::string tenant = env("AZURE_TENANT_ID");
    const std::pair<const char*, std::string> required[] = {
        {"AZURE_CLIENT_ID", settings.client_id},
        {"AZURE_TENANT_ID", tenant},
        {"AZURE_FEDERATED_TOKEN_FILE", settings.federated_token_file}};
    for (const auto& [name, value] : required)
      if (value.empty())
        throw std::runtime_error(std::string("--prometheus-auth-provider=azure needs ") + name +
                                 " in the environment (the Azure workload identity webhook sets "
                                 "it for pods labelled azure.workload.identity/use: \"true\")");
    std::string authority = opts.prometheus_azure_authority_host;
    if (authority.empty()) authority = env("AZURE_AUTHORITY_HOST");
    if (authority.empty()) authority = "https://login.microsoftonline.com/";
    if (!authority.ends_with('/')) authority += '/';
    settings.token_url = authority + tenant + "/oauth2/v2.0/token";
  }
  return std::make_shared<prom::cloud_token_source>(std::move(settings));
}

}  // namespace

rules_text read_rules_text(const std::string& config_file) {
  if (config_file.empty())
    return {"built-in gpu-rules.yaml", std::string(prom::default_rules_yaml())};
  return {config_file, core::read_text_file(config_file)};
}

prometheus_backend::loaded_rules prometheus_backend::load_rules(const config::options& opts) {
  auto [name, text] = read_rules_text(opts.config_file);
  if (!text) throw std::runtime_error("--config " + opts.config_file + ": cannot read the file");
  std::vector<std::string> warnings;
  auto config = prom::parse_rules(*text, name, &warnings);
  for (const auto& w : warnings) core::log::warning(w);
  core::log::info("serving " + std::to_string(config.rules.size()) + " rules and " +
                  std::to_string(config.external_rules.size()) + " external rules" +
                  (config.resource ? std::string(", and metrics.k8s.io from resourceRules,") : "") +
                  " from " + name);
  return {*text, std::move(config)};
}

adapters::http_client::options prometheus_client_options(const config::options& opts) {
  auto target = adapters::http_client::endpoint::parse(opts.prometheus_url);
  if (!target)
    throw config::usage_error("invalid value \"" + opts.prometheus_url +
                              "\" for --prometheus-url: expected http(s)://host[:port][/path]");
  prom::connection_settings settings{*target,
                                     opts.prometheus_ca_file,
                                     opts.prometheus_client_tls_cert_file,
                                     opts.prometheus_client_tls_key_file,
                                     opts.prometheus_token_file,
                                     opts.prometheus_headers,
                                     std::nullopt,
                                     opts.prometheus_sigv4_region,
                                     opts.prometheus_sigv4_service,
                                     opts.prometheus_sigv4_sts_endpoint};
  if (!opts.prometheus_auth_config.empty())
    settings.cluster_transport =
        adapters::kubernetes::load_kubeconfig(opts.prometheus_auth_config).client_options;
  if (opts.prometheus_auth_incluster)
    settings.cluster_transport = adapters::kubernetes::load_in_cluster().client_options;
  auto out = prom::client_options(settings);
  if (!opts.prometheus_auth_provider.empty()) out.tokens = cloud_token_source(opts);
  return out;
}

prom::request_verb query_verb(const config::options& opts) {
  return opts.prometheus_verb == "POST" ? prom::request_verb::post : prom::request_verb::get;
}

prom::backend_parameters backend_parameters_from(const config::options& opts) {
  prom::backend_parameters parameters;
  if (opts.prometheus_partial_response != "none")
    parameters.partial_response = opts.prometheus_partial_response == "allow";
  return parameters;
}

prom::discovery_options discovery_options_from(const config::options& opts) {
  prom::series_limits limits;
  limits.max_reply_bytes = opts.discovery_max_reply_bytes;
  limits.max_shapes = static_cast<std::size_t>(opts.discovery_max_series_shapes);
  // A fleet's series answer takes longer than a query: it may take up to a relist interval.
  limits.timeout = std::max<std::chrono::milliseconds>(opts.prometheus_query_timeout,
                                                       opts.metrics_relist_interval);
  return {opts.metrics_relist_interval,
          opts.metrics_max_age.count() ? opts.metrics_max_age : opts.metrics_relist_interval,
          opts.readiness_requires_prometheus, limits};
}

prometheus_backend::prometheus_backend(boost::asio::io_context& ioc, const config::options& opts,
                                       adapters::http_client::options client,
                                       prometheus::Registry& registry)
    : prometheus_backend(ioc, opts, std::move(client), registry, load_rules(opts)) {}

prometheus_backend::prometheus_backend(boost::asio::io_context& ioc, const config::options& opts,
                                       adapters::http_client::options client,
                                       prometheus::Registry& registry, loaded_rules rules)
    : strand_(boost::asio::make_strand(ioc)),
      signer_(client.signer),
      cloud_token_(std::dynamic_pointer_cast<prom::cloud_token_source>(client.tokens)),
      http_(ioc.get_executor(), std::move(client)),
      api_(http_, query_verb(opts), opts.prometheus_query_timeout, registry,
           backend_parameters_from(opts)),
      config_file_(opts.config_file),
      cache_refreshed_(opts.metrics_cache_ttl.count() > 0),
      rules_(api_, discovery_options_from(opts), std::move(rules.config), registry,
             ioc.get_executor(), cache_options_from(opts)),
      resources_(api_, rules_, ioc.get_executor(), cache_options_from(opts)) {
  if (!config_file_.empty())
    reloader_ = std::make_unique<prom::rules_reloader>(config_file_, std::move(rules.text), rules_,
                                                       registry);
}

core::snapshot_cache_options cache_options_from(const config::options& opts) {
  core::snapshot_cache_options cache;
  cache.ttl = opts.metrics_cache_ttl;
  cache.serve_stale_for = opts.metrics_serve_stale_for;
  cache.max_entries = static_cast<std::size_t>(opts.metrics_cache_max_entries);
  // Two default HPA sync periods (15 s): an HPA that reads every 15 or 30 s keeps its answers
  // warm, while an answer read once (a kubectl get --raw) costs a few refreshes, not a minute's.
  cache.keep_warm_for =
      std::max<std::chrono::milliseconds>(std::chrono::seconds(30), 2 * cache.ttl);
  // The query's own deadline (--prometheus-query-timeout plus api_client's 0.5 s for the
  // network): a request is answered 503 by then even if the query's deadline failed.
  cache.wait_limit = opts.prometheus_query_timeout + std::chrono::milliseconds(500);
  return cache;
}

void prometheus_backend::start(core::supervisor& loops) {
  // Started before discovery, whose first run waits for its first fetch (async_run_discovery).
  if (signer_ && signer_->refreshes())
    loops.spawn(boost::asio::make_strand(strand_.get_inner_executor()), "aws-credentials",
                [signer = signer_] { return signer->async_keep_fresh(); });
  if (cloud_token_)
    loops.spawn(boost::asio::make_strand(strand_.get_inner_executor()), "prometheus-token",
                [this] { return cloud_token_->async_run(); });
  loops.spawn(strand_, "metric-discovery", [this] { return async_run_discovery(); });
  if (cache_refreshed_)
    loops.spawn(boost::asio::make_strand(strand_.get_inner_executor()), "metric-cache",
                [this] { return rules_.async_run_cache_refresh(); });
  if (cache_refreshed_)
    loops.spawn(boost::asio::make_strand(strand_.get_inner_executor()), "resource-metrics-cache",
                [this] { return resources_.async_run_cache_refresh(); });
  if (reloader_)
    loops.spawn(strand_, "rules-file", [this] { return reloader_->async_watch(kReloadInterval); });
}

boost::asio::awaitable<void> prometheus_backend::async_run_discovery() {
  // Temporary AWS credentials are being fetched: a first discovery without them would fail and
  // leave every metric undiscovered for a whole relist interval. A failed fetch (logged) ends
  // the wait: discovery then says why it fails.
  if (signer_) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (int i = 0; i < 300 && !signer_->first_fetch_done(); ++i) {
      timer.expires_after(std::chrono::milliseconds(100));
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
  }
  co_await rules_.async_run_discovery();
}

void prometheus_backend::reload() {
  if (!reloader_) return;
  core::log::info("SIGHUP: reloading " + config_file_);
  boost::asio::post(strand_, [this] { reloader_->reload(); });
}

}  // namespace gma::wiring
