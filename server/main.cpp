// Wiring only: flags -> components -> io_context. The one file that names concrete adapters.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <algorithm>
#include <sstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "adapters/http_client/http_client.hpp"
#include "adapters/kubernetes/cluster_access.hpp"
#include "adapters/kubernetes/delegation.hpp"
#include "adapters/kubernetes/pod_cache.hpp"
#include "adapters/prometheus/api_client.hpp"
#include "adapters/prometheus/default_rules.hpp"
#include "adapters/prometheus/rules_provider.hpp"
#include "adapters/prometheus/rules_reloader.hpp"
#include "server/auth/authenticator.hpp"
#include "server/auth/authorizer.hpp"
#include "server/auth/guarded_handler.hpp"
#include "server/config/options.hpp"
#include "server/core/log.hpp"
#include "server/core/text_file.hpp"
#include "server/handlers/api_handler.hpp"
#include "server/handlers/route.hpp"
#include "server/http/server.hpp"
#include "server/http/tls.hpp"
#include "server/version.hpp"

namespace {

namespace net = boost::asio;
using namespace gma;

// How often certificate files and the authentication ConfigMap are checked for changes.
constexpr std::chrono::seconds kReloadInterval{5};

prometheus_adapter::request_verb query_verb(const config::options& opts) {
  return opts.prometheus_verb == "POST" ? prometheus_adapter::request_verb::post
                                        : prometheus_adapter::request_verb::get;
}

/// --metrics-max-age defaults to the relist interval, as in prometheus-adapter.
prometheus_adapter::discovery_options discovery_options_from(const config::options& opts) {
  return {opts.metrics_relist_interval,
          opts.metrics_max_age.count() ? opts.metrics_max_age : opts.metrics_relist_interval};
}

/// How to reach Prometheus: the URL plus the TLS and credential flags of prometheus-adapter.
http_client::options prometheus_client_options(const config::options& opts,
                                               const http_client::endpoint& target) {
  http_client::options out;
  out.target = target;
  // --prometheus-auth-config / -incluster bring a whole transport (CA, token, client cert).
  std::optional<kubernetes::cluster_access> access;
  if (!opts.prometheus_auth_config.empty()) access = kubernetes::load_kubeconfig(opts.prometheus_auth_config);
  if (opts.prometheus_auth_incluster) access = kubernetes::load_in_cluster();
  if (access) {
    out.tls_context = access->client_options.tls_context;
    out.headers = access->client_options.headers;
    out.bearer_token_file = access->client_options.bearer_token_file;
  }
  const bool own_tls = !opts.prometheus_ca_file.empty() || !opts.prometheus_client_tls_cert_file.empty();
  if (target.tls && (own_tls || !out.tls_context)) {
    auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
    ctx->set_options(net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (opts.prometheus_ca_file.empty()) {
      ctx->set_default_verify_paths();
    } else if (ctx->load_verify_file(opts.prometheus_ca_file, ec); ec) {
      throw std::runtime_error("--prometheus-ca-file " + opts.prometheus_ca_file + ": " + ec.message());
    }
    if (!opts.prometheus_client_tls_cert_file.empty()) {
      ctx->use_certificate_chain_file(opts.prometheus_client_tls_cert_file, ec);
      if (!ec) ctx->use_private_key_file(opts.prometheus_client_tls_key_file, net::ssl::context::pem, ec);
      if (ec) throw std::runtime_error("--prometheus-client-tls-cert-file: " + ec.message());
    }
    ctx->set_verify_mode(net::ssl::verify_peer);
    out.tls_context = std::move(ctx);
  }
  if (!opts.prometheus_token_file.empty()) {
    if (!core::read_text_file(opts.prometheus_token_file))  // fail at start, not at the first query
      throw std::runtime_error("--prometheus-token-file " + opts.prometheus_token_file +
                               ": cannot read the file");
    out.bearer_token_file = opts.prometheus_token_file;
  }
  for (const auto& header : opts.prometheus_headers) out.headers.push_back(header);
  return out;
}

void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error(std::string("background task failed: ") + ex.what());
  }
}

/// Cluster access from an explicit kubeconfig, else the in-cluster service account, else none.
std::optional<kubernetes::cluster_access> cluster_access_from(const std::string& kubeconfig) {
  if (!kubeconfig.empty()) return kubernetes::load_kubeconfig(kubeconfig);
  if (kubernetes::in_cluster_available()) return kubernetes::load_in_cluster();
  return std::nullopt;
}

/// Why the server must not start without --insecure-skip-auth; empty when auth is configured.
std::string missing_auth_configuration(const config::options& opts, bool authn_cluster,
                                       bool authz_cluster) {
  std::string missing;
  if (opts.client_ca_file.empty() && opts.requestheader_client_ca_file.empty() && !authn_cluster)
    missing += " authentication needs --requestheader-client-ca-file or --client-ca-file, or "
               "--authentication-kubeconfig (or running in a cluster) to read them from "
               "kube-system/extension-apiserver-authentication;";
  if (!authz_cluster)
    missing += " authorization needs --authorization-kubeconfig (or running in a cluster) for "
               "SubjectAccessReviews;";
  return missing;
}

int run(const config::options& opts) {
  const auto authn_access = cluster_access_from(opts.authentication_kubeconfig);
  const auto authz_access = cluster_access_from(opts.authorization_kubeconfig);
  if (opts.insecure_skip_auth) {
    log::warning(
        "--insecure-skip-auth is set: authentication and authorization are OFF and anyone who "
        "can reach this server can read every metric");
  } else if (const auto missing = missing_auth_configuration(opts, authn_access.has_value(),
                                                             authz_access.has_value());
             !missing.empty()) {
    log::error("refusing to start: delegated authentication and authorization are not "
               "configured, so anyone who can reach the port could read every metric:" +
               missing + " or pass --insecure-skip-auth to serve without them (local testing only).");
    return 1;
  }

  auto prometheus_endpoint = http_client::endpoint::parse(opts.prometheus_url);
  if (!prometheus_endpoint)
    throw config::usage_error("invalid value \"" + opts.prometheus_url +
                              "\" for --prometheus-url: expected http(s)://host[:port][/path]");

  const auto certificate =
      http::ensure_serving_certificate(opts.tls_cert_file, opts.tls_private_key_file, opts.cert_dir);
  http::tls_settings tls_settings{certificate, opts.tls_min_version, opts.tls_cipher_suites,
                                  !opts.insecure_skip_auth};
  http::reloading_server_context serving_tls(tls_settings);

  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  net::io_context ioc(static_cast<int>(threads));
  prometheus::Registry registry;

  http_client::http_client prometheus_http(ioc.get_executor(),
                                           prometheus_client_options(opts, *prometheus_endpoint));
  prometheus_adapter::api_client prometheus_api(prometheus_http, query_verb(opts),
                                                opts.prometheus_query_timeout, registry);

  // The metrics: a prometheus-adapter rules file, or the built-in GPU rules.
  const bool builtin = opts.config_file.empty();
  const std::string rules_name = builtin ? "built-in gpu-rules.yaml" : opts.config_file;
  const auto text = builtin ? std::optional<std::string>(prometheus_adapter::default_rules_yaml())
                            : core::read_text_file(opts.config_file);
  if (!text) throw std::runtime_error("--config " + opts.config_file + ": cannot read the file");
  std::vector<std::string> warnings;
  auto config = prometheus_adapter::parse_rules(*text, rules_name, &warnings);
  for (const auto& w : warnings) log::warning(w);
  log::info("serving " + std::to_string(config.rules.size()) + " rules and " +
            std::to_string(config.external_rules.size()) + " external rules from " + rules_name);
  prometheus_adapter::rules_provider rules(prometheus_api, discovery_options_from(opts),
                                           std::move(config), registry);
  std::unique_ptr<prometheus_adapter::rules_reloader> reloader;
  if (!builtin)
    reloader = std::make_unique<prometheus_adapter::rules_reloader>(opts.config_file, *text, rules,
                                                                    registry);

  std::unique_ptr<http_client::http_client> kube_http;
  std::unique_ptr<kubernetes::pod_cache> pods;
  if (const auto access = cluster_access_from(opts.lister_kubeconfig)) {
    log::info("watching pods through " + access->description);
    kube_http = std::make_unique<http_client::http_client>(ioc.get_executor(), access->client_options);
    pods = std::make_unique<kubernetes::pod_cache>(*kube_http);
  } else {
    log::warning(
        "no Kubernetes access (no --lister-kubeconfig and not in a cluster): requests that "
        "select pods with labelSelector will get 503");
  }

  handlers::handler_dependencies deps;
  deps.custom = &rules;
  deps.external = &rules;
  deps.pods = pods.get();
  deps.readiness.push_back(&rules);
  if (pods) deps.readiness.push_back(pods.get());
  deps.registry = &registry;
  deps.version = GMA_VERSION;
  // Delegated authentication and authorization, each with its own connection to the cluster.
  std::unique_ptr<http_client::http_client> authn_http;
  std::unique_ptr<http_client::http_client> authz_http;
  std::unique_ptr<kubernetes::token_review_client> token_reviews;
  std::unique_ptr<kubernetes::access_review_client> access_reviews;
  std::unique_ptr<auth::authenticator> authn;
  std::unique_ptr<auth::authorizer> authz;
  const auth::authentication_files ca_files{opts.client_ca_file, opts.requestheader_client_ca_file,
                                            opts.requestheader_allowed_names,
                                            opts.requestheader_username_headers,
                                            opts.requestheader_group_headers,
                                            opts.requestheader_extra_headers_prefix};
  if (!opts.insecure_skip_auth) {
    if (authn_access) {
      authn_http = std::make_unique<http_client::http_client>(ioc.get_executor(),
                                                              authn_access->client_options);
      token_reviews = std::make_unique<kubernetes::token_review_client>(*authn_http);
      log::info("authenticating tokens through " + authn_access->description);
    }
    authn = std::make_unique<auth::authenticator>(token_reviews.get(),
                                                  opts.authentication_token_webhook_cache_ttl);
    if (!ca_files.empty())
      authn->set_config(std::make_shared<const auth::authentication_config>(
          auth::config_from_files(ca_files)));
    authz_http = std::make_unique<http_client::http_client>(ioc.get_executor(),
                                                            authz_access->client_options);
    access_reviews = std::make_unique<kubernetes::access_review_client>(*authz_http);
    authz = std::make_unique<auth::authorizer>(
        *access_reviews, auth::authorization_options{opts.authorization_always_allow_paths,
                                                     opts.authorization_webhook_cache_authorized_ttl,
                                                     opts.authorization_webhook_cache_unauthorized_ttl});
    log::info("authorizing through " + authz_access->description);
    deps.readiness.push_back(authn.get());
  }
  handlers::api_handler api(std::move(deps));
  std::unique_ptr<auth::guarded_handler> guarded;
  if (authn) guarded = std::make_unique<auth::guarded_handler>(*authn, *authz, api, registry);
  handlers::request_handler& handler = guarded ? static_cast<handlers::request_handler&>(*guarded) : api;

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

  const auto config_strand = net::make_strand(ioc);
  net::co_spawn(config_strand, rules.async_run_discovery(), log_failure);
  if (reloader) net::co_spawn(config_strand, reloader->async_watch(kReloadInterval), log_failure);
  if (pods) net::co_spawn(net::make_strand(ioc), pods->async_run(), log_failure);
  net::co_spawn(net::make_strand(ioc), serving_tls.async_watch(kReloadInterval), log_failure);
  if (authn && !ca_files.empty())
    net::co_spawn(net::make_strand(ioc), authn->async_watch_files(ca_files, kReloadInterval),
                  log_failure);
  if (authn && ca_files.empty()) {
    // No CA flags: trust what kube-apiserver publishes, and follow its changes.
    auto on_change = [&authn](const std::map<std::string, std::string>& data) {
      try {
        authn->set_config(std::make_shared<const auth::authentication_config>(
            auth::config_from_configmap(data)));
        log::info("loaded client CAs from kube-system/extension-apiserver-authentication");
      } catch (const std::exception& e) {
        log::warning(std::string("kube-system/extension-apiserver-authentication: ") + e.what());
      }
    };
    net::co_spawn(net::make_strand(ioc),
                  kubernetes::async_watch_configmap(*authn_http, "kube-system",
                                                    "extension-apiserver-authentication",
                                                    kReloadInterval, on_change),
                  log_failure);
  }
  http::in_flight_requests in_flight;
  net::co_spawn(acceptor.get_executor(),
                http::async_listen(acceptor, serving_tls, handler, in_flight,
                                   http::server_limits{.max_connections = opts.max_open_connections}),
                log_failure);

  net::signal_set hangups(ioc, SIGHUP);
  std::function<void()> wait_for_hangup = [&] {
    hangups.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (reloader) {
        log::info("SIGHUP: reloading " + opts.config_file);
        net::post(config_strand, [&] { reloader->reload(); });
      }
      wait_for_hangup();
    });
  };
  wait_for_hangup();

  // On SIGTERM stop accepting, let the requests being answered finish (at most 10 s, well
  // inside Kubernetes' 30 s grace period), then stop.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain(ioc);
  std::chrono::steady_clock::time_point drain_deadline;
  std::function<void()> stop_when_drained = [&] {
    if (in_flight.count() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      if (in_flight.count() != 0)
        log::warning(std::to_string(in_flight.count()) + " requests still running at shutdown");
      ioc.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(50));
    drain.async_wait([&](const boost::system::error_code&) { stop_when_drained(); });
  };
  signals.async_wait([&](const boost::system::error_code&, int signal) {
    log::info("received signal " + std::to_string(signal) + ", shutting down");
    boost::system::error_code ignored;
    acceptor.close(ignored);
    hangups.cancel(ignored);
    drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    stop_when_drained();
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

/// A full API path for an --explain request: "/apis/..." as it is; "namespaces/NS/METRIC" is an
/// external metric; anything else under namespaces/ is custom.metrics.k8s.io/v1beta2.
std::string explain_target(const std::string& request) {
  std::string target = request.starts_with("/") ? request : "/" + request;
  if (target.starts_with("/apis/")) return target;
  const std::string path = target.substr(0, target.find('?'));
  const bool external = std::count(path.begin(), path.end(), '/') == 3;
  return (external ? "/apis/external.metrics.k8s.io/v1beta1" : "/apis/custom.metrics.k8s.io/v1beta2") + target;
}

/// `gpu-metrics-adapter check`: validates --config and, with a Prometheus, shows what each
/// rule discovers and the PromQL that requests given with --explain would send.
int run_check(const config::options& opts, const std::vector<std::string>& explain,
              bool prometheus_given) {
  if (opts.config_file.empty()) {
    std::cerr << "Error: check needs --config FILE\n";
    return 1;
  }
  const auto text = core::read_text_file(opts.config_file);
  if (!text) {
    std::cerr << opts.config_file << ":0: cannot read the file\n";
    return 1;
  }
  std::vector<std::string> warnings;
  prometheus_adapter::rules_config config;
  try {
    config = prometheus_adapter::parse_rules(*text, opts.config_file, &warnings);
  } catch (const prometheus_adapter::config_error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  for (const auto& w : warnings) std::cerr << "warning: " << w << "\n";
  std::cout << opts.config_file << ": OK (" << config.rules.size() << " rules, "
            << config.external_rules.size() << " external rules)\n";
  if (!prometheus_given) {
    if (!explain.empty()) {
      std::cerr << "Error: --explain needs --prometheus-url: the query names the series discovery finds\n";
      return 1;
    }
    return 0;
  }
  auto endpoint = http_client::endpoint::parse(opts.prometheus_url);
  if (!endpoint) {
    std::cerr << "Error: invalid --prometheus-url " << opts.prometheus_url << "\n";
    return 1;
  }
  net::io_context ioc;
  prometheus::Registry registry;
  http_client::http_client http(ioc.get_executor(), prometheus_client_options(opts, *endpoint));
  prometheus_adapter::api_client api(http, query_verb(opts), opts.prometheus_query_timeout, registry);
  prometheus_adapter::rules_provider rules(api, discovery_options_from(opts), config, registry);
  auto discovered = net::co_spawn(ioc, rules.async_discover(config), net::use_future);
  ioc.run();
  if (!discovered.get()) {
    std::cerr << "Error: discovery failed: Prometheus at " << opts.prometheus_url
              << " did not answer every series query\n";
    return 1;
  }
  rules.adopt(std::move(config));
  for (const auto& line : rules.describe_discovered()) std::cout << line << "\n";
  int status = 0;
  for (const auto& request : explain) {
    const auto parsed = handlers::parse_target(explain_target(request));
    std::string selector_text;
    if (auto it = parsed.query.find("labelSelector"); it != parsed.query.end()) selector_text = it->second;
    auto selector = core::label_selector::parse(selector_text);
    result<std::string> promql = errc::path_not_found;
    std::string note;
    if (const auto* r = std::get_if<handlers::custom_metric_route>(&parsed.target)) {
      core::custom_metric_query q{r->resource, r->namespace_, r->name, r->metric, {}, std::nullopt};
      if (auto it = parsed.query.find("metricLabelSelector"); it != parsed.query.end())
        if (auto s = core::label_selector::parse(it->second)) q.metric_selector = *s;
      if (r->name == "*" && selector && !selector->empty())
        note = "  # served, this also selects the pods matching labelSelector=" + selector_text +
               " (read from the Kubernetes API)\n";
      promql = rules.explain_custom(q);
    } else if (const auto* e = std::get_if<handlers::external_metric_route>(&parsed.target)) {
      promql = selector ? rules.explain_external({e->namespace_, e->metric, *selector})
                        : result<std::string>(errc::invalid_selector);
    }
    std::cout << "explain " << request << ":\n";
    if (!promql) {
      std::cout << "  error: " << promql.error().message() << "\n";
      status = 1;
      continue;
    }
    std::istringstream lines(*promql);
    for (std::string line; std::getline(lines, line);) std::cout << "  " << line << "\n";
    std::cout << note;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  config::options opts;
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool check = !args.empty() && args.front() == "check";
  std::vector<std::string> explain;
  bool prometheus_given = false;
  if (check) {
    args.erase(args.begin());
    for (std::size_t i = 0; i < args.size();) {
      if (args[i] == "--explain" && i + 1 < args.size()) {
        explain.push_back(args[i + 1]);
        args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      } else if (args[i].starts_with("--explain=")) {
        explain.push_back(args[i].substr(10));
        args.erase(args.begin() + static_cast<long>(i));
      } else {
        prometheus_given = prometheus_given || args[i].starts_with("--prometheus-url");
        ++i;
      }
    }
  }
  try {
    opts = config::parse_options(args);
  } catch (const config::usage_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 2;
  }
  if (opts.help) {
    std::cout << config::help_text();
    return 0;
  }
  log::set_verbosity(opts.verbosity);
  if (check) {
    try {
      return run_check(opts, explain, prometheus_given);
    } catch (const std::exception& e) {
      std::cerr << "Error: " << e.what() << "\n";
      return 1;
    }
  }
  if (!opts.ignored_flags.empty()) {
    std::string list;
    for (const auto& f : opts.ignored_flags) list += (list.empty() ? "" : ", ") + f;
    log::warning("ignoring flags that only concern prometheus-adapter's Go runtime: " + list);
  }
  try {
    return run(opts);
  } catch (const config::usage_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 2;
  } catch (const prometheus_adapter::config_error& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    log::error(std::string("cannot start: ") + e.what());
    return 1;
  }
}
