#!/usr/bin/env python3
"""Clients for bench/soak.sh and bench/faults.sh against a `river-relay serve` hub on loopback.

  soak_clients.py run --fstream A --http A --rtmp A --rtsp A --user U --channels c1,c2 --summary F
      until SIGTERM: watchers that churn (join and leave every second over fstream, http-flv,
      http-ts, RTMP and RTSP), slow watchers (throttled readers) and watchers that never read
      (handshake or request, then no read); writes counts as JSON to F at the end.
  soak_clients.py verdict CSV WARMUP_SECS
      RSS and descriptors after warm-up: PASS/FAIL lines with the figures.
  soak_clients.py hold --fstream A --http A --user U --channel C --count N --out F
      N watchers that read everything (fstream and http-flv/ts alternately) until EOF or reset;
      one line per watcher in F: kind, bytes, end (eof, reset, error), seconds to the end after
      SIGUSR1 (sent by the caller just before it stops the hub).
  soak_clients.py flood --addr A --count N --secs S --out F
      N connections that each send a watch handshake and read for S seconds; F gets the outcome
      of each: served (got bytes), shed (closed at once), hung (neither).
"""

import argparse
import collections
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

STOP = threading.Event()
LOCK = threading.Lock()
COUNTS = collections.Counter()
FFMPEG = os.environ.get("FFMPEG", "ffmpeg")


def count(key, n=1):
    with LOCK:
        COUNTS[key] += n


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def handshake(payload):
    p = payload.encode()
    return b"\n\n" + struct.pack(">I", len(p)) + b"\0" + p


def watch_request(front, a, user, chan, ext=None):
    """Connects and asks for the channel; returns the socket (not yet read)."""
    s = socket.create_connection(a, timeout=5)
    if front == "fstream":
        s.sendall(handshake(f"watch,user={user},channel={chan}"))
    else:
        s.sendall(f"GET /{user}/{chan}.{ext} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
    return s


# ---- churn: join, read a little, leave; every second per front and channel ----


def churn_socket(front, a, user, chan, ext):
    tag = f"churn_{front}{'_' + ext if ext else ''}"
    try:
        s = watch_request(front, a, user, chan, ext)
    except OSError:
        count(tag + "_connect_failed")
        return
    got = 0
    # Each stays one second: the churn holds a steady number of connections (a dozen), so the
    # hub's descriptor count does not swing with it.
    end = time.monotonic() + 1.0
    try:
        s.settimeout(0.2)
        while time.monotonic() < end and not STOP.is_set():
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            if not b:
                break
            got += len(b)
    except OSError:
        pass
    # One in four leaves with a reset (SO_LINGER 0), the rest with a FIN.
    if random.random() < 0.25:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    count(tag + ("_ok" if got > 0 else "_nodata"))
    count("churn_bytes", got)


def churn_ffmpeg(kind, url):
    """An ffmpeg (or ffprobe) player that reads about a second of media and leaves."""
    if kind == "rtmp":
        cmd = [FFMPEG, "-nostdin", "-v", "error", "-i", url, "-t", "1", "-c", "copy", "-f", "null", "-"]
    elif kind == "rtsp_probe":
        cmd = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name",
               "-of", "csv=p=0", url]
    else:
        transport = "udp" if kind == "rtsp_udp" else "tcp"
        cmd = [FFMPEG, "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url, "-t", "1",
               "-c", "copy", "-f", "null", "-"]
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    except OSError:
        count(f"churn_{kind}_spawn_failed")
        return
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = "timeout"
    count(f"churn_{kind}_{'ok' if rc == 0 else 'failed'}")


def churner(o):
    fs, http = addr(o.fstream), addr(o.http)
    kinds = ["rtmp", "rtsp_tcp", "rtsp_udp", "rtsp_probe"]
    tick = 0
    while not STOP.is_set():
        t0 = time.monotonic()
        for chan in o.channels:
            for front, a, ext in (("fstream", fs, None), ("http", http, "flv"), ("http", http, "ts")):
                threading.Thread(target=churn_socket, args=(front, a, o.user, chan, ext),
                                 daemon=True).start()
        # One RTMP and one RTSP player a second, over the channels in turn (each is a process).
        chan = o.channels[tick % len(o.channels)]
        threading.Thread(target=churn_ffmpeg, args=("rtmp", f"rtmp://{o.rtmp}/{o.user}/{chan}"),
                         daemon=True).start()
        kind = kinds[1 + tick % 3]
        threading.Thread(target=churn_ffmpeg, args=(kind, f"rtsp://{o.rtsp}/{o.user}/{chan}"),
                         daemon=True).start()
        tick += 1
        STOP.wait(max(0.0, 1.0 - (time.monotonic() - t0)))


# ---- slow watchers: read at a fraction of the stream's rate; reconnect when dropped ----


def slow_socket(front, a, user, chan, ext, rate):
    tag = f"slow_{front}{'_' + ext if ext else ''}"
    while not STOP.is_set():
        try:
            s = watch_request(front, a, user, chan, ext)
        except OSError:
            count(tag + "_connect_failed")
            STOP.wait(1)
            continue
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(0.5)
        start = time.monotonic()
        got = 0
        ended = None
        while not STOP.is_set():
            # Token bucket in 100 ms steps.
            allowed = rate * (time.monotonic() - start) - got
            if allowed < 4096:
                time.sleep(0.1)
                continue
            try:
                b = s.recv(int(min(allowed, 65536)))
            except socket.timeout:
                continue
            except OSError:
                ended = "reset"
                break
            if not b:
                ended = "eof"
                break
            got += len(b)
        s.close()
        count(tag + "_bytes", got)
        if ended:
            count(f"{tag}_dropped_{ended}")
            STOP.wait(1)


def slow_ffmpeg(kind, url, rate):
    """ffmpeg playing RTMP or RTSP into a pipe that is read at `rate` bytes/s."""
    tag = f"slow_{kind}"
    while not STOP.is_set():
        p = player(kind, url)
        start = time.monotonic()
        got = 0
        while not STOP.is_set():
            allowed = rate * (time.monotonic() - start) - got
            if allowed < 4096:
                time.sleep(0.1)
                continue
            b = p.stdout.read1(int(min(allowed, 65536)))
            if not b:
                break
            got += len(b)
        stop_player(p)
        count(tag + "_bytes", got)
        if not STOP.is_set():
            count(tag + "_ended")
            STOP.wait(1)


# ffmpeg 5.1's RTSP demuxer leaves the first video packet of a stream with B-frames without a
# PTS (so does it with gst-rtsp-server serving the same clip); its muxers then fail. The player
# gives that packet its DTS as PTS (it is the first shown; the B-frames after it are later).
RTSP_FIRST_PTS = r"setts=pts=if(eq(PTS\,NOPTS)\,DTS\,PTS)"


def player(kind, url):
    if kind == "rtmp":
        args = ["-i", url, "-c", "copy"]
    else:
        args = ["-rtsp_transport", "tcp", "-i", url, "-c", "copy", "-bsf:v", RTSP_FIRST_PTS]
    return subprocess.Popen([FFMPEG, "-nostdin", "-v", "quiet"] + args + ["-f", "flv", "-"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def stop_player(p):
    p.kill()
    p.wait()
    p.stdout.close()


# ---- watchers that never read: request, then nothing; the hub should drop them ----


def stall_socket(front, a, user, chan, ext, hold):
    """Requests, then reads nothing for `hold` seconds; then drains the socket. A hub that
    dropped the watcher closed it after its queued bytes, so the drain ends in EOF at once;
    otherwise the stream keeps coming (the close cannot show earlier: the FIN waits behind the
    unread data)."""
    tag = f"stall_{front}{'_' + ext if ext else ''}"
    while not STOP.is_set():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.settimeout(5)
            s.connect(a)
            if front == "fstream":
                s.sendall(handshake(f"watch,user={user},channel={chan}"))
            else:
                s.sendall(f"GET /{user}/{chan}.{ext} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
        except OSError:
            count(tag + "_connect_failed")
            s.close()
            STOP.wait(1)
            continue
        if STOP.wait(hold):
            s.close()
            return
        s.settimeout(1)
        end = "attached"
        t = time.monotonic()
        while time.monotonic() - t < 3:
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                end = "dropped"
                break
            if not b:
                end = "dropped"
                break
        count(f"{tag}_{end}_after_{hold}s")
        s.close()


def stall_ffmpeg(kind, url, hold):
    """ffmpeg playing into a pipe nobody reads: it stops reading its socket once the pipe is
    full. Restarted after `hold` seconds."""
    while not STOP.is_set():
        p = player(kind, url)
        STOP.wait(hold)
        stop_player(p)
        count(f"stall_{kind}_cycles")


def run(o):
    o.channels = o.channels.split(",")
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    fs, http = addr(o.fstream), addr(o.http)
    rate = o.rate
    threads = [threading.Thread(target=churner, args=(o,))]
    # Slow and stalled watchers, spread over the channels.
    ch = o.channels
    specs = [
        (slow_socket, ("fstream", fs, o.user, ch[0], None, rate // 2)),
        (slow_socket, ("http", http, o.user, ch[1 % len(ch)], "flv", rate // 4)),
        (slow_socket, ("http", http, o.user, ch[2 % len(ch)], "ts", rate // 2)),
        (slow_ffmpeg, ("rtmp", f"rtmp://{o.rtmp}/{o.user}/{ch[3 % len(ch)]}", rate // 4)),
        (slow_ffmpeg, ("rtsp", f"rtsp://{o.rtsp}/{o.user}/{ch[0]}", rate // 4)),
        (stall_socket, ("fstream", fs, o.user, ch[1 % len(ch)], None, 30)),
        (stall_socket, ("http", http, o.user, ch[2 % len(ch)], "flv", 30)),
        (stall_socket, ("http", http, o.user, ch[3 % len(ch)], "ts", 30)),
        (stall_ffmpeg, ("rtmp", f"rtmp://{o.rtmp}/{o.user}/{ch[0]}", 40)),
        (stall_ffmpeg, ("rtsp", f"rtsp://{o.rtsp}/{o.user}/{ch[1 % len(ch)]}", 40)),
    ]
    for fn, args in specs:
        threads.append(threading.Thread(target=fn, args=args))
    for t in threads:
        t.daemon = True
        t.start()
    while not STOP.is_set():
        STOP.wait(1)
    time.sleep(2)
    with LOCK:
        out = dict(sorted(COUNTS.items()))
    with open(o.summary, "w") as f:
        json.dump(out, f, indent=1)


# ---- verdict over the CSV ----


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def verdict(o):
    """Flat: the median of each third of the samples after the warm-up within ±5 % of the first
    third's. Medians of thirds, because single samples move for reasons that are not growth: RSS
    with what stalled watchers hold in their bounded queues (up to --queue-time of a stream each,
    until they are dropped; the peak sample is shown with the queues' bytes then), descriptors
    with the connections open at that instant (a dozen join and leave every second, slow and
    stalled watchers reconnect). Also: the descriptors beyond the open connections must not
    drift, and those that are not sockets (epoll, the listeners' reserve, stdio) must not
    change."""
    rows = []
    with open(o.csv) as f:
        head = f.readline().strip().split(",")
        for line in f:
            rows.append(dict(zip(head, (float(x) for x in line.strip().split(",")))))
    after = [r for r in rows if r["t_s"] >= o.warmup]
    if len(after) < 6:
        print(f"FAIL too few samples after the {o.warmup:.0f} s warm-up: {len(after)} (run longer)")
        return 1
    third = len(after) // 3
    bad = 0
    print(f"{len(after)} samples after a {o.warmup:.0f} s warm-up, "
          f"t = {after[0]['t_s']:.0f}..{after[-1]['t_s']:.0f} s")

    def figures(col):
        v = [r[col] for r in after]
        m = median(v)
        band = max(m - min(v), max(v) - m) / m * 100
        thirds = [median(v[:third]), median(v[third:-third]), median(v[-third:])]
        drift = max(abs(t - thirds[0]) for t in thirds) / thirds[0] * 100
        return v, m, band, thirds, drift

    v, m, band, thirds, drift = figures("rss_kib")
    ok = drift <= 5
    bad += not ok
    peak = max(after, key=lambda r: r["rss_kib"])
    q = f", the watchers' queues then {peak['queued_kib'] / 1024:.1f} MiB" if "queued_kib" in peak else ""
    print(f"{'PASS' if ok else 'FAIL'} rss: medians of the thirds "
          f"{' -> '.join(f'{t / 1024:.1f}' for t in thirds)} MiB (most {drift:.1f}% from the first, "
          f"limit 5%); samples {min(v) / 1024:.1f}..{max(v) / 1024:.1f} MiB (±{band:.1f}% of the "
          f"median {m / 1024:.1f}; peak at t={peak['t_s']:.0f} s{q})")
    v, m, band, thirds, drift = figures("fds")
    conns = [r["conns"] for r in after]
    ok = drift <= 5
    bad += not ok
    print(f"{'PASS' if ok else 'FAIL'} fds: medians of the thirds "
          f"{' -> '.join(f'{t:.0f}' for t in thirds)} (most {drift:.1f}% from the first, limit 5%); "
          f"samples {min(v):.0f}..{max(v):.0f} (±{band:.1f}% of the median {m:.0f}) as open "
          f"connections went {min(conns):.0f}..{max(conns):.0f}")
    held = [r["fds"] - r["conns"] for r in after if r["conns"] >= 0]
    first, last = median(held[:third]), median(held[-third:])
    ok = abs(last - first) <= 0.05 * first
    bad += not ok
    print(f"{'PASS' if ok else 'FAIL'} fds beyond the open connections (listeners, epoll, reserves, "
          f"UDP, and any leaked socket): first third {first:.0f} -> last third {last:.0f} "
          f"(limit ±5%); {min(held):.0f}..{max(held):.0f} (the /stats read and the fd listing are "
          "moments apart)")
    own = [r["own_fds"] for r in after]
    ok = min(own) == max(own)
    bad += not ok
    print(f"{'PASS' if ok else 'FAIL'} fds that are not sockets: {min(own):.0f}..{max(own):.0f} "
          "(must not change)")
    cpu = [r["cpu_pct"] for r in after]
    print(f"info cpu: median {median(cpu):.1f}% of a core, max {max(cpu):.1f}% "
          "(the machine is shared: not part of the verdict)")
    return 1 if bad else 0


# ---- hold: N watchers until EOF, for the SIGTERM fault ----


def hold(o):
    fs, http = addr(o.fstream), addr(o.http)
    t_usr1 = [None]
    signal.signal(signal.SIGUSR1, lambda *_: t_usr1.__setitem__(0, time.monotonic()))
    results = [None] * o.count
    ready = threading.Barrier(o.count + 1)

    def one(i):
        kind = ("fstream", "flv", "ts")[i % 3]
        try:
            if kind == "fstream":
                s = watch_request("fstream", fs, o.user, o.channel)
            else:
                s = watch_request("http", http, o.user, o.channel, kind)
            s.settimeout(o.timeout)
        except OSError as e:
            results[i] = (kind, 0, f"connect:{e.errno}", -1)
            ready.wait()
            return
        got = 0
        tail = b""
        first = True
        end = "timeout"
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                end = "reset"
                break
            except OSError as e:
                end = f"error:{e.errno}"
                break
            if first:
                first = False
                ready.wait()
            if not b:
                end = "eof"
                break
            got += len(b)
            tail = (tail + b)[-16:]
        if first:
            ready.wait()
        s.close()
        took = time.monotonic() - t_usr1[0] if t_usr1[0] else -1
        if kind != "fstream" and end == "eof":
            # A chunked body ends with its last chunk.
            end = "eof+last-chunk" if tail.endswith(b"0\r\n\r\n") else "eof-without-last-chunk"
        results[i] = (kind, got, end, took)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(o.count)]
    for t in threads:
        t.start()
    ready.wait()
    print("ready", flush=True)
    for t in threads:
        t.join()
    with open(o.out, "w") as f:
        for r in results:
            f.write("%s %d %s %.3f\n" % r)


# ---- flood: more connections than the hub has descriptors ----


def flood(o):
    a = addr(o.addr)
    socks = []
    for i in range(o.count):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(a)
            s.sendall(handshake(f"watch,user={o.user},channel={o.channel}"))
        except OSError as e:
            socks.append((s, f"connect:{e.errno}"))
            continue
        socks.append((s, None))
    got = [0] * len(socks)
    end = [None] * len(socks)
    for i, (s, err) in enumerate(socks):
        if err:
            end[i] = err
        s.setblocking(False)
    deadline = time.monotonic() + o.secs
    while time.monotonic() < deadline:
        for i, (s, _) in enumerate(socks):
            if end[i]:
                continue
            try:
                b = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                end[i] = "reset"
                continue
            if not b:
                end[i] = "eof"
            else:
                got[i] += len(b)
        time.sleep(0.05)
    served = sum(1 for i in range(len(socks)) if got[i] > 0 and not end[i])
    shed = sum(1 for i in range(len(socks)) if got[i] == 0 and end[i] in ("eof", "reset"))
    dropped = sum(1 for i in range(len(socks)) if got[i] > 0 and end[i])
    hung = sum(1 for i in range(len(socks)) if got[i] == 0 and not end[i])
    other = len(socks) - served - shed - dropped - hung
    with open(o.out, "w") as f:
        f.write(f"served={served} shed={shed} dropped_after_data={dropped} hung={hung} other={other}\n")
    print("flooded", flush=True)
    # Hold them until told to go (stdin closes).
    sys.stdin.read()
    for s, _ in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    for k in ("fstream", "http", "rtmp", "rtsp", "user", "channels", "summary"):
        r.add_argument("--" + k, required=True)
    r.add_argument("--rate", type=int, default=1_000_000, help="the stream's bytes per second")
    v = sub.add_parser("verdict")
    v.add_argument("csv")
    v.add_argument("warmup", type=float)
    h = sub.add_parser("hold")
    for k in ("fstream", "http", "user", "channel", "out"):
        h.add_argument("--" + k, required=True)
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--timeout", type=float, default=30)
    fl = sub.add_parser("flood")
    for k in ("addr", "user", "channel", "out"):
        fl.add_argument("--" + k, required=True)
    fl.add_argument("--count", type=int, required=True)
    fl.add_argument("--secs", type=float, default=5)
    o = ap.parse_args()
    if o.cmd == "run":
        run(o)
    elif o.cmd == "verdict":
        sys.exit(verdict(o))
    elif o.cmd == "hold":
        hold(o)
    else:
        flood(o)


if __name__ == "__main__":
    main()
