#pragma once
/// @file `gpu-metrics-adapter check`: validates a rules file and, given a Prometheus, lists what
/// each rule discovers and the PromQL that --explain requests would send.

#include "server/config/options.hpp"

namespace gma::cli {

/// Runs the check command; returns the process exit code (0 valid, 1 invalid or failed).
/// Writes results to stdout and errors to stderr; never throws.
int run_check(const config::options& opts);

}  // namespace gma::cli
