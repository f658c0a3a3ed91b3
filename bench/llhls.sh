#!/usr/bin/env bash
# LL-HLS from river-hls-seg, two measurements:
#  1. Latency behind live in hls.js (headless Chromium), p50 and p95 over SECS of play, for
#     classic HLS (2 s MPEG-TS segments) and LL-HLS (0.2 s parts), and the ratio: the ignored test
#     llhls::bench_latency_behind_live. `lat` is hls.latency (behind the live edge hls.js
#     computes); `wall` is the wall clock minus the EXT-X-PROGRAM-DATE-TIME of the frame shown.
#     The same for LL-HLS from the hub: an RTMP publish (ffmpeg) on `river-relay serve --hls`,
#     played from the hub's HLS page (the ignored test relay_hls::bench_hub_latency_behind_live).
#  2. N LL-HLS clients (examples/llhls_load: a blocking reload for the next part, then the part,
#     each on its keep-alive connection) against one `river-testsrc --realtime | river-hls-seg
#     --low-latency --serve`: requests/s answered and the CPU river-hls-seg used, beside the same
#     pipeline with no client. Then against `river-relay serve --hls` with river-testsrc
#     broadcasting over fstream: the hub's CPU with 1 client (the channel segmented, served to
#     one) and with N.
#
#   bench/llhls.sh                 SECS=60 N=100 LOAD_SECS=30 bench/llhls.sh
#   LOAD_ONLY=1 bench/llhls.sh     (part 2 only: no release build of the test suite)
#
# Not a test: numbers vary with the machine (the clients share its cores). Needs chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-60}
N=${N:-100}
LOAD_SECS=${LOAD_SECS:-30}
W=$PWD/bench/work/llhls
rm -rf "$W" && mkdir -p "$W"
cargo build --release --quiet --example llhls_load --bin river-hls-seg --bin river-testsrc --bin river-relay
R=target/release

target/release/river-testsrc --realtime --duration $((3 * LOAD_SECS + 30))s \
  | "$R/river-hls-seg" --dir "$W/www" --low-latency --serve 127.0.0.1:0 2> "$W/seg.log" &
SEG_PID=$!
trap 'kill $SEG_PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
URL=
for _ in $(seq 100); do
  URL=$(grep -o 'http://[^ ]*' "$W/seg.log" || true)
  [ -n "$URL" ] && curl -fs -o /dev/null "$URL" && break
  sleep 0.2
done
[ -n "$URL" ] || { echo "bench: river-hls-seg did not start: $(cat "$W/seg.log")" >&2; exit 1; }
# kv LINE KEY: the value of KEY=... in an llhls_load line.
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# result NAME LINE_N LINE_ANCHOR ANCHOR_NAME: RESULT lines for bench/report.sh (CPU and requests/s
# with N clients; the anchor is the same server with no client or one).
result() {
  awk -v name="$1" -v n="$N" -v c="$(kv "$2" server_cpu_pct)" -v a="$(kv "$3" server_cpu_pct)" \
    -v rq="$(kv "$2" part_req_per_s)" -v what="$4" 'BEGIN {
    printf "RESULT llhls %s_cpu_pct_%dclients %.1f %.1f %.2f - %s\n", name, n, c, a, (a > 0) ? c / a : 0, what
    printf "RESULT llhls %s_part_req_per_s_%dclients %.0f - - - blocking part requests answered\n", name, n, rq }'
}
echo "LL-HLS load on $(nproc) cores, $LOAD_SECS s each:"
none=$("$R/examples/llhls_load" "$URL" 0 "$LOAD_SECS" "$SEG_PID")
many=$("$R/examples/llhls_load" "$URL" "$N" "$LOAD_SECS" "$SEG_PID")
echo "  no client:   $none"
echo "  $N clients: $many"
result seg "$many" "$none" "river-hls-seg with no client"
kill $SEG_PID 2>/dev/null || true

# The hub: testsrc broadcasting over fstream, LL-HLS at /fier/cam/index.m3u8.
mkdir -p "$W/users" && printf '[DEFAULT]\npassword=123\n' > "$W/users/fier.ini"
"$R/river-relay" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --users "$W/users" --hls \
  2> "$W/hub.log" &
HUB_PID=$!
trap 'kill $SEG_PID $HUB_PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q 'http listening' "$W/hub.log" && break
  sleep 0.1
done
FS=$(sed -n 's/.*fstream listening on //p' "$W/hub.log")
HTTP=$(sed -n 's/.*http listening on //p' "$W/hub.log")
"$R/river-testsrc" --realtime --duration $((3 * LOAD_SECS + 30))s \
  | RIVER_USER_PASSWORD=123 "$R/river-relay" broadcast "$FS" --user fier --channel cam 2>/dev/null &
HUB_URL="http://$HTTP/fier/cam/index.m3u8"
for _ in $(seq 100); do
  curl -fs -o /dev/null "$HUB_URL" && break
  sleep 0.2
done
echo "LL-HLS load on the hub (river-relay serve --hls), $LOAD_SECS s each:"
one=$("$R/examples/llhls_load" "$HUB_URL" 1 "$LOAD_SECS" "$HUB_PID")
many=$("$R/examples/llhls_load" "$HUB_URL" "$N" "$LOAD_SECS" "$HUB_PID")
echo "  1 client:    $one"
echo "  $N clients: $many"
result hub "$many" "$one" "the hub with one client"
kill $HUB_PID 2>/dev/null || true

[ -n "${LOAD_ONLY:-}" ] && exit 0
echo "hls.js latency behind live, $SECS s each:"
RIVER_BENCH_SECS=$SECS cargo test --release --quiet --test it llhls::bench_latency_behind_live \
  -- --ignored --nocapture --test-threads=1 2>&1 | grep -E '^(player|classic|LL-HLS|median)'
RIVER_BENCH_SECS=$SECS cargo test --release --quiet --test it relay_hls::bench_hub_latency_behind_live \
  -- --ignored --nocapture --test-threads=1 2>&1 | grep -E '^LL-HLS from the hub'
