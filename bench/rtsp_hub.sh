#!/bin/bash
# RTSP/TCP players per core: river-relay serve --rtsp against gst-rtsp-server, same ~4 Mbit/s
# stream (1280x720 x264 + AAC, 40 s), same N players (bench/rtsp_players.py, one process), in one
# run. CPU = the server process's utime+stime over the measurement window (/proc/PID/stat).
# RUNS rounds (default 3), river then gst-rtsp-server in each; prints each round and the medians.
# Usage: [RUNS=3] [CLIP_SECS=40] bench/rtsp_hub.sh [N players] [seconds]
# (needs ffmpeg, python3-gi, gir1.2-gst-rtsp-server-1.0; the clip must outlast seconds + 5)
set -euo pipefail
N=${1:-20}
SECS=${2:-15}
RUNS=${RUNS:-3}
CLIP_SECS=${CLIP_SECS:-40}
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/river-relay
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
CLIP=$W/clip.ts
ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t "$CLIP_SECS" -c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 4M -g 60 -bf 0 -c:a aac -b:a 128k -f mpegts "$CLIP"
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
measure() { # PID URL -> "cpu_fraction mbit"
  local pid=$1 url=$2
  python3 bench/rtsp_players.py "$url" "$N" "$((SECS + 3))" > "$W/bytes" 2> "$W/rate" &
  local pp=$!
  sleep 3
  local c0; c0=$(cpu "$pid"); local t0; t0=$(date +%s.%N)
  sleep "$SECS"
  local c1; c1=$(cpu "$pid"); local t1; t1=$(date +%s.%N)
  wait $pp
  echo "$c0 $c1 $t0 $t1 $TICK" | awk '{printf "%.4f", ($2-$1)/$5/($4-$3)}'
  echo " $(tail -n 3 "$W/rate" | head -n 1)"
}

median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$W/rc"; : > "$W/gc"
for run in $(seq "$RUNS"); do
  # river: the clip pushed in real time over HTTP (FLV) into the hub, played over RTSP.
  mkdir -p "$W/users" && printf '[DEFAULT]\npassword=pw\n' > "$W/users/live.ini"
  $BIN serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --rtsp 127.0.0.1:0 --users "$W/users" 2> "$W/hub.log" &
  HUB=$!
  sleep 0.5
  HTTP=$(sed -n 's/.*http listening on //p' "$W/hub.log")
  RTSP=$(sed -n 's/.*rtsp listening on //p' "$W/hub.log")
  ffmpeg -nostdin -v error -re -i "$CLIP" -c copy -f flv "http://$HTTP/live/cam?user-password=pw" 2>/dev/null &
  sleep 2
  read -r RC RRATE < <(measure $HUB "rtsp://$RTSP/live/cam")
  kill $HUB; wait $HUB 2>/dev/null || true
  echo "river-relay --rtsp : cpu $RC of a core for $N players, clients got $RRATE"

  # gst-rtsp-server: the same file, shared, paced by its timestamps.
  /usr/bin/python3 bench/gst_rtsp_file.py "$CLIP" 2> "$W/gst.log" &
  GST=$!
  sleep 1
  GURL=$(sed -n 's/.*listening //p' "$W/gst.log")
  read -r GC GRATE < <(measure $GST "$GURL")
  kill $GST || true
  echo "$RC" >> "$W/rc"; echo "$GC" >> "$W/gc"
  echo "run $run: river cpu $RC (clients got $RRATE), gst cpu $GC (clients got $GRATE)"
done
RC=$(median < "$W/rc"); GC=$(median < "$W/gc")
echo "players: $N, stream ~4 Mbit/s, window ${SECS}s, medians of $RUNS runs"
echo "river-relay --rtsp : cpu $RC of a core; players/core $(awk -v n="$N" -v c="$RC" 'BEGIN{printf "%.0f", n/c}')"
echo "gst-rtsp-server    : cpu $GC of a core; players/core $(awk -v n="$N" -v c="$GC" 'BEGIN{printf "%.0f", n/c}')"
awk -v r="$RC" -v g="$GC" -v n="$N" 'BEGIN{printf "ratio (gst cpu / river cpu): %.2f\n", g/r
  printf "RESULT rtsp_hub players_per_core_%d %.0f %.0f %.2f >=5 gst-rtsp-server, RTSP/TCP\n", n, n/r, n/g, g/r}'
