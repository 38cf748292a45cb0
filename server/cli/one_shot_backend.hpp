#pragma once
/// @file The Prometheus side of a command that runs once (`check`, `explain-hpa`): the same
/// client, rules provider and discovery as the server, driven step by step on one io_context
/// instead of by loops, with no answer cache.
///
/// @par Thread safety
/// One thread: everything runs on the caller's thread inside run().

#include <prometheus/registry.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "adapters/http_client/http_client.hpp"
#include "adapters/prometheus/api_client.hpp"
#include "adapters/prometheus/rules_provider.hpp"
#include "server/config/options.hpp"

namespace gma::cli {

class one_shot_backend {
 public:
  /// Builds the client from the --prometheus-* flags; throws config::usage_error or
  /// std::runtime_error as the server's start-up does.
  explicit one_shot_backend(const config::options& opts);

  /// One discovery run of `config`, then adopts it. False when a series query failed (or, with
  /// --prometheus-auth-provider, no access token came).
  bool discover(adapters::prometheus::rules_config config);

  /// Runs `work` until it is done; its result.
  template <typename T>
  T run(boost::asio::awaitable<T> work) {
    auto done = boost::asio::co_spawn(ioc_, std::move(work), boost::asio::use_future);
    ioc_.restart();
    ioc_.run();
    return done.get();
  }

  boost::asio::io_context& context() { return ioc_; }
  adapters::prometheus::api_client& api() { return api_; }
  adapters::prometheus::rules_provider& rules() { return rules_; }

 private:
  boost::asio::io_context ioc_;
  prometheus::Registry registry_;
  adapters::http_client::options client_;
  adapters::http_client::http_client http_;
  adapters::prometheus::api_client api_;
  adapters::prometheus::rules_provider rules_;
};

/// The rules of --config, or the built-in GPU rules without it, with warnings printed to
/// stderr. nullopt after printing why the file does not load.
std::optional<adapters::prometheus::rules_config> load_rules_or_explain(const std::string& file);

}  // namespace gma::cli
