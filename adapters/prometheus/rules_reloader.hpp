#pragma once
/// @file Hot reload of the rules file: on SIGHUP (the caller calls reload()) or when the
/// file's contents change (a ConfigMap update swaps a symlink), the new file is loaded and
/// validated; a good one is handed to the provider, which swaps it in atomically, and a broken
/// one keeps the old rules, is logged with its file:line reason and counted in
/// gma_config_reload_failures_total. gma_config_last_reload_successful says whether the last
/// load worked, as prometheus_config_last_reload_successful does for Prometheus.
/// @par Thread safety
/// reload() and async_watch() must run on one strand, the discovery loop's.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>

#include "adapters/prometheus/rules_provider.hpp"
#include "server/core/change_watcher.hpp"

namespace gma::adapters::prometheus {

class rules_reloader {
 public:
  /// `loaded_contents` is the text the running config came from.
  rules_reloader(std::string path, std::string loaded_contents, rules_provider& provider,
                 ::prometheus::Registry& registry);

  /// Loads the file now (SIGHUP); true when it was valid and queued for the swap.
  bool reload();
  /// Checks the file every `interval` and reloads it when its contents changed. Runs until
  /// cancelled.
  net::awaitable<void> async_watch(std::chrono::seconds interval);

 private:
  /// Validates `text` and queues it; a broken file is logged and counted once.
  bool apply(const std::string& text);

  std::string path_;
  rules_provider& provider_;
  ::prometheus::Counter& failures_;
  ::prometheus::Gauge& last_success_;
  ::prometheus::Gauge& last_successful_;
  core::change_watcher<std::string> watcher_;
};

}  // namespace gma::adapters::prometheus
