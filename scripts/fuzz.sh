#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the parsers: a bounded run per target.
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Crashes fail the run and are left in fuzz/artifacts/<target>/ for a regression test.
# No sanitizer: every crate of ours forbids unsafe code, so ASan would only slow the search;
# libFuzzer still catches panics, overflow (debug assertions are on), timeouts and OOM.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(header jwt clerk_mock_request)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "SKIPPED: fuzzing needs the nightly toolchain (rustup toolchain list has none)"
  [ "${REQUIRE_FUZZ:-}" = 1 ] && exit 1
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

cargo +nightly fuzz build -s none
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  if cargo +nightly fuzz run -s none "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
       -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -n 60 "$log"
  fi
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  echo "fuzz $t: $result, ${runs:-?} executions in ${secs}s, ${cov:-cov: ?}, corpus $corpus inputs"
  rm -f "$log"
done
exit $status
