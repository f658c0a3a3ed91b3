#!/usr/bin/env python3
"""Added latency of a live pipe: FLV tags are written one at a time, paced like a live source
(each video tag at its own timestamp), into river-mux-ts and into `ffmpeg -f flv -i - -c copy -f
mpegts -` in the same run. For every video frame we record the time from writing its tag to the
moment its PES starts in the muxer's stdout. Prints p50/p99 per muxer and the ratio. Not a test: numbers vary with the machine.

    bench/latency.py [input.flv]     (default: a 10 s lavfi clip made with ffmpeg)
"""
import os, select, statistics, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tags(data):
    """Yields (kind, timestamp_ms, bytes) for the FLV header and each tag with its PreviousTagSize."""
    off = struct.unpack(">I", data[5:9])[0] + 4
    yield ("header", 0, data[:off])
    while off + 11 <= len(data):
        size = int.from_bytes(data[off + 1:off + 4], "big")
        ts = int.from_bytes(data[off + 4:off + 7], "big") | (data[off + 7] << 24)
        end = off + 11 + size + 4
        yield (data[off], ts, data[off:end])
        off = end


def measure(cmd, data):
    """Per video frame: time from writing its FLV tag to the moment its PES starts in the TS output
    (the Nth payload_unit_start on PID 0x100 is frame N)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    os.set_blocking(p.stdout.fileno(), False)
    written = []  # write time of each video NALU tag
    seen = []  # arrival time of each video PES start
    buf = bytearray()

    def drain(timeout):
        r, _, _ = select.select([p.stdout], [], [], timeout)
        if not r:
            return False
        chunk = p.stdout.read(1 << 20)
        if not chunk:
            return False
        now = time.monotonic()
        buf.extend(chunk)
        whole = len(buf) // 188 * 188
        for o in range(0, whole, 188):
            pid = ((buf[o + 1] & 0x1F) << 8) | buf[o + 2]
            if pid == 0x100 and buf[o + 1] & 0x40:
                seen.append(now)
        del buf[:whole]
        return True

    start = time.monotonic()
    for kind, ts, chunk in tags(data):
        due = start + ts / 1000.0
        while time.monotonic() < due:
            drain(max(0, due - time.monotonic()))
        p.stdin.write(chunk)
        p.stdin.flush()
        # A video tag with an AVC NALU packet (not the sequence header) is a frame.
        if kind == 9 and len(chunk) > 12 and chunk[12] == 1:
            written.append(time.monotonic())
        drain(0)
    p.stdin.close()
    while drain(5):
        pass
    p.wait(timeout=30)
    n = min(len(written), len(seen))
    return [seen[i] - written[i] for i in range(n)]


def main():
    if len(sys.argv) > 1:
        data = open(sys.argv[1], "rb").read()
    else:
        tmp = os.path.join(tempfile.gettempdir(), "river-latency.flv")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=10",
                        "-f", "lavfi", "-i", "sine=duration=10", "-c:v", "libx264", "-preset", "superfast", "-g", "60",
                        "-c:a", "aac", "-f", "flv", tmp], check=True)
        data = open(tmp, "rb").read()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    river = os.path.join(ROOT, "target", "release", "river-mux-ts")
    res = {
        "river-mux-ts": measure([river], data),
        "ffmpeg -c copy": measure(["ffmpeg", "-v", "error", "-f", "flv", "-i", "-", "-c", "copy", "-f", "mpegts", "-"], data),
    }
    print(f"{'muxer':<16} {'frames':>6} {'p50_ms':>8} {'p99_ms':>8} {'max_ms':>8}")
    for name, d in res.items():
        d = sorted(d)
        p99 = d[min(len(d) - 1, int(len(d) * 0.99))]
        print(f"{name:<16} {len(d):>6} {statistics.median(d) * 1000:>8.2f} {p99 * 1000:>8.2f} {d[-1] * 1000:>8.2f}")
    r, f = statistics.median(res["river-mux-ts"]), statistics.median(res["ffmpeg -c copy"])
    print(f"median added latency ratio ffmpeg/river: {f / r:.1f}x")
    # For bench/report.sh: river's added latency against ffmpeg's (ratio: ffmpeg / river).
    print(f"RESULT latency flv_to_ts_added_p50_ms {r * 1000:.2f} {f * 1000:.2f} {f / r:.2f} - ffmpeg -c copy, paced live input")


main()
