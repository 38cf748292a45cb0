#pragma once
/// @file `gpu-metrics-adapter explain-hpa`: reads a HorizontalPodAutoscaler's metrics through
/// the same rules as the server and does the HPA controller's arithmetic on them, so that a
/// user sees the replica count the controller would choose, and why.

#include "server/config/options.hpp"

namespace gma::cli {

/// Exit codes of explain-hpa.
enum explain_hpa_exit : int {
  kEveryMetricRead = 0,
  kMetricUnreadable = 1,  ///< the answer is printed; a metric's Status message says why
  kUsage = 2,
  kNothingToExplain = 3,  ///< the HPA, its scale target or the rules could not be read
};

/// Runs explain-hpa; returns the exit code. The explanation goes to stdout (a table, or JSON
/// with --output=json), errors and warnings to stderr. Never throws.
int run_explain_hpa(const config::options& opts);

}  // namespace gma::cli
