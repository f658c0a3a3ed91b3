#!/usr/bin/env bash
# Faults: river-relay serve (release build) on 127.0.0.1 through four faults, each a section that
# prints what happened and a PASS/FAIL line per check. A fresh hub per fault.
#
#   bench/faults.sh [OUTDIR] [FAULT...]    # OUTDIR default bench/out/faults-<date> (git-ignored);
#                                          # FAULT: kill9 sigstop emfile sigterm (default all)
#
# kill9    A broadcaster killed with SIGKILL mid-GOP, on each front (fstream, HTTP push, RTMP,
#          RTSP), each channel watched over fstream, http-flv, http-ts, RTMP and RTSP: what the
#          watchers get (EOF? when?), whether what they got decodes, that the hub lives on and a
#          new broadcaster on the same channel is watchable.
# sigstop  Watchers frozen with SIGSTOP (one past --max-behind, one shorter), then SIGCONT: the
#          policy's outcome for them (skips, drop) and that the others lost nothing.
# emfile   The hub under `ulimit -n 256` with 300 watchers: the ones it holds are served, the rest
#          closed at once (none left hanging), its CPU meanwhile (a busy loop on EMFILE would
#          take a core), and after they leave it accepts again.
# sigterm  SIGTERM with 200 watchers attached (fstream, http-flv, http-ts) and RTMP/RTSP players:
#          the time to exit, and how each watcher's stream ended (EOF, a chunked body's last
#          chunk, or a reset).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${1:-bench/out/faults-$(date +%Y%m%d-%H%M%S)}
shift || true
FAULTS=${*:-kill9 sigstop emfile sigterm}
FFMPEG=${FFMPEG:-ffmpeg}
export FFMPEG
for t in "$FFMPEG" ffprobe curl python3; do
  command -v "$t" >/dev/null || { echo "faults: $t is missing: apt-get install ffmpeg curl python3" >&2; exit 1; }
done
cargo build --release --quiet --bin river-relay
RELAY=$ROOT/target/release/river-relay
CLIENTS=$ROOT/bench/soak_clients.py
mkdir -p "$OUT/users"
OUT=$(cd "$OUT" && pwd)
printf '[DEFAULT]\npassword=soakpw\n' > "$OUT/users/soak.ini"
HZ=$(getconf CLK_TCK)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

FAILED=0
check() { # check OK "what"
  if [ "$1" = 1 ]; then echo "PASS $2"; else echo "FAIL $2"; FAILED=1; fi
}

# Clips: ~8 Mbit/s and ~1 Mbit/s, 2 s GOP, testsrc2 + sine, 20 s.
clip() {
  [ -s "$OUT/$1" ] && return
  "$FFMPEG" -nostdin -v error -f lavfi -i "testsrc2=size=$2:rate=25" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -c:v libx264 -preset veryfast -pix_fmt yuv420p \
    -b:v "$3" -maxrate "$3" -bufsize "$3" -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -b:a 128k \
    -t 20 -y "$OUT/$1"
}
clip clip8m.flv 1280x720 8M
clip clip1m.flv 640x360 1M

# start_hub NAME [serve options...]: HUB (pid), FS, HTTP, RTMP, RTSP; NOFILE=n for a ulimit -n.
start_hub() {
  local name=$1; shift
  HUBLOG=$OUT/$name-hub.log
  : > "$HUBLOG"
  if [ -n "${NOFILE:-}" ]; then
    bash -c 'ulimit -n "$0" && exec "$@"' "$NOFILE" "$RELAY" -v serve --listen 127.0.0.1:0 --http 127.0.0.1:0 \
      --rtmp 127.0.0.1:0 --rtsp 127.0.0.1:0 --users "$OUT/users" "$@" 2> "$HUBLOG" &
  else
    "$RELAY" -v serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --rtsp 127.0.0.1:0 \
      --users "$OUT/users" "$@" 2> "$HUBLOG" &
  fi
  HUB=$!
  pids+=("$HUB")
  FS=$(addr_of fstream); HTTP=$(addr_of http); RTMP=$(addr_of rtmp); RTSP=$(addr_of rtsp)
}
addr_of() {
  local a=
  for _ in $(seq 200); do
    a=$(sed -n "s/^river-relay: $1 listening on //p" "$HUBLOG")
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.05
  done
  echo "faults: the hub did not start" >&2; cat "$HUBLOG" >&2; exit 1
}
stop_hub() {
  kill -TERM "$HUB" 2>/dev/null || true
  wait "$HUB" 2>/dev/null || true
}
wait_live() { # wait_live CHANNEL: live, with 300 kB in (its format and tracks known: RTSP's
  # DESCRIBE answers 503 before)
  for _ in $(seq 300); do
    curl -s "http://$HTTP/stats" | python3 -c '
import json, sys
sys.exit(0 if any(c["channel"] == sys.argv[1] and c["bytes_in"] > 300000
                  for c in json.load(sys.stdin)["channels"]) else 1)' "$1" 2>/dev/null && return
    sleep 0.1
  done
  echo "faults: channel $1 never went live" >&2; tail "$HUBLOG" >&2; exit 1
}
# publish FRONT CHANNEL CLIP: starts a real-time broadcast; PUB is the pid to kill.
publish() {
  local src=("$FFMPEG" -nostdin -v error -re -stream_loop -1 -i "$OUT/$3" -c copy)
  case $1 in
    fstream)
      rm -f "$OUT/$2.fifo"; mkfifo "$OUT/$2.fifo"
      "${src[@]}" -f mpegts -y "$OUT/$2.fifo" 2> "$OUT/$2-pub.err" &
      pids+=("$!")
      RIVER_USER_PASSWORD=soakpw "$RELAY" broadcast "$FS" --user soak --channel "$2" < "$OUT/$2.fifo" 2>> "$OUT/$2-pub.err" &
      PUB=$! ;;
    http) "${src[@]}" -f flv "http://$HTTP/soak/$2?user-password=soakpw" 2> "$OUT/$2-pub.err" & PUB=$! ;;
    rtmp) "${src[@]}" -f flv "rtmp://$RTMP/soak/$2?user-password=soakpw" 2> "$OUT/$2-pub.err" & PUB=$! ;;
    rtsp) "${src[@]}" -f rtsp -rtsp_transport tcp "rtsp://soak:soakpw@$RTSP/soak/$2" 2> "$OUT/$2-pub.err" & PUB=$! ;;
  esac
  pids+=("$PUB")
}
# watch FRONT CHANNEL FILE: a watcher recording to FILE; W is its pid.
watch() {
  case $1 in
    fstream) "$RELAY" watch "$FS" --user soak --channel "$2" > "$3" 2> "$3.err" & W=$! ;;
    http-flv) curl -sS -N "http://$HTTP/soak/$2.flv" -o "$3" 2> "$3.err" & W=$! ;;
    http-ts) curl -sS -N "http://$HTTP/soak/$2.ts" -o "$3" 2> "$3.err" & W=$! ;;
    rtmp) "$FFMPEG" -nostdin -v error -i "rtmp://$RTMP/soak/$2" -c copy -f flv -y "$3" 2> "$3.err" & W=$! ;;
    # The first packet's PTS, and MPEG-TS: see bench/soak.sh (RTSP_FIRST_PTS).
    rtsp) "$FFMPEG" -nostdin -v error -rtsp_transport tcp -i "rtsp://$RTSP/soak/$2" -c copy \
            -bsf:v 'setts=pts=if(eq(PTS\,NOPTS)\,DTS\,PTS)' -f mpegts -y "$3" 2> "$3.err" & W=$! ;;
  esac
  pids+=("$W")
}
decode_errors() { { "$FFMPEG" -nostdin -v error -i "$1" -f null - 2>&1 || true; } | head -n 3 | tr '\n' '|'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Waits up to $2 s for pid $1 to exit; prints the seconds it took, or "-" when it did not.
wait_exit() {
  local t0; t0=$(date +%s.%N)
  while kill -0 "$1" 2>/dev/null; do
    if [ "$(echo "$(date +%s.%N) - $t0 > $2" | bc)" = 1 ]; then echo -; return; fi
    sleep 0.05
  done
  echo "$(date +%s.%N) - $t0" | bc | awk '{printf "%.2f", $1}'
}

fault_kill9() {
  echo "== kill9: a broadcaster killed with SIGKILL mid-GOP, on each front"
  start_hub kill9
  local fronts="fstream http rtmp rtsp" kinds="fstream http-flv http-ts rtmp rtsp"
  declare -A pub
  for f in $fronts; do publish "$f" "k$f" clip8m.flv; pub[$f]=$PUB; done
  for f in $fronts; do wait_live "k$f"; done
  declare -A wpid
  for f in $fronts; do
    for k in $kinds; do
      watch "$k" "k$f" "$OUT/kill9-$f-by-$k.out"; wpid[$f.$k]=$W
    done
  done
  # 6.7 s in: 0.7 s into the fourth 2 s GOP of the broadcast (give or take the start-up).
  sleep 6.7
  for f in $fronts; do kill -9 "${pub[$f]}"; done
  local t_kill; t_kill=$(date +%s.%N)
  echo "   the four broadcasters were killed; watchers:"
  for f in $fronts; do
    for k in $kinds; do
      local p=${wpid[$f.$k]} file="$OUT/kill9-$f-by-$k.out"
      local took; took=$(wait_exit "$p" 15)
      local rc=-
      if [ "$took" != - ]; then rc=0; wait "$p" 2>/dev/null || rc=$?; fi
      local errs; errs=$(decode_errors "$file")
      local size; size=$(stat -c %s "$file" 2>/dev/null || echo 0)
      printf '   %-8s broadcast -> %-8s watcher: ended %5s s after the kill (exit %s), %5d KiB, decode: %s\n' \
        "$f" "$k" "$took" "$rc" $(( size / 1024 )) "${errs:-clean}"
      check "$([ "$took" != - ] && [ -z "$errs" ] && [ "$size" -gt 0 ] && echo 1)" \
        "kill9 $f->$k: the watcher's stream ends and what it got decodes"
      [ -s "$file.err" ] && echo "      its stderr: $(head -n 2 "$file.err" | tr '\n' '|')"
    done
  done
  echo "   hub log for the killed broadcasts:"
  grep -E 'ended|gone|closed: end of broadcast' "$HUBLOG" | grep -v 'all sent' | sed 's/^/      /' | head -n 12
  echo "   $(grep -c 'end of broadcast: all sent' "$HUBLOG") watchers closed with 'end of broadcast: all sent'"
  kill -0 "$HUB" 2>/dev/null && alive=1 || alive=0
  check "$alive" "kill9: the hub is still running"
  local stats; stats=$(curl -s -m 5 "http://$HTTP/stats" || true)
  check "$([ -n "$stats" ] && echo 1)" "kill9: /stats answers"
  echo "   channels live after the kill: $(echo "$stats" | python3 -c 'import json,sys; print([c["channel"] for c in json.load(sys.stdin)["channels"]])' 2>/dev/null)"
  # A new broadcaster on the same channel, and a new watcher of it.
  publish rtmp krtmp clip8m.flv
  wait_live krtmp
  local again=$OUT/kill9-again.flv
  "$FFMPEG" -nostdin -v error -i "http://$HTTP/soak/krtmp.flv" -t 3 -c copy -y "$again" 2> "$again.err" || true
  local errs; errs=$(decode_errors "$again")
  check "$([ -s "$again" ] && [ -z "$errs" ] && echo 1)" "kill9: a new broadcaster on the same channel is watchable ($(stat -c %s "$again") bytes)"
  kill "$PUB" 2>/dev/null || true
  stop_hub
}

fault_sigstop() {
  echo "== sigstop: watchers frozen, then SIGCONT (--queue-time 2s --max-behind 4s)"
  start_hub sigstop --queue-time 2s --max-behind 4s
  publish fstream stop clip8m.flv
  wait_live stop
  watch fstream stop "$OUT/sigstop-long.ts"; local long=$W
  watch http-flv stop "$OUT/sigstop-short.flv"; local short=$W
  watch fstream stop "$OUT/sigstop-other1.ts"; local o1=$W
  watch http-ts stop "$OUT/sigstop-other2.ts"; local o2=$W
  watch rtmp stop "$OUT/sigstop-other3.flv"; local o3=$W
  sleep 3
  # Frozen for 20 s: the socket buffers (several MiB on loopback) and the 2 s queue fill, then
  # the watcher skips for longer than --max-behind. Frozen for 3 s: within the buffers.
  kill -STOP "$long" "$short"
  sleep 3
  kill -CONT "$short"
  sleep 17
  kill -CONT "$long"
  local st; st=$(curl -s "http://$HTTP/stats")
  sleep 5
  kill "$PUB"
  for p in "$long" "$short" "$o1" "$o2" "$o3"; do wait_exit "$p" 15 > /dev/null; done
  echo "   /stats before the end (per watcher: peer, skips, chunks dropped):"
  echo "$st" | python3 -c '
import json, sys
for c in json.load(sys.stdin)["channels"]:
    for w in c["watchers"]:
        print("      %s %-22s skips=%s chunks_dropped=%s" % (w.get("kind", "?"), w["peer"], w["skips"], w["chunks_dropped"]))'
  local dropped; dropped=$(grep -c 'closed: slow watcher' "$HUBLOG" || true)
  echo "   hub log: $(grep 'closed: slow watcher' "$HUBLOG" | head -n 3 | sed 's/^river-relay: //' | tr '\n' '|')"
  check "$([ "$dropped" = 1 ] && echo 1)" "sigstop: the watcher frozen past --max-behind was dropped, and only it ($dropped dropped)"
  local bad=0
  for f in sigstop-other1.ts sigstop-other2.ts sigstop-other3.flv; do
    local errs; errs=$(decode_errors "$OUT/$f")
    echo "   $f: $(( $(stat -c %s "$OUT/$f") / 1024 )) KiB, decode: ${errs:-clean}"
    [ -z "$errs" ] || bad=1
  done
  local others_dropped; others_dropped=$(echo "$st" | python3 -c '
import json, sys
print(sum(1 for c in json.load(sys.stdin)["channels"] for w in c["watchers"] if w["chunks_dropped"] > 0))')
  check "$([ "$bad" = 0 ] && [ "$others_dropped" -le 1 ] && echo 1)" \
    "sigstop: the others decode cleanly; watchers that lost chunks: $others_dropped (the short freeze may)"
  # A dropped watcher's stream stops where the hub's last write stopped, mid-frame as a rule: its
  # last frame is cut short (one decode error at the end).
  for f in sigstop-long.ts sigstop-short.flv; do
    echo "   $f (frozen): $(stat -c %s "$OUT/$f") bytes, decode: $(decode_errors "$OUT/$f" | cut -c1-200)"
  done
  stop_hub
}

fault_emfile() {
  echo "== emfile: the hub under ulimit -n 256 with 300 watchers"
  NOFILE=256 start_hub emfile
  publish fstream em clip1m.flv
  wait_live em
  sleep 2
  local c0; c0=$(cpu_ticks "$HUB"); sleep 5; local c1; c1=$(cpu_ticks "$HUB")
  local base; base=$(echo "scale=1; 100 * ($c1 - $c0) / $HZ / 5" | bc)
  local fl=$OUT/emfile-flood.txt
  exec 7> >(python3 "$CLIENTS" flood --addr "$FS" --user soak --channel em --count 300 --secs 5 --out "$fl" > "$OUT/emfile-flood.out")
  for _ in $(seq 300); do grep -q flooded "$OUT/emfile-flood.out" 2>/dev/null && break; sleep 0.1; done
  echo "   outcome of the 300 (read for 5 s): $(cat "$fl")"
  # Keep knocking while it is full: one connection every 50 ms for 5 s, and count how they end.
  c0=$(cpu_ticks "$HUB")
  local knock; knock=$(python3 - "$FS" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
ends = {}
t = time.monotonic()
while time.monotonic() - t < 5:
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((host, int(port)))
        b = s.recv(1)
        k = "eof" if b == b"" else "data"
    except socket.timeout:
        k = "hung"
    except ConnectionResetError:
        k = "reset"
    except OSError as e:
        k = "error"
    s.close()
    ends[k] = ends.get(k, 0) + 1
    time.sleep(0.05)
print(" ".join(f"{k}={v}" for k, v in sorted(ends.items())))
EOF
)
  c1=$(cpu_ticks "$HUB")
  local full; full=$(echo "scale=1; 100 * ($c1 - $c0) / $HZ / 5" | bc)
  echo "   new connections while full (one per 50 ms for 5 s): $knock"
  echo "   hub CPU: ${base}% of a core before the flood, ${full}% while full and refusing"
  local served shed hung
  served=$(sed -n 's/.*served=\([0-9]*\).*/\1/p' "$fl"); shed=$(sed -n 's/.*shed=\([0-9]*\).*/\1/p' "$fl")
  hung=$(sed -n 's/.*hung=\([0-9]*\).*/\1/p' "$fl")
  check "$([ "$served" -gt 200 ] && [ "$shed" -gt 0 ] && [ "$hung" = 0 ] && echo 1)" \
    "emfile: $served served, $shed closed at once, $hung left hanging"
  check "$([ "$(echo "$full < 50" | bc)" = 1 ] && echo 1)" "emfile: CPU stays low while full (${full}% of a core; a busy loop takes ~100%)"
  check "$(echo "$knock" | grep -q hung && echo 0 || echo 1)" "emfile: connections while full are closed, not left hanging ($knock)"
  kill -0 "$HUB" 2>/dev/null && alive=1 || alive=0
  check "$alive" "emfile: the hub is still running"
  echo "   hub log: $(grep -ci 'too many open files' "$HUBLOG") lines about EMFILE: $(grep -i 'too many open files' "$HUBLOG" | head -n 2 | sed 's/^river-relay: //' | tr '\n' '|')"
  exec 7>&-   # the flood's clients leave
  sleep 1
  local after=$OUT/emfile-after.flv
  "$FFMPEG" -nostdin -v error -i "http://$HTTP/soak/em.flv" -t 2 -c copy -y "$after" 2> "$after.err" || true
  local errs; errs=$(decode_errors "$after")
  check "$([ -s "$after" ] && [ -z "$errs" ] && echo 1)" "emfile: after they leave, a new http-flv watcher is served ($(stat -c %s "$after" 2>/dev/null || echo 0) bytes)"
  kill "$PUB" 2>/dev/null || true
  stop_hub
}

fault_sigterm() {
  echo "== sigterm: SIGTERM with 200 watchers and 6 RTMP/RTSP players attached"
  start_hub sigterm
  publish fstream term clip1m.flv
  wait_live term
  local res=$OUT/sigterm-watchers.txt
  python3 "$CLIENTS" hold --fstream "$FS" --http "$HTTP" --user soak --channel term --count 200 \
    --out "$res" > "$OUT/sigterm-hold.out" &
  local hold=$!
  pids+=("$hold")
  local players=()
  for i in 1 2 3; do
    watch rtmp term "$OUT/sigterm-rtmp$i.flv"; players+=("$W")
    watch rtsp term "$OUT/sigterm-rtsp$i.ts"; players+=("$W")
  done
  for _ in $(seq 300); do grep -q ready "$OUT/sigterm-hold.out" 2>/dev/null && break; sleep 0.1; done
  sleep 3
  kill -USR1 "$hold"
  local t0; t0=$(date +%s.%N)
  kill -TERM "$HUB"
  local rc=0; wait "$HUB" || rc=$?
  local took; took=$(echo "$(date +%s.%N) - $t0" | bc | awk '{printf "%.3f", $1}')
  wait "$hold" || true
  echo "   hub exited with status $rc ${took} s after SIGTERM"
  check "$([ "$rc" = 0 ] && [ "$(echo "$took < 2.5" | bc)" = 1 ] && echo 1)" "sigterm: the hub exits with 0 within 2 s (+0.5 s to reap it): ${took} s"
  echo "   how the 200 watchers' streams ended (kind end count):"
  awk '{print "      " $1, $3}' "$res" | sort | uniq -c | sed 's/^ */      /'
  echo "   seconds from SIGTERM to each watcher's end: $(awk '{print $4}' "$res" | sort -n | awk '{a[NR]=$1} END {printf "median %.3f, max %.3f", a[int((NR+1)/2)], a[NR]}')"
  local bad; bad=$(awk '$3 != "eof" && $3 != "eof+last-chunk"' "$res" | wc -l)
  check "$([ "$bad" = 0 ] && [ "$(wc -l < "$res")" = 200 ] && echo 1)" \
    "sigterm: all 200 got EOF (HTTP: after the last chunk), none a reset ($bad otherwise)"
  local pbad=0
  for p in "${players[@]}"; do wait_exit "$p" 10 > /dev/null || true; done
  for i in 1 2 3; do
    for k in rtmp rtsp; do
      local f=$OUT/sigterm-$k$i.flv errs
      [ "$k" = rtsp ] && f=$OUT/sigterm-$k$i.ts
      errs=$(decode_errors "$f")
      [ -s "$f" ] && [ -z "$errs" ] || pbad=1
      [ -s "$f" ] && [ -z "$errs" ] || echo "   $k$i: $(stat -c %s "$f" 2>/dev/null) bytes, decode: $errs; its stderr: $(head -n 2 "$f.err" | tr '\n' '|')"
    done
  done
  check "$([ "$pbad" = 0 ] && echo 1)" "sigterm: the RTMP and RTSP players' recordings decode cleanly"
  kill "$PUB" 2>/dev/null || true
}

for f in $FAULTS; do "fault_$f"; done
echo "faults: results in $OUT"
exit $FAILED
