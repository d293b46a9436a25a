"""Interrupt a running ``aryl-gym benchmark`` at random moments and check that it stops.

    python scripts/interrupt_benchmark.py                 # 20 interrupts, seed 0
    python scripts/interrupt_benchmark.py --trials 50 --seed 3 --keep runs/interrupts

One uninterrupted benchmark first gives the reference results and its duration ``T``.
Then each trial starts the same benchmark in its own process group and, at a moment drawn
uniformly in ``[0, T]`` (seeded), sends either Ctrl-C (SIGINT to the whole group, as a
terminal does) or ``kill`` (SIGTERM to the parent alone). A trial checks:

* **hang**: the command has not exited ``--hang-s`` seconds after the signal;
* **orphans**: a process of the group is still alive 3 s after the command exited;
* **folder**: ``absent`` (stopped before it was created), ``complete`` (every report,
  no ``INCOMPLETE.json``) or ``incomplete`` (``INCOMPLETE.json`` present); anything else
  is ``BAD``;
* **traceback**: a Python traceback on stderr once the work had begun (a Ctrl-C while
  Python is still importing, before ``aryl-gym`` has started, prints Python's own and is
  counted apart as ``startup``);
* **resume**: an incomplete folder is finished with ``--resume``: it must complete,
  compute exactly the runs its marker listed as missing, and give the reference
  ``results.csv`` (``wall_s`` aside); a complete folder must equal the reference too.

Prints one line per trial and the totals; exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aryl_gym.experiments.benchmark import REPORT_FILES
from aryl_gym.experiments.records import MARKER


def aryl_gym_command() -> list[str]:
    """The ``aryl-gym`` console script beside this Python, else ``python -c`` of the CLI."""
    script = Path(sys.executable).with_name("aryl-gym")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from aryl_gym.cli import main; sys.exit(main())"]


@dataclass
class Trial:
    """What one interrupted benchmark did."""

    index: int
    delay_s: float
    signal: str
    rc: int | None = None
    exit_s: float | None = None
    hang: bool = False
    orphans: int = 0
    folder: str = ""
    traceback: str = ""  # "", "startup" or "work"
    resume: str = "-"  # "-", "ok" or what went wrong
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.hang
            and self.orphans == 0
            and self.folder in ("absent", "complete", "incomplete")
            and self.traceback != "work"
            and self.resume in ("-", "ok")
        )


def group_pids(pgid: int) -> list[int]:
    """Live processes (zombies excluded) of process group ``pgid`` (Linux ``/proc``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(d.name))
    return pids


def csv_without_wall(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="wall_s")


def folder_state(out: Path) -> str:
    if not out.exists():
        return "absent"
    if (out / MARKER).exists():
        try:
            json.loads((out / MARKER).read_text())
        except (OSError, ValueError):
            return "BAD (unreadable marker)"
        return "incomplete"
    if all((out / f).is_file() for f in REPORT_FILES):
        return "complete"
    return "BAD (no marker, files missing)"


def run_trial(i: int, argv: list[str], out: Path, delay: float, sig: str, hang_s: float) -> Trial:
    t = Trial(i, delay, sig)
    proc = subprocess.Popen(
        [*argv, "--out", str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    sent = time.monotonic()
    if proc.poll() is not None:
        t.signal = "none (it had finished)"
    else:
        with_group = sig == "SIGINT"
        with contextlib.suppress(ProcessLookupError):
            (os.killpg if with_group else os.kill)(proc.pid, getattr(signal, sig))
    try:
        t.rc = proc.wait(timeout=hang_s)
        t.exit_s = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        t.hang = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    err = proc.stderr.read()
    deadline = time.monotonic() + 3.0
    while group_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = group_pids(proc.pid)
    t.orphans = len(left)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    t.folder = folder_state(out)
    if "Traceback" in err:
        t.traceback = "startup" if t.folder == "absent" else "work"
        if t.traceback == "work":
            t.notes.append(err.strip().splitlines()[-1])
    return t


def check_resume(t: Trial, argv: list[str], out: Path, reference: Path) -> None:
    """Finish an incomplete folder with --resume and compare with the reference."""
    if t.folder == "incomplete":
        marker = json.loads((out / MARKER).read_text())
        missing = len(marker["missing_runs"])
        r = subprocess.run([*argv, "--out", str(out), "--resume"], capture_output=True, text=True)
        m = re.search(r"resumed: (\d+) run\(s\) reused, (\d+) computed", r.stdout)
        computed = int(m.group(2)) if m else marker["runs_total"]
        if r.returncode != 0:
            t.resume = f"rc {r.returncode}"
            return
        if folder_state(out) != "complete":
            t.resume = "not complete after --resume"
            return
        if computed != missing:
            t.resume = f"computed {computed} runs, marker listed {missing}"
            return
    elif t.folder != "complete":
        return
    try:
        pd.testing.assert_frame_equal(
            csv_without_wall(out / "results.csv"), csv_without_wall(reference / "results.csv")
        )
    except AssertionError:
        t.resume = "results differ from the uninterrupted run"
        return
    t.resume = "ok"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="seed of the moments and signals")
    p.add_argument("--scenario", default="small")
    p.add_argument("--seeds", type=int, default=10, help="benchmark seeds (runs = 4 x seeds)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--hang-s", type=float, default=15.0, help="no exit by then: a hang")
    p.add_argument("--keep", type=Path, help="keep the folders here (default: a temp dir)")
    args = p.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="interrupt-benchmark-"))
    root.mkdir(parents=True, exist_ok=True)
    argv = [*aryl_gym_command(), "benchmark", "--scenario", args.scenario]
    argv += ["--seeds", str(args.seeds), "--workers", str(args.workers), "--quiet"]

    reference = root / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run([*argv, "--out", str(reference)], check=True, stdout=subprocess.DEVNULL)
    duration = time.monotonic() - t0
    print(f"reference benchmark: {duration:.2f} s ({' '.join(argv[1:])})")

    rng = random.Random(args.seed)
    trials = []
    for i in range(args.trials):
        out = root / f"trial-{i:02d}"
        shutil.rmtree(out, ignore_errors=True)
        delay = rng.uniform(0.0, duration)
        sig = rng.choice(["SIGINT", "SIGTERM"])
        t = run_trial(i, argv, out, delay, sig, args.hang_s)
        if not t.hang:
            check_resume(t, argv, out, reference)
        trials.append(t)
        exit_s = "-" if t.exit_s is None else f"{t.exit_s:.2f}"
        print(
            f"trial {i:2d}: {t.signal:<7} at {delay:5.2f} s  rc {t.rc!s:>4}  exit {exit_s:>5} s  "
            f"hang {'YES' if t.hang else 'no '}  orphans {t.orphans}  folder {t.folder:<10}  "
            f"traceback {t.traceback or '-':<7}  resume {t.resume}"
            + (f"  ({'; '.join(t.notes)})" if t.notes else "")
        )

    exits = [t.exit_s for t in trials if t.exit_s is not None and not t.signal.startswith("none")]
    states = {s: sum(t.folder == s for t in trials) for s in ("complete", "incomplete", "absent")}
    print()
    print(
        f"trials                 {len(trials)} (seed {args.seed}, moments in "
        f"[0, {duration:.1f}] s; {sum(t.signal.startswith('none') for t in trials)} "
        "after the command had finished)"
    )
    print(f"hangs                  {sum(t.hang for t in trials)}")
    print(f"orphan processes       {sum(t.orphans for t in trials)}")
    print(
        f"folders                {states['complete']} complete, {states['incomplete']} marked "
        f"incomplete, {states['absent']} not created, "
        f"{len(trials) - sum(states.values())} bad"
    )
    print(
        f"tracebacks             {sum(t.traceback == 'work' for t in trials)} during the work, "
        f"{sum(t.traceback == 'startup' for t in trials)} at Python start-up"
    )
    print(
        f"resumed / checked      {sum(t.resume == 'ok' for t in trials)} ok, "
        f"{sum(t.resume not in ('ok', '-') for t in trials)} failed"
    )
    if exits:
        print(
            f"exit after the signal  median {statistics.median(exits):.2f} s, "
            f"max {max(exits):.2f} s"
        )
    print(f"folders in {root}")
    return 0 if all(t.ok for t in trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
