#!/usr/bin/env bash
# Soak: river-relay serve (release build) under a steady load for DURATION, sampled every 10 s.
#
#   bench/soak.sh [DURATION] [OUTDIR]      # DURATION: 90s, 5m, 30m, 1h (default 3m);
#                                          # OUTDIR default bench/out/soak-<date> (git-ignored)
#
# Load, all on 127.0.0.1, throughout the run:
# - one ~8 Mbit/s real-time broadcast (ffmpeg -re -stream_loop -1 of a 20 s testsrc2+sine x264 clip
#   with a 2 s GOP, made once at the start) on each front: fstream (MPEG-TS through river-relay
#   broadcast), HTTP push (FLV), RTMP publish, RTSP publish (RTP over TCP);
# - watchers that churn: every second per channel one fstream, one http-flv and one http-ts
#   watcher join, read for a second and leave (a quarter with a reset); one RTMP and one RTSP player
#   (ffmpeg -t 1, RTSP over TCP and UDP in turn, or ffprobe) a second;
# - slow watchers (a quarter or half of the stream's rate; python readers, ffmpeg into a throttled
#   pipe for RTMP/RTSP) and watchers that never read, all reconnecting once dropped;
# - a long-lived healthy watcher per front (fstream, http-flv, http-ts, RTMP, RTSP), recorded to
#   a file; at the end each must decode cleanly: `ffmpeg -v error -i FILE -f null -` prints nothing.
# The hub's RSS, descriptors (/proc/PID/fd), CPU (utime+stime) and open connections (/stats) go to
# OUTDIR/samples.csv every 10 s. After the warm-up (20 % of the run, at least 60 s) RSS and
# descriptors must stay flat: the median of each third of the samples within ±5 % of the first
# third's (PASS/FAIL lines; soak_clients.py verdict says why medians: single samples move with the
# churn and with what stalled watchers hold in their bounded queues, both shown). OUTDIR/soak.png
# draws them over time (gnuplot, bench/soak_plot.gp). At the end the broadcasts stop (each watcher
# gets EOF), the hub gets SIGTERM (the time it takes to exit is printed) and the recordings are
# decoded (on two cores loaded by other work this took longer than the run itself: 8 min for
# 5 min). Exit status: 0 when every verdict passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DUR=${1:-3m}
OUT=${2:-bench/out/soak-$(date +%Y%m%d-%H%M%S)}
case "$DUR" in
  *h) SECS=$(( ${DUR%h} * 3600 )) ;;
  *m) SECS=$(( ${DUR%m} * 60 )) ;;
  *s) SECS=${DUR%s} ;;
  *[!0-9]*|'') echo "soak: DURATION must be like 90s, 5m, 1h (got $DUR)" >&2; exit 2 ;;
  *) SECS=$DUR ;;
esac
WARMUP=$(( SECS / 5 > 60 ? SECS / 5 : 60 ))
INTERVAL=10
FFMPEG=${FFMPEG:-ffmpeg}
export FFMPEG

need() { command -v "$1" >/dev/null || { echo "soak: $1 is missing: $2" >&2; exit 1; }; }
need gnuplot "apt-get install gnuplot-nox"
need "$FFMPEG" "apt-get install ffmpeg"
need ffprobe "apt-get install ffmpeg"
need curl "apt-get install curl"
need pv "apt-get install pv"
need python3 "apt-get install python3"

# Space for the healthy watchers' recordings: 5 streams of ~8.3 Mbit/s.
need_mib=$(( SECS * 5 * 8300 / 8 / 1024 + 512 ))
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
free_mib=$(df -Pm "$OUT" | awk 'NR==2 {print $4}')
if [ "$free_mib" -lt "$need_mib" ]; then
  echo "soak: $OUT has $free_mib MiB free; a $DUR run records about $need_mib MiB" >&2
  exit 1
fi

cargo build --release --quiet --bin river-relay
RELAY=$ROOT/target/release/river-relay
CLIENTS=$ROOT/bench/soak_clients.py

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "soak: $DUR ($SECS s), warm-up $WARMUP s, results in $OUT"
mkdir -p "$OUT/users" "$OUT/healthy" "$OUT/logs"
printf '[DEFAULT]\npassword=soakpw\n' > "$OUT/users/soak.ini"

CLIP=$OUT/clip.flv
"$FFMPEG" -nostdin -v error -f lavfi -i testsrc2=size=1280x720:rate=25 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -b:v 8M -maxrate 8M -bufsize 8M \
  -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -b:a 128k -t 20 -y "$CLIP"
echo "soak: clip $(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$CLIP") bit/s, 2 s GOP"

: > "$OUT/logs/hub.log"
"$RELAY" -v serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --rtsp 127.0.0.1:0 \
  --users "$OUT/users" --stats-interval 10s 2> "$OUT/logs/hub.log" &
HUB=$!
pids+=("$HUB")
addr_of() {
  local a=
  for _ in $(seq 200); do
    a=$(sed -n "s/^river-relay: $1 listening on //p" "$OUT/logs/hub.log")
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.05
  done
  echo "soak: the hub did not start" >&2; cat "$OUT/logs/hub.log" >&2; exit 1
}
FS=$(addr_of fstream); HTTP=$(addr_of http); RTMP=$(addr_of rtmp); RTSP=$(addr_of rtsp)
echo "soak: hub pid $HUB: fstream $FS, http $HTTP, rtmp $RTMP, rtsp $RTSP"

# The four broadcasts (channels soak/fs, soak/push, soak/rtmp, soak/rtsp).
SRC=("$FFMPEG" -nostdin -v error -re -stream_loop -1 -i "$CLIP" -c copy)
rm -f "$OUT/fs.fifo"; mkfifo "$OUT/fs.fifo"
"${SRC[@]}" -f mpegts -y "$OUT/fs.fifo" 2> "$OUT/logs/pub-fs.err" &
PUB_FS=$!
RIVER_USER_PASSWORD=soakpw "$RELAY" broadcast "$FS" --user soak --channel fs < "$OUT/fs.fifo" 2> "$OUT/logs/pub-fs-relay.err" &
pids+=("$!")
"${SRC[@]}" -f flv "http://$HTTP/soak/push?user-password=soakpw" 2> "$OUT/logs/pub-push.err" &
PUB_PUSH=$!
"${SRC[@]}" -f flv "rtmp://$RTMP/soak/rtmp?user-password=soakpw" 2> "$OUT/logs/pub-rtmp.err" &
PUB_RTMP=$!
"${SRC[@]}" -f rtsp -rtsp_transport tcp "rtsp://soak:soakpw@$RTSP/soak/rtsp" 2> "$OUT/logs/pub-rtsp.err" &
PUB_RTSP=$!
pids+=("$PUB_FS" "$PUB_PUSH" "$PUB_RTMP" "$PUB_RTSP")
# Live, with 300 kB in (format and tracks known: RTSP's DESCRIBE answers 503 before).
for c in fs push rtmp rtsp; do
  for _ in $(seq 200); do
    curl -s "http://$HTTP/stats" | python3 -c '
import json, sys
sys.exit(0 if any(c["channel"] == sys.argv[1] and c["bytes_in"] > 300000
                  for c in json.load(sys.stdin)["channels"]) else 1)' "$c" 2>/dev/null && break
    sleep 0.1
  done
done

# ffmpeg 5.1's RTSP demuxer leaves the first video packet of a stream with B-frames without a PTS
# (gst-rtsp-server serving the same clip gives the same), and its FLV muxer then fails: the
# recorder gives that packet its DTS as PTS (it is the first shown; the B-frames after it are
# later). It records MPEG-TS: at each loop of the clip ffmpeg's -stream_loop puts two audio frames
# 30 ticks (0.33 ms) apart (its own TS output of the loop shows it), which RTP carries, and which
# an FLV recording by ffmpeg rounds to one millisecond (a decode then reports equal DTS).
RTSP_FIRST_PTS='setts=pts=if(eq(PTS\,NOPTS)\,DTS\,PTS)'
# Long-lived healthy watchers, one per front, across containers: fstream <- fs (TS), http-flv <-
# push (FLV), http-ts <- rtmp (FLV converted), RTMP <- rtsp, RTSP <- fs (TS to RTP).
"$RELAY" watch "$FS" --user soak --channel fs > "$OUT/healthy/fstream.ts" 2> "$OUT/logs/healthy-fstream.err" &
H_FS=$!
curl -sS -N "http://$HTTP/soak/push.flv" -o "$OUT/healthy/http.flv" 2> "$OUT/logs/healthy-http-flv.err" &
H_HFLV=$!
curl -sS -N "http://$HTTP/soak/rtmp.ts" -o "$OUT/healthy/http.ts" 2> "$OUT/logs/healthy-http-ts.err" &
H_HTS=$!
"$FFMPEG" -nostdin -v error -i "rtmp://$RTMP/soak/rtsp" -c copy -f flv -y "$OUT/healthy/rtmp.flv" 2> "$OUT/logs/healthy-rtmp.err" &
H_RTMP=$!
"$FFMPEG" -nostdin -v error -rtsp_transport tcp -i "rtsp://$RTSP/soak/fs" -c copy -bsf:v "$RTSP_FIRST_PTS" \
  -f mpegts -y "$OUT/healthy/rtsp.ts" 2> "$OUT/logs/healthy-rtsp.err" &
H_RTSP=$!
HEALTHY=("$H_FS" "$H_HFLV" "$H_HTS" "$H_RTMP" "$H_RTSP")
pids+=("${HEALTHY[@]}")

python3 "$CLIENTS" run --fstream "$FS" --http "$HTTP" --rtmp "$RTMP" --rtsp "$RTSP" --user soak \
  --channels fs,push,rtmp,rtsp --summary "$OUT/clients.json" 2> "$OUT/logs/clients.err" &
CL=$!
pids+=("$CL")
# A slow fstream watcher through pv -L, restarted when the hub drops it.
rm -f "$OUT/stop"
( while [ ! -e "$OUT/stop" ]; do
    "$RELAY" watch "$FS" --user soak --channel push 2>/dev/null | pv -q -L 400k > /dev/null || true
    sleep 1
  done ) &
PV=$!
pids+=("$PV")

# Samples: t_s,rss_kib,fds,own_fds,cpu_ticks,cpu_pct,conns,queued_kib (own_fds: descriptors that
# are not sockets: epoll, the listeners' reserve, stdio; constant unless something leaks;
# queued_kib: the watchers' queues from /stats, summed, which counts a chunk shared by several
# queues once per queue)
HZ=$(getconf CLK_TCK)
CSV=$OUT/samples.csv
echo "t_s,rss_kib,fds,own_fds,cpu_ticks,cpu_pct,conns,queued_kib" > "$CSV"
t0=$(date +%s.%N)
prev_ticks=$(awk '{print $14+$15}' "/proc/$HUB/stat"); prev_t=$t0
next=$INTERVAL
echo "soak: running; samples every $INTERVAL s in $CSV"
while :; do
  now=$(date +%s.%N)
  el=$(echo "$now - $t0" | bc)
  if [ "$(echo "$el >= $SECS" | bc)" = 1 ]; then break; fi
  wait_s=$(echo "$next - $el" | bc)
  if [ "$(echo "$wait_s > 0" | bc)" = 1 ]; then sleep "$wait_s"; fi
  kill -0 "$HUB" 2>/dev/null || { echo "soak: FAIL the hub died"; tail -20 "$OUT/logs/hub.log"; exit 1; }
  now=$(date +%s.%N)
  ticks=$(awk '{print $14+$15}' "/proc/$HUB/stat")
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$HUB/status")
  fdl=$(ls -l "/proc/$HUB/fd" | tail -n +2)
  fds=$(printf '%s\n' "$fdl" | grep -c . || true)
  own=$(printf '%s\n' "$fdl" | grep -vc 'socket:' || true)
  read -r conns queued < <(curl -s -m 5 "http://$HTTP/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
q = sum(w["queue_bytes"] for c in s["channels"] for w in c["watchers"])
print(s["connections"], q // 1024)' 2>/dev/null || echo "-1 -1")
  cpu=$(echo "scale=1; 100 * ($ticks - $prev_ticks) / $HZ / ($now - $prev_t)" | bc)
  t=$(printf '%.0f' "$(echo "$now - $t0" | bc)")
  echo "$t,$rss,$fds,$own,$ticks,$cpu,$conns,$queued" >> "$CSV"
  prev_ticks=$ticks; prev_t=$now
  next=$(( next + INTERVAL ))
  if (( next % 60 == 0 )); then echo "soak: t=${t}s rss=${rss}KiB fds=$fds cpu=${cpu}% conns=$conns"; fi
done

echo "soak: stopping the load"
touch "$OUT/stop"
kill -TERM "$CL" 2>/dev/null || true
wait "$CL" 2>/dev/null || true
# The broadcasts end: ffmpeg finishes its output on SIGINT; each watcher then gets EOF.
kill -INT "$PUB_PUSH" "$PUB_RTMP" "$PUB_RTSP" 2>/dev/null || true
kill -INT "$PUB_FS" 2>/dev/null || true
for p in "$PUB_FS" "$PUB_PUSH" "$PUB_RTMP" "$PUB_RTSP"; do wait "$p" 2>/dev/null || true; done
deadline=$(( $(date +%s) + 30 ))
for p in "${HEALTHY[@]}"; do
  while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
done
ended_alone=0
for p in "${HEALTHY[@]}"; do
  if kill -0 "$p" 2>/dev/null; then kill -INT "$p" 2>/dev/null || true; else ended_alone=$((ended_alone + 1)); fi
  wait "$p" 2>/dev/null || true
done
wait "$PV" 2>/dev/null || true
echo "soak: $ended_alone of ${#HEALTHY[@]} healthy watchers ended by themselves at the end of the broadcasts"

t_term=$(date +%s.%N)
kill -TERM "$HUB"
hub_rc=0; wait "$HUB" || hub_rc=$?
echo "soak: hub exited ($hub_rc) $(echo "$(date +%s.%N) - $t_term" | bc | cut -c1-5) s after SIGTERM"

fail=0
echo "soak: healthy watchers (ffmpeg -v error -i FILE -f null - must print nothing):"
# The five decodes at once (about a tenth of the run's length on two loaded cores).
for f in fstream.ts http.flv http.ts rtmp.flv rtsp.ts; do
  "$FFMPEG" -nostdin -v error -i "$OUT/healthy/$f" -f null - > "$OUT/logs/decode-$f.txt" 2>&1 &
done
wait
for f in fstream.ts http.flv http.ts rtmp.flv rtsp.ts; do
  file=$OUT/healthy/$f
  size=$(stat -c %s "$file" 2>/dev/null || echo 0)
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$file" 2>/dev/null || echo '?')
  n=$(grep -c . "$OUT/logs/decode-$f.txt" || true)
  if [ "$size" -gt 0 ] && [ "$n" = 0 ]; then
    printf 'PASS %-10s %6d MiB, %s s, decodes cleanly\n' "$f" $(( size >> 20 )) "$dur"
  else
    fail=1
    printf 'FAIL %-10s %6d MiB, %s s, %d error lines; first: %s\n' "$f" $(( size >> 20 )) "$dur" "$n" "$(head -n 3 "$OUT/logs/decode-$f.txt" | tr '\n' '|')"
  fi
done
for f in "$OUT"/logs/healthy-*.err; do
  [ -s "$f" ] && echo "note: $(basename "$f"): $(head -n 3 "$f" | tr '\n' '|')"
done

echo "soak: clients (counts):"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  " + ", ".join(f"{k}={v}" for k,v in d.items()))' "$OUT/clients.json" | fold -s -w 110
echo "soak: hub log: $(grep -c 'closed: slow watcher' "$OUT/logs/hub.log") slow watchers dropped, $(grep -c 'refused' "$OUT/logs/hub.log") refusals, $(grep -c '^river-relay: \(warning\|error\):' "$OUT/logs/hub.log" || true) warnings or errors, $(grep -c panicked "$OUT/logs/hub.log" || true) panics"

echo "soak: RSS and descriptors after the warm-up:"
python3 "$CLIENTS" verdict "$CSV" "$WARMUP" || fail=1
gnuplot -e "csv='$CSV'; png='$OUT/soak.png'; warmup=$WARMUP; title='river-relay soak $DUR'" bench/soak_plot.gp
echo "soak: plot $OUT/soak.png"
exit $fail
