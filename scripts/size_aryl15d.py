"""Size the aryl-15d training pool: the reference-point scheduler's queueing per pool size.

The paper's 15-day production trace shows an average queueing delay over 3,000 s and a
95th percentile close to 10,000 s without loaning or elastic scaling (MODEL.md section
1). This prints those statistics of ``sjf-noloan`` (the reference point) for a range of
training-pool sizes and seeds, so the committed size can be checked or re-chosen:

    python scripts/size_aryl15d.py --servers 700 725 760 --seeds 0 1
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from aryl_gym.baselines import make_policy

from aryl_gym.scenarios import get_scenario
from aryl_gym.simulate import run_policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, nargs="+", default=[700, 725, 760])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args()
    sc = get_scenario("aryl-15d")
    print(
        "| training servers | seed | avg queue (s) | p95 queue (s) | avg JCT (s) | training usage |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.servers:
        for seed in args.seeds:
            s = replace(sc, cluster=replace(sc.cluster, training_servers=n))
            r = run_policy(s, make_policy("sjf-noloan"), seed=seed).summary
            print(
                f"| {n} | {seed} | {r['avg_queue_s']:,.0f} | {r['p95_queue_s']:,.0f} | "
                f"{r['avg_jct_s']:,.0f} | {r['usage_training']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
