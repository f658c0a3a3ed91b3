#!/usr/bin/env bash
# river-hls-seg against `ffmpeg -f hls -c copy`, in the same run, on the same >= 300 MB TS input
# (made by bench/remux.sh) on stdin. Both cut 2 s MPEG-TS segments, list every segment in the
# playlist (rewritten at each segment, through a temporary file and a rename) and write it all
# to HLS_DIR; nothing is fsynced: river-hls-seg in live mode with a list as long as the input
# (--list-size 100000), ffmpeg with -hls_list_size 0. The same again with river-hls-seg --dvr,
# which also fsyncs every segment, the playlist and the directory before listing them (durable
# recordings; ffmpeg has no such mode): its cost, shown beside. Medians of RUNS whole-process
# runs, wall and CPU (user + system), input MB/s, peak RSS. The output directories are emptied
# before each run and deleted at the end.
#
#   bench/hls.sh            RUNS=5 bench/hls.sh            HLS_DIR=/dev/shm bench/hls.sh
#
# Goal: throughput >= 3x ffmpeg's, RSS <= 16 MiB. Most of both tools' time is the kernel's: the
# read of the input from the page cache, and the write of the segments into it (on ext4 also the
# block allocation and a new inode per file), which neither can avoid with read/write: see
# BENCHMARKS.md for the profile.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-9}
W=bench/work
HLS_DIR=${HLS_DIR:-$W}
[ -s "$W/big.ts" ] || GEN_ONLY=1 bash bench/remux.sh
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build --release --quiet --bin river-hls-seg
SEG=$PWD/target/release/river-hls-seg
R=$HLS_DIR/hls-river
F=$HLS_DIR/hls-ffmpeg
trap 'rm -rf "$R" "$F"' EXIT

# measure DIR CMD...: RUNS runs with DIR emptied first; prints "wall_s cpu_s peak_rss_kib".
measure() {
  local dir=$1; shift
  RUNSTAT_SETUP="rm -rf '$dir' && mkdir -p '$dir'" python3 bench/runstat.py "$RUNS" "$W/big.ts" "$@"
}

size_mb=$(awk -v b="$(stat -c %s "$W/big.ts")" 'BEGIN {printf "%.1f", b/1e6}')
read -r rw rc rr < <(measure "$R" "$SEG" --dir "$R" --list-size 100000 --segment-time 2 -q)
nr=$(grep -c EXTINF "$R/movie.m3u8")
read -r fw fc fr < <(measure "$F" ffmpeg -v error -f mpegts -i - -c copy -f hls -hls_time 2 -hls_list_size 0 "$F/movie.m3u8")
nf=$(grep -c EXTINF "$F/movie.m3u8")
read -r dw dc dr < <(measure "$R" "$SEG" --dir "$R" --dvr --segment-time 2 -q)
fs=$(findmnt -no FSTYPE -T "$HLS_DIR" 2>/dev/null || stat -f -c %T "$HLS_DIR")
awk -v s="$size_mb" -v rw="$rw" -v rc="$rc" -v rr="$rr" -v fw="$fw" -v fc="$fc" -v fr="$fr" \
  -v dw="$dw" -v dc="$dc" -v dr="$dr" -v nr="$nr" -v nf="$nf" -v fs="$fs" -v n="$RUNS" 'BEGIN {
  printf "%s MB of TS into %s, medians of %d runs\n", s, fs, n
  printf "%-22s %8s %8s %8s %9s %10s\n", "segmenter", "wall_s", "cpu_s", "MB/s", "segments", "peak_RSS"
  printf "%-22s %8.3f %8.3f %8.0f %9d %6.1f MiB\n", "river-hls-seg", rw, rc, s / rw, nr, rr / 1024
  printf "%-22s %8.3f %8.3f %8.0f %9d %6.1f MiB\n", "ffmpeg -f hls", fw, fc, s / fw, nf, fr / 1024
  printf "%-22s %8.3f %8.3f %8.0f %9s %6.1f MiB\n", "river-hls-seg --dvr", dw, dc, s / dw, "", dr / 1024
  printf "throughput ratio river/ffmpeg: %.2fx wall, %.2fx CPU (goal >= 3x)\n", fw / rw, fc / rc
  printf "RESULT hls segmenting_wall_s %.3f %.3f %.2f >=3 ffmpeg -f hls -c copy, %s MB into %s, median of %d\n", rw, fw, fw / rw, s, fs, n
  printf "RESULT hls segmenting_cpu_s %.3f %.3f %.2f >=3 ffmpeg -f hls -c copy, CPU user+sys\n", rc, fc, fc / rc
  printf "RESULT hls rss_MiB %.1f %.1f %.2f river<=16 peak RSS, whole process\n", rr / 1024, fr / 1024, rr / fr
  printf "RESULT hls dvr_fsync_wall_s %.3f %.3f %.2f - river --dvr (fsyncs every segment) against ffmpeg, which does not sync\n", dw, fw, fw / dw }'
