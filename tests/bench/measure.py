#!/usr/bin/env python3
"""Measuring harness for tests/bench/run.sh (Python 3 standard library only).

Subcommands:
  machine                       print the machine description as JSON
  run  --rows F --name N --runs R [--warmup W] [--target-ms T] [--cwd D] -- CMD...
                                run CMD W times (discarded), then R times; append one row (JSON line) to F
  report --rows F --machine M --out-dir D --command C
                                print the table and write D/report.md and D/report.json

Each run is one child process; wall time is `time.perf_counter` around spawn and reap. Peak RSS comes
from GNU time (`/usr/bin/time -f %M`) when it is installed: a process forked from this Python harness
inherits the harness's RSS high-water mark across `exec` (Linux keeps the larger of the two in
`ru_maxrss`), so without the small C wrapper every figure would have the harness's ~15 MB as a floor.
Without GNU time, the child's own `ru_maxrss` from `os.wait4` is used (per child, unlike
RUSAGE_CHILDREN, which keeps the maximum over every child reaped so far) and `rss_source` says so.
The `baseline: /bin/true` row measures the same path with a trivial command: the harness's overhead.
stdout and stderr of the command are discarded; a run that exits non-zero aborts the benchmark with
the command's stderr.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

GNU_TIME = "/usr/bin/time"


def fail(msg):
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(2)


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_mb = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_mb = int(line.split()[1]) // 1024
                    break
    except OSError:
        pass
    try:
        rustc = subprocess.run(
            ["rustc", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rustc = "unknown"
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except (OSError, ValueError):
        nproc = os.cpu_count()
    load = os.getloadavg()
    return {
        "cpu_model": cpu,
        "cores": nproc,
        "memory_mb": mem_mb,
        "os": f"{platform.system()} {platform.release()}",
        "rustc": rustc,
        "load_average_before": [round(x, 2) for x in load],
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def rss_source():
    return "gnu-time" if os.access(GNU_TIME, os.X_OK) else "wait4"


def run_once(cmd, cwd, rss_file):
    full = cmd
    if rss_file is not None:
        full = [GNU_TIME, "-f", "%M", "-o", rss_file, "--"] + cmd
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(
            full, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except OSError as e:
        fail(f"cannot start `{full[0]}`: {e}")
    # Read stderr before reaping so a chatty child cannot block on a full pipe.
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        fail(
            f"`{' '.join(cmd)}` (in {cwd or os.getcwd()}) exited with {p.returncode}:\n"
            + err.decode(errors="replace").rstrip()
        )
    kib = ru.ru_maxrss  # KiB on Linux
    if rss_file is not None:
        with open(rss_file) as f:
            lines = [x for x in f.read().split() if x.strip()]
        try:
            kib = int(lines[-1])
        except (IndexError, ValueError):
            fail(f"cannot read the peak RSS written by {GNU_TIME} for `{' '.join(cmd)}`")
    return wall * 1000.0, kib / 1024.0  # ms, MB


def percentile(sorted_vals, q):
    # Nearest-rank percentile: the smallest value with at least q% of the samples at or below it.
    k = max(0, min(len(sorted_vals) - 1, -(-len(sorted_vals) * q // 100) - 1))
    return sorted_vals[int(k)]


def cmd_run(a):
    if not a.cmd:
        fail("run: no command given after `--`")
    if a.runs < 1:
        fail("run: --runs must be at least 1")
    src = rss_source()
    walls, rss = [], []
    with tempfile.TemporaryDirectory(prefix="osiris-bench-rss.") as tmp:
        rss_file = os.path.join(tmp, "maxrss") if src == "gnu-time" else None
        for _ in range(a.warmup):
            run_once(a.cmd, a.cwd, rss_file)
        for _ in range(a.runs):
            w, r = run_once(a.cmd, a.cwd, rss_file)
            walls.append(w)
            rss.append(r)
    walls.sort()
    shown = " ".join(a.cmd)
    for ab in a.abbrev:
        path, _, name = ab.partition("=")
        if path:
            shown = shown.replace(path, name)
    row = {
        "benchmark": a.name,
        "command": shown,
        "runs": a.runs,
        "warmup": a.warmup,
        "median_ms": round(statistics.median(walls), 2),
        "p90_ms": round(percentile(walls, 90), 2),
        "min_ms": round(walls[0], 2),
        "max_ms": round(walls[-1], 2),
        "peak_rss_mb": round(max(rss), 1),
        "rss_source": src,
        "target_ms": a.target_ms,
        "target_met": None if a.target_ms is None else statistics.median(walls) < a.target_ms,
    }
    with open(a.rows, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(
        f"  {a.name}: median {row['median_ms']} ms, p90 {row['p90_ms']} ms, "
        f"peak RSS {row['peak_rss_mb']} MB",
        file=sys.stderr,
    )


def fmt_target(row):
    if row["target_ms"] is None:
        return "-", "-"
    t = row["target_ms"]
    t = int(t) if float(t).is_integer() else t
    return f"< {t} ms", "yes" if row["target_met"] else "**no**"


def cmd_report(a):
    with open(a.machine) as f:
        mach = json.load(f)
    rows = []
    with open(a.rows) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    header = ["benchmark", "median ms", "p90 ms", "min ms", "max ms", "peak RSS MB", "target", "met"]
    table = []
    for r in rows:
        target, met = fmt_target(r)
        table.append(
            [
                r["benchmark"],
                f"{r['median_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{r['min_ms']:.2f}",
                f"{r['max_ms']:.2f}",
                f"{r['peak_rss_mb']:.1f}",
                target,
                met,
            ]
        )
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    print(line(header))
    for t in table:
        print(line(t))

    runs = rows[0]["runs"] if rows else 0
    warm = rows[0]["warmup"] if rows else 0
    md = [
        "# osiris benchmark report",
        "",
        f"Command: `{a.command}`",
        "",
        f"Date (UTC): {mach['date_utc']}  ",
        f"Machine: {mach['cpu_model']}, {mach['cores']} cores, {mach['memory_mb']} MB RAM, {mach['os']}  ",
        f"Toolchain: {mach['rustc']}  ",
        "Load average before measuring (1/5/15 min): "
        + ", ".join(str(x) for x in mach["load_average_before"])
        + "  ",
        f"Each row: median of {runs} runs after {warm} warm-up run(s); wall time per process "
        "(spawn to reap, from Python); peak RSS of the process, the largest over the runs "
        + (
            "(GNU time `%M`)."
            if all(r.get("rss_source") == "gnu-time" for r in rows)
            else "(`wait4` ru_maxrss: includes the harness's own RSS as a floor)."
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for t in table:
        md.append("| " + " | ".join(c.replace("|", "\\|") for c in t) + " |")
    md.append("")
    md.append("Commands measured:")
    md.append("")
    for r in rows:
        md.append(f"- {r['benchmark']}: `{r['command']}`")
    md.append("")
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "report.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(a.out_dir, "report.json"), "w") as f:
        json.dump({"command": a.command, "machine": mach, "rows": rows}, f, indent=2)
        f.write("\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sub", required=True)
    sub.add_parser("machine")
    r = sub.add_parser("run")
    r.add_argument("--rows", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--runs", type=int, required=True)
    r.add_argument("--warmup", type=int, default=1)
    r.add_argument("--target-ms", type=float, default=None)
    r.add_argument("--cwd", default=None)
    r.add_argument(
        "--abbrev",
        action="append",
        default=[],
        metavar="PATH=NAME",
        help="show PATH as NAME in the recorded command (repeatable)",
    )
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    rep = sub.add_parser("report")
    rep.add_argument("--rows", required=True)
    rep.add_argument("--machine", required=True)
    rep.add_argument("--out-dir", required=True)
    rep.add_argument("--command", required=True)
    a = p.parse_args()
    if a.sub == "machine":
        print(json.dumps(machine(), indent=2))
    elif a.sub == "run":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        cmd_run(a)
    else:
        cmd_report(a)


if __name__ == "__main__":
    main()
