#include "server/cli/one_shot_backend.hpp"

#include <iostream>

#include "adapters/prometheus/cloud_token.hpp"
#include "server/wiring/prometheus_backend.hpp"

namespace gma::cli {

namespace prom = adapters::prometheus;

one_shot_backend::one_shot_backend(const config::options& opts)
    : client_(wiring::prometheus_client_options(opts)),
      http_(ioc_.get_executor(), client_),
      api_(http_, wiring::query_verb(opts), opts.prometheus_query_timeout, registry_,
           wiring::backend_parameters_from(opts)),
      rules_(api_, wiring::discovery_options_from(opts), {}, registry_, ioc_.get_executor()) {}

bool one_shot_backend::discover(prom::rules_config config) {
  // Temporary AWS credentials, fetched once: a command ends long before they expire.
  if (const auto& signer = http_.signer();
      signer && signer->refreshes() && !run(signer->async_fetch_once()))
    return false;
  // No loop refreshes a cloud token here: one token lasts the command.
  if (auto cloud = std::dynamic_pointer_cast<prom::cloud_token_source>(client_.tokens))
    if (!run(cloud->async_fetch_once())) return false;
  if (!run(rules_.async_discover(config))) return false;
  rules_.adopt(std::move(config));
  return true;
}

std::optional<prom::rules_config> load_rules_or_explain(const std::string& file) {
  const auto [name, text] = wiring::read_rules_text(file);
  if (!text) {
    std::cerr << file << ":0: cannot read the file\n";
    return std::nullopt;
  }
  std::vector<std::string> warnings;
  try {
    auto config = prom::parse_rules(*text, name, &warnings);
    for (const auto& w : warnings) std::cerr << "warning: " << w << "\n";
    return config;
  } catch (const prom::config_error& e) {
    std::cerr << e.what() << "\n";
    return std::nullopt;
  }
}

}  // namespace gma::cli
