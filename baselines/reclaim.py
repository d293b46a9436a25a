"""Which lent servers to give back when the inference side reclaims ``k`` of them.

:func:`aryl_reclaim` is Aryl's greedy by server preemption cost (docs/model.md);
the others are the comparison rules. Every rule returns ``k`` distinct lent servers in
the order the engine should remove them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

from aryl_gym.sim.view import ClusterView

ReclaimRule = Callable[[ClusterView, int, np.random.Generator], list[int]]


def aryl_reclaim(view: ClusterView, k: int, cost: str = "count") -> list[int]:
    """Greedy: repeatedly return the lent server with the lowest preemption cost.

    Removing server ``s`` removes every worker on it (the engine's rule, played by the
    simulator's what-if :class:`~aryl_gym.sim.reclaim.ReclaimSimulation`): an elastic
    job left with at least ``min_gpus`` is scaled in (cost 0), any other job on ``s`` is
    preempted. A job spread over ``m`` lent servers adds ``c_j / m`` to each, so
    returning all of them counts it once. ``cost`` is ``"count"`` (``c_j = 1``, the
    paper's objective: preemptions) or ``"lost_gpu_seconds"`` (what the preemption would
    lose now). Ties: fewer busy GPUs, then the lowest id. After each pick the affected
    servers' costs are recomputed (preempted jobs vanish everywhere; scaled-in jobs may
    now sit at their minimum, which raises the cost of their other servers).
    """
    if cost not in ("count", "lost_gpu_seconds"):
        raise ValueError(f"cost must be 'count' or 'lost_gpu_seconds', got {cost!r}")
    empty = _empty_first(view, k)
    if empty is not None:
        return empty
    sim = view.reclaim_simulation()
    spans, lost = sim.spans, sim.lost

    def server_cost(s: int) -> float:
        pre, _ = sim.effect(s)
        if cost == "count":
            return sum(1.0 / len(spans[j]) for j in pre)
        return sum(lost[j] / len(spans[j]) for j in pre)

    def busy(s: int) -> int:
        return sum(sim.on[s].values())

    costs = {s: server_cost(s) for s in sim.remaining}
    # the tie-break (busy GPUs) kept alongside, recomputed with the costs it may change
    busy_now = {s: busy(s) for s in costs}
    # the servers left by (cost, busy GPUs, id), smallest first: a heap rather than a
    # scan per pick (a reclaim may return dozens of servers out of a hundred); an entry
    # is stale once its server is picked or its cost recomputed (a new one is pushed)
    heap = [(c, busy_now[s], s) for s, c in costs.items()]
    heapq.heapify(heap)
    picked: list[int] = []
    for _ in range(k):
        while True:
            c, b, s = heapq.heappop(heap)
            if s in costs and costs[s] == c and busy_now[s] == b:
                break
        del costs[s]
        pre, sc = sim.effect(s)
        touched = set().union(*(spans[j] for j in pre + sc)) if pre or sc else set()
        sim.remove(s)
        picked.append(s)
        for other in touched:  # removing s changes no other server's jobs
            if other in costs:
                costs[other] = server_cost(other)
                busy_now[other] = busy(other)
                heapq.heappush(heap, (costs[other], busy_now[other], other))
    return picked


def _empty_first(view: ClusterView, k: int) -> list[int] | None:
    """:func:`aryl_reclaim`'s answer when ``k`` lent servers have no worker, else None.
    Such servers cost nothing and have no busy GPU, so the greedy takes them first, by
    id, and removing one changes no other server's cost: no what-if simulation is needed
    (more than half the reclaims of ``aryl-15d``)."""
    empty = [s for s in view.lent_servers if not view.jobs_on(s)]
    return sorted(empty)[:k] if len(empty) >= k else None


def aryl_reclaim_count(view: ClusterView, k: int, rng: np.random.Generator | None = None):
    """:func:`aryl_reclaim` by preemption count (a named function: rules must pickle)."""
    return aryl_reclaim(view, k, "count")


def aryl_reclaim_lost(view: ClusterView, k: int, rng: np.random.Generator | None = None):
    """:func:`aryl_reclaim` by lost GPU-seconds."""
    return aryl_reclaim(view, k, "lost_gpu_seconds")


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
    "aryl": (aryl_reclaim_count, "Aryl greedy by preemption count"),
    "aryl-lost": (aryl_reclaim_lost, "Aryl greedy by lost GPU-seconds"),
    "random": (random_reclaim, "uniformly random lent servers"),
    "least-busy": (least_busy_reclaim, "fewest busy GPUs first (DeepBoot)"),
    "last-lent": (last_lent_reclaim, "most recently lent first"),
}
