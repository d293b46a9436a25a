"""The read-only window through which policies see the engine's state."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from aryl_gym.sim.cluster import LENT, TRAINING
from aryl_gym.sim.job import Job
from aryl_gym.sim.reclaim import ReclaimEffect, ReclaimSimulation, lost_gpu_seconds

if TYPE_CHECKING:
    from aryl_gym.sim.engine import Engine


class ClusterView:
    """What a policy may read at a decision point. Treat every returned object as read-only.

    Jobs are the engine's live :class:`~aryl_gym.sim.job.Job` objects (copying them each
    round would dominate the run time); the engine's invariant checker verifies in tests
    that policies leave them untouched.
    """

    __slots__ = ("_e",)

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    # -- time and configuration -----------------------------------------------------------
    @property
    def now(self) -> float:
        return self._e.t

    @property
    def scenario(self):
        return self._e.scenario

    @property
    def gpus_per_server(self) -> int:
        return self._e.cluster.gpus_per_server

    @property
    def allocation_epoch(self) -> int:
        """A counter that changes whenever any job starts, stops, finishes or is resized:
        policies may cache work keyed on it."""
        return self._e.allocation_epoch

    @property
    def free_histogram(self) -> tuple[tuple[int, ...], ...]:
        """Per class (training, lent), how many servers have each free-GPU count ``0 ..
        gpus_per_server`` (index 0 unused): what-if answers about placing a *queued* job
        depend on it alone (:meth:`Placer.histogram_key`) and may be cached on it."""
        return self._e.placer.histogram_key()

    @property
    def scaled_in_log(self) -> list[int]:
        """Indices of the jobs that reclaims scaled in, oldest first (append-only): the only
        allocation changes a policy does not make itself."""
        return self._e.scaled_in_log

    @property
    def moved_log(self) -> list[int]:
        """Indices of the jobs whose placement changed, for any cause (start, resize,
        stop, preemption, scale-in, completion), oldest first (append-only): a policy
        reads it incrementally to keep its own indexes of jobs right, whoever decided."""
        return self._e.moved_log

    @property
    def release_log(self) -> list[int]:
        """Servers that gained free GPUs (a job finished, shrank or left them), oldest
        first (append-only): read incrementally, it tells which running jobs' own servers
        may have room now."""
        return self._e.cluster.release_log

    # -- jobs ---------------------------------------------------------------------------
    @property
    def queued(self) -> Mapping[int, Job]:
        """Waiting jobs by index, in the order they (re)entered the queue."""
        return self._e.queue

    @property
    def running(self) -> Mapping[int, Job]:
        """Running jobs by index (a job paused by a resize or restart counts as running)."""
        return self._e.running

    def job(self, idx: int) -> Job:
        return self._e.jobs[idx]

    def job_extra(self, job: Job, name: str) -> str | int | float | bool:
        """The value of ``job``'s extra trace column ``name`` (a column beyond the trace
        format's, e.g. ``priority``: traces/README.md, Extra columns): ``str`` unless the
        trace declares the column ``int``, ``float`` or ``bool``. ``KeyError`` naming the
        workload's extra columns when it has none called ``name``."""
        extras = getattr(self._e.table, "extras", {})
        if name not in extras:
            have = ", ".join(extras) if extras else "none"
            raise KeyError(
                f"workload {getattr(self._e.table, 'source', '?')!r} has no extra column "
                f"{name!r} (its extra columns: {have})"
            )
        value = extras[name][job.idx]
        return value.item() if isinstance(value, np.generic) else value  # a Python scalar

    def est_remaining_time(self, job: Job, n_gpus: int | None = None) -> float:
        """Estimated seconds to finish on ``n_gpus`` (default: requested) training GPUs,
        compact placement, ignoring overheads."""
        n = job.gpus if n_gpus is None else n_gpus
        return job.est_remaining_work(self._e.t) / float(job.speedup[n])

    def est_remaining_works(self, idx: np.ndarray) -> np.ndarray:
        """``[job(i).est_remaining_work(now) for i in idx]`` (job indexes, int array) as
        one array: the same values, in one array pass."""
        return self._e.est_remaining_works(idx, self._e.t)

    def job_columns(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rate, pause_until, n_gpus - lent_gpus)`` of the jobs ``idx`` as arrays
        (copies: the Jobs' fields of the same names, as of now)."""
        return self._e.job_columns(idx)

    def lost_work_if_preempted(self, job: Job) -> float:
        """Work since the job's last checkpoint (what a preemption now would lose)."""
        return job.work_since_checkpoint(self._e.t, self._e.dyn.checkpoint_interval_s)

    def lost_gpu_seconds_if_preempted(self, job: Job) -> float:
        """GPU-seconds a preemption now would throw away (the engine's own formula)."""
        return lost_gpu_seconds(job, self._e.t, self._e.dyn.checkpoint_interval_s)

    # -- what-if queries: the engine's own rules, applied to nothing --------------------
    @property
    def rules(self):
        """The default placer's :class:`~aryl_gym.sim.decisions.PlacementRules`."""
        return self._e.rules

    def rate_with(self, job: Job, n_gpus: int) -> float | None:
        """The rate (work per second, before overheads) ``job`` would run at with
        ``n_gpus`` placed by the default placer from where it is now: speedup x placement
        factor x slowest GPU's speed. ``0.0`` for 0 GPUs; None when the GPUs cannot be
        placed. The engine applies exactly this rate when the change is made alone."""
        return self._e.placer.rate_with(job, n_gpus)

    def rate_curve(self, job: Job, n_max: int) -> list[float]:
        """``[rate_with(job, n) for n = job.n_gpus .. n_max]`` (element 0: the rate now),
        cut before the first count that cannot be placed; fast for running jobs."""
        return self._e.placer.rate_curve(job, n_max)

    def start_curve(self, job: Job, n_lo: int, n_hi: int) -> list[float]:
        """``[rate_with(job, n) for n = n_lo .. n_hi]`` for a queued job, cut before the
        first count that cannot be placed (empty when ``n_lo`` cannot); fast from its base
        up under ``extras_own_or_empty``."""
        return self._e.placer.start_curve(job, n_lo, n_hi)

    def rate_curves(self, jobs, n_max) -> list[list[float]]:
        """:meth:`rate_curve` of many running jobs (``n_max[i]`` for ``jobs[i]``) at once."""
        return self._e.placer.rate_curves(jobs, n_max)

    def placement_with(self, job: Job, n_gpus: int) -> dict[int, int] | None:
        """Where ``job``'s workers would be with ``n_gpus`` (server -> GPUs; None: no room)."""
        return self._e.placer.placement_with(job, n_gpus)

    def left_on(self, job: Job, server: int, n_gpus: int) -> int:
        """``placement_with(job, n_gpus).get(server, 0)`` for a shrink (``n_gpus`` at most
        the job's GPUs), without building the placement."""
        return self._e.placer.left_on(job, server, n_gpus)

    def shrink_share(self, job: Job, server: int) -> tuple[int, int]:
        """``(k, before)``: ``job``'s GPUs on ``server`` and how many a shrink removes from
        its other servers first: a shrink to ``n_gpus`` leaves ``k - min(k, max(0,
        job.n_gpus - n_gpus - before))`` on ``server`` (:meth:`left_on` for every count)."""
        return self._e.placer.shrink_share(job, server)

    def rate_moved_to_training(self, job: Job) -> float | None:
        """The rate ``job`` would run at with its workers on lent servers moved to training
        servers (:meth:`~aryl_gym.sim.placer.Placer.moved_to_training`), or None when it
        has none there or they do not fit; ``Allocation.to_training`` makes that move."""
        place = self._e.placer.moved_to_training(job)
        return None if place is None else self._e.placer.rate(job, place)

    def placement_moved_to_training(self, job: Job) -> dict[int, int] | None:
        """Where ``job``'s workers would be with those on lent servers moved to training
        servers (None: none on lent servers, or no room)."""
        return self._e.placer.moved_to_training(job)

    def can_place(
        self,
        targets: Mapping[int, int],
        on_training: Container[int] = (),
        to_training: Iterable[int] = (),
    ) -> bool:
        """Whether an allocation ``{job index: GPUs after the round}`` is placeable by the
        default placer, applied as the engine applies it (shrinks first, then the moves of
        ``to_training`` jobs, ``Allocation.to_training``, then grows in order; grows of
        ``on_training`` jobs on training servers only, ``Allocation.on_training``)."""
        jobs = self._e.jobs
        moves = {i: jobs[i] for i in sorted(to_training)}
        return self._e.placer.feasible(targets, {i: jobs[i] for i in targets}, on_training, moves)

    def fit(
        self,
        targets: Mapping[int, int],
        fallback: Mapping[int, int] | None = None,
        on_training: Container[int] = (),
        to_training: Iterable[int] = (),
    ):
        """``targets`` with each grow that cannot be placed (given the ones before it and
        the moves of ``to_training`` jobs, counted first) replaced by its ``fallback``
        count when that can, else dropped (one pass)."""
        jobs = self._e.jobs
        moves = {i: jobs[i] for i in sorted(to_training)}
        return self._e.placer.fit(
            targets, {i: jobs[i] for i in targets}, fallback, on_training, moves
        )

    def server_counts(self):
        """A what-if tracker of a round's changes, server by server, as :meth:`fit` counts
        them (``release(job, new, old)`` for a shrink, ``take_base(cls, n)`` for a start's
        base workers placed best fit; ``free_of(server)``, ``has_compact_room(cls, n)``)."""
        return self._e.placer.server_counts()

    def rate_bound(self, job: Job, n_max: int) -> float:
        """An upper bound of ``rate_with(job, n)`` for ``n`` up to ``n_max`` (running job)."""
        return self._e.placer.rate_bound(job, n_max)

    @property
    def grow_bound(self):
        """``grow_bound(job, n_max)``: ``(rate_bound(job, n_max), bound_levels(job))`` at
        once (one pass over the job's servers). The placer's own method: a caller that
        checks every watched job holds it for the round without a wrapper call per job."""
        return self._e.placer.grow_bound

    def bound_levels(self, job: Job):
        """``(p, levels, full, own)`` bounding every grow of a running job whatever the
        free GPUs: ``rate_with(job, n0 + k) <= p[k] x speed`` for a level
        ``(classes, speed)`` with ``extra_room_of(classes) + own >= k``; when ``full`` or
        ``own``, only until one of the job's servers appears in :attr:`release_log` (see
        :meth:`Placer.bound_levels`)."""
        return self._e.placer.bound_levels(job)

    def extra_room_of(self, classes) -> int:
        """Free GPUs of ``classes`` (0: training, 1: lent) that extra workers can reach
        beyond their job's own servers (only empty servers' under the placement rule
        ``extras_own_or_empty``)."""
        return self._e.placer.extra_room(classes)

    def may_use_lent(self, job: Job) -> bool:
        """Whether the placement rules let ``job`` have workers on lent servers."""
        return self._e.placer.may_use_lent(job)

    def base_may_use_lent(self, job: Job) -> bool:
        """Whether the rules let ``job``'s base workers go to lent servers."""
        return self._e.placer.base_may_use_lent(job)

    def reclaim_effect(self, servers: Iterable[int]) -> ReclaimEffect:
        """What returning ``servers`` in this order would do: jobs scaled in and preempted,
        GPU-seconds lost (exactly what ``decide_reclaim`` then does)."""
        return ReclaimSimulation(self).remove_all(servers)

    def reclaim_simulation(self) -> ReclaimSimulation:
        """A fresh what-if simulation of the lent servers, to remove them one by one."""
        return ReclaimSimulation(self)

    # -- servers ------------------------------------------------------------------------
    @property
    def free_training_gpus(self) -> int:
        return self._e.cluster.free_total[TRAINING]

    @property
    def free_lent_gpus(self) -> int:
        return self._e.cluster.free_total[LENT]

    @property
    def lent_servers(self) -> list[int]:
        """Lent servers, in the order they were lent."""
        return list(self._e.cluster.lent_order)

    @property
    def lent_gpu_speed(self) -> float | None:
        """The GPU speed of the first lent server (every inference server has the pool's
        speed), None when none is lent: without copying :attr:`lent_servers`."""
        cl = self._e.cluster
        return cl.speed[cl.lent_order[0]] if cl.lent_order else None

    def lent_time(self, server: int) -> float:
        return self._e.cluster.lent_at[server]

    def jobs_on(self, server: int) -> Mapping[int, int]:
        """job index -> GPUs of that job on ``server``."""
        return self._e.cluster.jobs_on[server]

    def free_gpus(self, server: int) -> int:
        return self._e.cluster.free[server]

    def server_speed(self, server: int) -> float:
        return self._e.cluster.speed[server]

    @property
    def training_servers(self) -> range:
        return range(self._e.cluster.n_training)

    @property
    def inference_needed(self) -> int:
        """Inference servers the inference side needs right now."""
        return self._e.needed

    @property
    def held_servers(self) -> int:
        """Servers returned early (``Engine.return_early``) and still held back from training."""
        return self._e.held
