#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz into build-fuzz/ (clang, ASan + UBSan, -O1 -g) and
# runs each for a bounded time, one after the other:
#   scripts/fuzz.sh                          every target, GMA_FUZZ_SECONDS (default 30) each
#   GMA_FUZZ_SECONDS=600 scripts/fuzz.sh     the longer campaign
#   scripts/fuzz.sh quantity label_selector  only these targets
# A target starts from a scratch copy of tests/fuzz/corpus/<target>/ (the checked-in corpus
# stays as it is) with tests/fuzz/dict/<target>.dict when there is one. One line per target:
# its executions (libFuzzer's final stats) and the result. A crash, leak, timeout or out-of-memory
# fails the run (exit 1) and prints the reproducer, which `build-fuzz/tests/fuzz/<target>_fuzz
# <reproducer>` replays.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${GMA_FUZZ_SECONDS:-30}
dir=build-fuzz

# -O1 -g: an instrumented Boost.Asio and Beast build at -O2 takes much longer on 2 cores, and
# -O1 keeps stacks readable at nearly the same executions per second.
CC=clang CXX=clang++ cmake -S . -B "$dir" -DGMA_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" >/dev/null
cmake --build "$dir" --target fuzz_all --parallel "$(nproc)"

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for binary in "$dir"/tests/fuzz/*_fuzz; do
    name=$(basename "$binary")
    targets+=("${name%_fuzz}")
  done
fi

# Longest input per target: what a real one needs, so that time goes to structure, not size.
max_len_of() {
  case "$1" in
    quantity) echo 64 ;;
    label_selector | go_template) echo 512 ;;
    kubeconfig) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

failed=0
printf '%-18s %14s  %s\n' target executions result
for target in "${targets[@]}"; do
  binary=$dir/tests/fuzz/${target}_fuzz
  [[ -x "$binary" ]] || { echo "no fuzz target $binary" >&2; exit 2; }
  work=$dir/fuzz-runs/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if compgen -G "tests/fuzz/corpus/$target/*" >/dev/null; then
    cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
  fi
  options=(-max_len="$(max_len_of "$target")" -timeout=10 -rss_limit_mb=2048
           -max_total_time="$seconds" -print_final_stats=1 -close_fd_mask=2
           -artifact_prefix="$work/artifacts/")
  if [[ -f tests/fuzz/dict/$target.dict ]]; then options+=(-dict="tests/fuzz/dict/$target.dict"); fi
  # -close_fd_mask=2: the adapter's own warnings (a malformed answer is logged) would otherwise
  # fill the log; libFuzzer and the sanitizers keep reporting on a copy of stderr.
  status=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$binary" "$work/corpus" "${options[@]}" >"$work/log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -1)
  if [[ $status -eq 0 && -z "$reproducer" ]]; then
    result=ok
  else
    failed=1
    kind=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)[^(]*|runtime error:.*|gma fuzz:.*' "$work/log" || true)
    result="FAILED (exit $status): ${kind:-see $work/log}; reproducer: ${reproducer:-none}"
  fi
  printf '%-18s %14s  %s\n' "$target" "${executions:-?}" "$result"
done
if [[ $failed -ne 0 ]]; then
  echo "fuzzing found a problem: logs in $dir/fuzz-runs/<target>/log" >&2
fi
exit "$failed"
