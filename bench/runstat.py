#!/usr/bin/env python3
"""Runs one command RUNS times with a file on stdin and stdout to /dev/null (or a pipe that is
drained), and prints the medians of what each run cost the whole process:

    wall_s cpu_s rss_kib          (one line: median wall seconds, median user+sys seconds, peak RSS)

    bench/runstat.py RUNS INPUT CMD [ARG...]
    RUNSTAT_SETUP='rm -rf dir; mkdir dir' bench/runstat.py 9 big.ts river-hls-seg --dir dir
    bench/runstat.py --once FILE CMD [ARG...]   # one run, stdin/stdout inherited; the line to FILE

CPU comes from wait4() (ru_utime + ru_stime at microsecond resolution: the kernel scales its tick
split to the exact runtime, so their sum is exact). The command runs under /usr/bin/time, whose
%M is its peak RSS: a child forked from this Python process would start with Python's 18 MiB as
its high-water mark (Linux keeps the largest RSS across exec), so the fork comes from the small
`time` instead (its own ~0.3 ms of CPU is counted with the command's). On a loaded machine the wall time waits for a core as well, so both are
printed: wall is what the issue's goals name, CPU is what does not depend on the neighbours.
The input is read once first, so every run (river's and the anchor's) reads it from the page cache.
RUNSTAT_SETUP, if set, is run with sh before each run (not timed): e.g. to empty an output dir.
Exits non-zero, with the command's stderr, if a run fails.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"


def run_once(cmd, path, rss_file):
    with open(path, "rb") as stdin, open(os.devnull, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen([TIME, "-f", "%M", "-o", rss_file, *cmd], stdin=stdin, stdout=out,
                             stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"runstat: {' '.join(cmd)} < {path} failed ({code}): "
                 f"{err.decode(errors='replace').strip()}")
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    return t1 - t0, ru.ru_utime + ru.ru_stime, rss


def once(out_file, cmd):
    """One run with stdin and stdout inherited (a background job in a bench script)."""
    rss_file = tempfile.NamedTemporaryFile(prefix="runstat-", delete=False).name
    t0 = time.perf_counter()
    p = subprocess.Popen([TIME, "-f", "%M", "-o", rss_file, *cmd])
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    os.unlink(rss_file)
    with open(out_file, "w") as f:
        f.write(f"{wall:.4f} {ru.ru_utime + ru.ru_stime:.4f} {rss}\n")
    return os.waitstatus_to_exitcode(status)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--once":
        sys.exit(once(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    runs, path, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    setup = os.environ.get("RUNSTAT_SETUP")
    if not os.access(TIME, os.X_OK):
        sys.exit("runstat: needs GNU time: apt-get install -y time")
    rss_file = tempfile.NamedTemporaryFile(prefix="runstat-", delete=False).name
    with open(path, "rb") as f:  # into the page cache
        while f.read(1 << 22):
            pass
    walls, cpus, rss = [], [], 0
    for _ in range(runs):
        if setup:
            subprocess.run(["sh", "-c", setup], check=True)
        w, c, m = run_once(cmd, path, rss_file)
        walls.append(w)
        cpus.append(c)
        rss = max(rss, m)
    os.unlink(rss_file)
    print(f"{statistics.median(walls):.4f} {statistics.median(cpus):.4f} {rss}")


if __name__ == "__main__":
    main()
