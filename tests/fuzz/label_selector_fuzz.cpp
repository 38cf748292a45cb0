// Fuzz target: Kubernetes label selectors (server/core/label_selector), the labelSelector and
// metricLabelSelector query parameters every client sends. Beyond not crashing: a selector that
// parses prints (to_string, as Go's Selector.String()) to text that parses to the same
// requirements and prints the same again, and each requirement matches the label set it
// describes.

#include "server/core/label_selector.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;

namespace {

std::string describe(const core::label_selector& s) { return "\"" + s.to_string() + "\""; }

/// A label set that `r` must match by its definition, or nullopt for gt/lt (whose values are
/// numbers compared as such).
std::optional<core::label_map> satisfying(const core::requirement& r) {
  switch (r.op) {
    case core::selector_op::equals:
    case core::selector_op::double_equals:
    case core::selector_op::in:
      return core::label_map{{r.key, r.values.front()}};
    case core::selector_op::exists:
      return core::label_map{{r.key, "x"}};
    case core::selector_op::not_equals:
    case core::selector_op::not_in:
    case core::selector_op::does_not_exist:
      return core::label_map{};
    default:
      return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  fuzz::guarded([&] {
    std::string message;
    const auto selector = core::label_selector::parse(text, &message);
    if (!selector) {
      GMA_FUZZ_CHECK(selector.error() == errc::invalid_selector, selector.error().message());
      GMA_FUZZ_CHECK(!message.empty(), "a refused selector needs a reason for the client");
      return;
    }
    const std::string printed = selector->to_string();
    std::string again_message;
    const auto again = core::label_selector::parse(printed, &again_message);
    GMA_FUZZ_CHECK(again.has_value(),
                   "to_string() gave \"" + printed + "\", which does not parse: " + again_message);
    GMA_FUZZ_CHECK(again->requirements() == selector->requirements(),
                   describe(*selector) + " parses back as " + describe(*again));
    GMA_FUZZ_CHECK(again->to_string() == printed, printed + " prints as " + describe(*again));
    for (const auto& r : selector->requirements()) {
      GMA_FUZZ_CHECK(!r.values.empty() || r.op == core::selector_op::exists ||
                         r.op == core::selector_op::does_not_exist,
                     "requirement on " + r.key + " has no value");
      if (const auto labels = satisfying(r))
        GMA_FUZZ_CHECK(r.matches(*labels),
                       "a requirement of " + describe(*selector) + " misses its own labels");
    }
    // The JSON the metrics responses echo; dump() throws on invalid UTF-8.
    (void)selector->to_label_selector_json().dump();
    (void)selector->matches({{"app", "triton"}, {"gpu", "0"}, {"tier", "1"}});
  });
  return 0;
}
