"""The one loop that drives an engine: decision points go to a policy until a caller claims one.

::

    driver = Driver(engine, policy)
    driver.run_until()                        # the policy decides everything, to the end
    point = driver.run_until(lambda p: p.kind == "reclaim")   # stop at the next reclaim
    ...                                       # the caller decides ``point`` itself
    driver.run_until(stop)                    # and hands the engine back to the loop

``run_policy`` runs a policy to the end this way; the Gymnasium envs stop at the points
their agent decides (the stop predicate claims them) and let a policy decide the rest.
The driver counts what the policy did, so that every caller counts the same way:
preemptions caused by reclaims come from the :class:`~aryl_gym.sim.reclaim.ReclaimEffect`
that :meth:`Engine.decide_reclaim <aryl_gym.sim.engine.Engine.decide_reclaim>` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aryl_gym.sim.decisions import Allocation, InvalidDecision
from aryl_gym.sim.engine import RECLAIM, DecisionPoint, Engine
from aryl_gym.sim.reclaim import ReclaimEffect
from aryl_gym.sim.view import ClusterView

#: Called at every decision point before the policy sees it; True claims the point: the
#: driver stops there and the caller decides it.
Stop = Callable[[DecisionPoint], bool]


class Decider(Protocol):
    """What the driver hands decision points to (every :class:`aryl_gym.policy.Policy`)."""

    def reclaim(self, view: ClusterView, k: int) -> Sequence[int]: ...

    def allocate(self, view: ClusterView) -> Allocation: ...


@dataclass
class DriveCounts:
    """What a driver's policy decided: allocate rounds, reclaims, and the preemptions and
    GPU-seconds lost those reclaims caused (summed from their effects, in order)."""

    rounds: int = 0
    reclaims: int = 0
    reclaim_preemptions: int = 0
    reclaim_lost_gpu_seconds: float = 0.0

    @property
    def decisions(self) -> int:
        """Decision points the policy decided."""
        return self.rounds + self.reclaims

    def add_reclaim(self, effect: ReclaimEffect) -> None:
        """Count one reclaim and what it did."""
        self.reclaims += 1
        self.reclaim_preemptions += len(effect.preempted)
        self.reclaim_lost_gpu_seconds += effect.lost_gpu_seconds

    def add(self, other: DriveCounts) -> None:
        """Add ``other``'s counts to these."""
        self.rounds += other.rounds
        self.reclaims += other.reclaims
        self.reclaim_preemptions += other.reclaim_preemptions
        self.reclaim_lost_gpu_seconds += other.reclaim_lost_gpu_seconds


class Driver:
    """Drives ``engine`` with ``policy``: every decision point that a :meth:`run_until`
    predicate does not claim is decided by the policy.

    ``last`` holds what the policy decided during the latest :meth:`run_until` (or
    :meth:`decide`) call, ``total`` since the driver was made.
    """

    def __init__(self, engine: Engine, policy: Decider) -> None:
        self.engine = engine
        self.policy = policy
        self.last = DriveCounts()
        self.total = DriveCounts()

    def decide(self, point: DecisionPoint) -> None:
        """Hand ``point`` (the engine's pending decision) to the policy and apply its decision."""
        self.last = DriveCounts()
        self._decide(point, self.last)

    def _decide(self, point: DecisionPoint, counts: DriveCounts) -> None:
        e, policy = self.engine, self.policy
        if point.kind == RECLAIM:
            servers = policy.reclaim(point.view, point.k)
            try:
                effect = e.decide_reclaim(servers)
            except InvalidDecision as exc:
                raise self._rejected(point, exc) from exc
            counts.add_reclaim(effect)
            self.total.add_reclaim(effect)
        else:
            alloc = policy.allocate(point.view)
            try:
                e.decide_allocation(alloc)
            except InvalidDecision as exc:
                raise self._rejected(point, exc) from exc
            counts.rounds += 1
            self.total.rounds += 1

    def _rejected(self, point: DecisionPoint, exc: InvalidDecision) -> InvalidDecision:
        """``exc`` (the engine's rejection of the policy's decision at ``point``, which the
        engine still waits for) with the policy, the decision point and the time in front."""
        name = getattr(self.policy, "name", None) or type(self.policy).__name__
        return InvalidDecision(
            f"policy {name!r}, {point.kind} decision at t = {self.engine.t:g} s: {exc}"
        )

    def run_until(self, stop: Stop | None = None) -> DecisionPoint | None:
        """Advance the engine, handing decision points to the policy, until ``stop`` claims
        one (returned undecided: the caller must decide it before the next call) or the
        episode ends (``None``). Without ``stop`` the policy decides everything."""
        counts = self.last = DriveCounts()
        advance, decide = self.engine.advance, self._decide
        while True:
            point = advance()
            if point is None or (stop is not None and stop(point)):
                return point
            decide(point, counts)
