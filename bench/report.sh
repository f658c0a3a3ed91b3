#!/usr/bin/env bash
# Runs every benchmark in bench/ and writes BENCHMARKS.md: the machine, the date, the versions
# of river (git describe), ffmpeg, nginx and GStreamer; per area a table of river, the anchor,
# their ratio and the goal (from the RESULT lines the benches print); what limits each figure
# (bench/limits.md); and the curves (CURVE lines) as PNG beside it, drawn with gnuplot.
#
#   bench/report.sh                 # everything, under 30 minutes on 2 cores
#   bench/report.sh --quick         # shorter runs of every bench but soak and faults, under 5
#   bench/report.sh --only remux,thumb --out /tmp/B.md
#   bench/report.sh --browser       # also llhls.sh's hls.js latency (builds the test suite in
#                                   # release first: long)
#
# Each bench's output goes to bench/out/report-DATE/NAME.log (git-ignored), with the load
# average before and after it and its run time; a bench that fails or times out is reported as
# such and the others go on. Any line `RESULT <area> <metric> <river> <anchor> <ratio> <goal>
# [note...]` in any bench's output becomes a row of its area's table, and any line `CURVE <plot>
# <series> <x> <y>` a point of a plot: see bench/README.md.
#
# Needs what the benches need (ffmpeg, GNU time, nginx with libnginx-mod-rtmp, gst-rtsp-server,
# wrk, chromium for --browser) and gnuplot for the plots (apt-get install -y gnuplot-nox).
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=
ONLY=
OUT=BENCHMARKS.md
BROWSER=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    --out) OUT=$2; shift ;;
    --browser) BROWSER=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "report: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
command -v gnuplot >/dev/null || echo "report: gnuplot missing, no plots: apt-get install -y gnuplot-nox" >&2
DIR=bench/out/report-$(date +%Y%m%d-%H%M%S)
mkdir -p "$DIR"
T0=$(date +%s)
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "report: logs in $DIR" >&2

# Everything the benches run, built once (their own cargo build is then a no-op).
echo "report: cargo build --release --bins --examples" >&2
b0=$(date +%s)
cargo build --release --quiet --bins --examples > "$DIR/build.log" 2>&1 || {
  echo "report: the release build failed: $DIR/build.log" >&2
  exit 1
}
echo "build $(( $(date +%s) - b0 ))" > "$DIR/build.time"

# bench NAME TIMEOUT_S CMD...: runs one bench with its environment, logs, times it.
bench() {
  local name=$1 limit=$2; shift 2
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then return; fi
  local la0 t0 rc
  la0=$(loadavg); t0=$(date +%s)
  echo "report: $name ($*)" >&2
  timeout -k 10 "$limit" "$@" > "$DIR/$name.log" 2>&1 < /dev/null
  rc=$?
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$la0" "$(loadavg)" "$*" \
    >> "$DIR/runs.tsv"
  [ "$rc" = 0 ] || echo "report: $name exited $rc (log: $DIR/$name.log)" >&2
}

if [ -n "$QUICK" ]; then
  bench remux 300 env RUNS=3 SKIP_H265=1 bash bench/remux.sh
  bench hls 200 env RUNS=3 bash bench/hls.sh
  bench thumb 120 env RUNS=15 python3 bench/thumb.py
  bench rtsp_pull 120 env RUNS=3 SECS=5 bash bench/rtsp_pull.sh
  bench relay 200 env RUNS=1 SECS=2 COUNTS="10 100 1000" bash bench/relay.sh
  bench relay_rtmp 150 env RUNS=1 SECS=3 COUNTS="10 100" bash bench/relay_rtmp.sh
  bench rtsp_hub 150 env RUNS=1 CLIP_SECS=12 bash bench/rtsp_hub.sh 20 5
  bench llhls 120 env LOAD_ONLY=1 N=20 LOAD_SECS=4 bash bench/llhls.sh
  bench cascade 100 env RUNS=1 SECS=2 bash bench/cascade.sh
  bench http 100 env DURATION=2s bash bench/http.sh
  bench rtmp_in 150 env N=3 SECS=4 RUNS=1 FAST_SECS=8 bash bench/rtmp_in.sh
  bench latency 120 python3 bench/latency.py
else
  bench remux 900 env RUNS=9 bash bench/remux.sh
  bench hls 600 env RUNS=9 bash bench/hls.sh
  bench thumb 600 env RUNS=100 python3 bench/thumb.py
  bench rtsp_pull 600 env RUNS=5 SECS=15 bash bench/rtsp_pull.sh
  bench relay 900 env RUNS=3 SECS=4 COUNTS="10 100 1000" bash bench/relay.sh
  bench relay_rtmp 900 env RUNS=3 SECS=10 COUNTS="10 100 500" bash bench/relay_rtmp.sh
  bench rtsp_hub 600 env RUNS=3 CLIP_SECS=25 bash bench/rtsp_hub.sh 20 10
  if [ -n "$BROWSER" ]; then
    bench llhls 3600 env SECS=30 N=100 LOAD_SECS=10 bash bench/llhls.sh
  else
    bench llhls 600 env LOAD_ONLY=1 N=100 LOAD_SECS=10 bash bench/llhls.sh
  fi
  bench cascade 600 env RUNS=3 SECS=4 bash bench/cascade.sh
  bench http 300 env DURATION=8s bash bench/http.sh
  bench rtmp_in 900 env N=10 SECS=10 RUNS=3 FAST_SECS=30 bash bench/rtmp_in.sh
  bench latency 300 python3 bench/latency.py
  bench soak 900 bash bench/soak.sh 180s "$DIR/soak"
  bench faults 900 bash bench/faults.sh "$DIR/faults"
fi
echo "total $(( $(date +%s) - T0 ))" > "$DIR/total.time"

python3 bench/report.py "$DIR" "$OUT" ${QUICK:+--quick}
