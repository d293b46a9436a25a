"""Where a policy's JCT goes against another's, paired job by job (same workload, seed).

Runs each policy on the scenario (event log on), then prints per job class (requested
GPUs, elastic or not under the second policy: the reference point runs every job
inelastic): jobs, mean queueing and mean run time (JCT minus queueing) under
each policy, the class's total JCT change in GPU-less hours (sum over its jobs), and how
its jobs were placed when they (re)started: the share that started on more servers than
their GPU count needs (a split placement runs at the profile's split factor) and the
share that started with workers on lent servers.

::

    python scripts/explain_jct.py --scenario aryl-15d --seed 0 --policies baseline,aryl
    python scripts/explain_jct.py --scenario small --seed 1 --policies baseline,aryl --max-days 2
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import pandas as pd
from aryl_gym.baselines import make_policy

from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.events import placement_from_text
from aryl_gym.simulate import run_policy


def run(scenario, policy: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-job records, per-start placement facts) of one run."""
    result = run_policy(scenario, make_policy(policy), seed, record_events=True)
    jobs = result.job_records()
    ev = result.events()
    starts = ev[ev.kind == "start"].copy()
    g = scenario.cluster.gpus_per_server
    first_lent = scenario.cluster.training_servers
    placed = starts.placement.map(placement_from_text)
    starts["split"] = [
        len(p) > -(-sum(p.values()) // g) for p in placed
    ]  # more servers than the GPU count needs
    starts["on_lent"] = [any(s >= first_lent for s in p) for p in placed]
    facts = starts.groupby("job_id")[["split", "on_lent"]].mean()
    return jobs, facts


def _markdown(table: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---:|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="aryl-15d")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policies", default="baseline,aryl", help="reference,other")
    ap.add_argument("--max-days", type=float, default=None, help="stop the runs early")
    args = ap.parse_args(argv)
    ref, other = [p.strip() for p in args.policies.split(",")]
    sc = get_scenario(args.scenario)
    if args.max_days is not None:
        sc = replace(sc, max_time_s=args.max_days * 86400.0)
    frames = {}
    for p in (ref, other):
        jobs, facts = run(sc, p, args.seed)
        jobs = jobs.dropna(subset=["jct"]).set_index("job_id")
        jobs["run"] = jobs.jct - jobs.queue_time
        frames[p] = jobs.join(facts)
    a, b = frames[ref], frames[other]
    both = a.merge(b, left_index=True, right_index=True, suffixes=("_ref", "_new"))
    rows = []
    for (gpus, elastic), grp in both.groupby(["gpus_new", "elastic_new"]):
        rows.append(
            {
                "gpus": gpus,
                "elastic": elastic,
                "jobs": len(grp),
                f"queue {ref} (s)": grp.queue_time_ref.mean(),
                f"queue {other} (s)": grp.queue_time_new.mean(),
                f"run {ref} (s)": grp.run_ref.mean(),
                f"run {other} (s)": grp.run_new.mean(),
                "JCT change (h, total)": (grp.jct_new - grp.jct_ref).sum() / 3600,
                f"split starts {ref}": grp.split_ref.mean(),
                f"split starts {other}": grp.split_new.mean(),
                f"lent starts {other}": grp.on_lent_new.mean(),
            }
        )
    table = pd.DataFrame(rows)
    print(
        f"{args.scenario}, seed {args.seed}: {other} vs {ref}, {len(both)} jobs finished "
        f"under both; mean JCT {both.jct_ref.mean():,.0f} s -> {both.jct_new.mean():,.0f} s"
    )
    print(_markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
