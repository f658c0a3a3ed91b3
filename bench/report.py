#!/usr/bin/env python3
"""Writes BENCHMARKS.md from a bench/report.sh run directory (see bench/report.sh, bench/README.md).

    bench/report.py DIR OUT.md [--quick]

DIR holds NAME.log per bench, runs.tsv (name, exit status, seconds, load average before and
after, command), build.time and total.time. From the logs: every `RESULT area metric river anchor
ratio goal [note...]` line (the last one wins for an area and metric), every `CURVE plot series x
y` line, and the PASS/FAIL lines of the soak and fault benches. The text of each area (its title,
its anchor, what limits its figures) comes from bench/limits.md. Plots are drawn with gnuplot as
PNG files beside OUT, named benchmarks-PLOT.png.
"""
import collections
import datetime
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Areas in the order of the goal table; others follow in name order.
ORDER = ["remux", "hls", "thumb", "rtsp_pull", "fanout", "relay", "rtmp", "relay_rtmp",
         "rtsp_hub", "llhls", "cascade", "http", "rtmp_in", "latency"]

PLOTS = {
    "fanout_throughput": ("Fan-out, one broadcaster: throughput delivered to all watchers",
                          "watchers", "MB/s (all watchers)", True, True),
    "fanout_latency_p99": ("Fan-out: latency broadcaster write to watcher read, p99",
                           "watchers", "ms", True, True),
    "fanout_latency_p50": ("Fan-out: latency broadcaster write to watcher read, p50",
                           "watchers", "ms", True, True),
    "thumb_latency": ("One-shot 720p thumbnail: process start to JPEG, distribution",
                      "ms", "fraction of runs at most this long", False, False),
}


def sh(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=ROOT)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def first_line(s):
    return s.splitlines()[0] if s else "not found"


def machine():
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = ""
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1048576:.0f} GiB"
    ff9 = os.path.join(ROOT, ".ci", "venv", "bin", "python")
    ff9_exe = sh([ff9, "-c", "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())"]) if os.path.exists(ff9) else ""
    nginx = sh(["nginx", "-v"]).replace("nginx version: ", "")
    rtmp = os.path.exists("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("memory", mem),
        ("kernel", sh(["uname", "-sr"])),
        ("river", f"`{sh(['git', 'describe', '--always', '--dirty', '--tags'])}` "
                  f"({first_line(sh(['rustc', '--version']))}, release profile)"),
        ("ffmpeg", first_line(sh(["ffmpeg", "-version"])).replace(" Copyright", ",").split(",")[0]),
        ("ffmpeg 9 (H.265 anchor)", first_line(sh([ff9_exe, "-version"])).split(" Copyright")[0]
         if ff9_exe and os.path.exists(ff9_exe) else "not installed (.ci/venv)"),
        ("nginx", f"{nginx}{' with libnginx-mod-rtmp' if rtmp else ''}"),
        ("GStreamer", first_line(sh(["gst-launch-1.0", "--version"]).split("\n", 1)[-1]))
    ]


def limits():
    """bench/limits.md: `## area: title` then the paragraphs of that area."""
    areas = {}
    cur = None
    path = os.path.join(ROOT, "bench", "limits.md")
    for line in open(path):
        m = re.match(r"^## (\w+): (.*)$", line)
        if m:
            cur = m.group(1)
            areas[cur] = [m.group(2).strip(), []]
        elif cur:
            areas[cur][1].append(line.rstrip("\n"))
    return {a: (t, "\n".join(body).strip()) for a, (t, body) in areas.items()}


def number(s):
    try:
        return float(s.rstrip("x×%"))
    except ValueError:
        return None


def met(river, ratio, goal):
    """'yes', 'no' or '' for a goal: `>=X`/`<=X` on the ratio, `river<=X`/`river>=X` on river."""
    g = goal.replace("≥", ">=").replace("≤", "<=")
    m = re.fullmatch(r"(river)?(>=|<=)([0-9.]+)[x×%]?(MiB)?", g)
    if not m:
        return ""
    value = number(river) if m.group(1) else number(ratio)
    if value is None:
        return ""
    want = float(m.group(3))
    ok = value >= want if m.group(2) == ">=" else value <= want
    return "yes" if ok else "**no**"


def collect(d):
    results = collections.OrderedDict()
    curves = collections.defaultdict(lambda: collections.defaultdict(list))
    checks = {}
    for name in sorted(os.listdir(d)):
        if not name.endswith(".log"):
            continue
        bench = name[:-4]
        passes = fails = 0
        for line in open(os.path.join(d, name), errors="replace"):
            f = line.split()
            if len(f) >= 7 and f[0] == "RESULT":
                results[(f[1], f[2])] = (f[3], f[4], f[5], f[6], " ".join(f[7:]), bench)
            elif len(f) == 5 and f[0] == "CURVE":
                x, y = number(f[3]), number(f[4])
                if x is not None and y is not None:
                    curves[f[1]][f[2]].append((x, y))
            elif line.startswith("PASS"):
                passes += 1
            elif line.startswith("FAIL"):
                fails += 1
        if passes or fails:
            checks[bench] = (passes, fails)
    return results, curves, checks


def plot(curves, d, out_dir):
    """One PNG per plot; returns {plot: file name}."""
    made = {}
    if not shutil.which("gnuplot"):
        return made
    for name, series in sorted(curves.items()):
        title, xl, yl, logx, logy = PLOTS.get(name, (name, "x", "y", False, False))
        png = f"benchmarks-{name}.png"
        cmds = ["set terminal pngcairo size 900,520 font ',10'",
                f"set output '{os.path.join(out_dir, png)}'",
                f"set title \"{title}\"", f"set xlabel \"{xl}\"", f"set ylabel \"{yl}\"",
                "set grid", "set key outside right top"]
        if logx:
            cmds.append("set logscale x")
        if logy:
            cmds.append("set logscale y")
        parts = []
        for s, pts in sorted(series.items()):
            dat = os.path.join(d, f"plot-{name}-{s}.dat")
            with open(dat, "w") as f:
                for x, y in sorted(pts):
                    f.write(f"{x} {y}\n")
            style = "steps" if name == "thumb_latency" else "linespoints pt 7 ps 0.8"
            parts.append(f"'{dat}' using 1:2 with {style} lw 2 title '{s}'")
        cmds.append("plot " + ", ".join(parts))
        r = subprocess.run(["gnuplot"], input="\n".join(cmds), text=True, capture_output=True)
        if r.returncode == 0:
            made[name] = png
        else:
            print(f"report: gnuplot failed for {name}: {r.stderr.strip()}", file=sys.stderr)
    return made


def plot_area(plot_name, areas):
    """The area whose table a plot goes under: fan-out curves under the fan-out bench's area
    (`fanout`, or `relay`), others under the area their name starts with."""
    prefix = plot_name.split("_")[0]
    for a in ([prefix, "relay"] if prefix == "fanout" else [prefix]):
        if a in areas:
            return a
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    d, out = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv[3:]
    out_dir = os.path.dirname(os.path.abspath(out))
    results, curves, checks = collect(d)
    runs = []
    if os.path.exists(os.path.join(d, "runs.tsv")):
        runs = [l.rstrip("\n").split("\t") for l in open(os.path.join(d, "runs.tsv"))]
    total = open(os.path.join(d, "total.time")).read().split()[1] if os.path.exists(os.path.join(d, "total.time")) else "?"
    build = open(os.path.join(d, "build.time")).read().split()[1] if os.path.exists(os.path.join(d, "build.time")) else "?"
    text = limits()
    pngs = plot(curves, d, out_dir)
    loads = [r[3] for r in runs] + [r[4] for r in runs]
    peak = max((float(l.split()[0]) for l in loads), default=0.0)

    L = []
    cmd = "bench/report.sh --quick" if quick else "bench/report.sh"
    L.append("# Benchmarks\n")
    L.append(f"Written by `{cmd}` on {datetime.datetime.now().strftime('%Y-%m-%d %H:%M %Z').strip()}; "
             f"run it again to regenerate this file and its plots (bench/README.md says what each "
             f"bench needs). Every figure puts river beside its anchor in the same run, on the same "
             f"input, as medians; the ratios are what to compare between machines.\n")
    if quick:
        L.append(f"**A quick run** ({int(total) // 60} min {int(total) % 60} s, after a {build} s "
                 f"build): fewer and shorter runs than the full report, and no soak or fault runs. "
                 f"**The machine is shared and noisy**: two cores, with other builds and tests "
                 f"running beside the benches; the 1-minute load average went up to {peak:.1f} "
                 f"(per bench in [Runs](#runs)). Wall times wait for a core as well; CPU times, "
                 f"where given, do not, and are the steadier figure.\n")
    else:
        L.append(f"A full run: {int(total) // 60} min {int(total) % 60} s after a {build} s build; "
                 f"the 1-minute load average peaked at {peak:.1f} (per bench in [Runs](#runs)).\n")
    L.append("## Machine\n")
    for k, v in machine():
        L.append(f"- {k}: {v}")
    L.append("")

    areas = collections.OrderedDict()
    for (area, metric), v in results.items():
        areas.setdefault(area, []).append((metric, *v))
    order = sorted(areas, key=lambda a: (ORDER.index(a) if a in ORDER else len(ORDER), a))

    L.append("## Goals\n")
    L.append("The issue's goals, each figure as its area's table has it.\n")
    L.append("| area | metric | river | anchor | ratio | goal | met |")
    L.append("|---|---|---|---|---|---|---|")
    for a in order:
        for metric, river, anchor, ratio, goal, note, _ in areas[a]:
            if goal != "-":
                L.append(f"| {a} | {metric} | {river} | {anchor} | {ratio} | {goal} | {met(river, ratio, goal)} |")
    L.append("")

    for a in order:
        title, body = text.get(a, (a, ""))
        L.append(f"## {title}\n")
        L.append("| metric | river | anchor | ratio | goal | met | anchor / note |")
        L.append("|---|---|---|---|---|---|---|")
        for metric, river, anchor, ratio, goal, note, bench in areas[a]:
            L.append(f"| {metric} | {river} | {anchor} | {ratio} | {goal} | {met(river, ratio, goal)} | {note} |")
        L.append("")
        if body:
            L.append(body + "\n")
        for p in sorted(pngs):
            if plot_area(p, areas) == a:
                L.append(f"![{PLOTS.get(p, (p,))[0]}]({pngs[p]})\n")
    # Plots whose area has no table (no RESULT lines yet): under their area's text.
    rest = collections.OrderedDict()
    for p in sorted(pngs):
        if plot_area(p, areas) is None:
            rest.setdefault(p.split("_")[0], []).append(p)
    for prefix, plots in rest.items():
        title, body = text.get(prefix, ("Curves", ""))
        L.append(f"## {title}\n")
        if body:
            L.append(body + "\n")
        for p in plots:
            L.append(f"![{PLOTS.get(p, (p,))[0]}]({pngs[p]})\n")

    L.append("## Runs\n")
    L.append("| bench | exit | seconds | load avg before | load avg after | checks | command |")
    L.append("|---|---|---|---|---|---|---|")
    for name, rc, secs, la0, la1, cmdline in runs:
        c = checks.get(name)
        cs = f"{c[0]} PASS, {c[1]} FAIL" if c else ""
        status = rc if rc == "0" else f"**{rc}**" + (" (timeout)" if rc in ("124", "137") else "")
        L.append(f"| {name} | {status} | {secs} | {la0} | {la1} | {cs} | `{cmdline}` |")
    L.append("")
    with open(out, "w") as f:
        f.write("\n".join(L))
    print(f"report: wrote {out}" + (f" and {', '.join(sorted(pngs.values()))}" if pngs else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
