#!/usr/bin/env bash
# river-hls-seg against `ffmpeg -f hls -c copy`, in the same run, on the same >= 300 MB TS input
# (made by bench/remux.sh). Prints MB/s (input bytes / wall time, median of RUNS), the ratio, and
# peak RSS. Both write every segment to disk (bench/work/hls-*), deleted between runs.
#
#   bench/hls.sh            RUNS=5 bench/hls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
W=bench/work
[ -s "$W/big.ts" ] || bash bench/remux.sh > /dev/null
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build --release --quiet
SEG=$PWD/target/release/river-hls-seg

measure() { # DIR CMD... (stdin is big.ts); prints "median_s peak_rss_kib"
  local dir=$1; shift
  local times=() rss=0 t0 t1 m
  cat "$W/big.ts" > /dev/null
  for _ in $(seq "$RUNS"); do
    rm -rf "$dir"; mkdir -p "$dir"
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$W/time.txt" "$@" < "$W/big.ts" > /dev/null
    t1=$(date +%s%N)
    m=$(tail -n 1 "$W/time.txt")
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b - a) / 1e9}')")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s\n' "${times[@]}" | sort -g | awk -v r="$rss" '{a[NR]=$1} END {print a[int((NR+1)/2)], r}'
}

size_mb=$(awk -v b="$(stat -c %s "$W/big.ts")" 'BEGIN {printf "%.1f", b/1e6}')
read -r rt rr < <(measure "$W/hls-river" "$SEG" --dir "$W/hls-river" --dvr --segment-time 2 -q)
read -r ft fr < <(measure "$W/hls-ffmpeg" ffmpeg -v error -f mpegts -i - -c copy -f hls -hls_time 2 -hls_list_size 0 "$W/hls-ffmpeg/movie.m3u8")
nr=$(grep -c EXTINF "$W/hls-river/movie.m3u8"); nf=$(grep -c EXTINF "$W/hls-ffmpeg/movie.m3u8")
awk -v s="$size_mb" -v rt="$rt" -v ft="$ft" -v rr="$rr" -v fr="$fr" -v nr="$nr" -v nf="$nf" 'BEGIN {
  printf "%-16s %8s %10s %10s %12s\n", "segmenter", "size_MB", "MB/s", "segments", "peak_RSS"
  printf "%-16s %8s %10.0f %10d %9.1f MiB\n", "river-hls-seg", s, s / rt, nr, rr / 1024
  printf "%-16s %8s %10.0f %10d %9.1f MiB\n", "ffmpeg -f hls", s, s / ft, nf, fr / 1024
  printf "throughput ratio river/ffmpeg: %.2fx\n", ft / rt }'
rm -rf "$W/hls-river" "$W/hls-ffmpeg"
