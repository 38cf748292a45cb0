// Fuzz target: the Go template engine of metricsQuery and resources.template
// (adapters/prometheus/go_template), with the fields and data a custom-metrics request gives.
// Invariants beyond not crashing: text without an action renders as itself; a field the
// template does not use (uses()) cannot change what it renders; errors read as Go's
// ("template: q:...").

#include "adapters/prometheus/go_template.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;
using namespace gma::adapters::prometheus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  fuzz::guarded([&] {
    static const std::set<std::string> kFields = {"Series",       "LabelMatchers",     "GroupBy",
                                                  "GroupBySlice", "LabelValuesByName", "Group",
                                                  "Resource"};
    // What rules_query renders for pods/* in namespace ml.
    static const template_data kData = {
        {"Series", std::string("DCGM_FI_DEV_GPU_UTIL")},
        {"LabelMatchers", std::string(R"(namespace="ml",pod=~"a|b")")},
        {"GroupBy", std::string("pod")},
        {"GroupBySlice", std::vector<std::string>{"pod"}},
        {"LabelValuesByName",
         std::map<std::string, std::string>{{"namespace", "ml"}, {"pod", "a|b"}}},
        {"Group", std::string("apps")},
        {"Resource", std::string("deployment")}};
    std::string error;
    const auto parsed = go_template::parse(text, kFields, &error, "q");
    if (text.find("<<") == std::string_view::npos) {
      GMA_FUZZ_CHECK(parsed.has_value(), "text without actions is refused: " + error);
      GMA_FUZZ_CHECK(parsed->render(kData) == text, "text without actions renders otherwise");
      return;
    }
    if (!parsed) {
      GMA_FUZZ_CHECK(error.starts_with("template: q:"), "a refused template says why: " + error);
      return;
    }
    const auto executed = parsed->execute(kData, &error);
    GMA_FUZZ_CHECK(executed || error.starts_with("template: q:"),
                   "a failed execution says why: " + error);
    const std::string rendered = executed ? *executed : "";
    for (const auto& field : kFields) {
      if (parsed->uses(field)) continue;
      template_data without = kData;
      without.erase(field);
      GMA_FUZZ_CHECK(parsed->render(without) == rendered,
                     "rendering depends on ." + field + ", which uses() denies");
    }
  });
  return 0;
}
