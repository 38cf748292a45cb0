#!/usr/bin/env bash
# Installs the pinned validators from the npm registry (once) and validates manifests/.
# Exits 77 (skipped) when kubectl is missing or its built-in kustomize is too old for
# manifests/, before anything is installed.
set -euo pipefail
cd "$(dirname "$0")"

# manifests/ needs kustomize >= v4.1.0 (the `labels:` field of manifests/base; Components need
# v3.7.0). kubectl embeds kustomize: v2.0.3 up to kubectl 1.20 (Debian 12's kubernetes-client),
# v4.0.5 in 1.21, v4.2.0 in 1.22; so kubectl 1.22 is the oldest that can build them.
min_minor=22
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP manifests: kubectl not found; needs kubectl >= 1.${min_minor} (kustomize >= v4.1.0)" >&2
  exit 77
fi
version_json=$(kubectl version --client -o json 2>/dev/null || true)
major=$(sed -n 's/.*"major": *"\([0-9]*\).*/\1/p' <<<"$version_json" | head -n1)
minor=$(sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' <<<"$version_json" | head -n1)
git_version=$(sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' <<<"$version_json" | head -n1)
if [[ -z $major || -z $minor ]] || ((major < 1 || (major == 1 && minor < min_minor))); then
  echo "SKIP manifests: kubectl ${git_version:-of unknown version} is too old: manifests/ need" \
       "kubectl >= 1.${min_minor}, whose built-in kustomize (>= v4.1.0) knows the labels: field" \
       "and Components. Debian 12's kubernetes-client is 1.20 (kustomize v2.0.3); install a" \
       "newer kubectl first on PATH." >&2
  exit 77
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
exec node validate.mjs
