#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian 12 packages only.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(g++ cmake make pkg-config libboost1.81-dev nlohmann-json3-dev libssl-dev
          prometheus-cpp-dev libgtest-dev googletest libyaml-cpp-dev libre2-dev prometheus python3
          openssl clang-format git
          clang libclang-rt-14-dev)  # scripts/fuzz.sh: libFuzzer comes with clang only
# Optional: `scripts/install-deps.sh --bench` adds what bench/hpa_load.py needs besides these.
bench=false
[[ ${1:-} == --bench ]] && bench=true
$bench && packages+=(wrk nginx)
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${missing[*]}; run as root or install them first" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's prometheus package may start its own server; the tests and demo run their own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  # Likewise nginx's own server (port 80); the benchmark runs its own.
  if $bench && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi
