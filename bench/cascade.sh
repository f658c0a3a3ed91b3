#!/usr/bin/env bash
# Cascading hubs: what a hop costs. One broadcaster and N fstream watchers (examples/relay_load.rs:
# 4 KiB blocks stamped with their send time, RATE bit/s) through a single river-relay hub, and in
# the same run through a chain of three: origin <- edge (--origin) <- edge (--origin), the watchers
# on the last edge. Per configuration, medians of RUNS runs: latency broadcaster write -> watcher
# read (p50/p99), the latency each extra hop adds ((chain - single) / 2), and each hub's CPU, with
# the chain's figures as ratios of the single hub's (the anchor).
#
#   bench/cascade.sh                           # RUNS=5 SECS=5 N=10 RATE=8000000
#   RUNS=3 N=100 RATE=0 bench/cascade.sh       # RATE 0 = as fast as the hubs go
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SECS=${SECS:-5}
N=${N:-10}
RATE=${RATE:-8000000}
cargo build --release --quiet --bin river-relay --example relay_load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RELAY=target/release/river-relay
LOAD=target/release/examples/relay_load
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/users"
printf '[DEFAULT]\npassword=bench\n' > "$tmp/users/bench.ini"
TCK=$(getconf CLK_TCK)

# start_hub NAME [serve options]: sets PID_NAME and ADDR_NAME.
start_hub() {
  local name=$1; shift
  : > "$tmp/$name.log"
  "$RELAY" serve --listen 127.0.0.1:0 --users "$tmp/users" "$@" 2> "$tmp/$name.log" &
  printf -v "PID_$name" '%s' "$!"
  for _ in $(seq 100); do
    local a
    a=$(sed -n 's/^river-relay: fstream listening on //p' "$tmp/$name.log")
    if [ -n "$a" ]; then printf -v "ADDR_$name" '%s' "$a"; return; fi
    sleep 0.05
  done
  echo "hub $name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

results="$tmp/results"
: > "$results"
for run in $(seq "$RUNS"); do
  start_hub single
  t0=$(ticks "$PID_single"); s0=$(date +%s.%N)
  line=$("$LOAD" run relay "$ADDR_single" "$ADDR_single" "$N" "$RATE" "$SECS" "$PID_single")
  t1=$(ticks "$PID_single"); s1=$(date +%s.%N)
  kill "$PID_single"; wait "$PID_single" 2>/dev/null || true
  cpu=$(echo "($t1 - $t0) * 100 / $TCK / ($s1 - $s0)" | bc -l)
  echo "single run=$run $line cpu_single=$cpu" | tee -a "$results"

  start_hub origin
  start_hub edge1 --origin "$ADDR_origin"
  start_hub edge2 --origin "$ADDR_edge1"
  pids=("$PID_origin" "$PID_edge1" "$PID_edge2")
  before=(); for p in "${pids[@]}"; do before+=("$(ticks "$p")"); done
  s0=$(date +%s.%N)
  line=$("$LOAD" run relay "$ADDR_edge2" "$ADDR_origin" "$N" "$RATE" "$SECS" "$PID_edge2")
  s1=$(date +%s.%N)
  cpus=""
  for i in 0 1 2; do
    t1=$(ticks "${pids[$i]}")
    cpus+=" cpu_hop$i=$(echo "($t1 - ${before[$i]}) * 100 / $TCK / ($s1 - $s0)" | bc -l)"
  done
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  echo "chain run=$run $line$cpus" | tee -a "$results"
done

python3 - "$results" "$N" "$RATE" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    rows[f[0]].append({k: float(v) for k, v in (x.split('=') for x in f[2:])})
med = lambda kind, key: statistics.median(r[key] for r in rows[kind])
n, rate = sys.argv[2], int(sys.argv[3])
print()
print(f"medians of {len(rows['single'])} runs; {n} watchers, {rate/1e6:g} Mbit/s" if rate else f"medians of {len(rows['single'])} runs; {n} watchers, unthrottled")
print(f"{'':>18} {'p50 ms':>8} {'p99 ms':>8} {'MB/s':>7} | CPU % per hub (origin, edge, edge)")
print(f"{'single hub':>18} {med('single','p50_ms'):>8.3f} {med('single','p99_ms'):>8.3f} {med('single','delivered_MBps'):>7.1f} | {med('single','cpu_single'):.1f}")
cpus = ', '.join(f"{med('chain', f'cpu_hop{i}'):.1f}" for i in range(3))
print(f"{'chain of 3':>18} {med('chain','p50_ms'):>8.3f} {med('chain','p99_ms'):>8.3f} {med('chain','delivered_MBps'):>7.1f} | {cpus}")
d50 = (med('chain','p50_ms') - med('single','p50_ms')) / 2
d99 = (med('chain','p99_ms') - med('single','p99_ms')) / 2
print(f"{'added per hop':>18} {d50:>8.3f} {d99:>8.3f}")
# Ratios against the anchor, the single hub: latency of the whole chain, and each hop's CPU.
r50 = med('chain','p50_ms') / med('single','p50_ms')
r99 = med('chain','p99_ms') / med('single','p99_ms')
base = med('single','cpu_single')
rcpu = ', '.join(f"{med('chain', f'cpu_hop{i}') / base:.2f}" for i in range(3)) if base > 0 else 'n/a'
print(f"{'chain / single':>18} {r50:>7.2f}x {r99:>7.2f}x {'':>7} | {rcpu} (each hop's CPU / the single hub's)")
closed = sum(r['closed'] for k in rows for r in rows[k])
print(f"watchers dropped over all runs: {closed:.0f}")
# For bench/report.sh: the chain of three against the single hub (no goal set).
tag = f"{n}w_{rate/1e6:g}Mbps" if rate else f"{n}w_max"
print(f"RESULT cascade chain_p50_ms_{tag} {med('chain','p50_ms'):.3f} {med('single','p50_ms'):.3f} {r50:.2f} - single hub")
print(f"RESULT cascade chain_p99_ms_{tag} {med('chain','p99_ms'):.3f} {med('single','p99_ms'):.3f} {r99:.2f} - single hub")
if base > 0:
    worst = max(med('chain', f'cpu_hop{i}') for i in range(3))
    print(f"RESULT cascade busiest_hop_cpu_pct_{tag} {worst:.1f} {base:.1f} {worst / base:.2f} - single hub")
PY
