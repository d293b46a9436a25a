"""Which lent servers to give back when the inference side reclaims ``k`` of them.

:func:`aryl_reclaim` is Aryl's greedy by server preemption cost (MODEL.md section 4);
the others are the comparison rules. Every rule returns ``k`` distinct lent servers in
the order the engine should remove them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from aryl_gym.sim.view import ClusterView

ReclaimRule = Callable[[ClusterView, int, np.random.Generator], list[int]]


def _job_cost(view: ClusterView, idx: int, cost: str) -> float:
    if cost == "count":
        return 1.0
    job = view.job(idx)
    return view.lost_work_if_preempted(job) / job.rate * job.n_gpus if job.rate else 0.0


def aryl_reclaim(view: ClusterView, k: int, cost: str = "count") -> list[int]:
    """Greedy: repeatedly return the lent server with the lowest preemption cost.

    Removing server ``s`` removes every worker on it. An elastic job left with at least
    ``min_gpus`` is scaled in (cost 0); any other job on ``s`` is preempted. A job spread
    over ``m`` lent servers adds ``c_j / m`` to each, so returning all of them counts it
    once. ``cost`` is ``"count"`` (``c_j = 1``, the paper's objective: preemptions) or
    ``"lost_gpu_seconds"`` (work since the last checkpoint x GPUs). Ties: fewer busy GPUs,
    then the lowest id. After each pick the affected jobs and servers are updated
    (preempted jobs vanish everywhere; scaled-in jobs may now sit at their minimum, which
    raises the cost of their other servers).
    """
    lent = view.lent_servers
    # simulated state: GPUs per job still present, and per lent server the jobs on it
    on: dict[int, dict[int, int]] = {s: dict(view.jobs_on(s)) for s in lent}
    n_gpus: dict[int, int] = {}
    lent_servers_of: dict[int, set[int]] = {}
    for s, jobs in on.items():
        for j in jobs:
            n_gpus[j] = view.job(j).n_gpus
            lent_servers_of.setdefault(j, set()).add(s)
    price = {j: _job_cost(view, j, cost) for j in n_gpus}

    def server_cost(s: int) -> float:
        total = 0.0
        for j, g in on[s].items():
            job = view.job(j)
            if not (job.elastic and n_gpus[j] - g >= job.min_gpus):
                total += price[j] / len(lent_servers_of[j])
        return total

    costs = {s: server_cost(s) for s in lent}
    busy = {s: sum(jobs.values()) for s, jobs in on.items()}
    picked: list[int] = []
    for _ in range(k):
        s = min(costs, key=lambda x: (costs[x], busy[x], x))
        picked.append(s)
        del costs[s]
        touched: set[int] = set()
        for j, g in on.pop(s).items():
            job = view.job(j)
            if job.elastic and n_gpus[j] - g >= job.min_gpus:
                n_gpus[j] -= g  # scaled in
                lent_servers_of[j].discard(s)
                touched |= lent_servers_of[j]
            else:  # preempted: gone from every server
                for other in lent_servers_of.pop(j):
                    if other != s:
                        busy[other] -= on[other].pop(j, 0)
                        touched.add(other)
        for other in touched:
            if other in costs:
                costs[other] = server_cost(other)
    return picked


def random_reclaim(view: ClusterView, k: int, rng: np.random.Generator) -> list[int]:
    """Uniformly random lent servers (seeded)."""
    lent = view.lent_servers
    return [lent[i] for i in rng.permutation(len(lent))[:k]]


def least_busy_reclaim(
    view: ClusterView, k: int, rng: np.random.Generator | None = None
) -> list[int]:
    """Servers with the fewest busy GPUs first (DeepBoot's rule); ties by lowest id."""
    lent = view.lent_servers
    g = view.gpus_per_server
    return sorted(lent, key=lambda s: (g - view.free_gpus(s), s))[:k]


def last_lent_reclaim(
    view: ClusterView, k: int, rng: np.random.Generator | None = None
) -> list[int]:
    """The most recently lent servers first."""
    return list(reversed(view.lent_servers))[:k]


RECLAIM_RULES: dict[str, tuple[Callable, str]] = {
    "aryl": (lambda v, k, rng: aryl_reclaim(v, k, "count"), "Aryl greedy by preemption count"),
    "aryl-lost": (
        lambda v, k, rng: aryl_reclaim(v, k, "lost_gpu_seconds"),
        "Aryl greedy by lost GPU-seconds",
    ),
    "random": (random_reclaim, "uniformly random lent servers"),
    "least-busy": (least_busy_reclaim, "fewest busy GPUs first (DeepBoot)"),
    "last-lent": (last_lent_reclaim, "most recently lent first"),
}
