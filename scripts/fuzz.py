"""Long fuzz run: random policies on random worlds, random traces and random actions on
both envs, with the engine's invariant checker on (see :mod:`aryl_gym.fuzzing`).

    python scripts/fuzz.py --episodes 10000 [--seed 0] [--kinds simulator,trace,allocate,reclaim]
                           [--max-minutes M] [--json out.json]

Episodes go round-robin over the kinds; episode ``i`` of a run uses the seed
``seed * 1_000_003 + i``, so a reported violation is reproduced by calling the kind's
episode function with the seed it prints. Prints, per kind and in total: episodes,
steps (decisions or env steps), bad inputs cleanly rejected, violations and elapsed
seconds; exits with 1 when any episode broke a rule. ``--max-minutes`` stops early
(the figures then say how many episodes ran).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from aryl_gym.fuzzing import episode_kinds

KINDS = ("simulator", "trace", "allocate", "reclaim")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--episodes", type=int, default=10_000, help="episodes in all (default 10000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    ap.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated subset of {', '.join(KINDS)}"
    )
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after this long")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        ap.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    if args.episodes < 1:
        ap.error(f"--episodes must be >= 1, got {args.episodes}")

    with tempfile.TemporaryDirectory(prefix="aryl-fuzz-") as folder:
        runners = episode_kinds(Path(folder))
        stats = {k: dict(episodes=0, steps=0, rejected=0, violations=0, seconds=0.0) for k in kinds}
        failures: list[dict] = []
        deadline = None if args.max_minutes is None else time.monotonic() + 60 * args.max_minutes
        t0 = time.perf_counter()
        for i in range(args.episodes):
            if deadline is not None and time.monotonic() > deadline:
                print(f"stopped after {args.max_minutes:g} min (--max-minutes)", flush=True)
                break
            kind = kinds[i % len(kinds)]
            seed = args.seed * 1_000_003 + i
            s = stats[kind]
            t = time.perf_counter()
            try:
                out = runners[kind](seed)
                s["steps"] += out.steps
                s["rejected"] += out.rejected
            except Exception as exc:  # every exception is a finding: record it, go on
                s["violations"] += 1
                failures.append(dict(kind=kind, seed=seed, error=f"{type(exc).__name__}: {exc}"))
                print(f"VIOLATION {kind} seed {seed}: {type(exc).__name__}: {exc}", flush=True)
                if len(failures) <= 3:
                    traceback.print_exc()
            s["episodes"] += 1
            s["seconds"] += time.perf_counter() - t
            if (i + 1) % 1000 == 0:
                print(f"{i + 1} episodes, {time.perf_counter() - t0:.0f} s", flush=True)
        elapsed = time.perf_counter() - t0

    total = {
        f: sum(s[f] for s in stats.values())
        for f in ("episodes", "steps", "rejected", "violations")
    }
    print(
        f"{'kind':<10} {'episodes':>9} {'steps':>10} {'rejected':>9} {'violations':>10} {'seconds':>8}"
    )
    for k, s in stats.items():
        print(
            f"{k:<10} {s['episodes']:>9} {s['steps']:>10} {s['rejected']:>9} {s['violations']:>10} {s['seconds']:>8.1f}"
        )
    print(
        f"{'total':<10} {total['episodes']:>9} {total['steps']:>10} {total['rejected']:>9} {total['violations']:>10} {elapsed:>8.1f}"
    )
    if args.json is not None:
        record = dict(
            command=" ".join(["python", "scripts/fuzz.py", *(argv if argv is not None else sys.argv[1:])]),
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            machine=f"{platform.machine()} {platform.processor() or ''} {platform.system()} "
            f"Python {platform.python_version()}".replace("  ", " "),
            seed=args.seed, elapsed_s=round(elapsed, 1), total=total, kinds=stats, failures=failures,
        )  # fmt: skip
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 1 if total["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
