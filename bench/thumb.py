#!/usr/bin/env python3
"""river-thumb against ffmpeg, same input, same run: latency (p50/p99) and CPU of turning a 720p
keyframe into a JPEG, each run a fresh process reading the stream on stdin. H.264 (openh264) and
H.265 (libde265; inputs `hevc-ts` and `hevc-h265`, x265 with B-frames and a 1 s GOP).

    bench/thumb.py              # builds release, makes inputs in bench/work/, 50 runs each
    RUNS=200 bench/thumb.py

river:  river-thumb < in > out.jpg                               (one-shot, JPEG q80)
ffmpeg: ffmpeg -i - -frames:v 1 -f image2 - < in > out.jpg       (its default mjpeg settings)

Not a test: numbers vary with the machine. Quote the medians and the ratio.
"""
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "bench", "work")
RUNS = int(os.environ.get("RUNS", "50"))


def sh(args, **kw):
    subprocess.run(args, check=True, **kw)


def make_inputs():
    os.makedirs(WORK, exist_ok=True)
    src = os.path.join(WORK, "thumb-720p.flv")
    if not os.path.exists(src):
        # 2 s of 720p30, 1 s GOP, ~8 Mbit/s, with AAC: the stream starts on a keyframe, as a live
        # stream does once river's start gate has it.
        sh(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-g", "30", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-f", "flv", src])
    ts = os.path.join(WORK, "thumb-720p.ts")
    if not os.path.exists(ts):
        sh(["ffmpeg", "-v", "error", "-y", "-i", src, "-c", "copy", "-f", "mpegts", ts])
    hevc = os.path.join(WORK, "thumb-720p-hevc.ts")
    if not os.path.exists(hevc):
        # The same picture content in H.265 (x265 medium, B-frames, 1 s open GOP), with AAC.
        sh(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
            "-c:v", "libx265", "-b:v", "4M", "-x265-params", "keyint=30:bframes=2:open-gop=1:log-level=error",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", hevc])
    annexb = os.path.join(WORK, "thumb-720p.h265")
    if not os.path.exists(annexb):
        sh(["ffmpeg", "-v", "error", "-y", "-i", hevc, "-an", "-c:v", "copy", "-bsf:v", "hevc_mp4toannexb",
            "-f", "hevc", annexb])
    return [("flv", src), ("ts", ts), ("hevc-ts", hevc), ("hevc-h265", annexb)]


def measure(cmd, path):
    """RUNS runs of cmd < path > pipe: wall times (s) and CPU (user+sys, s) per run."""
    with open(path, "rb") as f:
        data = f.read()
    walls, cpus, size = [], [], 0
    for _ in range(RUNS):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0 or p.stdout[:2] != b"\xff\xd8":
            sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
        size = len(p.stdout)
        walls.append(t1 - t0)
        cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return walls, cpus, size


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    if not shutil.which("ffmpeg"):
        sys.exit("needs ffmpeg: apt-get install -y ffmpeg")
    sh(["cargo", "build", "--release", "--quiet", "--bin", "river-thumb"], cwd=ROOT)
    river = os.path.join(ROOT, "target", "release", "river-thumb")
    ffmpeg = ["ffmpeg", "-v", "error", "-i", "-", "-frames:v", "1", "-f", "image2", "-"]
    print(f"{RUNS} runs each; times in ms; CPU = user+sys per run")
    print(f"{'input':9} {'tool':22} {'p50':>7} {'p99':>7} {'cpu50':>7} {'jpeg_KB':>8}")
    for name, path in make_inputs():
        res = {}
        for tool, cmd in [("river-thumb", [river]),
                          ("river-thumb --width 320", [river, "--width", "320"]),
                          ("ffmpeg -frames:v 1", ffmpeg)]:
            walls, cpus, size = measure(cmd, path)
            res[tool] = (pct(walls, 50), pct(walls, 99), pct(cpus, 50))
            print(f"{name:9} {tool:22} {pct(walls, 50)*1e3:7.1f} {pct(walls, 99)*1e3:7.1f} "
                  f"{pct(cpus, 50)*1e3:7.1f} {size/1024:8.1f}")
        r, f = res["river-thumb"], res["ffmpeg -frames:v 1"]
        print(f"{name:9} ratio ffmpeg/river: p50 {f[0]/r[0]:.1f}x, p99 {f[1]/r[1]:.1f}x, CPU {f[2]/max(r[2], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
