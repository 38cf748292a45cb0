#pragma once
/// @file How often the wiring's watches look for changes.

#include <chrono>

namespace gma::wiring {

/// How often files and the authentication ConfigMap are checked for changes.
inline constexpr std::chrono::seconds kReloadInterval{5};

}  // namespace gma::wiring
