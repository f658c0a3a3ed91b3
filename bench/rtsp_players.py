#!/usr/bin/python3
"""N RTSP/TCP players in one process: DESCRIBE, SETUP every track interleaved, PLAY, then read and
discard. Prints the bytes received per second once a second on stderr and, at the end, the total.

Usage: rtsp_players.py URL N SECONDS
"""
import re
import selectors
import socket
import sys
import time

url, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
m = re.match(r"rtsp://([^/:]+):(\d+)(/.*)", url)
host, port = m.group(1), int(m.group(2))


def request(s, buf, method, uri, cseq, extra=""):
    s.sendall(f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit(f"{method}: connection closed")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    ln = re.search(rb"Content-Length: (\d+)", head)
    ln = int(ln.group(1)) if ln else 0
    while len(rest) < ln:
        rest += s.recv(65536)
    text = head.decode(errors="replace")
    if not text.startswith("RTSP/1.0 200"):
        raise SystemExit(f"{method}: {text.splitlines()[0]}")
    return text, rest[:ln].decode(errors="replace"), rest[ln:]


def player():
    s = socket.create_connection((host, port))
    buf = b""
    _, sdp, buf = request(s, buf, "DESCRIBE", url, 1, "Accept: application/sdp\r\n")
    controls = re.findall(r"a=control:(\S+)", sdp.split("m=", 1)[1]) if "m=" in sdp else []
    sess = None
    for i, c in enumerate(controls):
        extra = f"Transport: RTP/AVP/TCP;unicast;interleaved={2*i}-{2*i+1}\r\n"
        if sess:
            extra += f"Session: {sess}\r\n"
        tu = c if c.startswith("rtsp://") else url.rstrip("/") + "/" + c
        head, _, buf = request(s, buf, "SETUP", tu, 2 + i, extra)
        sess = re.search(r"Session: *([^;\r\n]+)", head).group(1)
    s.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 9\r\nSession: {sess}\r\n\r\n".encode())
    s.setblocking(False)
    return s


sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = player()
    socks.append(s)
    sel.register(s, selectors.EVENT_READ)
total = 0
start = time.time()
last = start
window = 0
while time.time() - start < secs:
    for key, _ in sel.select(timeout=0.5):
        try:
            d = key.fileobj.recv(1 << 20)
        except BlockingIOError:
            continue
        if not d:
            sel.unregister(key.fileobj)
            continue
        total += len(d)
        window += len(d)
    now = time.time()
    if now - last >= 1:
        print(f"{window / (now - last) * 8 / 1e6:.1f} Mbit/s", file=sys.stderr, flush=True)
        window, last = 0, now
print(total)
