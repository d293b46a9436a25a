"""The step protocols of the two environments: which decision points reach the agent and
what its actions do, for one episode.

The envs and :class:`aryl_gym.evaluation.AgentPolicy` (a learned agent run on the engine
through :func:`~aryl_gym.simulate.run_policy`) drive their agents through the same
protocol objects, so an agent takes the same steps in both:

* :class:`AllocateProtocol` (Allocate-v0): every allocate round is offered to the agent
  but trivial ones (only commit valid) after the first when ``skip_trivial``; the agent
  acts on the round's :class:`~aryl_gym.envs.allocation_round.AllocationRound` until it
  commits, and the commit is the round's :class:`~aryl_gym.policy.Allocation`.
* :class:`ReclaimProtocol` (Reclaim-v0): reclaims that are a real choice
  (:func:`~aryl_gym.envs.reclaim_round.reclaim_is_choice`) are offered; the agent picks
  one lent server per step; after ``max_invalid`` invalid actions in one reclaim the
  remaining picks follow the cheapest-server rule.

The env stops its :class:`~aryl_gym.sim.driver.Driver` at the points ``claims`` accepts;
``AgentPolicy`` calls ``offer`` when the engine asks it to decide.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from aryl_gym.envs.allocation_round import COMMIT, AllocationRound
from aryl_gym.envs.reclaim_round import ReclaimRound, reclaim_is_choice
from aryl_gym.policy import Allocation, Policy
from aryl_gym.sim.engine import ALLOCATE, RECLAIM, DecisionPoint
from aryl_gym.sim.view import ClusterView


class InvalidAction(TypeError):
    """An env action that is not an integer (a float, a string, a bool, None, ...). An
    integer outside the valid actions is not an error: it is a counted invalid action."""


def as_action(action: object, env_id: str) -> int:
    """``action`` as an int: a Python int, an integral numpy scalar or a 0-d integral array
    (what ``Discrete.sample`` and vectorised envs hand out); ``InvalidAction`` naming
    ``env_id``, the type and the value otherwise. No float is rounded, even ``2.0``: an
    agent whose actions are floats has a bug that rounding would hide."""
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action[()]
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise InvalidAction(
            f"{env_id}: an action must be an integer (int or integral numpy scalar), "
            f"got {type(action).__name__} {action!r}"
        )
    return int(action)


class AllocateProtocol:
    """Allocate-v0's protocol over the encoder ``round`` for one episode (it restarts the
    round counter); counts the agent's ``steps``, ``invalid_actions``, the rounds it
    ``commits`` with the commit action and those the round cap ends (``capped``)."""

    def __init__(self, round: AllocationRound, skip_trivial: bool = True) -> None:
        self.round = round
        self.skip_trivial = bool(skip_trivial)
        self.first = True  # the episode's first round always reaches the agent
        self.steps = 0
        self.invalid_actions = 0
        self.commits = 0
        self.capped = 0
        round.rounds = 0

    def offer(self, view: ClusterView) -> bool:
        """Begin the round of an allocate point; True when the agent decides it, False
        when it is skipped (the round then changes nothing: an empty Allocation)."""
        rnd = self.round
        rnd.begin_round(view)
        first, self.first = self.first, False
        return not (self.skip_trivial and rnd.trivial and not first)

    def claims(self, point: DecisionPoint) -> bool:
        """The stop predicate of the env's driver: an allocate point the agent decides."""
        return point.kind == ALLOCATE and self.offer(point.view)

    def step(self, action: int) -> Allocation | None:
        """Apply one agent action; the round's Allocation when the action commits (or
        reaches the round's action cap), else None."""
        action = as_action(action, "Allocate-v0")
        rnd = self.round
        self.steps += 1
        status = rnd.step(action)
        self.invalid_actions += rnd.last_invalid
        if status != COMMIT:
            return None
        # an agent that never commits still ends every round, at the cap: tell them apart
        if action == rnd.commit_action:
            self.commits += 1
        else:
            self.capped += 1
        return rnd.allocation()


class OffTurnPolicy(Policy):
    """Decides the points of an Allocate-v0 episode that its agent does not: every reclaim
    by ``reclaim_policy``, and the rounds :meth:`AllocateProtocol.offer` skips (no change)."""

    name = "off-turn"

    def __init__(self, reclaim_policy: Policy) -> None:
        self.reclaim_policy = reclaim_policy
        self.name = reclaim_policy.name  # its reclaims are the only decisions that can fail

    def reclaim(self, view: ClusterView, k: int):
        return self.reclaim_policy.reclaim(view, k)

    def allocate(self, view: ClusterView) -> Allocation:
        return Allocation()


class Pick(NamedTuple):
    """What one Reclaim-v0 action did: whether it was invalid, and the preemptions and
    GPU-seconds lost of the servers it picked (none, one, or the rest by fallback)."""

    invalid: bool
    preemptions: float
    lost_gpu_seconds: float


class ReclaimProtocol:
    """Reclaim-v0's protocol over the encoder ``round`` for one episode; ``cost`` ranks the
    fallback picks (``"count"`` or ``"lost_gpu_seconds"``). Counts the ``reclaims``
    offered, the agent's ``steps`` and ``invalid_actions``."""

    def __init__(self, round: ReclaimRound, cost: str = "count", max_invalid: int = 16) -> None:
        self.round = round
        self.cost = cost
        self.max_invalid = int(max_invalid)
        self.reclaims = 0
        self.steps = 0
        self.invalid_actions = 0
        self._invalid_here = 0

    def offer(self, view: ClusterView, k: int) -> bool:
        """Begin a reclaim of ``k`` servers when it is a real choice; True when the agent
        decides it (False: someone else picks)."""
        if not reclaim_is_choice(view, k):
            return False
        self.round.begin(view, k)
        self.reclaims += 1
        self._invalid_here = 0
        return True

    def claims(self, point: DecisionPoint) -> bool:
        """The stop predicate of the env's driver: a reclaim point the agent decides."""
        return point.kind == RECLAIM and self.offer(point.view, point.k)

    def step(self, action: int) -> Pick:
        """Apply one agent action: pick its slot's server, or count it invalid (after
        ``max_invalid`` invalid actions in this reclaim the rest is picked by the
        cheapest-server rule)."""
        a = as_action(action, "Reclaim-v0")
        rr = self.round
        self.steps += 1
        if 0 <= a < rr.n_slots and rr.mask[a]:
            _, n_pre, lost = rr.pick(a)
            return Pick(False, n_pre, lost)
        self.invalid_actions += 1
        self._invalid_here += 1
        if self._invalid_here >= self.max_invalid:
            return Pick(True, *rr.pick_cheapest_rest(self.cost))
        return Pick(True, 0.0, 0.0)

    @property
    def done(self) -> bool:
        """Whether every server of the current reclaim is picked."""
        return self.round.picks_left == 0

    @property
    def picked(self) -> list[int]:
        """The servers picked in the current reclaim, in order."""
        return list(self.round.picked)


__all__ = [
    "AllocateProtocol",
    "InvalidAction",
    "OffTurnPolicy",
    "Pick",
    "ReclaimProtocol",
    "as_action",
]
