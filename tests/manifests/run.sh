#!/usr/bin/env bash
# Installs the pinned validators from the npm registry (once) and validates manifests/.
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
exec node validate.mjs
