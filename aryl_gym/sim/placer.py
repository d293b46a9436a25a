"""The default placer and the rate rule: where a job's workers go and how fast it runs.

Everything that needs to know "which servers would job j get with n GPUs" or "what rate
would it run at" asks this module, through the engine's read-only view (what-if
queries) or from the engine itself, so there is one copy of each rule:

* **grow** — base workers on training servers (best fit, fewest servers), extra workers
  per :class:`~aryl_gym.sim.decisions.PlacementRules` (lent servers first by default);
  a growing job fills its own servers first; the classes of every grow of a round are
  decided on the cluster as the round found it (:meth:`Placer.grow_classes`);
* **shrink** — workers leave lent servers first, then the servers holding fewest of them;
* **rate** — ``speedup(n) x placement_factor(servers beyond the minimum) x the slowest
  GPU's speed`` (synchronous data parallelism runs at the slowest worker's pace).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from aryl_gym.sim.cluster import LENT, TRAINING, Cluster
from aryl_gym.sim.decisions import InvalidDecision, PlacementRules

if TYPE_CHECKING:
    from aryl_gym.sim.job import Job

Placement = dict[int, int]  # server -> GPUs of the job on it
ClassOrders = tuple[tuple[int, ...], tuple[int, ...]]  # classes tried for base, extra workers


class Placer:
    """The default placer of one engine (its cluster and rules)."""

    def __init__(self, cluster: Cluster, rules: PlacementRules) -> None:
        self.cluster = cluster
        self.rules = rules

    # ------------------------------------------------------------------ rules
    def may_use_lent(self, job: Job) -> bool:
        """Whether ``job`` may have workers on lent servers at all."""
        r = self.rules
        if r.lent_memory_fit and not job.profile.fits_lent_gpu:
            return False
        return job.elastic or r.inelastic_on_lent

    def _class_orders(self, job: Job) -> ClassOrders:
        """(classes for base workers, classes for extra workers), in the order tried."""
        r = self.rules
        if not self.may_use_lent(job):
            return (TRAINING,), (TRAINING,)
        base = (TRAINING, LENT) if r.base_on_lent else (TRAINING,)
        extra = (LENT, TRAINING) if r.extra_on_lent_first else (TRAINING, LENT)
        return base, extra

    # ------------------------------------------------------------------ placement
    def rate(self, job: Job, placement: Mapping[int, int]) -> float:
        """The rate (work per second) of ``job`` on ``placement`` (non-empty)."""
        cl = self.cluster
        g = cl.gpus_per_server
        speed = min(cl.speed[s] for s in placement)
        n = sum(placement.values())
        min_servers = (n + g - 1) // g
        extra_servers = len(placement) - min_servers
        factor = (
            job.profile.placement_factor(extra_servers, min_servers) if extra_servers > 0 else 1.0
        )
        return float(job.speedup[n]) * factor * speed

    def grow_classes(self, job: Job, n: int) -> ClassOrders:
        """The placement classes a grow of ``job`` to ``n`` GPUs takes its base and extra
        workers from, in the order tried, decided on the cluster as it is now.

        ``no_slow_mix``: when the rules' classes would mix GPU speeds, the grow keeps them
        only when that is faster than every placeable placement on one speed (training
        only, or lent only for a queued job), else it takes that speed's class alone. The
        engine decides the classes of every grow of a round on the cluster as the round
        found it, before the round changes anything, so that :meth:`feasible` counts
        exactly what the grows then take."""
        base_cls, extra_cls = self._class_orders(job)
        if not self.rules.no_slow_mix or extra_cls == (TRAINING,):
            return base_cls, extra_cls
        mixed = self._fill(job, n, base_cls, extra_cls)
        if mixed is None or len({self.cluster.speed[s] for s in mixed}) == 1:
            return base_cls, extra_cls
        best, best_rate = (base_cls, extra_cls), self.rate(job, mixed)
        pure_orders: list[tuple[int, ...]] = [(TRAINING,)]
        if not job.n_gpus and LENT in base_cls:  # a queued job may start on lent GPUs alone
            pure_orders.append((LENT,))
        for classes in pure_orders:
            pure = self._fill(job, n, classes, classes)
            if pure is not None:
                r = self.rate(job, pure)
                if r >= best_rate:
                    best, best_rate = (classes, classes), r
        return best

    def grow(self, job: Job, n: int, classes: ClassOrders | None = None) -> Placement:
        """Where ``job`` (running or queued) would have its workers with ``n`` > current
        GPUs; ``InvalidDecision`` when there is no room. Nothing is taken. ``classes``:
        the :meth:`grow_classes` decided earlier in the round (default: decided now)."""
        base_cls, extra_cls = self.grow_classes(job, n) if classes is None else classes
        new = self._fill(job, n, base_cls, extra_cls)
        if new is None:
            cl = self.cluster
            raise InvalidDecision(
                f"job {job.job_id!r}: no room for {n} GPUs (free: {cl.free_total[TRAINING]} "
                f"training, {cl.free_total[LENT]} lent; may use lent: {self.may_use_lent(job)})"
            )
        return new

    def _fill(
        self, job: Job, n: int, base_cls: Iterable[int], extra_cls: Iterable[int]
    ) -> Placement | None:
        add = n - job.n_gpus
        base = min(add, max(0, job.base_gpus - job.n_gpus))
        new = dict(job.placement)
        cl = self.cluster
        for need, classes in ((base, base_cls), (add - base, extra_cls)):
            for cls in classes:
                if need == 0:
                    break
                reserved = {s: k - job.placement.get(s, 0) for s, k in new.items()}
                for s, k in cl.find_fit(cls, need, prefer=new, reserved=reserved):
                    new[s] = new.get(s, 0) + k
                    need -= k
            if need > 0:
                return None
        return new

    def shrink(self, job: Job, remove: int) -> Placement:
        """``job``'s placement after removing ``remove`` workers: lent servers first, then
        the servers holding fewest of its workers (ties: highest id)."""
        cl = self.cluster
        new = dict(job.placement)
        order = sorted(new, key=lambda s: (cl.server_class(s) != LENT, new[s], -s))
        for s in order:
            if remove == 0:
                break
            k = min(new[s], remove)
            new[s] -= k
            remove -= k
            if new[s] == 0:
                del new[s]
        return new

    def placement_with(self, job: Job, n: int) -> Placement | None:
        """The placement ``job`` would have with ``n`` GPUs (``{}`` for 0), or None when
        the default placer finds no room."""
        cur = job.n_gpus
        if n == cur:
            return dict(job.placement)
        if n == 0:
            return {}
        if n < cur:
            return self.shrink(job, cur - n)
        try:
            return self.grow(job, n)
        except InvalidDecision:
            return None

    def rate_with(self, job: Job, n: int) -> float | None:
        """The rate ``job`` would run at with ``n`` GPUs placed by the default placer
        (0.0 for 0 GPUs), or None when they cannot be placed."""
        if n == job.n_gpus and n:
            return job.rate
        place = self.placement_with(job, n)
        if place is None:
            return None
        return self.rate(job, place) if place else 0.0

    # ------------------------------------------------------------------ feasibility
    def feasible(self, targets: Mapping[int, int], jobs: Mapping[int, Job]) -> bool:
        """Whether the default placer can place every change of ``targets`` (job index ->
        GPUs after the round), applied as the engine does: shrinks and stops first (they
        free lent GPUs first), then grows in order, each from the classes
        :meth:`grow_classes` gives on the cluster as the round found it. Counting free
        GPUs per class is exact: the placer fails only when a class it may use has too few."""
        cl = self.cluster
        free = [cl.free_total[TRAINING], cl.free_total[LENT]]
        grows = []
        for j, n in targets.items():
            job = jobs[j]
            c = job.n_gpus
            if n < c:
                r = c if n == 0 else c - n
                from_l = min(r, job.lent_gpus)
                free[LENT] += from_l
                free[TRAINING] += r - from_l
            elif n > c:
                grows.append((job, n, self.grow_classes(job, n)))  # before any change
        for job, n, (base_cls, extra_cls) in grows:
            add = n - job.n_gpus
            base = min(add, max(0, job.base_gpus - job.n_gpus))
            for need, classes in ((base, base_cls), (add - base, extra_cls)):
                for cls in classes:
                    take = min(need, free[cls])
                    free[cls] -= take
                    need -= take
                if need:
                    return False
        return True
