"""A DeepBoot-style one-knapsack re-implementation of Aryl's allocator (docs/model.md).

The public re-implementation that docs/model.md describes differs from Aryl's design in three
ways, and this policy reproduces exactly those:

* **one knapsack for everything**: every queued job and every running elastic job,
  base demand included, is an item of a single multiple-choice knapsack over all GPUs
  not held by running inelastic jobs; a job's options are ``0`` (do not run / stop) or any
  allowed GPU count ``w`` (``[min_gpus, max_gpus]`` if elastic, ``gpus`` otherwise);
* **valued by remaining time x w / (w + 1)**: long jobs are worth more than short ones;
* **re-planned every 60 s with no resize guard**: whatever the new plan says is applied,
  so running jobs are resized, or stopped and requeued, whenever the plan moves.

Under this simulator's dynamics the thrashing becomes a livelock: a preemption loses the
work since the job's last allocation change, a restart pauses it 60 s (one round), so a
restarted job has made no progress at the next re-plan while the job it displaced has its
remaining time back up, and the plan flips again. On ``tiny`` and ``small`` many jobs never
finish: run it with the scenario's ``max_time_s`` set (otherwise the run does not end).

Loaning and reclaims are as in Aryl (lent servers are used; reclaims by
:func:`baselines.reclaim.aryl_reclaim`). It exists to show what Aryl's base-demand-first
order, extras-only knapsack and resize guard avoid (tests/test_aryl.py).
"""

from __future__ import annotations

import numpy as np
from aryl_gym.baselines.mckp import solve_dp
from aryl_gym.baselines.reclaim import RECLAIM_RULES

from aryl_gym.policy import Allocation, PlacementRules, Policy
from aryl_gym.sim.view import ClusterView


def solve_options(values: list[np.ndarray], capacity: int) -> list[int]:
    """Exact multiple-choice knapsack (weights = option index, ``-inf`` = not allowed):
    the one-knapsack formulation has an item per job in the queue, and the queue grows
    long under it, so it needs the vectorised DP of :mod:`baselines.mckp`."""
    return solve_dp(values, capacity)


class DeepBootKnapsackPolicy(Policy):
    """DeepBoot-style: every job (queued and running elastic, base demand included) in one
    knapsack valued by remaining time x w/(w+1), re-planned every 60 s, no resize guard."""

    name = "deepboot-knapsack"
    description = (
        "DeepBoot-style one knapsack over all jobs (base included), value remaining time x w/(w+1), "
        "re-planned every 60 s, no resize guard; Aryl reclaim"
    )
    uses_loaning = True
    periodic_rounds = True
    elastic_scaling = True
    rules = PlacementRules(extra_on_lent_first=True, base_on_lent=True, inelastic_on_lent=True)

    def __init__(self, reclaim: str = "aryl") -> None:
        if reclaim not in RECLAIM_RULES:
            raise ValueError(f"reclaim {reclaim!r} unknown; known: {', '.join(RECLAIM_RULES)}")
        self._reclaim_rule = RECLAIM_RULES[reclaim][0]
        self.rng = np.random.default_rng(0)

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reclaim(self, view: ClusterView, k: int) -> list[int]:
        return self._reclaim_rule(view, k, self.rng)

    def allocate(self, view: ClusterView) -> Allocation:
        capacity = view.free_training_gpus + view.free_lent_gpus
        items = []
        for job in view.running.values():
            if job.elastic:
                items.append(job)
                capacity += job.n_gpus
        items.extend(view.queued.values())
        if not items or capacity <= 0:
            return Allocation({})
        values = []
        for job in items:
            w = np.arange(job.max_gpus + 1, dtype=float)
            v = view.est_remaining_time(job) * w / (w + 1.0)
            v[1 : job.min_gpus] = -np.inf  # options: 0 or an allowed count
            values.append(v)
        picks = solve_options(values, capacity)
        shrinks: dict[int, int] = {}
        grows: dict[int, int] = {}
        for job, w in zip(items, picks, strict=True):
            if w != job.n_gpus:
                (shrinks if w < job.n_gpus else grows)[job.idx] = w
        return Allocation({**shrinks, **grows})
