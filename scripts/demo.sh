#!/usr/bin/env bash
# The README's first command: installs dependencies, builds, then runs Prometheus scraping a
# synthetic dcgm-exporter plus the adapter, and prints kubectl get --raw answers until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec python3 tests/support/stack.py demo "$PWD/build/gpu-metrics-adapter"
