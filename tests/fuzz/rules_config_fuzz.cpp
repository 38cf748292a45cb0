// Fuzz target: the prometheus-adapter rules file (adapters/prometheus/rules_config), read at
// start and on every reload. parse_rules documents config_error for a file it refuses; any
// other exception, from loading or from using what it loaded (discovery maps every series
// label through resource_for_label, requests render metricsQuery), is a bug: a rule that loads
// must work.

#include "adapters/prometheus/rules_config.hpp"
#include "adapters/prometheus/rules_query.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;
using namespace gma::adapters::prometheus;

namespace {

/// What discovery and requests do with a loaded rule, with inputs like the e2e tests'.
void exercise(const discovery_rule& rule, bool external) {
  static const core::label_selector kSelector =
      *core::label_selector::parse("gpu in (0,1),model!=llama,!legacy");
  for (const char* series : {"DCGM_FI_DEV_GPU_UTIL", "vllm:num_requests_waiting",
                             "http_requests_total", "container_cpu_usage_seconds_total", ""})
    (void)rule.metric_name(series);
  for (const char* label : {"namespace", "pod", "exported_namespace", "exported_pod",
                            "kubernetes_pod_name", "kube_deployment_apps", "node", ""})
    if (const auto resource = rule.resources.resource_for_label(label))
      GMA_FUZZ_CHECK(!resource->resource.empty() || std::string(label).empty() ||
                         rule.resources.overrides.count(label),
                     std::string("label ") + label + " maps to an empty resource");
  for (const group_resource& resource :
       {group_resource{"", "pods"}, group_resource{"", "namespaces"},
        group_resource{"apps", "deployments"}})
    (void)rule.resources.label_for_resource(resource);
  if (external) {
    (void)render_external_query(rule, "DCGM_FI_DEV_GPU_UTIL", "ml", kSelector);
  } else {
    (void)render_custom_query(rule, "DCGM_FI_DEV_GPU_UTIL", {"", "pods"}, std::string("ml"),
                              {"a", "b"}, kSelector);
    (void)render_custom_query(rule, "DCGM_FI_DEV_GPU_UTIL", {"", "namespaces"}, std::nullopt,
                              {"ml"}, core::label_selector());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::as_text(data, size));
  fuzz::guarded([&] {
    rules_config config;
    std::vector<std::string> warnings;
    try {
      config = parse_rules(text, "fuzz.yaml", &warnings);
    } catch (const config_error& e) {
      GMA_FUZZ_CHECK(std::string(e.what()).starts_with("fuzz.yaml:"),
                     std::string("a config error names the file and line: ") + e.what());
      return;
    }
    for (const auto& rule : config.rules) exercise(rule, false);
    for (const auto& rule : config.external_rules) exercise(rule, true);
  });
  return 0;
}
