"""The removal rule of a reclaim, and a what-if simulation of it.

Removing a lent server removes every worker on it: an elastic job that keeps at least
``min_gpus`` GPUs is scaled in (a resize, which checkpoints it), any other job on the
server is preempted (it loses the work since its last checkpoint and returns to the
queue) and leaves all its servers. The engine applies a reclaim with
:func:`scales_in`; :class:`ReclaimSimulation` plays the same rule on a copy of the
lent servers' state, server by server, so reclaim policies and envs can ask "what
would returning these servers do?" without a second copy of the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aryl_gym.sim.job import Job
    from aryl_gym.sim.view import ClusterView


def scales_in(job: Job, gpus_now: int, gpus_on_server: int) -> bool:
    """True when removing ``gpus_on_server`` of ``job``'s ``gpus_now`` GPUs scales it in;
    False when it preempts the job."""
    return job.elastic and gpus_now - gpus_on_server >= job.min_gpus


def lost_gpu_seconds(job: Job, t: float, checkpoint_interval_s: float) -> float:
    """GPU-seconds a preemption of ``job`` at ``t`` would throw away: the work since its
    last checkpoint, at its current rate, times its GPUs."""
    if not job.rate:
        return 0.0
    return job.work_since_checkpoint(t, checkpoint_interval_s) / job.rate * job.n_gpus


@dataclass
class ReclaimEffect:
    """What returning some lent servers does: jobs scaled in, jobs preempted, and the
    GPU-seconds those preemptions lose."""

    scaled_in: list[int] = field(default_factory=list)
    preempted: list[int] = field(default_factory=list)
    lost_gpu_seconds: float = 0.0

    def preempt(self, job: int, lost_gpu_seconds: float) -> None:
        """Record a preemption of ``job`` that loses ``lost_gpu_seconds``: the engine and
        the what-if simulation both add losses this way, job by job in order, so that
        their totals are equal to the last bit."""
        self.preempted.append(job)
        self.lost_gpu_seconds += lost_gpu_seconds


class ReclaimSimulation:
    """The lent servers' state during a reclaim, updated server by server with the
    engine's rule (a scale-in checkpoints a job: a later preemption in the same reclaim
    loses nothing)."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view
        lent = view.lent_servers
        # server -> {job: GPUs}: the engine's own dicts, read-only, until a removal changes
        # one (then a copy replaces it, see _own): most servers of a reclaim never change
        self.on: dict[int, dict[int, int]] = {s: view.jobs_on(s) for s in lent}
        self._copied: set[int] = set()  # servers whose dict in ``on`` is our own copy
        self.gpus: dict[int, int] = {}  # job -> GPUs it still holds
        self.spans: dict[int, set[int]] = {}  # job -> lent servers it still occupies
        self.lost: dict[int, float] = {}  # job -> GPU-seconds a preemption would lose now
        for s, jobs in self.on.items():
            for j in jobs:
                if j not in self.gpus:
                    job = view.job(j)
                    self.gpus[j] = job.n_gpus
                    self.lost[j] = view.lost_gpu_seconds_if_preempted(job)
                self.spans.setdefault(j, set()).add(s)
        self.removed: list[int] = []

    @property
    def remaining(self) -> list[int]:
        """Lent servers not removed yet, in the order they were lent."""
        return list(self.on)

    def effect(self, s: int) -> tuple[list[int], list[int]]:
        """(preempted, scaled-in) jobs if server ``s`` is removed next."""
        pre, sc = [], []
        job = self.view.job
        for j, g in self.on[s].items():
            (sc if scales_in(job(j), self.gpus[j], g) else pre).append(j)
        return pre, sc

    def remove(self, s: int, into: ReclaimEffect | None = None) -> ReclaimEffect:
        """Remove server ``s`` next; its effect, added to ``into`` when given (and
        returned), else to a new one."""
        pre, sc = self.effect(s)
        effect = ReclaimEffect() if into is None else into
        effect.scaled_in += sc
        for j in pre:
            effect.preempt(j, self.lost[j])
        on = self.on.pop(s)
        for j in sc:
            self.gpus[j] -= on[j]
            self.spans[j].discard(s)
            self.lost[j] = 0.0  # the scale-in checkpoints the job
        for j in pre:
            for other in self.spans.pop(j):
                if other != s:
                    self._own(other).pop(j, None)
        self.removed.append(s)
        return effect

    def _own(self, s: int) -> dict[int, int]:
        """``on[s]``, copied first if it is still the engine's dict (to be changed)."""
        if s not in self._copied:
            self._copied.add(s)
            self.on[s] = dict(self.on[s])
        return self.on[s]

    def remove_all(self, servers: Iterable[int]) -> ReclaimEffect:
        """Remove ``servers`` in order; their combined effect."""
        total = ReclaimEffect()
        for s in servers:
            self.remove(s, total)
        return total
