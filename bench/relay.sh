#!/usr/bin/env bash
# river-relay fan-out benchmark: one broadcaster, N watchers (10, 100, 1000) on loopback, throttled to
# 8 Mbit/s and unthrottled, against the anchor in the same run: a plain TCP fan-out copier (one read,
# then the same buffer written to every watcher with blocking writes; examples/relay_load.rs copier).
# Figures per configuration are medians of RUNS runs: aggregate throughput delivered to the watchers,
# latency broadcaster write -> watcher read (p50/p99, from timestamps in the payload), hub CPU and RSS.
# Then RSS per idle watcher of a live channel.
#
#   bench/relay.sh                    # RUNS=3 SECS=5 COUNTS="10 100 1000"
#   RUNS=5 SECS=10 COUNTS="100" bench/relay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-5}
COUNTS=${COUNTS:-"10 100 1000"}
cargo build --release --quiet --bin river-relay --example relay_load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RELAY=target/release/river-relay
LOAD=target/release/examples/relay_load
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/users"
printf '[DEFAULT]\npassword=bench\n' > "$tmp/users/bench.ini"

start_hub() {
  : > "$tmp/hub.log"
  "$RELAY" serve --listen 127.0.0.1:0 --users "$tmp/users" --max-connections 10000 2> "$tmp/hub.log" &
  HUB=$!
  for _ in $(seq 100); do
    HUB_ADDR=$(sed -n 's/^river-relay: fstream listening on //p' "$tmp/hub.log")
    [ -n "$HUB_ADDR" ] && return
    sleep 0.05
  done
  echo "hub did not start" >&2; cat "$tmp/hub.log" >&2; exit 1
}

results="$tmp/results"
: > "$results"
for n in $COUNTS; do
  for rate in 8000000 0; do
    for run in $(seq "$RUNS"); do
      start_hub
      line=$("$LOAD" run relay "$HUB_ADDR" "$HUB_ADDR" "$n" "$rate" "$SECS" "$HUB")
      kill "$HUB"; wait "$HUB" 2>/dev/null || true
      echo "relay n=$n rate=$rate run=$run $line" | tee -a "$results"
      : > "$tmp/copier.out"
      "$LOAD" copier 127.0.0.1:0 127.0.0.1:0 "$n" > "$tmp/copier.out" &
      cpid=$!
      waddr=
      for _ in $(seq 100); do
        read -r waddr baddr < "$tmp/copier.out" || true
        [ -n "$waddr" ] && break
        sleep 0.05
      done
      line=$("$LOAD" run copy "$waddr" "$baddr" "$n" "$rate" "$SECS" "$cpid")
      wait "$cpid" 2>/dev/null || true
      echo "copy  n=$n rate=$rate run=$run $line" | tee -a "$results"
    done
  done
done

start_hub
idle=$("$LOAD" idle "$HUB_ADDR" 1000 "$HUB")
kill "$HUB"; wait "$HUB" 2>/dev/null || true
echo "$idle"

python3 - "$results" "$idle" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    kind, n, rate = f[0], f[1].split('=')[1], f[2].split('=')[1]
    kv = dict(x.split('=') for x in f[4:])
    rows[(kind, int(n), int(rate))].append({k: float(v) for k, v in kv.items()})
def med(kind, n, rate, key):
    v = [r[key] for r in rows[(kind, n, rate)]]
    return statistics.median(v) if v else float('nan')
print()
print("medians; relay vs plain TCP copy (goal: throughput >= 50 %, p99 added latency <= 1 ms at 100 watchers)")
print(f"{'watchers':>8} {'rate':>9} | {'relay MB/s':>10} {'copy MB/s':>9} {'ratio':>6} | {'relay p50/p99 ms':>17} {'copy p50/p99 ms':>16} {'added p99':>9} | {'hub CPU%':>8} {'hub RSS MiB':>11} {'dropped watchers':>16}")
for (kind, n, rate) in sorted(k for k in rows if k[0] == 'relay'):
    r = med('relay', n, rate, 'delivered_MBps'); c = med('copy', n, rate, 'delivered_MBps')
    rp50, rp99 = med('relay', n, rate, 'p50_ms'), med('relay', n, rate, 'p99_ms')
    cp50, cp99 = med('copy', n, rate, 'p50_ms'), med('copy', n, rate, 'p99_ms')
    print(f"{n:>8} {('8Mbit/s' if rate else 'max'):>9} | {r:>10.1f} {c:>9.1f} {r/c*100 if c else float('nan'):>5.0f}% | {rp50:>7.3f}/{rp99:<9.3f} {cp50:>6.3f}/{cp99:<9.3f} {rp99-cp99:>8.3f} | {med('relay', n, rate, 'hub_cpu_pct'):>8.0f} {med('relay', n, rate, 'hub_rss_max_kib')/1024:>11.1f} {med('relay', n, rate, 'closed'):>16.0f}")
# The curves bench/report.sh draws: throughput and latency against the watcher count.
for (kind, n, rate) in sorted(rows):
    tag = f"{'river' if kind == 'relay' else 'copier'}-{'8Mbps' if rate else 'max'}"
    print(f"CURVE fanout_throughput {tag} {n} {med(kind, n, rate, 'delivered_MBps'):.2f}")
    print(f"CURVE fanout_latency_p99 {tag} {n} {med(kind, n, rate, 'p99_ms'):.3f}")
    print(f"CURVE fanout_latency_p50 {tag} {n} {med(kind, n, rate, 'p50_ms'):.3f}")
kv = dict(x.split('=') for x in sys.argv[2].split())
print(f"idle watchers: {kv['per_watcher_kib']} KiB RSS each (goal <= 64 KiB beyond the queue)")
PY
