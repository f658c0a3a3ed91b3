#!/usr/bin/env bash
# river-mux-ts / river-mux-flv against `ffmpeg -c copy`, in the same run, on the same input.
# Prints MB/s (input bytes / wall time, median of RUNS), the river/ffmpeg ratio, and peak RSS.
#
#   bench/remux.sh            # builds release, makes >= 300 MB H.264+AAC and H.265+AAC inputs in bench/work/
#   RUNS=5 bench/remux.sh
#
# H.265 in FLV is Enhanced FLV, which Debian's ffmpeg 5.1 cannot write or read: the H.265 cases take
# ffmpeg 9 from PyPI imageio-ffmpeg (the venv .ci/run makes, .ci/venv) as their anchor; without it
# they are skipped with a hint.
#
# Not a test: numbers vary with the machine. Quote medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
W=bench/work
mkdir -p "$W"
command -v ffmpeg >/dev/null || { echo "needs ffmpeg: apt-get install -y ffmpeg" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }

cargo build --release --quiet
MUXTS=target/release/river-mux-ts
MUXFLV=target/release/river-mux-flv

# Input: 30 s of 720p30 H.264 (B-frames, 2 s GOP, ~15-25 Mbit/s) + AAC, looped by stream copy
# (7 times) to >= 300 MB.
if [ ! -s "$W/big.flv" ]; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30:duration=30 \
    -f lavfi -i sine=frequency=440:sample_rate=44100:duration=30 \
    -c:v libx264 -preset veryfast -bf 2 -g 60 -b:v 25M -maxrate 25M -bufsize 25M -pix_fmt yuv420p \
    -c:a aac -b:a 128k -f flv "$W/seed.flv"
  ffmpeg -v error -y -stream_loop 6 -i "$W/seed.flv" -c copy -f flv "$W/big.flv"
fi
[ -s "$W/big.ts" ] || ffmpeg -v error -y -i "$W/big.flv" -c copy -f mpegts "$W/big.ts"
[ -s "$W/big.h264" ] || ffmpeg -v error -y -i "$W/big.flv" -an -c:v copy -bsf:v h264_mp4toannexb -f h264 "$W/big.h264"

# measure INPUT CMD... : runs CMD < INPUT > /dev/null RUNS times (the input is read once first so it
# is in the page cache for both); prints "median_seconds peak_rss_kib".
measure() {
  local input=$1; shift
  local times=() rss=0 t0 t1 m
  cat "$input" > /dev/null
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$W/time.txt" "$@" < "$input" > /dev/null
    t1=$(date +%s%N)
    m=$(tail -n 1 "$W/time.txt")
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b - a) / 1e9}')")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$med $rss"
}

printf '%-14s %10s %10s %10s %10s %8s %12s %12s\n' case size_MB river_MB/s ffmpeg_MB/s ratio "" river_RSS ffmpeg_RSS
run_case() {
  local name=$1 input=$2; shift 2
  local size_mb
  size_mb=$(awk -v b="$(stat -c %s "$input")" 'BEGIN {printf "%.1f", b/1e6}')
  read -r rt rr < <(measure "$input" "${RIVER[@]}")
  read -r ft fr < <(measure "$input" "$@")
  awk -v n="$name" -v s="$size_mb" -v rt="$rt" -v ft="$ft" -v rr="$rr" -v fr="$fr" 'BEGIN {
    rs = (rt > 0) ? s / rt : 0; fs = (ft > 0) ? s / ft : 0;
    printf "%-14s %10s %10.0f %10.0f %9.2fx %8s %9.1f MiB %9.1f MiB\n", n, s, rs, fs, (fs > 0 ? rs / fs : 0), "", rr / 1024, fr / 1024 }'
}

RIVER=("$MUXTS");  run_case "FLV->TS" "$W/big.flv" ffmpeg -v error -f flv -i - -c copy -f mpegts -
RIVER=("$MUXFLV"); run_case "TS->FLV" "$W/big.ts" ffmpeg -v error -f mpegts -i - -c copy -f flv -
# ffmpeg cannot give raw H.264 with B-frames presentation times on a stream copy ("first pts and dts
# value must be set"), so its anchor stamps pts=dts=frame number: the same I/O and muxing work, with
# timestamps river gets right and this anchor does not.
RIVER=("$MUXTS");  run_case "AnnexB->TS" "$W/big.h264" ffmpeg -v error -framerate 30 -f h264 -i - -c copy -bsf:v setts=pts=N*3000:dts=N*3000 -f mpegts -

# H.265: the same shape of input from libx265 (B-frames, 2 s GOP, ~25 Mbit/s) + AAC, looped to
# >= 300 MB; ffmpeg 9 is the anchor of both cases (it alone reads and writes Enhanced FLV).
FF9=$(.ci/venv/bin/python -c 'import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())' 2>/dev/null) || FF9=
if [ -z "$FF9" ]; then
  echo "H.265 cases skipped: needs ffmpeg 9: python3 -m venv .ci/venv && .ci/venv/bin/pip install imageio-ffmpeg" >&2
  exit 0
fi
if [ ! -s "$W/big-h265.ts" ]; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30:duration=30 \
    -f lavfi -i sine=frequency=440:sample_rate=44100:duration=30 \
    -c:v libx265 -preset ultrafast -pix_fmt yuv420p \
    -x265-params bframes=2:keyint=60:min-keyint=60:scenecut=0:bitrate=25000:vbv-maxrate=25000:vbv-bufsize=25000:log-level=error \
    -c:a aac -b:a 128k -f mpegts "$W/seed-h265.ts"
  ffmpeg -v error -y -stream_loop 6 -i "$W/seed-h265.ts" -c copy -f mpegts "$W/big-h265.ts"
fi
[ -s "$W/big-h265.flv" ] || "$FF9" -v error -y -i "$W/big-h265.ts" -c copy -f flv "$W/big-h265.flv"
RIVER=("$MUXTS");  run_case "H265 FLV->TS" "$W/big-h265.flv" "$FF9" -v error -f flv -i - -c copy -f mpegts -
RIVER=("$MUXFLV"); run_case "H265 TS->FLV" "$W/big-h265.ts" "$FF9" -v error -f mpegts -i - -c copy -f flv -
