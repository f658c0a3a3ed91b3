#!/usr/bin/env bash
# RTMP publish -> N players through river-relay serve --rtmp and through nginx-rtmp (Debian's
# libnginx-mod-rtmp, one worker, private config under a temp prefix, daemon off, 127.0.0.1), in
# the same run. One ffmpeg publishes a looped 320x240 ~1 Mb/s H.264+AAC clip with -re; the players
# are examples/rtmp_play_load.rs (N non-blocking sockets on one epoll thread, the same client for
# both servers).
#
# Pinning (taskset, when the machine has 2+ CPUs): the server on CPU $SERVER_CPU (0), the
# publisher and the players on CPU $LOAD_CPU (1), so the load never takes the server's core.
#
# river runs twice: with its default --rtmp-merge (a player's media waits up to 100 ms and goes
# out in one write) and with --rtmp-merge 0 (each message written as it comes).
#
# CPU: the scheduler's count of nanoseconds on CPU, the first field of /proc/PID/task/*/schedstat,
# summed over every thread of the server's processes (river-relay: all its threads; nginx: the
# process and any children, one process here with master_process off), read when the players start
# measuring and when they end, SECS (10) seconds later. /proc/PID/stat's ticks are 10 ms: at 10
# players a server takes only a few of them in a window, too coarse for a ratio.
#
# For each server and N: the server's CPU seconds in the window, its RSS at the end, Mb/s
# delivered, players fed, the players' own CPU seconds, and the publisher's (ffmpeg's, the same
# scheduler count); medians of RUNS runs. Then river/nginx ratios of delivered Mb/s per server
# CPU-second (players per core) and of RSS. On loopback part of a server's sending runs in the
# receiver's context (a segment held back by Nagle, which nginx-rtmp leaves on and river does not,
# goes out when the receiver's ACK comes in), and part of its receiving in the publisher's (the
# kernel delivers a segment in its sender's context), so the ratios per CPU-second of the server
# with the players, and of the server, the players and the publisher, are printed too.
#
# Last lines, for bench/report.sh, one per figure (fields: area metric river anchor ratio goal):
#   RESULT relay_rtmp mbps_per_cpu_s_nN <river> <nginx> <river/nginx> >=2
#   RESULT relay_rtmp mbps_per_cpu_s_merge0_nN <river --rtmp-merge 0> <nginx> <ratio> -
#   RESULT relay_rtmp mbps_per_cpu_s_with_load_nN <river> <nginx> <ratio> -   (server + players)
#   RESULT relay_rtmp mbps_per_cpu_s_all_nN <river> <nginx> <ratio> -   (server, players, publisher)
#   RESULT relay_rtmp rss_mib_nN <river> <nginx> <river/nginx> <=1
#
#   bench/relay_rtmp.sh                  # RUNS=3 SECS=10 COUNTS="10 100 500"
#   RUNS=1 COUNTS="10 100" bench/relay_rtmp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECS:-10}
COUNTS=${COUNTS:-"10 100 500"}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
command -v nginx >/dev/null || { echo "nginx missing: apt-get install nginx libnginx-mod-rtmp" >&2; exit 1; }
MOD=/usr/lib/nginx/modules/ngx_rtmp_module.so
[ -f "$MOD" ] || { echo "ngx_rtmp_module missing: apt-get install libnginx-mod-rtmp" >&2; exit 1; }
cargo build --release --quiet --bin river-relay --example rtmp_play_load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RELAY=$PWD/target/release/river-relay
LOAD=$PWD/target/release/examples/rtmp_play_load
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  ON_SERVER=(taskset -c "$SERVER_CPU")
  ON_LOAD=(taskset -c "$LOAD_CPU")
  pinning="server on CPU $SERVER_CPU, publisher and players on CPU $LOAD_CPU (taskset)"
else
  ON_SERVER=()
  ON_LOAD=()
  pinning="not pinned (one CPU or no taskset)"
fi
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

# CPU seconds so far of every thread of PID and of its children (ns resolution: a few players
# cost milliseconds).
cpu_s() {
  local p
  for p in "$1" $(pgrep -P "$1" || true); do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
    awk '{ns += $1} END {printf "%.4f", ns / 1e9}'
}
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# measure PID ADDR N URL -> "cpu_s rss_kib mbps fed load_cpu_s publisher_cpu_s"
measure() {
  local pid=$1 addr=$2 n=$3 url=$4
  "${ON_LOAD[@]}" ffmpeg -nostdin -v error -re -stream_loop -1 -i "$tmp/clip.flv" -c copy -f flv "$url" &
  local pub=$!
  sleep 2
  : > "$tmp/load.err"
  "${ON_LOAD[@]}" "$LOAD" "$addr" bench cam "$n" "$SECS" > "$tmp/load.out" 2> "$tmp/load.err" &
  local lp=$!
  while ! grep -q measuring "$tmp/load.err" 2>/dev/null; do sleep 0.02; done
  local c0; c0=$(cpu_s "$pid")
  local p0; p0=$(cpu_s "$pub")
  wait "$lp"
  local c1; c1=$(cpu_s "$pid")
  local p1; p1=$(cpu_s "$pub")
  local rss; rss=$(rss_kib "$pid")
  kill "$pub"; wait "$pub" 2>/dev/null || true
  local line; line=$(cat "$tmp/load.out")
  local mbps; mbps=$(sed -n 's/.*mbps=\([0-9.]*\).*/\1/p' <<< "$line")
  local fed; fed=$(sed -n 's/.*fed=\([0-9]*\).*/\1/p' <<< "$line")
  local lcpu; lcpu=$(sed -n 's/.*load_cpu_s=\([0-9.]*\).*/\1/p' <<< "$line")
  local d='{printf "%.4f", $1}'
  echo "$(echo "$c1 - $c0" | bc -l | awk "$d") $rss $mbps $fed $lcpu $(echo "$p1 - $p0" | bc -l | awk "$d")"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $pinning"
results="$tmp/results"
: > "$results"
for n in $COUNTS; do
  for run in $(seq "$RUNS"); do
    # river: the default merge window; river0: --rtmp-merge 0 (each message written as it comes).
    for v in river river0; do
      : > "$tmp/hub.log"
      merge=()
      [ $v = river0 ] && merge=(--rtmp-merge 0)
      "${ON_SERVER[@]}" "$RELAY" serve --listen 127.0.0.1:0 --rtmp 127.0.0.1:0 --users "$tmp/users" \
        --max-connections 10000 "${merge[@]}" 2> "$tmp/hub.log" &
      hub=$!
      raddr=
      for _ in $(seq 100); do
        raddr=$(sed -n 's/^river-relay: rtmp listening on //p' "$tmp/hub.log")
        [ -n "$raddr" ] && break; sleep 0.05
      done
      r=$(measure "$hub" "$raddr" "$n" "rtmp://$raddr/bench/cam?user-password=bench")
      kill "$hub"; wait "$hub" 2>/dev/null || true
      echo "$v n=$n run=$run $r" | tee -a "$results"
    done
    "${ON_SERVER[@]}" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2> "$tmp/nginx.err" &
    ng=$!
    sleep 0.5
    r=$(measure "$ng" "127.0.0.1:$NPORT" "$n" "rtmp://127.0.0.1:$NPORT/bench/cam")
    kill "$ng"; wait "$ng" 2>/dev/null || true
    echo "nginx n=$n run=$run $r" | tee -a "$results"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "medians over $RUNS runs, ${SECS}s windows, $pinning; CPU seconds in the window (the" \
  "scheduler's ns count): cpu_s the server's, load_s the players', pub_s the publisher's"
printf '%-6s %5s %8s %8s %8s %9s %9s %6s %12s %14s %11s\n' server N cpu_s load_s pub_s rss_MiB Mb/s fed \
  "Mb/s/cpu_s" "Mb/s/(cpu+load)" "Mb/s/(all)"
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
summary=()
for n in $COUNTS; do
  for s in river river0 nginx; do
    col() { awk -v s=$s -v n="n=$n" -v c="$1" '$1==s && $2==n {print $c}' "$results" | med; }
    cpu=$(col 4); rss=$(col 5); mb=$(col 6); fed=$(col 7); lcpu=$(col 8); pcpu=$(col 9)
    # Per run, then the median: a run's throughput goes with its own CPU.
    eff=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {printf "%.1f\n", $6/($4+1e-6)}' "$results" | med)
    effl=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {printf "%.1f\n", $6/($4+$8+1e-6)}' "$results" | med)
    effa=$(awk -v s=$s -v n="n=$n" '$1==s && $2==n {printf "%.1f\n", $6/($4+$8+$9+1e-6)}' "$results" | med)
    printf '%-6s %5s %8s %8s %8s %9.1f %9s %6s %12s %14s %11s\n' $s "$n" "$cpu" "$lcpu" "$pcpu" \
      "$(echo "$rss/1024" | bc -l)" "$mb" "$fed" "$eff" "$effl" "$effa"
    eval "${s}_eff=$eff ${s}_effl=$effl ${s}_effa=$effa ${s}_rss=$rss"
  done
  r() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
  echo "  n=$n: Mb/s per server CPU-second river/nginx = $(r "$river_eff" "$nginx_eff")x" \
    "(--rtmp-merge 0: $(r "$river0_eff" "$nginx_eff")x); per CPU-second of server and players:" \
    "$(r "$river_effl" "$nginx_effl")x ($(r "$river0_effl" "$nginx_effl")x); of server, players and" \
    "publisher: $(r "$river_effa" "$nginx_effa")x; RSS river/nginx = $(r "$river_rss" "$nginx_rss")x"
  how="medians of $RUNS, ${SECS}s, CPU from schedstat"
  summary+=("RESULT relay_rtmp mbps_per_cpu_s_n$n $river_eff $nginx_eff $(r "$river_eff" "$nginx_eff") >=2 nginx-rtmp; $how")
  summary+=("RESULT relay_rtmp mbps_per_cpu_s_merge0_n$n $river0_eff $nginx_eff $(r "$river0_eff" "$nginx_eff") - river --rtmp-merge 0")
  summary+=("RESULT relay_rtmp mbps_per_cpu_s_with_load_n$n $river_effl $nginx_effl $(r "$river_effl" "$nginx_effl") - server and players CPU")
  summary+=("RESULT relay_rtmp mbps_per_cpu_s_all_n$n $river_effa $nginx_effa $(r "$river_effa" "$nginx_effa") - server, players and publisher CPU")
  summary+=("RESULT relay_rtmp rss_mib_n$n $(r "$river_rss" 1024) $(r "$nginx_rss" 1024) $(r "$river_rss" "$nginx_rss") <=1")
done
echo
printf '%s\n' "${summary[@]}"
