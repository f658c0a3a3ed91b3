#!/usr/bin/env bash
# river-mux-ts / river-mux-flv against `ffmpeg -c copy` and `cat`, in the same run, on the same
# input on stdin, output to /dev/null. Prints, as medians of RUNS whole-process runs, the wall and
# CPU seconds of each, ffmpeg/river (x_ffm: wall, x_ffmC: CPU; goal >= 4x), river's speed as a
# share of cat's (of_cat, of_catC; goal >= 50 %), and peak RSS (goal <= 16 MiB).
#
#   bench/remux.sh            # builds release, makes >= 300 MB H.264+AAC and H.265+AAC inputs in bench/work/
#   RUNS=5 bench/remux.sh     # default 9
#   SKIP_H265=1 bench/remux.sh   # H.264 cases only
#   GEN_ONLY=1 bench/remux.sh    # make the H.264 inputs only
#
# Inputs stay in bench/work/ (git-ignored, ~1.9 GB with the H.265 ones): delete it when done.
#
# H.265 in FLV is Enhanced FLV, which Debian's ffmpeg 5.1 cannot write or read: the H.265 cases take
# ffmpeg 9 from PyPI imageio-ffmpeg (the venv .ci/run makes, .ci/venv) as their anchor; without it
# they are skipped with a hint.
#
# Not a test: numbers vary with the machine. Quote medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-9}
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
# GEN_ONLY=1: make the H.264 inputs and stop (bench/hls.sh uses big.ts).
[ -n "${GEN_ONLY:-}" ] && exit 0

# measure INPUT CMD... : RUNS runs of CMD < INPUT > /dev/null (bench/runstat.py: the input read
# once first, so every run reads it from the page cache); prints "wall_s cpu_s peak_rss_kib",
# medians of wall and CPU (user + system).
measure() { local input=$1; shift; python3 bench/runstat.py "$RUNS" "$input" "$@"; }

printf '%-14s %8s | %9s %9s %9s | %7s %7s | %7s %7s | %9s %9s\n' case size_MB "river_s" "ffmpeg_s" "cat_s" \
  "x_ffm" "x_ffmC" "of_cat" "of_catC" river_RSS ffmpeg_RSS
# Per case: river, the anchor and cat on the same input, RUNS times each; wall-time medians
# (what the goals name) and CPU medians (what the machine's other load does not change). RESULT
# lines for bench/report.sh: ffmpeg/river (goal >= 4), cat/river (goal >= 0.5: at least half of
# cat's speed), river's peak RSS (goal <= 16 MiB).
run_case() {
  local name=$1 input=$2; shift 2
  local key size_mb
  key=$(echo "$name" | tr 'A-Z' 'a-z' | sed 's/->/_to_/; s/ /_/g')
  size_mb=$(awk -v b="$(stat -c %s "$input")" 'BEGIN {printf "%.1f", b/1e6}')
  read -r rw rc rr < <(measure "$input" "${RIVER[@]}")
  read -r fw fc fr < <(measure "$input" "$@")
  read -r cw cc _ < <(measure "$input" cat)
  awk -v n="$name" -v k="$key" -v s="$size_mb" -v rw="$rw" -v rc="$rc" -v rr="$rr" -v fw="$fw" \
    -v fc="$fc" -v fr="$fr" -v cw="$cw" -v cc="$cc" 'BEGIN {
    printf "%-14s %8s | %9.4f %9.4f %9.4f | %6.2fx %6.2fx | %6.0f%% %6.0f%% | %5.1f MiB %5.1f MiB\n", n, s,
      rw, fw, cw, fw / rw, fc / rc, 100 * cw / rw, 100 * cc / rc, rr / 1024, fr / 1024
    printf "RESULT remux %s_wall_s %.4f %.4f %.2f >=4 ffmpeg -c copy, median of %d\n", k, rw, fw, fw / rw, ENVIRON["RUNS"]
    printf "RESULT remux %s_cpu_s %.4f %.4f %.2f >=4 ffmpeg -c copy, CPU user+sys\n", k, rc, fc, fc / rc
    printf "RESULT remux %s_vs_cat_wall_s %.4f %.4f %.2f >=0.5 cat\n", k, rw, cw, cw / rw
    printf "RESULT remux %s_vs_cat_cpu_s %.4f %.4f %.2f >=0.5 cat, CPU user+sys\n", k, rc, cc, cc / rc
    printf "RESULT remux %s_rss_MiB %.1f %.1f %.2f river<=16 peak RSS, whole process\n", k, rr / 1024, fr / 1024, rr / fr }'
}
export RUNS

RIVER=("$MUXTS");  run_case "FLV->TS" "$W/big.flv" ffmpeg -v error -f flv -i - -c copy -f mpegts -
RIVER=("$MUXFLV"); run_case "TS->FLV" "$W/big.ts" ffmpeg -v error -f mpegts -i - -c copy -f flv -
# ffmpeg cannot give raw H.264 with B-frames presentation times on a stream copy ("first pts and dts
# value must be set"), so its anchor stamps pts=dts=frame number: the same I/O and muxing work, with
# timestamps river gets right and this anchor does not.
RIVER=("$MUXTS");  run_case "AnnexB->TS" "$W/big.h264" ffmpeg -v error -framerate 30 -f h264 -i - -c copy -bsf:v setts=pts=N*3000:dts=N*3000 -f mpegts -

# H.265: the same shape of input from libx265 (B-frames, 2 s GOP, ~25 Mbit/s) + AAC, looped to
# >= 300 MB; ffmpeg 9 is the anchor of both cases (it alone reads and writes Enhanced FLV).
[ -n "${SKIP_H265:-}" ] && exit 0
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
