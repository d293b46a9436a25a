"""Gymnasium environments of the Aryl scheduler's two decisions.

* ``ArylGym/Allocate-v0`` (:class:`~aryl_gym.envs.allocate.AllocateEnv`): the agent makes
  each scheduling round's allocation; reclaims by a configurable policy (Aryl's greedy).
* ``ArylGym/Reclaim-v0`` (:class:`~aryl_gym.envs.reclaim.ReclaimEnv`): the agent picks the
  lent servers to return; allocation by a configurable policy (Aryl's MCKP).
* ``ArylGym/Round-v0`` (:class:`~aryl_gym.envs.round.RoundEnv`): one decision per
  scheduling round with a choice, as per-job weights on Aryl's knapsack values (the zero
  action is Aryl); reward against Aryl's own run of the same window.
* ``ArylGym/ReclaimAhead-v0`` (:class:`~aryl_gym.envs.reclaim_ahead.ReclaimAheadEnv`):
  reclaims with foresight: pick the servers of a reclaim, or return lent servers early
  (and hold them back) ahead of the demand; reward: lost GPU-hours and JCT against Aryl's
  own run of the same window.

``import aryl_gym`` registers the ids (entry points are strings: the env modules load
only on ``gym.make``). See ``docs/envs.md``.
"""

from __future__ import annotations

ENV_IDS = {
    "ArylGym/Allocate-v0": "aryl_gym.envs.allocate:AllocateEnv",
    "ArylGym/Reclaim-v0": "aryl_gym.envs.reclaim:ReclaimEnv",
    "ArylGym/Round-v0": "aryl_gym.envs.round:RoundEnv",
    "ArylGym/ReclaimAhead-v0": "aryl_gym.envs.reclaim_ahead:ReclaimAheadEnv",
}


#: The wrapper every id is made with, outermost (outside gym.make's ``TimeLimit``): a step
#: that a time limit truncates carries the episode's summary too.
SUMMARY_WRAPPER = "aryl_gym.envs.base:SummaryOnTruncation"


def register_envs() -> None:
    """Register the environment ids with Gymnasium (idempotent)."""
    from gymnasium.envs.registration import WrapperSpec, register, registry

    for env_id, entry in ENV_IDS.items():
        if env_id not in registry:
            register(
                id=env_id,
                entry_point=entry,
                additional_wrappers=(WrapperSpec("SummaryOnTruncation", SUMMARY_WRAPPER, {}),),
            )


def make_env(env_id: str = "ArylGym/Allocate-v0", **kwargs):
    """``gymnasium.make(env_id, **kwargs)`` after registering; importable by reference, so
    ``functools.partial(make_env, ...)`` works as a subprocess env factory (SubprocVecEnv,
    gymnasium's AsyncVectorEnv)."""
    import gymnasium as gym

    register_envs()
    return gym.make(env_id, **kwargs)


__all__ = ["ENV_IDS", "make_env", "register_envs"]
