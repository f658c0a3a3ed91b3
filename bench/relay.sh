#!/usr/bin/env bash
# river-relay fan-out benchmark: one broadcaster, N watchers (10, 100, 1000) on loopback, throttled to
# 8 Mbit/s and unthrottled, against the anchor in the same run: a plain TCP fan-out copier (one read,
# then the same buffer written to every watcher with blocking writes; examples/relay_load.rs copier).
# Figures per configuration are medians of RUNS runs: aggregate throughput delivered to the watchers,
# latency broadcaster write -> watcher read (p50/p99, from CLOCK_MONOTONIC timestamps in the
# payload), hub CPU and RSS, and the load generator's own CPU. Then RSS per idle watcher of a live
# channel.
#
# The load generator (examples/relay_load.rs) is one process: the broadcaster thread and the
# watchers, non-blocking sockets on LOAD_THREADS epoll loops (1: many watchers per thread). Pinning
# (taskset, 2+ CPUs): the hub, the copier and the blaster on CPU $SERVER_CPU (0), the generator on
# CPU $LOAD_CPU (1). The generator's ceiling: its watchers against `relay_load blast`, a trivial
# server that writes timestamped blocks to every watcher as fast as they read (no broadcaster, no
# hub), unthrottled, at each N: the MB/s the generator can take in, to compare with the figures.
#
# Last lines, for bench/report.sh, one per figure (area metric river anchor ratio goal):
#   RESULT fanout throughput_nN <relay MB/s> <copier MB/s> <relay/copier> >=0.5      (unthrottled)
#   RESULT fanout p99_added_ms_nN_8mbit <relay p99 ms> <copier p99 ms> <relay-copier ms> <=1
#   RESULT fanout generator_capacity_nN <MB/s the generator takes in per core, against the
#          blaster> <relay MB/s> <capacity/relay> -
#
#   bench/relay.sh                    # RUNS=3 SECS=5 COUNTS="10 100 1000"
#   RUNS=5 SECS=10 COUNTS="100" bench/relay.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-5}
COUNTS=${COUNTS:-"10 100 1000"}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LOAD_THREADS=${LOAD_THREADS:-1}
cargo build --release --quiet --bin river-relay --example relay_load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RELAY=target/release/river-relay
LOAD=target/release/examples/relay_load
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  ON_SERVER=(taskset -c "$SERVER_CPU")
  ON_LOAD=(taskset -c "$LOAD_CPU")
  pinning="hub/copier/blaster on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU (taskset)"
else
  ON_SERVER=()
  ON_LOAD=()
  pinning="not pinned (one CPU or no taskset)"
fi
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/users"
printf '[DEFAULT]\npassword=bench\n' > "$tmp/users/bench.ini"

start_hub() {
  : > "$tmp/hub.log"
  "${ON_SERVER[@]}" "$RELAY" serve --listen 127.0.0.1:0 --users "$tmp/users" --max-connections 10000 2> "$tmp/hub.log" &
  HUB=$!
  for _ in $(seq 100); do
    HUB_ADDR=$(sed -n 's/^river-relay: fstream listening on //p' "$tmp/hub.log")
    [ -n "$HUB_ADDR" ] && return
    sleep 0.05
  done
  echo "hub did not start" >&2; cat "$tmp/hub.log" >&2; exit 1
}

# serve_copier|serve_blast N -> sets SRV_PID, SRV_ADDR (watchers), SRV_BADDR (broadcaster)
serve() {
  : > "$tmp/srv.out"
  if [ "$1" = copier ]; then
    "${ON_SERVER[@]}" "$LOAD" copier 127.0.0.1:0 127.0.0.1:0 "$2" > "$tmp/srv.out" &
  else
    "${ON_SERVER[@]}" "$LOAD" blast 127.0.0.1:0 "$2" > "$tmp/srv.out" &
  fi
  SRV_PID=$!
  SRV_ADDR=
  for _ in $(seq 100); do
    read -r SRV_ADDR SRV_BADDR < "$tmp/srv.out" || true
    [ -n "$SRV_ADDR" ] && return
    sleep 0.05
  done
  echo "$1 did not start" >&2; exit 1
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $pinning; $LOAD_THREADS generator thread(s)"
results="$tmp/results"
: > "$results"
for n in $COUNTS; do
  for rate in 8000000 0; do
    for run in $(seq "$RUNS"); do
      start_hub
      line=$("${ON_LOAD[@]}" "$LOAD" run relay "$HUB_ADDR" "$HUB_ADDR" "$n" "$rate" "$SECS" "$HUB" "$LOAD_THREADS")
      kill "$HUB"; wait "$HUB" 2>/dev/null || true
      echo "relay n=$n rate=$rate run=$run $line" | tee -a "$results"
      serve copier "$n"
      line=$("${ON_LOAD[@]}" "$LOAD" run copy "$SRV_ADDR" "$SRV_BADDR" "$n" "$rate" "$SECS" "$SRV_PID" "$LOAD_THREADS")
      wait "$SRV_PID" 2>/dev/null || true
      echo "copy  n=$n rate=$rate run=$run $line" | tee -a "$results"
      if [ "$rate" = 0 ]; then
        serve blast "$n"
        line=$("${ON_LOAD[@]}" "$LOAD" run blast "$SRV_ADDR" - "$n" 0 "$SECS" "$SRV_PID" "$LOAD_THREADS")
        wait "$SRV_PID" 2>/dev/null || true
        echo "blast n=$n rate=$rate run=$run $line" | tee -a "$results"
      fi
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

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
print(f"{'watchers':>8} {'rate':>9} | {'relay MB/s':>10} {'copy MB/s':>9} {'ratio':>6} | {'relay p50/p99 ms':>17} {'copy p50/p99 ms':>16} {'added p99':>9} | {'hub CPU%':>8} {'hub RSS MiB':>11} {'dropped':>7} | {'gen CPU%':>8}")
results = []
for (kind, n, rate) in sorted(k for k in rows if k[0] == 'relay'):
    r = med('relay', n, rate, 'delivered_MBps'); c = med('copy', n, rate, 'delivered_MBps')
    rp50, rp99 = med('relay', n, rate, 'p50_ms'), med('relay', n, rate, 'p99_ms')
    cp50, cp99 = med('copy', n, rate, 'p50_ms'), med('copy', n, rate, 'p99_ms')
    print(f"{n:>8} {('8Mbit/s' if rate else 'max'):>9} | {r:>10.1f} {c:>9.1f} {r/c*100 if c else float('nan'):>5.0f}% | {rp50:>7.3f}/{rp99:<9.3f} {cp50:>6.3f}/{cp99:<9.3f} {rp99-cp99:>8.3f} | {med('relay', n, rate, 'hub_cpu_pct'):>8.0f} {med('relay', n, rate, 'hub_rss_max_kib')/1024:>11.1f} {med('relay', n, rate, 'closed'):>7.0f} | {med('relay', n, rate, 'gen_cpu_pct'):>8.0f}")
    if rate == 0:
        results.append(f"RESULT fanout throughput_n{n} {r:.1f} {c:.1f} {r/c if c else float('nan'):.2f} >=0.5")
    else:
        results.append(f"RESULT fanout p99_added_ms_n{n}_8mbit {rp99:.3f} {cp99:.3f} {rp99-cp99:.3f} <=1")
print()
print("the generator alone, against the trivial blaster (no broadcaster, no hub), unthrottled:")
for (kind, n, rate) in sorted(k for k in rows if k[0] == 'blast'):
    b = med('blast', n, 0, 'delivered_MBps'); r = med('relay', n, 0, 'delivered_MBps')
    g = med('blast', n, 0, 'gen_cpu_pct'); gr = med('relay', n, 0, 'gen_cpu_pct')
    print(f"{n:>8} watchers: {b:.1f} MB/s ({b/r if r else float('nan'):.1f}x the relay's {r:.1f}) with the generator at {g:.0f} % of its core (at {gr:.0f} % against the relay): it takes in about {b*100/g if g else float('nan'):.0f} MB/s per core")
    cap = b * 100 / g if g else float('nan')
    results.append(f"RESULT fanout generator_capacity_n{n} {cap:.0f} {r:.1f} {cap/r if r else float('nan'):.2f} -")
# The curves bench/report.sh draws: throughput and latency against the watcher count.
for (kind, n, rate) in sorted(k for k in rows if k[0] in ('relay', 'copy')):
    tag = f"{'river' if kind == 'relay' else 'copier'}-{'8Mbps' if rate else 'max'}"
    print(f"CURVE fanout_throughput {tag} {n} {med(kind, n, rate, 'delivered_MBps'):.2f}")
    print(f"CURVE fanout_latency_p99 {tag} {n} {med(kind, n, rate, 'p99_ms'):.3f}")
    print(f"CURVE fanout_latency_p50 {tag} {n} {med(kind, n, rate, 'p50_ms'):.3f}")
kv = dict(x.split('=') for x in sys.argv[2].split())
print(f"idle watchers: {kv['per_watcher_kib']} KiB RSS each (goal <= 64 KiB beyond the queue)")
print()
print("\n".join(results))
PY
