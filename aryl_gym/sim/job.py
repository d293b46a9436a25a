"""Per-job state. One :class:`Job` exists per submitted job from its arrival on.

Policies receive these objects through the read-only :class:`~aryl_gym.sim.view.ClusterView`
and must treat them as read-only; only the engine writes them.
"""

from __future__ import annotations

import math

import numpy as np

QUEUED, RUNNING, DONE = 0, 1, 2
STATE_NAMES = {QUEUED: "queued", RUNNING: "running", DONE: "done"}


class Job:
    """A training job: static request, dynamic allocation and progress, and its metrics.

    Progress is kept lazily: ``progress`` is the work done at ``t_update``; while running,
    work accrues at ``rate`` per second from ``run_from = max(t_update, pause_until)``
    (``inf`` while not running; the engine keeps it up to date). Work is in
    "seconds on one training GPU times speedup" units, so ``work = duration *
    speedup(gpus)`` and a job finishes when ``progress`` reaches ``work``.
    """

    __slots__ = (
        "idx", "job_id", "submit", "gpus", "min_gpus", "max_gpus", "elastic", "base_gpus",
        "profile", "speedup", "speedups", "duration", "work", "est_factor",
        "state", "n_gpus", "placement", "rate", "speed", "progress", "t_update", "pause_until",
        "seg_progress", "seg_run_start", "t_alloc", "version", "run_from",
        "first_start", "finish", "queue_time", "queued_since", "preemptions", "resizes",
        "gpu_seconds", "lost_gpu_seconds", "lost_work", "lent_gpus", "overhead_gpu_seconds",
    )  # fmt: skip

    def __init__(
        self,
        idx: int,
        job_id: str,
        submit: float,
        gpus: int,
        min_gpus: int,
        max_gpus: int,
        elastic: bool,
        profile,
        speedup: np.ndarray,
        duration: float,
        est_factor: float,
        speedups: list[float] | None = None,
    ) -> None:
        self.idx = idx
        self.job_id = job_id
        self.submit = submit
        self.gpus = gpus
        self.min_gpus = min_gpus
        self.max_gpus = max_gpus
        self.elastic = elastic
        # the base demand Aryl gives first: ``min_gpus`` if elastic else ``gpus`` (fixed
        # with them; a field, not a property: the placer reads it per job and count)
        self.base_gpus = min_gpus if elastic else gpus
        self.profile = profile
        self.speedup = speedup  # speedup[n] on n GPUs, compact placement (read-only table)
        # the same table as Python floats (``speedup.tolist()``, shared per profile by the
        # engine): the placer's hot paths read ``speedups[n]``, the value of
        # ``float(speedup[n])``, without a numpy scalar per read
        self.speedups = speedup.tolist() if speedups is None else speedups
        self.duration = duration
        self.work = duration * float(speedup[gpus])
        self.est_factor = est_factor  # estimated / true duration (1.0 = oracle)
        self.state = QUEUED
        self.n_gpus = 0
        self.placement: dict[int, int] = {}  # server -> GPUs of this job on it
        self.lent_gpus = 0  # GPUs of this job on lent servers
        self.rate = 0.0  # work per second while not paused
        self.speed = 1.0  # slowest GPU speed of the placement
        self.progress = 0.0
        self.t_update = submit
        self.pause_until = submit
        self.run_from = math.inf  # max(t_update, pause_until) while running, else inf
        self.seg_progress = 0.0  # progress at the start of the current allocation segment
        self.seg_run_start = submit  # when that segment started making progress
        self.t_alloc = submit  # when the current allocation started (GPU-seconds accounting)
        # bumps whenever a scheduled completion becomes stale: at every start, resize and
        # stop, so a waiting job keeps its version until it starts (QueueOrder relies on it)
        self.version = 0
        self.first_start = math.nan
        self.finish = math.nan
        self.queue_time = 0.0
        self.queued_since = submit
        self.preemptions = 0
        self.resizes = 0
        self.gpu_seconds = 0.0
        self.lost_gpu_seconds = 0.0
        self.lost_work = 0.0
        self.overhead_gpu_seconds = 0.0  # GPU-seconds spent paused by resize/restart overheads

    # -- read helpers used by policies -------------------------------------------------
    def progress_at(self, t: float) -> float:
        """Work done by time ``t`` (>= ``t_update``) at the current allocation."""
        start = self.run_from  # inf unless running
        return self.progress + self.rate * (t - start) if t > start else self.progress

    def remaining_work(self, t: float) -> float:
        return max(self.work - self.progress_at(t), 0.0)

    def est_remaining_work(self, t: float) -> float:
        """Remaining work as a policy would estimate it (noisy unless the scenario is oracle)."""
        # progress_at and remaining_work inlined: this is the policies' hottest call
        done = self.progress
        start = self.run_from  # inf unless running
        if t > start:
            done += self.rate * (t - start)
        left = self.work - done
        return left * self.est_factor if left > 0.0 else 0.0

    def work_since_checkpoint(self, t: float, checkpoint_interval: float) -> float:
        """Work that a preemption at ``t`` would lose.

        A job checkpoints whenever its allocation changes (an elastic resize restarts
        from a checkpoint) and every ``checkpoint_interval`` seconds of progress-making
        time after that, so the loss is the progress since the latest such instant.
        """
        if self.state != RUNNING or t <= self.seg_run_start:
            return 0.0
        since_ckpt = (t - self.seg_run_start) % checkpoint_interval
        return min(self.rate * since_ckpt, self.progress_at(t) - self.seg_progress)

    def __repr__(self) -> str:
        return (
            f"Job({self.job_id!r}, {STATE_NAMES[self.state]}, gpus={self.gpus}"
            f"{f' [{self.min_gpus},{self.max_gpus}]' if self.elastic else ''}, n={self.n_gpus})"
        )
