#include "adapters/prometheus/rules_reloader.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/core/log.hpp"
#include "server/core/text_file.hpp"

namespace gma::prometheus_adapter {

rules_reloader::rules_reloader(std::string path, std::string loaded_contents,
                               rules_provider& provider, prometheus::Registry& registry)
    : path_(std::move(path)),
      contents_(std::move(loaded_contents)),
      provider_(provider),
      failures_(prometheus::BuildCounter()
                    .Name("config_reload_failures_total")
                    .Help("Reloads of the rules file that failed validation and kept the old rules.")
                    .Register(registry)
                    .Add({})),
      last_success_(prometheus::BuildGauge()
                        .Name("config_last_reload_success_timestamp_seconds")
                        .Help("When the rules file was last loaded successfully (Unix seconds).")
                        .Register(registry)
                        .Add({})) {
  last_success_.SetToCurrentTime();
}

bool rules_reloader::reload() {
  const auto text = core::read_text_file(path_);
  if (!text) {
    failures_.Increment();
    log::error("config reload failed: cannot read " + path_ + "; keeping the current rules");
    return false;
  }
  contents_ = *text;
  std::vector<std::string> warnings;
  try {
    auto config = parse_rules(*text, path_, &warnings);
    for (const auto& w : warnings) log::warning(w);
    provider_.request_reload(std::move(config));
  } catch (const config_error& e) {
    failures_.Increment();
    log::error(std::string("config reload failed, keeping the current rules: ") + e.what());
    return false;
  }
  last_success_.SetToCurrentTime();
  log::info("reloaded rules from " + path_);
  return true;
}

net::awaitable<void> rules_reloader::async_watch(std::chrono::seconds interval) {
  net::steady_timer timer(co_await net::this_coro::executor);
  while (true) {
    timer.expires_after(interval);
    co_await timer.async_wait(net::use_awaitable);
    const auto text = core::read_text_file(path_);
    if (text && *text != contents_) reload();
  }
}

}  // namespace gma::prometheus_adapter
