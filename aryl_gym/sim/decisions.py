"""What a policy hands the engine at a decision point, and the rules of the default placer.

The engine stops at two kinds of decision points:

* **reclaim** — the inference side takes ``k`` lent servers back; the policy says which.
  Their workers are then removed at once (:mod:`aryl_gym.sim.reclaim`).
* **allocate** — a scheduling round; the policy returns an :class:`Allocation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class InvalidDecision(ValueError):
    """A policy's decision breaks the rules (unknown job, bad GPU count, no room, ...).
    The engine raises it before changing anything."""


@dataclass(frozen=True)
class PlacementRules:
    """How the engine's default placer puts workers on servers (docs/model.md, Placement).

    Base workers (``gpus`` of an inelastic job, ``min_gpus`` of an elastic one) go to the
    training pool first (best fit, fewest servers). Extra workers of elastic jobs go to
    lent servers first when ``extra_on_lent_first`` (Aryl's rule: a reclaim then scales
    jobs in rather than killing them). ``base_on_lent`` lets base workers overflow onto
    lent servers; ``inelastic_on_lent`` lets inelastic jobs use lent servers at all.

    Rules for slower lent GPUs (the paper's premise; each off by default):

    * ``no_slow_mix`` — a job does not mix training and lent GPUs unless the mix runs
      faster than every placeable placement on one kind (training only, or, for a job
      that is starting, lent only); the placer then uses the faster pure placement
      (each grow of a round decides this on the cluster as the round found it);
    * ``elastic_base_on_training`` — base workers of elastic jobs stay on training
      servers (only their extra workers go to lent servers); inelastic jobs follow
      ``base_on_lent``;
    * ``lent_memory_fit`` — jobs whose model does not fit a lent GPU's memory
      (:attr:`~aryl_gym.sim.profiles.ScalingProfile.fits_lent_gpu`) never use lent GPUs.

    Rule against fragmentation (off by default):

    * ``extras_own_or_empty`` — extra workers go only to servers the job already uses or
      to empty servers, never into the free GPUs left on other jobs' servers. Extra
      workers are the first taken back (for a queued job's base, on a reclaim); spread
      into other servers' holes they split the grown job and, once released, leave the
      pool's free GPUs scattered, so later base starts split too. Feasibility checks
      (:meth:`~aryl_gym.sim.placer.Placer.fit`, ``view.can_place``) count free GPUs per
      class, which is exact without this rule; with it a grow whose extra workers find no
      own or empty room when its turn in the round comes (earlier changes of the round
      took it) is cut to the GPUs that fit, and counted (``grows_cut`` in the summary).
    """

    extra_on_lent_first: bool = True
    base_on_lent: bool = True
    inelastic_on_lent: bool = False
    no_slow_mix: bool = False
    elastic_base_on_training: bool = False
    lent_memory_fit: bool = False
    extras_own_or_empty: bool = False


@dataclass
class Allocation:
    """A policy's decision in a scheduling round: a *change* of the current allocation.

    ``gpus`` maps a job index (``Job.idx``) to the GPU count it should have after the
    round; jobs not mentioned keep what they have. ``0`` stops a job (a running job is
    preempted and requeued). A queued elastic job may start at any count in
    ``[min_gpus, max_gpus]``, an inelastic one only at ``gpus``. The engine applies
    shrinks first, then grows in the mapping's order, so put the most important job first.

    ``placement`` optionally pins where a job's workers go: job index -> {server: GPUs},
    the job's *complete* placement after the round (it must sum to ``gpus[job]``). Jobs
    without an entry are placed by the default placer following the policy's rules.

    ``on_training`` optionally keeps the new workers of growing or starting jobs (indices
    of ``gpus`` entries that grow, without an explicit placement) on training servers.
    Without it the placer decides each grow's pools by the rules on the cluster as the
    round found it, so a start whose training GPUs come from this round's shrinks may go
    to lent servers (``no_slow_mix`` compares what was free before the shrinks).

    ``to_training`` optionally moves running jobs' workers off lent servers: for each
    index, the job's workers on lent servers move to training servers, placed as its
    extra workers would be (its own training servers first, then, with
    ``extras_own_or_empty``, empty ones; :meth:`ClusterView.placement_moved_to_training`).
    Its GPU count stays (a ``gpus`` entry, if any, must keep it); the move pauses it like
    a resize. Moves are applied after the shrinks and before the grows.
    """

    gpus: dict[int, int] = field(default_factory=dict)
    placement: dict[int, dict[int, int]] = field(default_factory=dict)
    on_training: frozenset[int] | set[int] = field(default_factory=frozenset)
    to_training: frozenset[int] | set[int] = field(default_factory=frozenset)


__all__ = ["Allocation", "InvalidDecision", "PlacementRules"]
