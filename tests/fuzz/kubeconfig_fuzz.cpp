// Fuzz target: kubeconfig files (adapters/kubernetes/cluster_access, parse_kubeconfig), read at
// start for --lister-kubeconfig, --authentication-kubeconfig, --authorization-kubeconfig and
// --prometheus-auth-config. They document std::runtime_error with a reason for a file they
// refuse; yaml-cpp's own exceptions (which derive from it but name no file) or any other type
// escaping is a bug. Relative file names resolve in an empty scratch folder, so the target
// reads no file of the machine unless the input names one by absolute path.

#include <yaml-cpp/exceptions.h>

#include <cstdlib>
#include <filesystem>

#include "adapters/kubernetes/cluster_access.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace gma;
using namespace gma::adapters::kubernetes;

namespace {

/// An empty folder for the life of the process, removed at exit. Never destroyed itself: the
/// exit handler runs after the destructors of statics made before it was registered.
const std::string& scratch_folder() {
  static const std::string* const folder = [] {
    std::string pattern = std::filesystem::temp_directory_path() / "gma-kubeconfig-XXXXXX";
    if (!mkdtemp(pattern.data())) gma::fuzz::fail("cannot create a scratch folder");
    auto* made = new std::string(std::move(pattern));
    std::atexit([] { std::filesystem::remove_all(scratch_folder()); });
    return made;
  }();
  return *folder;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::as_text(data, size));
  const std::string path = scratch_folder() + "/kubeconfig";
  fuzz::guarded([&] {
    try {
      const cluster_access access = parse_kubeconfig(text, path);
      GMA_FUZZ_CHECK(!access.client_options.target.host_header().empty(), "no host");
      GMA_FUZZ_CHECK(access.description.starts_with("kubeconfig " + path),
                     "description: " + access.description);
    } catch (const YAML::Exception& e) {
      fuzz::fail(std::string("yaml-cpp exception escaped: ") + e.what());
    } catch (const std::runtime_error& e) {
      GMA_FUZZ_CHECK(
          std::string(e.what()).find("kubeconfig") != std::string::npos ||
              std::string(e.what()).find("cannot read") != std::string::npos,
          std::string("the reason names neither the kubeconfig nor a file: ") + e.what());
    }
  });
  return 0;
}
