#!/usr/bin/env bash
# HLS behind a cache: the load on the origin (`river-testsrc --realtime | river-hls-seg --serve`)
# with 100 players on it directly, and with the same players through nginx configured by
# docs/nginx-hls-cache.conf (proxy_cache, the README's recipe), SECS of 2 s segments each way:
# requests the origin answered and its CPU seconds, and the direct/cached ratios. The ignored test
# hls_cache::bench_origin_load_with_and_without_the_cache; the long run of the checks themselves
# is RIVER_HLS_CACHE_SECS=300 cargo test --test it hls_cache::.
#
#   bench/hls_cache.sh             SECS=300 bench/hls_cache.sh
#
# Not a test: numbers vary with the machine (the players share its cores). Needs nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-60}
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "nginx missing: apt-get install nginx" >&2; exit 1; }
RIVER_BENCH_SECS=$SECS cargo test --release --quiet --test it hls_cache::bench_origin_load_with_and_without_the_cache \
  -- --ignored --nocapture --test-threads=1 2>&1 | grep -E '^(100 players|players on|the origin|nginx cache|origin requests)'
