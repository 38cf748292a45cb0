#include "adapters/prometheus/rules_reloader.hpp"

#include "server/core/log.hpp"
#include "server/core/text_file.hpp"

namespace gma::adapters::prometheus {

rules_reloader::rules_reloader(std::string path, std::string loaded_contents,
                               rules_provider& provider, ::prometheus::Registry& registry)
    : path_(std::move(path)),
      provider_(provider),
      failures_(
          ::prometheus::BuildCounter()
              .Name("gma_config_reload_failures_total")
              .Help("Reloads of the rules file that failed validation and kept the old rules.")
              .Register(registry)
              .Add({})),
      last_success_(::prometheus::BuildGauge()
                        .Name("gma_config_last_reload_success_timestamp_seconds")
                        .Help("When the rules file was last loaded successfully (Unix seconds).")
                        .Register(registry)
                        .Add({})),
      last_successful_(::prometheus::BuildGauge()
                           .Name("gma_config_last_reload_successful")
                           .Help("Whether the last load of the rules file succeeded (1) or "
                                 "failed and kept the previous rules (0).")
                           .Register(registry)
                           .Add({})),
      watcher_(
          core::file_contents_reader({path_}, "rules file"),
          [this](const std::string& text) {
            apply(text);
            return true;  // a broken file is reported once, not on every check
          },
          std::move(loaded_contents)) {
  last_success_.SetToCurrentTime();
  last_successful_.Set(1);
}

bool rules_reloader::reload() {
  const auto text = core::read_text_file(path_);
  if (!text) {
    failures_.Increment();
    last_successful_.Set(0);
    core::log::error("config reload failed: cannot read " + path_ + "; keeping the current rules");
    return false;
  }
  watcher_.remember(*text);
  return apply(*text);
}

bool rules_reloader::apply(const std::string& text) {
  std::vector<std::string> warnings;
  try {
    auto config = parse_rules(text, path_, &warnings);
    for (const auto& w : warnings) core::log::warning(w);
    provider_.request_reload(std::move(config));
  } catch (const config_error& e) {
    failures_.Increment();
    last_successful_.Set(0);
    core::log::error(std::string("config reload failed, keeping the current rules: ") + e.what());
    return false;
  }
  last_success_.SetToCurrentTime();
  last_successful_.Set(1);
  core::log::info("reloaded rules from " + path_);
  return true;
}

net::awaitable<void> rules_reloader::async_watch(std::chrono::seconds interval) {
  co_await watcher_.async_run(interval);
}

}  // namespace gma::adapters::prometheus
