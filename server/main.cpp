// Wiring only: flags -> components -> io_context. The one file that names concrete adapters.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <iostream>
#include <memory>
#include <thread>

#include "adapters/http_client/http_client.hpp"
#include "adapters/kubernetes/cluster_access.hpp"
#include "adapters/kubernetes/pod_cache.hpp"
#include "adapters/prometheus/api_client.hpp"
#include "adapters/prometheus/gpu_provider.hpp"
#include "server/config/options.hpp"
#include "server/core/log.hpp"
#include "server/handlers/api_handler.hpp"
#include "server/http/server.hpp"
#include "server/http/tls.hpp"
#include "server/version.hpp"

namespace {

namespace net = boost::asio;
using namespace gma;

std::shared_ptr<net::ssl::context> prometheus_tls_context(const std::string& ca_file) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  ctx->set_options(net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  if (ca_file.empty()) {
    ctx->set_default_verify_paths();
  } else {
    boost::system::error_code ec;
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("--prometheus-ca-file " + ca_file + ": " + ec.message());
  }
  ctx->set_verify_mode(net::ssl::verify_peer);
  return ctx;
}

void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error(std::string("background task failed: ") + ex.what());
  }
}

int run(const config::options& opts) {
  if (!opts.insecure_skip_auth) {
    log::error(
        "refusing to start: delegated authentication and authorization are not configured, so "
        "anyone who can reach the port could read every metric. Pass --insecure-skip-auth to "
        "serve without authentication (local testing only).");
    return 1;
  }
  log::warning(
      "--insecure-skip-auth is set: authentication and authorization are OFF and anyone who can "
      "reach this server can read every metric");

  auto prometheus_endpoint = http_client::endpoint::parse(opts.prometheus_url);
  if (!prometheus_endpoint)
    throw config::usage_error("invalid value \"" + opts.prometheus_url +
                              "\" for --prometheus-url: expected http(s)://host[:port][/path]");

  const auto certificate =
      http::ensure_serving_certificate(opts.tls_cert_file, opts.tls_private_key_file, opts.cert_dir);
  auto server_tls = http::make_server_context(certificate);

  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  net::io_context ioc(static_cast<int>(threads));
  prometheus::Registry registry;

  http_client::options prometheus_options;
  prometheus_options.target = *prometheus_endpoint;
  if (prometheus_endpoint->tls) prometheus_options.tls_context = prometheus_tls_context(opts.prometheus_ca_file);
  http_client::http_client prometheus_http(ioc.get_executor(), prometheus_options);
  prometheus_adapter::api_client prometheus_api(prometheus_http, prometheus_adapter::request_verb::get,
                                                opts.prometheus_query_timeout, registry);
  prometheus_adapter::gpu_provider provider(
      prometheus_api, {opts.metrics_relist_interval, opts.metrics_relist_interval}, registry);

  std::unique_ptr<http_client::http_client> kube_http;
  std::unique_ptr<kubernetes::pod_cache> pods;
  if (!opts.lister_kubeconfig.empty() || kubernetes::in_cluster_available()) {
    const auto access = opts.lister_kubeconfig.empty()
                            ? kubernetes::load_in_cluster()
                            : kubernetes::load_kubeconfig(opts.lister_kubeconfig);
    log::info("watching pods through " + access.description);
    kube_http = std::make_unique<http_client::http_client>(ioc.get_executor(), access.client_options);
    pods = std::make_unique<kubernetes::pod_cache>(*kube_http);
  } else {
    log::warning(
        "no Kubernetes access (no --lister-kubeconfig and not in a cluster): requests that "
        "select pods with labelSelector will get 503");
  }

  handlers::handler_dependencies deps;
  deps.custom = &provider;
  deps.external = &provider;
  deps.pods = pods.get();
  deps.readiness.push_back(&provider);
  if (pods) deps.readiness.push_back(pods.get());
  deps.registry = &registry;
  deps.version = GMA_VERSION;
  handlers::api_handler handler(std::move(deps));

  net::ip::tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  const auto address = net::ip::make_address(opts.bind_address, ec);
  if (ec) throw config::usage_error("invalid value \"" + opts.bind_address + "\" for --bind-address");
  const net::ip::tcp::endpoint listen_on(address, static_cast<unsigned short>(opts.secure_port));
  acceptor.open(listen_on.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(listen_on, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + opts.bind_address + ":" +
                             std::to_string(opts.secure_port) + ": " + ec.message());
  acceptor.listen();

  net::co_spawn(net::make_strand(ioc), provider.async_run_discovery(), log_failure);
  if (pods) net::co_spawn(net::make_strand(ioc), pods->async_run(), log_failure);
  net::co_spawn(acceptor.get_executor(), http::async_listen(acceptor, *server_tls, handler, {}),
                log_failure);

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int signal) {
    log::info("received signal " + std::to_string(signal) + ", shutting down");
    boost::system::error_code ignored;
    acceptor.close(ignored);
    ioc.stop();
  });

  log::info("gpu-metrics-adapter " + std::string(GMA_VERSION) + " serving on https://" +
            opts.bind_address + ":" + std::to_string(opts.secure_port) + " with Prometheus at " +
            opts.prometheus_url);
  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  config::options opts;
  try {
    opts = config::parse_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const config::usage_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 2;
  }
  if (opts.help) {
    std::cout << config::help_text();
    return 0;
  }
  log::set_verbosity(opts.verbosity);
  try {
    return run(opts);
  } catch (const config::usage_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    log::error(std::string("cannot start: ") + e.what());
    return 1;
  }
}
