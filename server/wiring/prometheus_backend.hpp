#pragma once
/// @file The metrics backend: the Prometheus connection, the rules (--config or the built-in
/// GPU rules), their discovery loop and hot reload.
///
/// @par Thread safety
/// Construct and start() before the io_context runs; reload() may be called from any thread.
/// The io_context and registry are borrowed and must outlive the backend.

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <memory>
#include <optional>
#include <string>

#include "adapters/http_client/http_client.hpp"
#include "adapters/prometheus/api_client.hpp"
#include "adapters/prometheus/cloud_token.hpp"
#include "adapters/prometheus/resource_provider.hpp"
#include "adapters/prometheus/rules_provider.hpp"
#include "adapters/prometheus/rules_reloader.hpp"
#include "server/config/options.hpp"
#include "server/core/supervisor.hpp"

namespace gma::wiring {

/// How to reach Prometheus with these flags. Throws config::usage_error for a bad
/// --prometheus-url and std::runtime_error for a file that does not load.
adapters::http_client::options prometheus_client_options(const config::options& opts);

/// The rules --config names, or the built-in GPU rules without it, with the name messages give
/// them ("built-in gpu-rules.yaml", or the path). `text` is nullopt when the file cannot be read.
struct rules_text {
  std::string name;
  std::optional<std::string> text;
};
rules_text read_rules_text(const std::string& config_file);

/// --prometheus-verb.
adapters::prometheus::request_verb query_verb(const config::options& opts);
/// The query parameters only some backends understand (--prometheus-partial-response).
adapters::prometheus::backend_parameters backend_parameters_from(const config::options& opts);

/// --metrics-relist-interval and --metrics-max-age, which defaults to the relist interval as in
/// prometheus-adapter.
adapters::prometheus::discovery_options discovery_options_from(const config::options& opts);

/// --metrics-cache-ttl, --metrics-serve-stale-for and --metrics-cache-max-entries, with the
/// wait bounded by --prometheus-query-timeout.
core::snapshot_cache_options cache_options_from(const config::options& opts);

class prometheus_backend {
 public:
  /// Loads the rules and builds the client from `client` (see prometheus_client_options).
  /// Throws adapters::prometheus::config_error for a rules file that does not load.
  prometheus_backend(boost::asio::io_context& ioc, const config::options& opts,
                     adapters::http_client::options client, prometheus::Registry& registry);

  /// Starts discovery and, for a rules file, its reload watch, both on one strand, and the
  /// caches' refreshers, the AWS credentials' refresh and the cloud token's refresher on
  /// strands of their own, under
  /// `loops`.
  void start(core::supervisor& loops);
  /// Reloads the rules file now (SIGHUP); nothing for the built-in rules.
  void reload();

  adapters::prometheus::rules_provider& rules() { return rules_; }
  /// metrics.k8s.io from the rules' resourceRules (serving nothing while they have none).
  adapters::prometheus::resource_provider& resources() { return resources_; }

 private:
  /// The rules in force at start, and the text they came from.
  struct loaded_rules {
    std::string text;
    adapters::prometheus::rules_config config;
  };
  static loaded_rules load_rules(const config::options& opts);
  /// Discovery, once the signer's first fetch has ended (at most 30 s).
  boost::asio::awaitable<void> async_run_discovery();
  prometheus_backend(boost::asio::io_context& ioc, const config::options& opts,
                     adapters::http_client::options client, prometheus::Registry& registry,
                     loaded_rules rules);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  /// SigV4 (--prometheus-sigv4-region), whose credentials start() keeps fresh; null: none.
  std::shared_ptr<adapters::http_client::request_signer> signer_;
  /// --prometheus-auth-provider's token, refreshed by the loop "prometheus-token"; else null.
  std::shared_ptr<adapters::prometheus::cloud_token_source> cloud_token_;
  adapters::http_client::http_client http_;
  adapters::prometheus::api_client api_;
  std::string config_file_;  // empty: built-in rules
  bool cache_refreshed_;     // false with --metrics-cache-ttl=0: nothing to refresh
  adapters::prometheus::rules_provider rules_;
  adapters::prometheus::resource_provider resources_;
  std::unique_ptr<adapters::prometheus::rules_reloader> reloader_;  // only for --config
};

}  // namespace gma::wiring
