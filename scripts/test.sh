#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs every test (unit and
# end-to-end against the real Prometheus, the fake Kubernetes API and kubectl).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
