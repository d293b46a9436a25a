"""Why Aryl's large elastic jobs stay at their base: room for extra workers, round by round.

Runs Aryl on a scenario and, at every allocation round, counts what its extra-worker step
(step 2) meets: whether any training server is empty (under ``extras_own_or_empty`` a job
on full servers can only grow onto an empty one), how many elastic jobs of ``--big`` GPUs
or more run and how many of them sit at their base, and how many grows the knapsack
granted against how many the simulator's fit then kept (the knapsack counts every free
GPU as one capacity; a grow can only use its own servers' free GPUs and empty servers').
Prints the totals and the same facts by hour of the simulated day.

::

    python scripts/explain_extras.py --scenario aryl-15d --seed 0 --plot extras-by-hour.png
    python scripts/explain_extras.py --scenario small --seed 1 --max-days 2
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from aryl_gym.baselines.aryl import ArylPolicy

from aryl_gym.policy import Allocation
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.cluster import TRAINING
from aryl_gym.sim.view import ClusterView
from aryl_gym.simulate import run_policy

#: per-round facts summed by hour of the day
FACTS = ("rounds", "no_empty_training", "big_running", "big_at_base", "empty_and_big_at_base")


class CountingAryl(ArylPolicy):
    """Aryl (default config) that counts, per round, the facts above; same decisions."""

    def __init__(self, big: int) -> None:
        super().__init__()
        self.big = big
        self.by_hour: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FACTS, 0))
        self.granted = self.kept = self.grant_rounds = 0
        self._grants: dict[int, int] = {}

    def _extras(self, view, started, busy, capacity, out) -> None:
        before = dict(out)
        super()._extras(view, started, busy, capacity, out)
        # grows of running jobs the knapsack granted (starts' extras are not grows)
        self._grants = {
            i: n for i, n in out.items() if before.get(i) != n and view.job(i).n_gpus > 0
        }

    def allocate(self, view: ClusterView) -> Allocation:
        self._grants = {}
        g = view.gpus_per_server
        empty = view.free_histogram[TRAINING][g]  # training servers with g free GPUs
        big = [j for j in view.running.values() if j.elastic and j.gpus >= self.big]
        at_base = sum(1 for j in big if j.n_gpus <= j.base_gpus)
        row = self.by_hour[int(view.now // 3600) % 24]
        row["rounds"] += 1
        row["no_empty_training"] += empty == 0
        row["big_running"] += len(big)
        row["big_at_base"] += at_base
        row["empty_and_big_at_base"] += bool(empty and at_base)
        alloc = super().allocate(view)
        if self._grants:
            self.grant_rounds += 1
            self.granted += len(self._grants)
            self.kept += sum(1 for i, n in self._grants.items() if alloc.gpus.get(i) == n)
        return alloc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="aryl-15d")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big", type=int, default=16, help="requested GPUs of a 'large' job")
    ap.add_argument("--max-days", type=float, default=None, help="shorten the workload")
    ap.add_argument("--plot", type=Path, default=None, help="also draw the by-hour facts (PNG)")
    args = ap.parse_args(argv)
    sc = get_scenario(args.scenario)
    if args.max_days is not None:
        sc = replace(sc, workload=replace(sc.workload, days=args.max_days))
    policy = CountingAryl(args.big)
    summary = run_policy(sc, policy, args.seed).summary
    hours = policy.by_hour
    total = {f: sum(h[f] for h in hours.values()) for f in FACTS}
    n = max(total["rounds"], 1)
    print(f"{args.scenario}, seed {args.seed}: avg JCT {summary['avg_jct_s']:,.0f} s")
    print(f"allocation rounds: {total['rounds']:,}")
    print(f"  no empty training server: {100 * total['no_empty_training'] / n:.1f} %")
    print(
        f"  elastic jobs of {args.big}+ GPUs running: {total['big_running'] / n:.1f} on "
        f"average, at their base: {total['big_at_base'] / n:.1f}"
    )
    print(
        f"  an empty training server while such a job sits at its base: "
        f"{100 * total['empty_and_big_at_base'] / n:.1f} % of rounds"
    )
    print(
        f"  knapsack grants of grows: {policy.granted:,} in {policy.grant_rounds:,} rounds; "
        f"kept by the fit: {policy.kept:,} ({100 * policy.kept / max(policy.granted, 1):.1f} %)"
    )
    print("\n| hour | rounds | no empty training server (%) | large at base / running |")
    print("|---:|---:|---:|---:|")
    for h in sorted(hours):
        r = hours[h]
        print(
            f"| {h} | {r['rounds']:,} | {100 * r['no_empty_training'] / max(r['rounds'], 1):.0f} "
            f"| {r['big_at_base'] / max(r['rounds'], 1):.1f} / "
            f"{r['big_running'] / max(r['rounds'], 1):.1f} |"
        )

    if args.plot is not None:
        print(
            f"wrote {plot_by_hour(hours, args.big, f'{args.scenario}, seed {args.seed}', args.plot)}"
        )


def plot_by_hour(hours: dict, big: int, title: str, path: Path) -> Path:
    """Two panels by hour of the simulated day: the share of rounds with no empty
    training server, and the large elastic jobs running and at their base."""
    from aryl_gym.experiments.plots import new_figure, save_figure

    hs = sorted(hours)
    n = [max(hours[h]["rounds"], 1) for h in hs]
    fig, (top, bottom) = new_figure(2, 1, figsize=(7, 5.5), sharex=True)
    top.plot(
        hs,
        [100 * hours[h]["no_empty_training"] / k for h, k in zip(hs, n, strict=True)],
        marker="o",
    )
    top.set_ylabel("rounds with no empty\ntraining server (%)")
    top.set_ylim(0, 100)
    top.set_title(title)
    for key, label in (("big_running", "running"), ("big_at_base", "at their base")):
        bottom.plot(
            hs, [hours[h][key] / k for h, k in zip(hs, n, strict=True)], marker="o", label=label
        )
    bottom.set_ylabel(f"elastic jobs of {big}+ GPUs\n(mean over rounds)")
    bottom.set_xlabel("hour of the simulated day")
    bottom.set_xticks(range(0, 24, 3))
    bottom.legend()
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


if __name__ == "__main__":
    main()
