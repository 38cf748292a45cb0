// Fuzz target: what the pod cache reads from the Kubernetes API (adapters/kubernetes/pod_cache):
// the whole input as a PodList body (decode_pod_list), and each of its lines as a watch event
// (pod_cache::apply_event) on a fresh cache. Invariants beyond not crashing: a decoded page
// has only named pods, and writing it back as a PodList decodes to the same page.

#include <boost/asio/io_context.hpp>

#include "adapters/kubernetes/pod_cache.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;
using namespace gma::adapters::kubernetes;

namespace {

/// The page as the API server would send it.
std::string encode(const pod_list_page& page) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& [ns, pods] : page.pods)
    for (const auto& [name, labels] : pods)
      items.push_back(
          {{"metadata", {{"namespace", ns}, {"name", name}, {"labels", nlohmann::json(labels)}}}});
  return nlohmann::json{
      {"kind", "PodList"},
      {"metadata", {{"continue", page.continue_token}, {"resourceVersion", page.resource_version}}},
      {"items", std::move(items)}}
      .dump();
}

bool same(const pod_list_page& a, const pod_list_page& b) {
  return a.pods == b.pods && a.continue_token == b.continue_token &&
         a.resource_version == b.resource_version;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  // The cache needs a client; it never connects, as only apply_event is called.
  static boost::asio::io_context ioc;
  static prometheus::Registry registry;
  static adapters::http_client::http_client client(
      ioc.get_executor(), adapters::http_client::options{
                              *adapters::http_client::endpoint::parse("http://127.0.0.1:1")});
  fuzz::guarded([&] {
    if (const auto page = decode_pod_list(text)) {
      for (const auto& [ns, pods] : page->pods)
        for (const auto& [name, labels] : pods)
          GMA_FUZZ_CHECK(!name.empty(), "a pod without a name in namespace " + ns);
      const auto again = decode_pod_list(encode(*page));
      GMA_FUZZ_CHECK(again.has_value() && same(*page, *again), "the page does not round-trip");
    }
    pod_cache cache(client, registry);
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t end = std::min(text.find('\n', start), text.size());
      (void)cache.apply_event(text.substr(start, end - start));
      start = end + 1;
    }
  });
  return 0;
}
