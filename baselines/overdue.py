"""Waiting jobs that have waited longer than slow lent GPUs would cost them.

Aryl's ``lent_start="if_sooner"`` verdict with ``lent_wait_at_least_waited`` (ski rental)
reads the wait still ahead of a queued job as at least the time it has waited already.
That floor can only change the verdict of an *overdue* job: one whose wait so far exceeds
``c x R / p[b]``, the time lent GPUs would add to its run at best (``c = 1 / L - 1 / T``,
``L`` and ``T`` the lent and training GPU speeds, ``R / p[b]`` its run time at its base on
GPUs of speed 1). For every other job the verdict is the floor-less one, so step 1 may
still skip a group whose jobs all wait for training GPUs (``late_on_lent``), unless an
overdue job is in it. A job becomes overdue at a time known when it joins the queue
(its remaining work does not change while it waits): a heap of those times finds them
without scanning the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush

from aryl_gym.sim.job import Job
from aryl_gym.sim.view import ClusterView


class OverdueWatch:
    """Per base demand, the number of waiting jobs (whose base may use lent servers) that
    are overdue; kept incrementally from the engine's queue."""

    __slots__ = ("_heap", "_seen", "_overdue")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._heap: list[tuple[float, int, int]] = []  # (due time, idx, version)
        self._seen: dict[int, int] = {}  # idx -> version of the waiting jobs pushed so far
        self._overdue: dict[int, tuple[Job, int, int]] = {}  # idx -> (job, version, base)

    def counts(self, view: ClusterView, base: Callable[[Job], int], c: float) -> dict[int, int]:
        """``{base: overdue jobs}`` at ``view.now``; ``base(job)`` gives a job's base demand
        and ``c`` the lent GPUs' extra time per second of run (``1 / L - 1 / T``)."""
        now, queued = view.now, view.queued
        seen = self._seen
        # the jobs new to the queue since the last call: ``queued`` keeps the order jobs
        # (re)entered it, and a job that started and came back has a new version
        for idx, job in reversed(queued.items()):
            if seen.get(idx) == job.version:
                break
            seen[idx] = job.version
            b = base(job)
            run = job.est_remaining_work(now) / float(job.speedup[b])
            # a hair early, so float rounding never leaves an overdue job out
            due = job.queued_since + c * run * (1.0 - 1e-9) - 1e-6
            heappush(self._heap, (due, idx, job.version))
        heap, overdue = self._heap, self._overdue
        while heap and heap[0][0] <= now:
            _, idx, version = heappop(heap)
            job = queued.get(idx)
            if job is not None and job.version == version and view.base_may_use_lent(job):
                overdue[idx] = (job, version, base(job))
        out: dict[int, int] = {}
        for idx, (job, version, b) in list(overdue.items()):
            if queued.get(idx) is not job or job.version != version:
                del overdue[idx]  # started (or gone) since
                continue
            out[b] = out.get(b, 0) + 1
        if len(seen) > 4 * len(queued) + 1024:  # forget jobs that left the queue
            self._seen = {i: v for i, v in seen.items() if i in queued}
        return out
