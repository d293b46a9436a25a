"""Whole-process benchmark of the command line (not a test): start-up, imports, workload
generation, simulation and summary, as a user pays for them.

    .venv/bin/python scripts/bench_cli.py                       # 5 runs of each command
    .venv/bin/python scripts/bench_cli.py --runs 3 --only aryl-15d/aryl
    # paired against another version (its own checkout and venv): A B A B ..., ratio A/B
    .venv/bin/python scripts/bench_cli.py --against /path/to/old/.venv/bin/aryl-gym

Each command runs ``--runs`` times after one untimed warm-up run. Per run: wall seconds
(monotonic clock around the child), CPU seconds (the child's user + system time) and
peak resident memory (the child's ``ru_maxrss``), all from ``os.wait4`` on the child
itself. Prints a Markdown table of medians (min-max in brackets); with ``--against``
also the other version's medians and the median of the per-pair wall and CPU ratios
(new / old), which stay meaningful when the machine's speed drifts. Quote medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: (label, arguments after ``aryl-gym``)
COMMANDS: list[tuple[str, list[str]]] = [
    ("help", ["--help"]),
    ("tiny", ["simulate", "--scenario", "tiny", "--quiet"]),
    ("aryl-15d/baseline", ["simulate", "--scenario", "aryl-15d", "--policy", "baseline", "--quiet"]),
    ("aryl-15d/sjf-noloan", ["simulate", "--scenario", "aryl-15d", "--policy", "sjf-noloan", "--quiet"]),
    ("aryl-15d/aryl", ["simulate", "--scenario", "aryl-15d", "--policy", "aryl", "--quiet"]),
]  # fmt: skip


def run_once(argv: list[str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, exit status) of one run of ``argv``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    rss_kib = ru.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # macOS: bytes
    return wall, ru.ru_utime + ru.ru_stime, rss_kib / 1024, proc.returncode


def spread(xs: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    here = Path(sys.executable).parent / "aryl-gym"
    ap.add_argument(
        "--aryl-gym",
        default=str(here) if here.exists() else shutil.which("aryl-gym"),
        help="the aryl-gym executable to time (default: this venv's)",
    )
    ap.add_argument("--against", help="another aryl-gym executable, run in turn with the first")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    ap.add_argument(
        "--only",
        action="append",
        help="labels to run (repeatable): " + ", ".join(c for c, _ in COMMANDS),
    )
    args = ap.parse_args(argv)
    if not args.aryl_gym:
        ap.error("no aryl-gym executable found; pass --aryl-gym")
    commands = [(label, a) for label, a in COMMANDS if not args.only or label in args.only]
    exes = [args.aryl_gym] + ([args.against] if args.against else [])

    rows = []
    for label, cmd_args in commands:
        res: list[list[tuple[float, float, float, int]]] = [[] for _ in exes]
        for exe in exes:  # warm-up: file caches, .pyc files
            run_once([exe, *cmd_args])
        for _ in range(args.runs):
            for i, exe in enumerate(exes):
                res[i].append(run_once([exe, *cmd_args]))
        bad = {r[3] for rs in res for r in rs} - {0}
        if bad:
            print(f"warning: {label} exited with status {sorted(bad)}", file=sys.stderr)
        rows.append((label, cmd_args, res))
        print(f"done: {label}", file=sys.stderr)

    cmd_text = lambda a: "`aryl-gym " + " ".join(a) + "`"  # noqa: E731
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.runs} runs per command after 1 warm-up, load average "
        f"{os.getloadavg()[0]:.1f} at the end\n"
    )
    if not args.against:
        print("| command | wall s, median (min-max) | CPU s, median | peak RSS MiB |")
        print("|---|---|---|---|")
        for _label, a, (new,) in rows:
            print(
                f"| {cmd_text(a)} | {spread([r[0] for r in new])} | "
                f"{statistics.median(r[1] for r in new):.2f} | "
                f"{statistics.median(r[2] for r in new):.0f} |"
            )
        return 0
    print(
        "| command | wall s new | wall s old | wall new/old | CPU s new | CPU s old "
        "| CPU new/old | peak RSS MiB new / old |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for _label, a, (new, old) in rows:
        wall_ratio = statistics.median(n[0] / o[0] for n, o in zip(new, old, strict=True))
        cpu_ratio = statistics.median(n[1] / o[1] for n, o in zip(new, old, strict=True))
        print(
            f"| {cmd_text(a)} | {spread([r[0] for r in new])} | {spread([r[0] for r in old])} "
            f"| {wall_ratio:.2f} | {statistics.median(r[1] for r in new):.2f} "
            f"| {statistics.median(r[1] for r in old):.2f} | {cpu_ratio:.2f} "
            f"| {statistics.median(r[2] for r in new):.0f} / "
            f"{statistics.median(r[2] for r in old):.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
