"""Aryl's scheduler (a reconstruction, MODEL.md sections 4-5) and its ablations.

Each round:

1. **Base demand.** Queued jobs in shortest-first order (estimated remaining time at base
   demand; FIFO as an option) get their base demand (``gpus``, or ``min_gpus`` if elastic)
   when it fits; others are skipped (backfilling). Base demand has priority over extra
   workers: if a job's base does not fit in the free GPUs, running elastic jobs give up
   extra workers for it (the cheapest extras first).
2. **Extra workers (MCKP).** The GPUs still free go to elastic jobs as extra workers: one
   option per job, ``k`` extra GPUs, valued by the reduction of its remaining time
   ``R / thr(n) - R / thr(n + k)``; solved exactly (greedy where values are concave, DP
   otherwise, see :mod:`baselines.mckp`). A running job is only grown when the time it
   saves exceeds ``resize_guard x scale_overhead_s`` (the resize guard); extra workers are
   never taken from one running job to feed another's, which is what made DeepBoot's
   one-knapsack re-implementation restart jobs ~30 times.
3. **Placement.** The engine's default placer: base workers on training servers (best
   fit, fewest servers), extra workers on lent servers first.

Reclaims use :func:`baselines.reclaim.aryl_reclaim` (or another rule by name).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from aryl_gym.baselines import mckp
from aryl_gym.baselines.queue import QueueOrder, fifo_key
from aryl_gym.baselines.reclaim import RECLAIM_RULES

from aryl_gym.policy import Allocation, PlacementRules, Policy
from aryl_gym.sim.job import RUNNING, Job
from aryl_gym.sim.view import ClusterView


@dataclass(frozen=True)
class ArylConfig:
    """The named choices of the reconstruction (defaults: the full Aryl)."""

    loaning: bool = True  # the inference pool lends idle servers
    elastic: bool = True  # elastic jobs get extra workers; False: every job at its requested GPUs
    order: str = "sjf"  # queue order of step 1: "sjf" or "fifo"
    reclaim: str = "aryl"  # a name in baselines.reclaim.RECLAIM_RULES
    inelastic_on_lent: bool = (
        True  # inelastic jobs (and, without elasticity, all jobs) may run on lent servers
    )
    resize_guard: float = (
        1.0  # grow a running job only if it saves > guard x scale_overhead_s seconds
    )
    elastic_base: str = (
        "min"  # base demand of an elastic job: "min" (MODEL.md) or "requested" (its gpus)
    )
    solver: str = "auto"  # "auto" (greedy when exact), "greedy" or "dp"


class ArylPolicy(Policy):
    """Aryl's allocation and reclaim heuristics, configurable into its ablations."""

    def __init__(
        self, config: ArylConfig | None = None, name: str = "aryl", description: str = ""
    ) -> None:
        self.cfg = cfg = config or ArylConfig()
        if cfg.order not in ("sjf", "fifo"):
            raise ValueError(f"ArylConfig.order must be 'sjf' or 'fifo', got {cfg.order!r}")
        if cfg.reclaim not in RECLAIM_RULES:
            raise ValueError(
                f"ArylConfig.reclaim {cfg.reclaim!r} unknown; known: {', '.join(RECLAIM_RULES)}"
            )
        if cfg.elastic_base not in ("min", "requested"):
            raise ValueError(
                f"ArylConfig.elastic_base must be 'min' or 'requested', got {cfg.elastic_base!r}"
            )
        if cfg.solver not in ("auto", "greedy", "dp"):
            raise ValueError(f"ArylConfig.solver must be auto, greedy or dp, got {cfg.solver!r}")
        self.name = name
        self.description = description or self.__class__.__doc__
        self.uses_loaning = cfg.loaning
        self.periodic_rounds = cfg.elastic
        self.elastic_scaling = cfg.elastic
        self.rules = PlacementRules(
            extra_on_lent_first=True, base_on_lent=True, inelastic_on_lent=cfg.inelastic_on_lent
        )
        self._reclaim_rule = RECLAIM_RULES[cfg.reclaim][0]
        self.rng = np.random.default_rng(0)
        # running elastic jobs below their maximum that may still gain from extra workers;
        # updated from this policy's own decisions and the engine's scale-in log, so a
        # round never scans every running job
        self._watch: dict[int, Job] = {}
        self._log_pos = 0
        self._idle_key: tuple | None = (
            None  # (epoch, free GPUs) of the last extras step that granted nothing
        )
        # step 1's queue order, kept across rounds; keys of waiting jobs never change
        key = self._sjf_key if cfg.order == "sjf" else fifo_key
        self._queue = QueueOrder(key, self._queue_group)
        self._started: list[int] = []  # jobs step 1 started in the last round

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        # jobs already running when the policy takes over (e.g. started by another policy)
        self._watch = {
            idx: j for idx, j in view.running.items() if j.elastic and j.n_gpus < j.max_gpus
        }
        self._log_pos = len(view.scaled_in_log)
        self._idle_key: tuple | None = None
        self._queue.clear()
        self._started = []

    # ------------------------------------------------------------------ reclaim
    def reclaim(self, view: ClusterView, k: int) -> list[int]:
        return self._reclaim_rule(view, k, self.rng)

    # ------------------------------------------------------------------ allocation
    def _base(self, job: Job) -> int:
        if not self.cfg.elastic or not job.elastic or self.cfg.elastic_base == "requested":
            return job.gpus
        return job.min_gpus

    def _sjf_key(self, job: Job) -> tuple:
        """Step 1's order: estimated remaining time at base demand, then submit time."""
        b = self._base(job)
        return (float(job.est_remaining_work(job.submit) / job.speedup[b]), job.submit, job.idx)

    def _queue_group(self, job: Job) -> tuple[int, bool]:
        """(base demand, may use lent servers): step 1 skips a group whole once it does not fit."""
        return (self._base(job), job.elastic or self.cfg.inelastic_on_lent)

    def allocate(self, view: ClusterView) -> Allocation:
        cfg = self.cfg
        free_t, free_l = view.free_training_gpus, view.free_lent_gpus
        out: dict[int, int] = {}
        if not view.queued and not (cfg.elastic and (free_t or free_l)):
            return Allocation(out)

        donors: list[list] | None = None  # built on first need: running jobs' extra workers
        spare_t = spare_l = 0
        shrink: dict[int, int] = {}

        # ---- step 1: base demand, shortest first, backfilling. The queue order is kept
        # incrementally (QueueOrder); a job is skipped when its base does not fit in the
        # free GPUs plus what donors could release, and then so is every later job of the
        # same base and lending right (both only shrink during the round).
        order = self._queue
        order.sync(view.queued, self._started)
        self._started = []

        def fits(b: int, may_lend: bool) -> bool:
            nonlocal donors, spare_t, spare_l
            if b <= free_t + (free_l if may_lend else 0):
                return True
            if not cfg.elastic:
                return False
            if donors is None:
                donors = self._donors(view, self._base)
                for d in donors:  # extras on training servers and on lent servers
                    extra, lent = d[3], d[4]
                    if extra > lent:
                        spare_t += extra - lent
                        spare_l += lent
                    else:
                        spare_l += extra
            return b <= free_t + spare_t + ((free_l + spare_l) if may_lend else 0)

        started: list[Job] = []
        for job in order.ordered(fits):
            b = self._base(job)
            may_lend = job.elastic or cfg.inelastic_on_lent
            if b > free_t + (free_l if may_lend else 0):  # fits: donors can release enough
                gained_t, gained_l = self._release(
                    donors, shrink, b - free_t - (free_l if may_lend else 0), may_lend
                )
                free_t += gained_t
                free_l += gained_l
                spare_t -= gained_t
                spare_l -= gained_l
            use_t = min(b, free_t)
            free_t -= use_t
            free_l -= b - use_t
            out[job.idx] = b
            started.append(job)
        self._started = [j.idx for j in started]
        for idx, n in shrink.items():
            out[idx] = n

        # ---- step 2: extra workers by MCKP over the GPUs still free. When the last extras
        # step granted nothing and neither the allocation nor the free GPUs changed since,
        # it would grant nothing again (values only fall as remaining work falls): skip it.
        if cfg.elastic:
            log = view.scaled_in_log
            for idx in log[self._log_pos :]:
                self._watch[idx] = view.job(idx)
            self._log_pos = len(log)
            if free_t + free_l > 0:
                key = (view.allocation_epoch, free_t, free_l)
                if out or key != self._idle_key:
                    self._extras(view, started, shrink, free_t + free_l, free_l, out)
                    self._idle_key = key if not out else None
            for idx, n in out.items():
                job = view.job(idx)
                if job.elastic and 0 < n < job.max_gpus:
                    self._watch[idx] = job
        return Allocation(out)

    @staticmethod
    def _donors(view: ClusterView, base) -> list[list]:
        """Running elastic jobs with extra workers, least time saved per extra GPU first:
        ``[per-GPU value, idx, job, extras left, lent GPUs left]``."""
        t = view.now
        donors = []
        for job in view.running.values():
            extra = job.n_gpus - base(job) if job.elastic else 0
            if extra > 0:
                r = job.est_remaining_work(t)
                per_gpu = (
                    r / job.speedup[job.n_gpus - extra] - r / job.speedup[job.n_gpus]
                ) / extra
                donors.append([per_gpu, job.idx, job, extra, job.lent_gpus])
        donors.sort(key=lambda d: (d[0], d[1]))
        return donors

    @staticmethod
    def _release(
        donors: list[list], shrink: dict[int, int], need: int, may_lend: bool
    ) -> tuple[int, int]:
        """Take extra workers off donors until ``need`` usable GPUs are free. Removing
        workers frees lent GPUs first (the placer's rule), which only jobs that may run on
        lent servers can use. Returns the GPUs freed on training and on lent servers."""
        got_t = got_l = 0
        for d in donors:
            usable = got_t + (got_l if may_lend else 0)
            if usable >= need:
                break
            _, idx, job, extra, lent = d
            if extra == 0:
                continue
            # how many workers this donor must drop to yield the missing usable GPUs
            missing = need - usable
            r = min(extra, missing) if may_lend else min(extra, lent + missing)
            from_l = min(r, lent)
            got_l += from_l
            got_t += r - from_l
            d[3] -= r
            d[4] -= from_l
            shrink[idx] = shrink.get(idx, job.n_gpus) - r
        return got_t, got_l

    def _extras(
        self,
        view: ClusterView,
        started: list[Job],
        shrink: dict[int, int],
        capacity: int,
        free_l: int,
        out: dict[int, int],
    ) -> None:
        t = view.now
        guard = self.cfg.resize_guard * view.scenario.dynamics.scale_overhead_s
        # extras go to lent servers first: a job whose GPUs are all faster than a lent GPU
        # slows to the lent speed (slowest-GPU rule), which the values must include
        lent_speed = (
            view.server_speed(view.lent_servers[0]) if free_l and view.lent_servers else None
        )
        # candidates: (job, GPUs now, running?, speed now, speed after growing, remaining work)
        cands: list[tuple[Job, int, bool, float, float, float]] = []
        for job in started:
            base = self._base(job)
            if job.elastic and job.max_gpus > base:
                s_new = 1.0 if lent_speed is None else min(1.0, lent_speed)
                cands.append((job, base, False, 1.0, s_new, job.est_remaining_work(t)))
        watch = self._watch
        for idx, job in list(watch.items()):
            if job.state != RUNNING or job.n_gpus >= job.max_gpus:
                del watch[idx]
                continue
            if idx in shrink:
                continue
            s_now = job.speed
            r = job.est_remaining_work(t)
            # the largest gain any grow can bring; remaining work only shrinks, so a job that
            # cannot beat the guard even on GPUs as fast as its own never will at this
            # allocation: stop watching it
            top = r / job.speedup[job.n_gpus] - r / job.speedup[job.max_gpus]
            if top / s_now <= guard:
                del watch[idx]
                continue
            cands.append(
                (
                    job,
                    job.n_gpus,
                    True,
                    s_now,
                    s_now if lent_speed is None else min(s_now, lent_speed),
                    r,
                )
            )
        if not cands:
            return

        def total(c, k: int) -> float:
            job, n, _, s_now, s_new, r = c
            return r / (job.speedup[n] * s_now) - r / (job.speedup[n + k] * s_new)

        def values_of(c) -> np.ndarray:
            job, n, _, s_now, s_new, r = c
            v = r / (job.speedup[n] * s_now) - r / (job.speedup[n : job.max_gpus + 1] * s_new)
            v[0] = 0.0
            return v

        # -1/thr is concave when thr is, so values are concave unless the first extra GPU
        # slows the job (s_new < s_now): such items join the exact DP only when some
        # option is worth having at all
        concave = [c for c in cands if c[3] == c[4]]
        other = [
            (c, v)
            for c in cands
            if c[3] != c[4]
            for v in (values_of(c),)
            if v.max() > (guard if c[2] else 0.0)
        ]
        cands = concave + [c for c, _ in other]
        solver = self.cfg.solver

        def marginal(i: int, k: int) -> float:
            job, n, _, s_now, s_new, r = cands[i]
            sp = job.speedup
            before = r / (sp[n] * s_now) if k == 1 else r / (sp[n + k - 1] * s_new)
            return before - r / (sp[n + k] * s_new)

        failed: set[int] = set()
        for attempt in range(3):  # later passes drop grows that fail the resize guard
            if solver == "dp":
                picks = mckp.solve_dp([values_of(c) for c in cands], capacity)
            elif solver == "greedy":
                picks = mckp.solve_greedy([values_of(c) for c in cands], capacity)
            elif len(cands) > len(concave):
                n_conc = len(concave)
                a, b = mckp.solve_split(
                    [values_of(c) for c in cands[:n_conc]],
                    [values_of(c) for c in cands[n_conc:]],
                    capacity,
                )
                picks = a + b
            else:
                sizes = [c[0].max_gpus - c[1] for c in cands]
                if 4 * capacity >= sum(sizes):  # many units to hand out: rank them all at once
                    picks = mckp.solve_greedy([values_of(c) for c in cands], capacity)
                else:  # a few units: pop them lazily instead of materialising every value
                    picks = mckp.solve_greedy_lazy(marginal, sizes, capacity)
            failed = {
                i
                for i, (c, k) in enumerate(zip(cands, picks, strict=True))
                if c[2] and k > 0 and total(c, k) <= guard
            }
            if not failed or attempt == 2:
                break
            cands = [c for i, c in enumerate(cands) if i not in failed]
            concave = [c for c in cands if c[3] == c[4]]
        for i, (c, k) in enumerate(zip(cands, picks, strict=True)):
            if k > 0 and i not in failed:
                out[c[0].idx] = c[1] + k
