#!/usr/bin/env bash
# river's HLS HTTP server (src/http, via examples/http_serve) against nginx, serving the same
# files in the same run, both loaded by wrk. Prints requests/s and MB/s for a playlist and for a
# ~1 MB segment, and the river/nginx ratio.
#
#   bench/http.sh                         # 10 s per run, 2 wrk threads, 50 connections
#   WORKERS=1 bench/http.sh               # river's reactor threads (default 16, as before)
#   DURATION=20s CONNS=200 bench/http.sh
#
# Installs nginx and wrk with apt-get when missing (bench only; the tests do not need them).
# Not a test: the numbers vary with the machine; both servers share the cores with wrk. Quote
# the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
WORKERS=${WORKERS:-16}
W=$PWD/bench/work/http
mkdir -p "$W"

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet --example http_serve
RIVER_BIN=target/release/examples/http_serve

# The files: an ffmpeg HLS stream of 720p at ~4 Mbit/s in 2 s segments (about 1 MB each).
WWW=$W/www
if [ ! -s "$WWW/movie.m3u8" ]; then
  rm -rf "$WWW" && mkdir -p "$WWW"
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30:duration=12 \
    -c:v libx264 -preset veryfast -g 60 -b:v 4M -maxrate 4M -bufsize 4M -pix_fmt yuv420p \
    -f hls -hls_time 2 -hls_list_size 0 -hls_segment_filename "$WWW/movie%d.ts" "$WWW/movie.m3u8"
fi
SEG=movie1.ts
seg_bytes=$(stat -c %s "$WWW/$SEG")
pl_bytes=$(stat -c %s "$WWW/movie.m3u8")

# nginx on 127.0.0.1, a temp prefix, stopped at the end.
NG=$W/nginx
rm -rf "$NG" && mkdir -p "$NG/logs"
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$NG/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes auto;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $NG/body;
  proxy_temp_path $NG/proxy;
  fastcgi_temp_path $NG/fastcgi;
  uwsgi_temp_path $NG/uwsgi;
  scgi_temp_path $NG/scgi;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /live/ {
      alias $WWW/;
      add_header Access-Control-Allow-Origin *;
    }
  }
}
CONF
"$NGINX" -p "$NG" -c "$NG/nginx.conf" -g 'daemon off;' 2> "$NG/logs/stderr.log" &
NGINX_PID=$!

# river, on a free port; it runs until its stdin closes.
coproc RIVER { exec "$RIVER_BIN" 127.0.0.1:0 "$WWW" "$WORKERS" 2> "$W/river.stderr"; }
RIVER_IN=${RIVER[1]}
read -r -t 30 RIVER_URL <&"${RIVER[0]}"
RIVER_BASE=${RIVER_URL%/live/movie.m3u8}

cleanup() {
  kill "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  if [ -n "${RIVER_PID:-}" ]; then
    exec {RIVER_IN}>&- 2>/dev/null || true
    wait "$RIVER_PID" 2>/dev/null || true
  fi
}
RIVER_PID=$RIVER_PID
trap cleanup EXIT

NGINX_BASE=http://127.0.0.1:$NGINX_PORT
for _ in $(seq 100); do curl -fs -o /dev/null "$NGINX_BASE/live/movie.m3u8" && break; sleep 0.1; done
for base in "$RIVER_BASE" "$NGINX_BASE"; do
  for f in movie.m3u8 "$SEG"; do
    cmp -s <(curl -fs "$base/live/$f") "$WWW/$f" || { echo "bench: $base/live/$f differs from the file" >&2; exit 1; }
  done
done

# wrk URL -> "requests_per_s MB_per_s"
load() {
  local out rps tps
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1")
  if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
    echo "bench: errors loading $1:" >&2
    echo "$out" | grep 'Non-2xx\|Socket errors' >&2
  fi
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  tps=$(echo "$out" | awk '/^Transfer\/sec:/ {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v);
    m = (u == "GB") ? 1024 : (u == "MB") ? 1 : (u == "KB") ? 1/1024 : 1/1048576;
    printf "%.1f", v * m * 1.048576 }')
  echo "$rps $tps"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION on $(nproc) cores; river reactor threads: $WORKERS; nginx: $("$NGINX" -v 2>&1 | sed 's/.*version: //')"
printf '%-22s %12s %12s %10s %10s %8s\n' case river_req/s nginx_req/s river_MB/s nginx_MB/s ratio
for spec in "playlist:movie.m3u8:$pl_bytes" "segment:$SEG:$seg_bytes"; do
  IFS=: read -r name f bytes <<< "$spec"
  read -r rr rm < <(load "$RIVER_BASE/live/$f")
  read -r nr nm < <(load "$NGINX_BASE/live/$f")
  awk -v n="$name ($bytes B)" -v k="$name" -v rr="$rr" -v nr="$nr" -v rm="$rm" -v nm="$nm" 'BEGIN {
    printf "%-22s %12.0f %12.0f %10.1f %10.1f %7.2fx\n", n, rr, nr, rm, nm, (nr > 0) ? rr / nr : 0
    printf "RESULT http %s_req_per_s %.0f %.0f %.2f - nginx, wrk on the same cores\n", k, rr, nr, (nr > 0) ? rr / nr : 0 }'
done
