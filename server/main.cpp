// Wiring only: flags -> components -> the io_context, until the stop signal. What each
// component is and how it is built lives in server/wiring/; the check command in server/cli/.

#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <iostream>

#include "adapters/prometheus/rules_config.hpp"
#include "server/cli/check.hpp"
#include "server/cli/explain_hpa.hpp"
#include "server/config/options.hpp"
#include "server/core/log.hpp"
#include "server/core/supervisor.hpp"
#include "server/handlers/api_handler.hpp"
#include "server/http/io_threads.hpp"
#include "server/http/lifecycle.hpp"
#include "server/http/server.hpp"
#include "server/http/tls.hpp"
#include "server/version.hpp"
#include "server/wiring/delegated_auth.hpp"
#include "server/wiring/pod_source.hpp"
#include "server/wiring/prometheus_backend.hpp"
#include "server/wiring/reload.hpp"

namespace {

namespace net = boost::asio;
using namespace gma;

http::tls_settings serving_tls_settings(const config::options& opts) {
  return {http::ensure_serving_certificate(opts.tls_cert_file, opts.tls_private_key_file,
                                           opts.cert_dir),
          opts.tls_min_version, opts.tls_cipher_suites, !opts.insecure_skip_auth};
}

net::ip::address bind_address(const config::options& opts) {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(opts.bind_address, ec);
  if (ec)
    throw config::usage_error("invalid value \"" + opts.bind_address + "\" for --bind-address");
  return address;
}

/// --threads, or the CPUs this process may use; logged, with why.
unsigned io_threads(const config::options& opts) {
  if (opts.threads > 0) {
    core::log::info("serving with " + std::to_string(opts.threads) + " I/O threads (--threads)");
    return opts.threads;
  }
  const auto choice = http::usable_io_threads();
  core::log::info("serving with " + std::to_string(choice.threads) + " I/O threads (" +
                  choice.reason + "; --threads overrides)");
  return choice.threads;
}

int serve(const config::options& opts) {
  const auto open_file_limit = http::raise_open_file_limit();
  auto auth_clusters = wiring::auth_clusters_from(opts);
  if (!wiring::auth_allows_start(opts, auth_clusters)) return 1;
  auto prometheus_client = wiring::prometheus_client_options(opts);
  http::reloading_server_context serving_tls(serving_tls_settings(opts));
  // Loops report to the supervisor until their frames are destroyed, so it outlives the
  // io_context.
  core::supervisor loops;
  const unsigned threads = io_threads(opts);
  http::stoppable_io_context ioc(static_cast<int>(threads));
  prometheus::Registry registry;

  wiring::prometheus_backend backend(ioc, opts, std::move(prometheus_client), registry);
  // Running pods and nodes are watched only for metrics.k8s.io, served while resourceRules are
  // set.
  const bool resource_rules = backend.rules().current_config()->resource.has_value();
  wiring::pod_source pods(ioc, opts.lister_kubeconfig, registry, resource_rules);
  wiring::delegated_auth auth(ioc, opts, std::move(auth_clusters), registry);
  handlers::handler_dependencies deps{&backend.rules(), &backend.rules(), pods.lister(), {},
                                      &registry,        GMA_VERSION};
  deps.resource_metrics = {&backend.resources(), pods.running_pods(), pods.nodes(),
                           pods.lister() != nullptr};
  for (const auto* source :
       {static_cast<const core::readiness_source*>(&backend.rules()), pods.readiness(),
        auth.readiness(), static_cast<const core::readiness_source*>(&loops)})
    if (source) deps.readiness.push_back(source);
  for (const auto* source : pods.resource_metrics_readiness()) deps.readiness.push_back(source);
  handlers::api_handler api(std::move(deps));
  http::request_handler& handler = auth.guard(api);
  const http::server_limits limits{
      .header_timeout = opts.request_header_timeout,
      .max_connections = http::connection_budget(opts.max_open_connections, open_file_limit)};
  http::listener server(ioc, bind_address(opts), static_cast<unsigned short>(opts.secure_port),
                        serving_tls, handler, limits);

  backend.start(loops);
  pods.start(loops);
  auth.start(loops);
  loops.spawn(net::make_strand(ioc), "serving-certificate",
              [&] { return serving_tls.async_watch(wiring::kReloadInterval); });
  loops.spawn(server.executor(), "listener", [&server] { return server.async_run(); });
  core::log::info("gpu-metrics-adapter " + std::string(GMA_VERSION) + " serving on https://" +
                  opts.bind_address + ":" + std::to_string(opts.secure_port) +
                  " with Prometheus at " + opts.prometheus_url);
  http::run_until_stopped(ioc, server,
                          {.threads = threads,
                           .drain_timeout = opts.shutdown_drain_timeout,
                           .on_hangup = [&backend] { backend.reload(); },
                           .on_stop = [&loops] { loops.stop(); }});
  return 0;
}

void warn_about_ignored_flags(const config::options& opts) {
  if (!opts.reference_binary_argument.empty())
    core::log::warning("ignoring the argument \"" + opts.reference_binary_argument +
                       "\": it names prometheus-adapter's binary, which its Helm chart passes "
                       "first; remove it from args");
  if (opts.ignored_flags.empty()) return;
  std::string list;
  for (const auto& f : opts.ignored_flags) list += (list.empty() ? "" : ", ") + f;
  core::log::warning("ignoring flags that only concern prometheus-adapter's Go runtime: " + list);
}

}  // namespace

int main(int argc, char** argv) {
  config::options opts;
  try {
    opts = config::parse_options({argv + 1, argv + argc});
  } catch (const config::usage_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 2;
  }
  if (opts.help) {
    std::cout << config::help_text();
    return 0;
  }
  if (opts.version) {
    std::cout << "gpu-metrics-adapter " << GMA_VERSION << "\n";
    return 0;
  }
  core::log::set_verbosity(opts.verbosity);
  warn_about_ignored_flags(opts);
  if (opts.cmd == config::command::check) return cli::run_check(opts);
  if (opts.cmd == config::command::explain_hpa) return cli::run_explain_hpa(opts);
  try {
    return serve(opts);
  } catch (const config::usage_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 2;
  } catch (const adapters::prometheus::config_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    core::log::error(std::string("cannot start: ") + e.what());
    return 1;
  }
}
