#!/usr/bin/env bash
# Builds into build-<name>/ with the sanitizers of MODE and runs the tests CI runs under them:
#   scripts/sanitize.sh address   ASan + UBSan: the unit tests and the end-to-end suites
#   scripts/sanitize.sh thread    TSan: the unit tests and the core end-to-end suite
# A finding fails the run: sanitized unit tests exit non-zero, and the end-to-end harness
# (tests/support/stack.py) fails a suite whose adapter log holds a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/sanitize.sh address|thread}
case "$mode" in
  address) sanitizers=address,undefined; tests='unit|integration'; exclude='e2e_shipping' ;;
  thread) sanitizers=thread; tests='unit'; extra='^e2e$' ;;
  *) echo "usage: scripts/sanitize.sh address|thread" >&2; exit 2 ;;
esac
dir=build-$mode
# -O1 with line tables only: a sanitized build of Beast and Asio at -O2 -g takes twice as long
# on CI's 2 cores, and -O1 keeps the stacks readable and the tests fast enough.
# Warnings are not errors here: under ASan's instrumentation GCC 12 reports -Wmaybe-uninitialized
# on an empty std::optional<std::string> (change_watcher_test) that the normal build does not;
# the warning-clean promise is the normal build's, which CI makes with -Werror.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
      -DGMA_SANITIZE="$sanitizers" -DGMA_WERROR=OFF >/dev/null
cmake --build "$dir" --parallel "$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=second_deadlock_stack=1
cd "$dir"
ctest --output-on-failure --timeout 900 -L "$tests" ${exclude:+-E "$exclude"}
if [[ -n "${extra:-}" ]]; then ctest --output-on-failure --timeout 900 -R "$extra"; fi
