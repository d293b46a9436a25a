"""The one policy interface that every heuristic and every learned agent implements.

The engine stops at two kinds of decision points (see :mod:`aryl_gym.sim.engine`):

* **reclaim** — the inference side takes ``k`` lent servers back; the policy says which
  (:meth:`Policy.reclaim`). Their workers are then removed at once: an elastic job that
  keeps at least ``min_gpus`` is scaled in, any other job on them is preempted.
* **allocate** — a scheduling round; the policy returns an :class:`Allocation`, the
  change of GPU counts (and optionally placements) it wants (:meth:`Policy.allocate`).

Policies read the state through a read-only :class:`~aryl_gym.sim.view.ClusterView`
and never mutate it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

# the decision types live in the simulator; a policy writer finds them here too
from aryl_gym.sim.decisions import Allocation, InvalidDecision, PlacementRules

if TYPE_CHECKING:
    from aryl_gym.sim.view import ClusterView


class Policy(ABC):
    """Base class of every scheduling policy (heuristic or learned).

    Class attributes declare what the policy needs from the engine:

    * ``uses_loaning`` — whether the inference pool lends idle servers to it. Without
      loaning no server is ever lent and ``reclaim`` is never called.
    * ``periodic_rounds`` — whether it wants an allocate round every
      ``DynamicsConfig.round_interval_s`` even when no event happened (elastic
      re-optimisation), in addition to the rounds after events.
    * ``elastic_scaling`` — whether jobs may run at other sizes than requested. Without
      it every job is treated as inelastic (a reclaim preempts instead of scaling in).
    * ``rules`` — the default placer's rules for its allocations.
    """

    name: str = "policy"
    description: str = ""
    uses_loaning: bool = False
    periodic_rounds: bool = False
    elastic_scaling: bool = True
    rules: PlacementRules = PlacementRules()

    def reset(self, view: ClusterView, seed: int | None = None) -> None:  # noqa: B027 - optional hook
        """Called once before the first decision of an episode."""

    def reclaim(self, view: ClusterView, k: int) -> Sequence[int]:
        """Return ``k`` distinct lent server ids to give back, in the order to remove them.

        The default returns the last-lent servers first; loaning policies override it.
        """
        return list(reversed(view.lent_servers))[:k]

    @abstractmethod
    def allocate(self, view: ClusterView) -> Allocation:
        """Return the allocation change of this round (an empty Allocation = no change)."""


__all__ = ["Allocation", "InvalidDecision", "PlacementRules", "Policy"]
