#!/usr/bin/env bash
# Configures and builds into ./build with every core. GMA_WERROR=ON (CI sets it) turns
# warnings into errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGMA_WERROR="${GMA_WERROR:-OFF}" >/dev/null
cmake --build build --parallel "$(nproc)"
