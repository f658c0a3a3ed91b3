#!/usr/bin/env bash
# CPU per stream pulling a ~4 Mbit/s RTSP camera (gst-rtsp-server: 1280x720 30 fps H.264 + AAC,
# tests/fixtures/rtsp/server.py) to MPEG-TS: river-rtsp-pull --format ts against
# `ffmpeg -rtsp_transport tcp -i URL -c copy -f mpegts -`, both pulling the same shared stream at
# the same time, for SECS seconds per run. Prints user+system CPU seconds of each (median of RUNS,
# at microsecond resolution from wait4: bench/runstat.py --once) and the ratio river/ffmpeg
# (goal: <= 1/3).
#
#   bench/rtsp_pull.sh            RUNS=7 SECS=30 bench/rtsp_pull.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SECS=${SECS:-20}
KBPS=${KBPS:-4000}
W=bench/work
mkdir -p "$W"
[ -x /usr/bin/time ] || { echo "needs GNU time (bench/runstat.py): apt-get install -y time" >&2; exit 2; }
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null \
  || { echo "needs gst-rtsp-server: apt-get install -y python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-libav" >&2; exit 2; }
cargo build --release --quiet --bin river-rtsp-pull
PULL=$PWD/target/release/river-rtsp-pull

# Snow is incompressible, so the encoder spends its whole bitrate: a steady KBPS stream.
/usr/bin/python3 tests/fixtures/rtsp/server.py --audio --size 1280x720 --fps 30 --gop 60 \
  --bitrate "$KBPS" --pattern snow 2> "$W/rtsp-server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$W/rtsp-server.log" && break; sleep 0.1; done
URL=$(grep -o 'rtsp://[^ ]*' "$W/rtsp-server.log")
# Warm up the shared media and measure the stream's real bitrate.
bytes=$("$PULL" -q "$URL" --duration 5s | wc -c)
MBPS=$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b * 8 / 5 / 1e6}')
echo "stream: $URL, $MBPS Mbit/s as MPEG-TS"

cpu() { awk '{printf "%.4f", $2}' "$1"; }
river_cpu=(); ffmpeg_cpu=()
for r in $(seq "$RUNS"); do
  python3 bench/runstat.py --once "$W/time-river.txt" "$PULL" -q "$URL" --format ts --duration "${SECS}s" > "$W/rtsp-river.ts" &
  a=$!
  python3 bench/runstat.py --once "$W/time-ffmpeg.txt" ffmpeg -nostdin -v error -rtsp_transport tcp -i "$URL" \
    -t "$SECS" -c copy -f mpegts - > "$W/rtsp-ffmpeg.ts" &
  b=$!
  wait $a; wait $b
  rc=$(cpu "$W/time-river.txt"); fc=$(cpu "$W/time-ffmpeg.txt")
  river_cpu+=("$rc"); ffmpeg_cpu+=("$fc")
  printf 'run %d: river %6.3f s  ffmpeg %6.3f s  (river %.1f MB, ffmpeg %.1f MB)\n' "$r" "$rc" "$fc" \
    "$(awk -v s="$(stat -c %s "$W/rtsp-river.ts")" 'BEGIN {print s / 1e6}')" \
    "$(awk -v s="$(stat -c %s "$W/rtsp-ffmpeg.ts")" 'BEGIN {print s / 1e6}')"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rm=$(median "${river_cpu[@]}"); fm=$(median "${ffmpeg_cpu[@]}")
awk -v r="$rm" -v f="$fm" -v s="$SECS" -v n="$RUNS" -v mbps="$MBPS" 'BEGIN {
  printf "median of %d runs, %d s of stream each (CPU seconds = user + system):\n", n, s
  printf "  river-rtsp-pull --format ts       %6.3f s  (%.2f%% of one core)\n", r, 100 * r / s
  printf "  ffmpeg -c copy -f mpegts          %6.3f s  (%.2f%% of one core)\n", f, 100 * f / s
  printf "  ratio river/ffmpeg: %.2f (goal <= 0.33)\n", r / f
  printf "RESULT rtsp_pull cpu_s_%ds %.3f %.3f %.3f <=0.33 ffmpeg -c copy -f mpegts, both pulling the same %s Mbit/s stream, median of %d\n", s, r, f, r / f, mbps, n }'
rm -f "$W/rtsp-river.ts" "$W/rtsp-ffmpeg.ts"
