#!/usr/bin/env python3
"""river-thumb against ffmpeg, same input, same run: latency (p50/p99) and CPU of turning a 720p
keyframe into a JPEG, each run a fresh process reading the stream on stdin. H.264 (openh264) and
H.265 (libde265; inputs `hevc-ts` and `hevc-h265`, x265 with B-frames and a 1 s GOP).

    bench/thumb.py              # builds release, makes inputs in bench/work/, 50 runs each
    RUNS=200 bench/thumb.py

The tools run in turn within each round, so load from elsewhere falls on all of them alike.

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


def run_once(cmd, data):
    """One run of cmd < data > pipe: (wall s, CPU user+sys s, output size)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0 or p.stdout[:2] != b"\xff\xd8":
        sys.exit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), len(p.stdout)


def measure(tools, path):
    """RUNS rounds, each running every tool once in turn (so a change in the machine's load
    falls on all of them alike): per tool, wall times (s), CPU times (s) and the JPEG size."""
    with open(path, "rb") as f:
        data = f.read()
    res = {name: ([], [], 0) for name, _ in tools}
    for _ in range(RUNS):
        for name, cmd in tools:
            w, c, size = run_once(cmd, data)
            walls, cpus, _ = res[name]
            walls.append(w)
            cpus.append(c)
            res[name] = (walls, cpus, size)
    return res


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    if not shutil.which("ffmpeg"):
        sys.exit("needs ffmpeg: apt-get install -y ffmpeg")
    sh(["cargo", "build", "--release", "--quiet", "--bin", "river-thumb"], cwd=ROOT)
    river = os.path.join(ROOT, "target", "release", "river-thumb")
    ffmpeg = ["ffmpeg", "-v", "error", "-i", "-", "-frames:v", "1", "-f", "image2", "-"]
    print(f"{RUNS} runs each, interleaved; times in ms; CPU = user+sys per run")
    print(f"{'input':9} {'tool':22} {'p50':>7} {'p99':>7} {'cpu50':>7} {'jpeg_KB':>8}")
    tools = [("river-thumb", [river]),
             ("river-thumb --width 320", [river, "--width", "320"]),
             ("ffmpeg -frames:v 1", ffmpeg)]
    for name, path in make_inputs():
        res = {}
        for tool, (walls, cpus, size) in measure(tools, path).items():
            res[tool] = (pct(walls, 50), pct(walls, 99), pct(cpus, 50))
            print(f"{name:9} {tool:22} {pct(walls, 50)*1e3:7.1f} {pct(walls, 99)*1e3:7.1f} "
                  f"{pct(cpus, 50)*1e3:7.1f} {size/1024:8.1f}")
            # The latency distribution, for bench/report.sh's plot: (ms, fraction of runs).
            if tool != "river-thumb --width 320":
                series = f"{tool.split()[0]}-{name}"
                for i, w in enumerate(sorted(walls)):
                    print(f"CURVE thumb_latency {series} {w*1e3:.2f} {(i + 1) / len(walls):.4f}")
        r, f = res["river-thumb"], res["ffmpeg -frames:v 1"]
        print(f"{name:9} ratio ffmpeg/river: p50 {f[0]/r[0]:.1f}x, p99 {f[1]/r[1]:.1f}x, CPU {f[2]/max(r[2], 1e-9):.1f}x")
        # The goal (5x) is the H.264 one's; H.265 (libde265) is shown beside it.
        goal = "-" if name.startswith("hevc") else ">=5"
        print(f"RESULT thumb {name}_720p_p50_ms {r[0]*1e3:.1f} {f[0]*1e3:.1f} {f[0]/r[0]:.2f} {goal} "
              f"ffmpeg -frames:v 1, process start to JPEG, median of {RUNS}")
        print(f"RESULT thumb {name}_720p_p99_ms {r[1]*1e3:.1f} {f[1]*1e3:.1f} {f[1]/r[1]:.2f} - ffmpeg -frames:v 1")
        print(f"RESULT thumb {name}_720p_cpu_ms {r[2]*1e3:.1f} {f[2]*1e3:.1f} "
              f"{f[2]/max(r[2], 1e-9):.2f} - ffmpeg -frames:v 1, CPU user+sys")


if __name__ == "__main__":
    main()
