#!/usr/bin/env python3
"""Measuring harness for tests/bench/run.sh (Python 3 standard library only).

Subcommands:
  machine                       print the machine description as JSON
  run  --rows F --name N --runs R [--warmup W] [--section S] [--cwd D]
       [--setup SH] [--verify SH] [--rows-per-run N] [--env K=V ...]
       [--target-ms T] [--baseline NAME] [--target-ratio X] [--target-delta-ms T] [--target-rss-mb M]
       -- CMD...
                                run CMD W times (discarded), then R times; append one row (JSON line) to F.
                                SH is a bash command run before (--setup) or after (--verify) every run,
                                warm-ups included, outside the timing; a non-zero exit aborts the benchmark.
                                --baseline NAME: report median / NAME's median (NAME measured earlier);
                                --target-ratio X: the target for that ratio;
                                --target-delta-ms T: median - NAME's median must be at most T ms (a fixed
                                cost, such as loading a plugin, read as a difference); --show-delta shows
                                that difference without a target; --also-against NAME=LABEL reports the
                                ratio to one more row measured earlier (no target); --baseline-minus NAME
                                compares with the baseline's median less NAME's (a start-up cost);
                                --target-rss-baseline: peak RSS no higher than the baseline's.
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


def run_once(cmd, cwd, rss_file, env=None):
    full = cmd
    if rss_file is not None:
        full = [GNU_TIME, "-f", "%M", "-o", rss_file, "--"] + cmd
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(
            full, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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


def hook(kind, sh, cwd, name, k):
    """Runs a --setup or --verify bash command outside the timing; a failure aborts the benchmark."""
    if not sh:
        return
    p = subprocess.run(["bash", "-c", sh], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    if p.returncode != 0:
        out = (p.stdout + p.stderr).decode(errors="replace").rstrip()
        when = "before" if kind == "setup" else "after"
        fail(f"{name}: the {kind} command {when} run {k} exited with {p.returncode}:\n{out}")


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
    env = None
    if a.env:
        env = dict(os.environ)
        for kv in a.env:
            k, _, v = kv.partition("=")
            env[k] = v
    walls, rss = [], []
    with tempfile.TemporaryDirectory(prefix="osiris-bench-rss.") as tmp:
        rss_file = os.path.join(tmp, "maxrss") if src == "gnu-time" else None
        for k in range(1, a.warmup + a.runs + 1):
            hook("setup", a.setup, a.cwd, a.name, k)
            w, r = run_once(a.cmd, a.cwd, rss_file, env)
            hook("verify", a.verify, a.cwd, a.name, k)
            if k > a.warmup:
                walls.append(w)
                rss.append(r)
    walls.sort()
    shown = " ".join(a.cmd)
    for ab in a.abbrev:
        path, _, name = ab.partition("=")
        if path:
            shown = shown.replace(path, name)
    median = statistics.median(walls)
    row = {
        "section": a.section,
        "benchmark": a.name,
        "command": shown,
        "runs": a.runs,
        "warmup": a.warmup,
        "median_ms": round(median, 2),
        "p90_ms": round(percentile(walls, 90), 2),
        "min_ms": round(walls[0], 2),
        "max_ms": round(walls[-1], 2),
        "peak_rss_mb": round(max(rss), 1),
        "rss_source": src,
        "rows": a.rows_per_run,
        "rows_per_s": None if a.rows_per_run is None else round(a.rows_per_run / (median / 1000.0)),
        "verified": bool(a.verify),
        "baseline": a.baseline,
        "baseline_label": a.baseline_label,
        "target_ms": a.target_ms,
        "target_ratio": a.target_ratio,
        "target_delta_ms": a.target_delta_ms,
        "show_delta": a.show_delta or a.target_delta_ms is not None,
        "also_against": [list(x.partition("=")[::2]) for x in a.also_against],
        "baseline_minus": a.baseline_minus,
        "target_rss_baseline": a.target_rss_baseline,
        "target_rss_mb": a.target_rss_mb,
    }
    with open(a.rows, "a") as f:
        f.write(json.dumps(row) + "\n")
    rate = "" if row["rows_per_s"] is None else f", {row['rows_per_s']:,} rows/s"
    print(
        f"  {a.name}: median {fmt_ms(row['median_ms'])}, p90 {fmt_ms(row['p90_ms'])}{rate}, "
        f"peak RSS {row['peak_rss_mb']} MB",
        file=sys.stderr,
    )


def fmt_ms(ms):
    return f"{ms:.2f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def fmt_num(x):
    return int(x) if float(x).is_integer() else x


def judge(row, by_name):
    """Fills ratio / target / met from the row's targets; the ratio needs the baseline row."""
    ratio = None
    delta = None
    base = by_name.get(row.get("baseline")) if row.get("baseline") else None
    base_ms = None if base is None else base["median_ms"]
    minus = by_name.get(row.get("baseline_minus")) if row.get("baseline_minus") else None
    if base_ms is not None and minus is not None:
        base_ms -= minus["median_ms"]
    if base_ms is not None and base_ms > 0:
        ratio = row["median_ms"] / base_ms
        delta = row["median_ms"] - base_ms
    targets, met = [], []
    if row.get("target_ms") is not None:
        targets.append(f"< {fmt_num(row['target_ms'])} ms")
        met.append(("time", row["median_ms"] < row["target_ms"]))
    if row.get("target_ratio") is not None:
        targets.append(f"<= {fmt_num(row['target_ratio'])}x {row.get('baseline_label') or row.get('baseline')}")
        met.append(("ratio", ratio is not None and ratio <= row["target_ratio"]))
    if row.get("target_delta_ms") is not None:
        label = row.get("baseline_label") or row.get("baseline")
        targets.append(f"<= +{fmt_num(row['target_delta_ms'])} ms over {label}")
        met.append(("delta", delta is not None and delta <= row["target_delta_ms"]))
    if row.get("target_rss_baseline"):
        label = row.get("baseline_label") or row.get("baseline")
        targets.append(f"RSS <= {label}'s")
        met.append(("RSS", base is not None and row["peak_rss_mb"] <= base["peak_rss_mb"]))
    if row.get("target_rss_mb") is not None:
        targets.append(f"<= {fmt_num(row['target_rss_mb'])} MB RSS")
        met.append(("RSS", row["peak_rss_mb"] <= row["target_rss_mb"]))
    row["ratio"] = None if ratio is None else round(ratio, 3)
    row["delta_ms"] = None if delta is None else round(delta, 2)
    also = []
    for name, label in row.get("also_against") or []:
        other = by_name.get(name)
        if other is not None and other["median_ms"] > 0:
            also.append([label or name, round(row["median_ms"] / other["median_ms"], 3)])
    row["also_ratios"] = also
    row["target"] = ", ".join(targets) if targets else None
    row["target_met"] = None if not met else all(ok for _, ok in met)
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    if not met:
        row["met_text"] = "-"
    elif len(met) == 1:
        row["met_text"] = yes(met[0][1])
    else:
        row["met_text"] = ", ".join(f"{what} {yes(ok)}" for what, ok in met)
    return row


def ratio_text(r):
    if r.get("ratio") is None:
        return "-"
    text = f"{r['ratio']:.2f}x"
    if r.get("show_delta"):
        text += f" ({r['delta_ms']:+.2f} ms)"
    for label, ratio in r.get("also_ratios") or []:
        text += f"; {ratio:.2f}x {label}"
    return text


def cmd_report(a):
    with open(a.machine) as f:
        mach = json.load(f)
    rows = []
    with open(a.rows) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    by_name = {r["benchmark"]: r for r in rows}
    for r in rows:
        judge(r, by_name)
    header = ["section", "benchmark", "median", "p90", "min", "max", "rows/s", "peak RSS MB", "ratio", "target", "met"]
    table = []
    for r in rows:
        table.append(
            [
                r.get("section") or "-",
                r["benchmark"],
                fmt_ms(r["median_ms"]),
                fmt_ms(r["p90_ms"]),
                fmt_ms(r["min_ms"]),
                fmt_ms(r["max_ms"]),
                "-" if r.get("rows_per_s") is None else f"{r['rows_per_s']:,}",
                f"{r['peak_rss_mb']:.1f}",
                ratio_text(r),
                r.get("target") or "-",
                r["met_text"],
            ]
        )
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    print(line(header))
    for t in table:
        print(line(t))

    runs = sorted({(r["runs"], r["warmup"]) for r in rows})
    runs_text = "; ".join(f"{n} run(s) after {w} warm-up run(s)" for n, w in runs)
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
        f"Each row: median wall time per process (spawn to reap) of its measured runs ({runs_text}); "
        "peak RSS of the process, the largest over the runs "
        + (
            "(GNU time `%M`; for a shell pipeline, the largest single process in it)."
            if all(r.get("rss_source") == "gnu-time" for r in rows)
            else "(`wait4` ru_maxrss: includes the harness's own RSS as a floor)."
        )
        + " `ratio` is the median over the median of the row named in `target`. Rows marked verified had their "
        "output checked (count and checksum) after every run.",
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
        extra = " (verified after every run)" if r.get("verified") else ""
        md.append(f"- {r['benchmark']}: `{r['command']}`{extra}")
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
    r.add_argument("--section", default=None)
    r.add_argument("--target-ms", type=float, default=None)
    r.add_argument("--baseline", default=None, metavar="NAME")
    r.add_argument("--baseline-label", default=None, metavar="TEXT", help="short name of the baseline in the table")
    r.add_argument("--target-ratio", type=float, default=None)
    r.add_argument("--target-delta-ms", type=float, default=None)
    r.add_argument(
        "--also-against",
        action="append",
        default=[],
        metavar="NAME=LABEL",
        help="also report median / NAME's median, labelled LABEL (repeatable; no target)",
    )
    r.add_argument(
        "--baseline-minus",
        default=None,
        metavar="NAME",
        help="compare with the baseline's median less NAME's median (e.g. an interpreter's start-up)",
    )
    r.add_argument(
        "--target-rss-baseline",
        action="store_true",
        help="target: peak RSS no higher than the baseline row's",
    )
    r.add_argument("--show-delta", action="store_true", help="show the difference to the baseline's median too")
    r.add_argument("--target-rss-mb", type=float, default=None)
    r.add_argument("--rows-per-run", type=int, default=None)
    r.add_argument("--setup", default=None, metavar="SH")
    r.add_argument("--verify", default=None, metavar="SH")
    r.add_argument("--cwd", default=None)
    r.add_argument("--env", action="append", default=[], metavar="K=V", help="set K=V for the measured command")
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
