"""Regression check for speed-ups (not a test): do two versions of the simulator give
bit-identical results?

Runs a fixed matrix of (scenario, policy, seed) and writes, per run, the summary (every
number except ``wall_s``) and a SHA-256 of the per-job records; ``--against`` compares
with a file written the same way by another version and exits 1 on any difference.

    # the old version, from its own checkout and venv (this file uses only public API)
    /path/to/old/.venv/bin/python scripts/compare_summaries.py --out /tmp/old.json
    .venv/bin/python scripts/compare_summaries.py --out /tmp/new.json --against /tmp/old.json

``--quick`` skips the aryl-15d runs (about a minute instead of several).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

#: (scenario, policies, seeds); None: every registered policy but deepboot-knapsack, whose
#: livelock runs to the 30-day drain limit (it runs once, on tiny).
QUICK = [("tiny", None, (0, 1, 2)), ("tiny", ("deepboot-knapsack",), (0,)), ("small", None, (0, 1))]
FULL = QUICK + [("aryl-15d", ("baseline", "sjf-noloan", "fifo-noloan", "aryl"), (0,))]


def _num(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else v.hex()  # exact, and readable back
    return v


def run_matrix(matrix) -> dict[str, dict]:
    from aryl_gym.baselines import make_policy, policy_specs

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import run_policy

    out: dict[str, dict] = {}
    for scenario, policies, seeds in matrix:
        names = list(policies or (n for n in policy_specs() if n != "deepboot-knapsack"))
        for name in names:
            for seed in seeds:
                t0 = time.perf_counter()
                r = run_policy(get_scenario(scenario), make_policy(name), seed=seed)
                summary = {k: _num(v) for k, v in r.summary.items() if k != "wall_s"}
                jobs = r.job_records()
                digest = hashlib.sha256(jobs.to_csv(index=False, float_format="%r").encode())
                key = f"{scenario}/{name}/{seed}"
                out[key] = {"summary": summary, "jobs_sha256": digest.hexdigest()}
                print(f"{key:<45} {time.perf_counter() - t0:7.2f} s", file=sys.stderr)
    return out


def compare(new: dict, old: dict) -> list[str]:
    problems = []
    for key in sorted(set(new) | set(old)):
        if key not in new or key not in old:
            problems.append(f"{key}: only in {'new' if key in new else 'old'}")
            continue
        a, b = new[key], old[key]
        for k in sorted(set(a["summary"]) | set(b["summary"])):
            va, vb = a["summary"].get(k), b["summary"].get(k)
            if va != vb:
                problems.append(f"{key}: {k} new {va!r} old {vb!r}")
        if a["jobs_sha256"] != b["jobs_sha256"]:
            problems.append(f"{key}: per-job records differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, required=True, help="write this version's results here")
    ap.add_argument("--against", type=Path, help="compare with results of another version")
    ap.add_argument("--quick", action="store_true", help="tiny and small only")
    args = ap.parse_args(argv)
    res = run_matrix(QUICK if args.quick else FULL)
    args.out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(res)} runs)")
    if args.against is None:
        return 0
    old = json.loads(args.against.read_text())
    if args.quick:
        old = {k: v for k, v in old.items() if not k.startswith("aryl-15d/")}
    problems = compare(res, old)
    for p in problems:
        print(p)
    print("identical" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
