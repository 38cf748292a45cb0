#!/usr/bin/env bash
# Configures and builds into ./build with every core. GMA_WERROR=ON (CI sets it) turns
# warnings into errors.
#   scripts/build.sh            everything: the adapter and the tests (the test command)
#   scripts/build.sh --adapter  build/gpu-metrics-adapter only (the demo); a build/ configured
#                               here for the first time leaves the tests out, so GoogleTest need
#                               not be installed; one configured before keeps its setting
# It is quiet: one line when nothing needed building; otherwise the progress on one line and a
# summary, with the compiler's output in build/build.log. A failed build shows its first errors
# and names the log. GMA_BUILD_VERBOSE=1 prints the compiler's output as it comes instead.
set -euo pipefail
cd "$(dirname "$0")/.."

target=(--target all)
tests=(-DGMA_BUILD_TESTS=ON)
what="build/ (the adapter and the tests)"
case "${1:-}" in
  "") ;;
  --adapter)
    target=(--target gpu-metrics-adapter)
    what="build/gpu-metrics-adapter"
    if [[ -f build/CMakeCache.txt ]]; then tests=(); else tests=(-DGMA_BUILD_TESTS=OFF); fi ;;
  *) echo "usage: scripts/build.sh [--adapter]" >&2; exit 2 ;;
esac

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGMA_WERROR="${GMA_WERROR:-OFF}" "${tests[@]}" \
  >/dev/null
if [[ ${GMA_BUILD_VERBOSE:-0} == 1 ]]; then
  exec cmake --build build --parallel "$(nproc)" "${target[@]}"
fi

log=build/build.log
: >"$log"
# Reads the build's output: every line to the log, and the progress ("[ 45%] Building ..." from
# make, "[12/80] Building ..." from ninja) to the terminal, updated in place on a terminal and as
# one line of tens of percent otherwise (CI logs).
show_progress() {
  local line percent shown=-1 started=false
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$log"
    if [[ $line =~ ^\[\ *([0-9]+)%\]\ (Building|Linking) ]]; then
      percent=${BASH_REMATCH[1]}
    elif [[ $line =~ ^\[([0-9]+)/([0-9]+)\]\ (Building|Linking) ]]; then
      percent=$((100 * BASH_REMATCH[1] / BASH_REMATCH[2]))
    else
      continue
    fi
    if [[ -t 1 ]]; then
      printf '\rbuilding %s (log: %s): %3d%%' "$what" "$log" "$percent"
    else
      $started || printf 'building %s (log: %s):' "$what" "$log"
      if ((percent / 10 > shown)); then
        shown=$((percent / 10))
        printf ' %d%%' "$percent"
      fi
    fi
    started=true
  done
  if $started; then echo; fi
}

# "1 file", "2 files"
counted() { if (($1 == 1)); then echo "$1 $2"; else echo "$1 ${2}s"; fi; }

start=$SECONDS
status=0
cmake --build build --parallel "$(nproc)" "${target[@]}" 2>&1 | show_progress || status=$?
compiled=$(grep -cE '^\[[ 0-9%/]+\] Building' "$log" || true)
linked=$(grep -cE '^\[[ 0-9%/]+\] Linking' "$log" || true)
warnings=$(grep -c ': warning: ' "$log" || true)
if ((status != 0)); then
  echo "the build failed (exit $status); its first errors:" >&2
  first=$(grep -nm1 -E ': (fatal )?error: |CMake Error|undefined reference|\*\*\* ' "$log" | cut -d: -f1 || true)
  if [[ -n $first ]]; then
    tail -n "+$first" "$log" | head -40 >&2
  else
    tail -40 "$log" >&2
  fi
  echo "the whole output: $log (GMA_BUILD_VERBOSE=1 scripts/build.sh prints it as it comes)" >&2
  exit "$status"
fi
if ((compiled + linked == 0)); then
  echo "$what is up to date"
else
  elapsed=$((SECONDS - start))
  echo "built $what in $((elapsed / 60))m$((elapsed % 60))s: $(counted "$compiled" file) compiled," \
       "$(counted "$linked" target) linked"
fi
if ((warnings > 0)); then
  echo "$(counted "$warnings" "compiler warning"): grep -A3 ': warning: ' $log"
fi
