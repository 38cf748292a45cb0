#!/usr/bin/env bash
# The README's first command: installs what the demo needs (scripts/install-deps.sh --demo),
# builds the adapter (one line when it is up to date), then runs Prometheus scraping a
# synthetic dcgm-exporter, a fake Kubernetes API with the exporter's pods and the adapter, and
# prints every 15 s the request an HPA makes, the answer and the replicas the HPA would want,
# until Ctrl-C stops everything (tests/support/stack.py demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --demo
scripts/build.sh --adapter
exec python3 tests/support/stack.py demo "$PWD/build/gpu-metrics-adapter"
