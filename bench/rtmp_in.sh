#!/usr/bin/env bash
# river-rtmp-in vs nginx-rtmp (Debian's libnginx-mod-rtmp), ingest only, in the same run.
#
# 1. N parallel ffmpeg publishers (-re, -c copy) of the same 720p clip into each server: CPU
#    seconds (utime+stime from /proc, the server's own processes only) and peak RSS (VmHWM).
#    river-rtmp-in runs with --exec 'exec cat > /dev/null' (one child per publish, as nginx-rtmp's
#    exec would); nginx-rtmp has `live on; record off;` and no players, so it drops what it gets.
# 2. One publisher as fast as it can send (no -re): wall time, MB/s and server CPU.
#
# Each figure is the median of RUNS runs; the ratio is nginx / river (above 1: river uses less).
# BASE=path/to/an/older/river-rtmp-in adds it as a third server ("base"), measured in the same
# runs: before/after figures for a change.
# Usage: bench/rtmp_in.sh            (env: N=10 SECS=15 RUNS=3 FAST_SECS=120 BASE=)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
SECS=${SECS:-15}
RUNS=${RUNS:-3}
FAST_SECS=${FAST_SECS:-120}
BASE=${BASE:-}
export N
SERVERS="river"
if [ -n "$BASE" ]; then
  [ -x "$BASE" ] || { echo "BASE=$BASE is not an executable"; exit 1; }
  SERVERS="river base"
fi
SERVERS="$SERVERS nginx"
command -v ffmpeg >/dev/null || { echo "needs ffmpeg (apt-get install ffmpeg)"; exit 1; }
command -v nginx >/dev/null || { echo "needs nginx + libnginx-mod-rtmp (apt-get install nginx libnginx-mod-rtmp)"; exit 1; }
MOD=/usr/lib/nginx/modules/ngx_rtmp_module.so
[ -f "$MOD" ] || { echo "needs libnginx-mod-rtmp ($MOD)"; exit 1; }

cargo build --release --bin river-rtmp-in >/dev/null 2>&1
BIN=$PWD/target/release/river-rtmp-in
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "bench: making the clips (720p30 H.264 ~3 Mb/s + AAC)" >&2
ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t "$SECS" -c:v libx264 -preset ultrafast -b:v 3M -maxrate 3M -bufsize 6M -g 60 -c:a aac -b:a 128k -f flv "$tmp/clip.flv"
ffmpeg -v error -y -stream_loop -1 -i "$tmp/clip.flv" -t "$FAST_SECS" -c copy -f flv "$tmp/long.flv"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU seconds and summed peak RSS (KiB) of a process and its children processes (nginx workers),
# not counting --exec children (their own processes, not the server's work).
measure() { # pids...
  local cpu=0 rss=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    local f; f=$(sed 's/.*) //' "/proc/$p/stat")
    local ut st; ut=$(echo "$f" | awk '{print $12}'); st=$(echo "$f" | awk '{print $13}')
    cpu=$((cpu + ut + st))
    local h; h=$(awk '/VmHWM/ {print $2}' "/proc/$p/status")
    rss=$((rss + h))
  done
  echo "$(awk -v c="$cpu" 'BEGIN{printf "%.2f", c/100}') $rss"
}

start_rtmp_in() { # binary port -> sets SRV_PIDS
  "$1" --listen "127.0.0.1:$2" -q --exec 'exec cat > /dev/null' >/dev/null 2>>"$tmp/river.err" &
  SRV_PIDS=($!)
  pids+=($!)
}
start_river() { start_rtmp_in "$BIN" "$1"; }
start_base() { start_rtmp_in "$BASE" "$1"; }

start_nginx() { # port -> sets SRV_PIDS
  mkdir -p "$tmp/nginx/logs"
  cat > "$tmp/nginx/nginx.conf" <<CONF
load_module $MOD;
daemon off;
master_process on;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
rtmp {
  server {
    listen 127.0.0.1:$1;
    chunk_size 4096;
    application live { live on; record off; }
  }
}
CONF
  nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" &
  local m=$!
  pids+=($m)
  sleep 0.5
  SRV_PIDS=($m $(pgrep -P "$m" || true))
}

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; exit 1; }

stop_servers() {
  for p in "${SRV_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${SRV_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# run_parallel SERVER -> "cpu rss"
run_parallel() {
  local port; port=$(free_port)
  "start_$1" "$port"; wait_port "$port"
  local fps=()
  for i in $(seq "$N"); do
    ffmpeg -nostdin -v error -re -i "$tmp/clip.flv" -c copy -f flv "rtmp://127.0.0.1:$port/live/k$i" &
    fps+=($!)
  done
  local fail=0
  for p in "${fps[@]}"; do wait "$p" || fail=1; done
  [ "$fail" = 0 ] || echo "warning: a publisher into $1 failed" >&2
  sleep 0.3
  local m; m=$(measure "${SRV_PIDS[@]}")
  stop_servers
  echo "$m"
}

# run_fast SERVER -> "wall cpu"
run_fast() {
  local port; port=$(free_port)
  "start_$1" "$port"; wait_port "$port"
  local t0 t1
  t0=$(date +%s.%N)
  ffmpeg -nostdin -v error -i "$tmp/long.flv" -c copy -f flv "rtmp://127.0.0.1:$port/live/fast" || echo "warning: fast publish into $1 failed" >&2
  t1=$(date +%s.%N)
  sleep 0.3
  local m; m=$(measure "${SRV_PIDS[@]}")
  stop_servers
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') ${m% *}"
}

median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A cpu rss wall fcpu
for s in $SERVERS; do cpu[$s]=""; rss[$s]=""; wall[$s]=""; fcpu[$s]=""; done
for r in $(seq "$RUNS"); do
  for s in $SERVERS; do
    read -r pc pm < <(run_parallel "$s")
    cpu[$s]+="$pc"$'\n'; rss[$s]+="$pm"$'\n'
    read -r fw fc < <(run_fast "$s")
    wall[$s]+="$fw"$'\n'; fcpu[$s]+="$fc"$'\n'
    echo "run $r $s: parallel cpu ${pc}s rss ${pm}KiB; fast wall ${fw}s cpu ${fc}s" >&2
  done
done

size=$(stat -c %s "$tmp/long.flv")
printf '\n%d publishers x %ss of 720p (~3.2 Mb/s each), medians of %d runs\n' "$N" "$SECS" "$RUNS"
printf '%-8s %10s %12s %12s %12s %12s\n' server cpu_s peak_rss_KiB fast_wall_s fast_MB/s fast_cpu_s
for s in $SERVERS; do
  C=$(printf '%s' "${cpu[$s]}" | median); M=$(printf '%s' "${rss[$s]}" | median)
  W=$(printf '%s' "${wall[$s]}" | median); F=$(printf '%s' "${fcpu[$s]}" | median)
  eval "C_$s=$C M_$s=$M W_$s=$W F_$s=$F"
  printf '%-8s %10s %12s %12s %12s %12s\n' "$s" "$C" "$M" "$W" "$(awk -v b="$size" -v w="$W" 'BEGIN{printf "%.1f", b/w/1e6}')" "$F"
done
awk -v cr="$C_river" -v cn="$C_nginx" -v mr="$M_river" -v mn="$M_nginx" -v fr="$F_river" -v fn="$F_nginx" 'BEGIN{
  printf "ratio nginx/river: parallel cpu %.2f, peak rss %.2f, fast cpu %.2f\n", (cr>0?cn/cr:0), (mr>0?mn/mr:0), (fr>0?fn/fr:0)
  printf "RESULT rtmp_in ingest_cpu_s_%dpub %s %s %.2f - nginx-rtmp CPU / river CPU\n", ENVIRON["N"], cr, cn, (cr>0?cn/cr:0)
  printf "RESULT rtmp_in ingest_rss_KiB_%dpub %s %s %.2f - nginx-rtmp RSS / river RSS\n", ENVIRON["N"], mr, mn, (mr>0?mn/mr:0)
  printf "RESULT rtmp_in fast_publish_cpu_s %s %s %.2f - nginx-rtmp CPU / river CPU\n", fr, fn, (fr>0?fn/fr:0) }'
if [ -n "$BASE" ]; then
  awk -v cr="$C_river" -v cb="$C_base" -v mr="$M_river" -v mb="$M_base" -v fr="$F_river" -v fb="$F_base" -v wr="$W_river" -v wb="$W_base" 'BEGIN{
    printf "ratio base/river: parallel cpu %.2f, peak rss %.2f, fast cpu %.2f, fast wall %.2f\n", (cr>0?cb/cr:0), (mr>0?mb/mr:0), (fr>0?fb/fr:0), (wr>0?wb/wr:0) }'
fi
