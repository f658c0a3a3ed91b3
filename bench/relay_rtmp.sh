#!/usr/bin/env bash
# RTMP publish -> N players through river-relay serve --rtmp and through nginx-rtmp (Debian's
# libnginx-mod-rtmp, one worker, private config under a temp prefix, daemon off, 127.0.0.1), in
# the same run. One ffmpeg publishes a looped 320x240 ~1 Mb/s H.264+AAC clip with -re; the players
# are examples/rtmp_play_load.rs (N light threads in one process, the same client for both servers).
# For each server and N: server CPU seconds over the measured window, RSS at its end, bytes
# delivered (Mb/s), players fed; medians of RUNS runs; then river/nginx ratios.
#
#   bench/relay_rtmp.sh                  # RUNS=3 SECS=10 COUNTS="10 100 500"
#   RUNS=1 COUNTS="10 100" bench/relay_rtmp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-10}
COUNTS=${COUNTS:-"10 100 500"}
command -v nginx >/dev/null || { echo "nginx missing: apt-get install nginx libnginx-mod-rtmp" >&2; exit 1; }
MOD=/usr/lib/nginx/modules/ngx_rtmp_module.so
[ -f "$MOD" ] || { echo "ngx_rtmp_module missing: apt-get install libnginx-mod-rtmp" >&2; exit 1; }
cargo build --release --quiet --bin river-relay --example rtmp_play_load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RELAY=$PWD/target/release/river-relay
LOAD=$PWD/target/release/examples/rtmp_play_load
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/users" "$tmp/nginx/logs"
printf '[DEFAULT]\npassword=bench\n' > "$tmp/users/bench.ini"
ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440 \
  -c:v libx264 -preset veryfast -b:v 900k -g 50 -c:a aac -b:a 96k -t 20 -y "$tmp/clip.flv"
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$tmp/nginx/nginx.conf" <<CONF
load_module $MOD;
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 10000; }
rtmp {
  server {
    listen 127.0.0.1:$NPORT;
    chunk_size 4096;
    application bench { live on; }
  }
}
CONF

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# measure PID ADDR N -> "cpu_s rss_kib mbps fed"
measure() {
  local pid=$1 addr=$2 n=$3 url=$4
  ffmpeg -nostdin -v error -re -stream_loop -1 -i "$tmp/clip.flv" -c copy -f flv "$url" &
  local pub=$!
  sleep 2
  "$LOAD" "$addr" bench cam "$n" "$SECS" > "$tmp/load.out" 2> "$tmp/load.err" &
  local lp=$!
  while ! grep -q measuring "$tmp/load.err" 2>/dev/null; do sleep 0.05; done
  local c0; c0=$(cpu_ticks "$pid")
  wait "$lp"
  local c1; c1=$(cpu_ticks "$pid")
  local rss; rss=$(rss_kib "$pid")
  kill "$pub"; wait "$pub" 2>/dev/null || true
  local hz; hz=$(getconf CLK_TCK)
  local line; line=$(cat "$tmp/load.out")
  local mbps=${line##*mbps=}
  local fed; fed=$(sed -n 's/.*fed=\([0-9]*\).*/\1/p' "$tmp/load.out")
  echo "$(echo "scale=3; ($c1-$c0)/$hz" | bc) $rss $mbps $fed"
}

results="$tmp/results"
: > "$results"
for n in $COUNTS; do
  for run in $(seq "$RUNS"); do
    : > "$tmp/hub.log"
    "$RELAY" serve --listen 127.0.0.1:0 --rtmp 127.0.0.1:0 --users "$tmp/users" --max-connections 10000 2> "$tmp/hub.log" &
    hub=$!
    raddr=
    for _ in $(seq 100); do
      raddr=$(sed -n 's/^river-relay: rtmp listening on //p' "$tmp/hub.log")
      [ -n "$raddr" ] && break; sleep 0.05
    done
    r=$(measure "$hub" "$raddr" "$n" "rtmp://$raddr/bench/cam?user-password=bench")
    kill "$hub"; wait "$hub" 2>/dev/null || true
    echo "river n=$n run=$run $r" | tee -a "$results"
    nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2> "$tmp/nginx.err" &
    ng=$!
    sleep 0.5
    r=$(measure "$ng" "127.0.0.1:$NPORT" "$n" "rtmp://127.0.0.1:$NPORT/bench/cam")
    kill "$ng"; wait "$ng" 2>/dev/null || true
    echo "nginx n=$n run=$run $r" | tee -a "$results"
  done
done

echo
echo "medians over $RUNS runs, ${SECS}s windows (cpu = server CPU seconds in the window)"
printf '%-6s %5s %8s %9s %9s %6s\n' server N cpu_s rss_MiB Mb/s fed
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for n in $COUNTS; do
  for s in river nginx; do
    cpu=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {print $4}' "$results" | med)
    rss=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {print $5}' "$results" | med)
    mb=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {print $6}' "$results" | med)
    fed=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {print $7}' "$results" | med)
    printf '%-6s %5s %8s %9.1f %9s %6s\n' $s "$n" "$cpu" "$(echo "$rss/1024" | bc -l)" "$mb" "$fed"
    eval "${s}_cpu=$cpu ${s}_mb=$mb ${s}_rss=$rss"
  done
  # players per core ∝ throughput per CPU second
  ratio=$(echo "scale=2; ($river_mb/($river_cpu+0.001)) / ($nginx_mb/($nginx_cpu+0.001))" | bc -l)
  rss_ratio=$(echo "scale=2; $river_rss/$nginx_rss" | bc -l)
  echo "  n=$n: delivered Mb/s per CPU-second river/nginx = ${ratio}x; RSS river/nginx = ${rss_ratio}x"
done
