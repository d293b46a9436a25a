"""Observation encoders, action decoding and masks of the two environments.

The same objects drive the Gymnasium envs and :class:`aryl_gym.evaluation.AgentPolicy`
(a learned agent run straight on the engine), so both see identical observations and
masks. Every feature is documented in ``SLOT_FEATURES`` / ``GLOBAL_FEATURES`` (and in
``docs/envs.md``); all lie in ``[-1, 1]`` (most in ``[0, 1]``).

Squashing: unbounded non-negative quantities ``x`` with a natural scale ``tau`` are
mapped to ``x / (x + tau)`` (0 at 0, 0.5 at ``tau``, -> 1), so no trace-dependent
maximum is needed and the observation box is fixed.

The Allocate-v0 encoder is in :mod:`aryl_gym.envs.allocation_round`, the Reclaim-v0
encoder in :mod:`aryl_gym.envs.reclaim_round`, what they share in
:mod:`aryl_gym.envs.demand_clock`; this module gathers their public names.
"""

from __future__ import annotations

from aryl_gym.envs.allocation_round import (
    APPLIED,
    COMMIT,
    GLOBAL_FEATURES,
    INVALID,
    N_GLOBAL_F,
    N_SLOT_F,
    SLOT_FEATURES,
    AllocationRound,
)
from aryl_gym.envs.demand_clock import DAY, HOUR, DemandClock, squash
from aryl_gym.envs.reclaim_round import (
    N_RGLOBAL_F,
    N_RSLOT_F,
    RECLAIM_GLOBAL_FEATURES,
    RECLAIM_SLOT_FEATURES,
    ReclaimRound,
    reclaim_is_choice,
)

__all__ = [
    "APPLIED",
    "COMMIT",
    "DAY",
    "GLOBAL_FEATURES",
    "HOUR",
    "INVALID",
    "N_GLOBAL_F",
    "N_RGLOBAL_F",
    "N_RSLOT_F",
    "N_SLOT_F",
    "RECLAIM_GLOBAL_FEATURES",
    "RECLAIM_SLOT_FEATURES",
    "SLOT_FEATURES",
    "AllocationRound",
    "DemandClock",
    "ReclaimRound",
    "reclaim_is_choice",
    "squash",
]
