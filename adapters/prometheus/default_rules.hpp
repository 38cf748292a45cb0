#pragma once
/// @file The built-in GPU rules (manifests/base/gpu-rules.yaml, compiled in), served when the
/// adapter runs without --config.

#include <string_view>

namespace gma::adapters::prometheus {

/// The text of manifests/base/gpu-rules.yaml as it was when the binary was built.
std::string_view default_rules_yaml() noexcept;

}  // namespace gma::adapters::prometheus
