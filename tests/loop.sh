#!/usr/bin/env bash
# Runs the integration suite (or the tests matching FILTER) N times while a parallel release build
# of river keeps both cores busy, and prints each test's pass rate. A test that does not pass every
# time is flaky: find its cause (tests/it/main.rs); CI does not run this loop.
#
#   tests/loop.sh [-n N] [--no-load] [FILTER...]
#   tests/loop.sh -n 10 rtmp::          # the rtmp area, 10 times, under load
#   tests/loop.sh -n 3                  # everything, 3 times
#
# Logs of failed runs are kept in target/loop/run-K.log.
set -euo pipefail
cd "$(dirname "$0")/.."

n=10
load=1
filters=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    --no-load) load=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) filters+=("$1"); shift ;;
  esac
done

out=target/loop
mkdir -p "$out"
rm -f "$out"/run-*.log "$out"/results

# Build once; run the test binary itself so the loop measures the tests, not cargo.
bin=$(cargo test --locked --test it --no-run --message-format=json 2>/dev/null \
  | grep '"kind":\["test"\][^}]*"name":"it"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "loop: could not build the integration test binary" >&2; exit 2; }

loader=""
if [ "$load" = 1 ]; then
  # A release build of river in its own target directory, its fingerprint removed before each
  # round so every round compiles the crate again: both cores stay busy for the whole loop.
  (
    while :; do
      rm -rf "$out/load/release/.fingerprint/river-"*
      nice -n 5 cargo build --locked --release --target-dir "$out/load" -q >/dev/null 2>&1 || sleep 1
    done
  ) &
  loader=$!
  trap 'kill $loader 2>/dev/null; pkill -f "target-dir $out/load" 2>/dev/null; true' EXIT
  sleep 5
fi

set +e
for k in $(seq 1 "$n"); do
  log="$out/run-$k.log"
  start=$(date +%s)
  "$bin" "${filters[@]}" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  grep -E '^test .* \.\.\. (ok|FAILED)$' "$log" | sed -E 's/^test (.*) \.\.\. (ok|FAILED)$/\1 \2/' >>"$out/results"
  failed=$(grep -cE '^test .* \.\.\. FAILED$' "$log")
  # A run that failed without a failed test (a usage error, a crash of the harness) counts too.
  [ "$rc" != 0 ] && [ "$failed" = 0 ] && echo "(run-$k-exited-$rc-without-a-failed-test) FAILED" >>"$out/results"
  echo "loop: run $k/$n: exit $rc, $failed failed, ${secs}s"
  [ "$rc" = 0 ] && rm -f "$log"
done
set -e

echo
echo "pass rate per test over $n runs$( [ "$load" = 1 ] && echo ' (under a parallel cargo build)'):"
awk '{ runs[$1]++; if ($2 == "ok") ok[$1]++ }
     END { for (t in runs) printf "%3d/%-3d %s\n", ok[t], runs[t], t }' "$out/results" | sort -k2
bad=$(awk '$2 != "ok"' "$out/results" | wc -l)
echo
if [ "$bad" -gt 0 ]; then
  echo "loop: $bad failures; logs in $out/run-*.log"
  exit 1
fi
echo "loop: every test passed every time"
