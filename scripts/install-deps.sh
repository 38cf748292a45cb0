#!/usr/bin/env bash
# Installs what one use of this repository needs, from Debian 12 packages only:
#   scripts/install-deps.sh          the test command (scripts/test.sh, .ci/run): the build, the
#                                    unit and end-to-end tests, fuzzing (clang), the lint tests
#                                    (clang-format, git) and the manifests test (nodejs, npm)
#   scripts/install-deps.sh --demo   the demo only (scripts/demo.sh): compiler, CMake, the -dev
#                                    libraries the adapter builds with, Prometheus, Python,
#                                    openssl, and kubectl when there is none
#   scripts/install-deps.sh --bench  the test command's packages plus wrk and nginx (bench/hpa_load.py)
# Safe to run again: it installs only what is missing. It leaves alone the services the machine
# already has: the only service it stops is one that its own installation just started (Debian's
# prometheus, victoria-metrics and nginx packages start theirs), since the tests, the demo and the benchmarks run
# their own Prometheus and nginx on free loopback ports.
set -euo pipefail

mode="test"
case "${1:-}" in
  "") ;;
  --demo) mode=demo ;;
  --bench) mode=bench ;;
  *) echo "usage: scripts/install-deps.sh [--demo | --bench]" >&2; exit 2 ;;
esac

# The adapter's build (the Dockerfile's build stage installs the same) and what the demo runs.
packages=(g++ cmake make pkg-config libboost1.81-dev nlohmann-json3-dev libssl-dev prometheus-cpp-dev
          libyaml-cpp-dev libre2-dev prometheus python3 openssl)
if [[ $mode != demo ]]; then
  packages+=(libgtest-dev googletest   # the unit tests
             python3-yaml               # end-to-end tests that write rules files
             victoria-metrics           # e2e_victoria_metrics: the second Prometheus-API backend
             clang-format git           # the format test (scripts/format.sh lists files with git)
             clang libclang-rt-14-dev)  # scripts/fuzz.sh: libFuzzer comes with clang only
  command -v node >/dev/null 2>&1 || packages+=(nodejs)  # the manifests test
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi
if [[ $mode == bench ]]; then
  packages+=(wrk nginx)
fi
# Debian 12's kubernetes-client is kubectl 1.20: enough for kubectl get --raw (the demo, the
# end-to-end tests), not for the manifests test (see kubectl_note below).
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# The services these packages start when they are installed.
declare -A service_of=([prometheus]=prometheus [nginx]=nginx [victoria-metrics]=victoria-metrics)

# Whether a service runs, under systemd or, without it (WSL, some containers), its init script.
systemd_running() { [[ -d /run/systemd/system ]]; }  # what sd_booted(3) checks
service_active() {
  if systemd_running; then
    systemctl is-active --quiet "$1"
  elif [[ -x /etc/init.d/$1 ]]; then
    /etc/init.d/"$1" status >/dev/null 2>&1
  else
    return 1
  fi
}
service_enabled() { systemd_running && systemctl is-enabled --quiet "$1" 2>/dev/null; }
stop_service() {
  if systemd_running; then
    systemctl stop "$1" >/dev/null 2>&1 || true
  else
    /etc/init.d/"$1" stop >/dev/null 2>&1 || true
  fi
}
disable_service() {
  if systemd_running; then
    systemctl disable "$1" >/dev/null 2>&1 || true
  else
    update-rc.d "$1" disable >/dev/null 2>&1 || true
  fi
}

# The manifests test renders with `kubectl kustomize`, whose built-in kustomize must be v4.1 or
# newer: kubectl 1.22 or newer (tests/manifests/run.sh skips the test with an older one and says
# so). Debian's own kubectl is 1.20.
kubectl_min_minor=22
kubectl_note() {
  local minor
  minor=$(kubectl version --client -o json 2>/dev/null |
            sed -n 's/.*"minor": *"\([0-9][0-9]*\).*/\1/p' | head -1) || true
  if [[ -n $minor ]] && ((minor < kubectl_min_minor)); then
    echo "note: kubectl 1.$minor is enough for the demo and the end-to-end tests, but the manifests" \
         "test needs kubectl >= 1.$kubectl_min_minor (kustomize >= v4.1) and is skipped with it; a current" \
         "kubectl: https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/"
  fi
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${missing[*]}; run as root or install them first" >&2
    exit 1
  fi
  # Before installing: the state of the service of every service package this run installs.
  # A package that was installed before is not in `missing`, so its service is never looked at
  # again below, running or not.
  declare -A ran_before=() enabled_before=()
  for p in "${missing[@]}"; do
    unit=${service_of[$p]:-}
    [[ -n $unit ]] || continue
    ran_before[$p]=no
    service_active "$unit" && ran_before[$p]=yes
    enabled_before[$p]=no
    service_enabled "$unit" && enabled_before[$p]=yes
  done

  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

  # Stop a service only when this installation started it: its package was not installed before
  # this run, the service was not running before, and it runs now.
  for p in "${!ran_before[@]}"; do
    unit=${service_of[$p]}
    if [[ ${ran_before[$p]} == no ]] && service_active "$unit"; then
      echo "stopping the $unit service that installing $p started (the tests, the demo and the" \
           "benchmarks run their own on free ports)"
      stop_service "$unit"
      [[ ${enabled_before[$p]} == yes ]] || disable_service "$unit"
    fi
  done
fi
if [[ $mode != demo ]]; then
  kubectl_note
fi
