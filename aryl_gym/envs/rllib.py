"""RLlib support: the envs in Ray's env registry, with RLlib's action-masking observations.

    from aryl_gym.envs.rllib import register_rllib_envs
    register_rllib_envs()
    config = PPOConfig().environment("ArylGym/Allocate-v0", env_config={"scenario": "tiny"})

RLlib (new API stack) has no ``action_masks()`` protocol like sb3-contrib's MaskablePPO.
Its masking example (``ray/rllib/examples/rl_modules/classes/action_masking_rlm.py``:
``ActionMaskingTorchRLModule``, PPO only) reads the mask from the observation instead,
which must be ``Dict(action_mask=Box(0, 1, (n_actions,)), observations=<original space>)``
(as ``ray/rllib/examples/envs/classes/action_mask_env.py``). :class:`ActionMaskObservation`
turns either env's observation into that form, taking the mask from
``env.unwrapped.action_masks()`` after every ``reset`` and ``step``.

The wrapper needs only gymnasium; :func:`register_rllib_envs` imports Ray lazily and
raises an ``ImportError`` naming the extra (``pip install -e '.[rllib]'``) when RLlib is
missing. See ``docs/scale-out.md`` (section "RLlib") and ``agents/rllib_ppo.py``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from aryl_gym.envs import make_env

#: Names under which :func:`register_rllib_envs` registers the envs with Ray (the same as
#: the Gymnasium ids): the two masked discrete envs (Round-v0's continuous action needs no
#: mask wrapper: RLlib takes it from ``gym.make``).
RLLIB_ENV_NAMES: tuple[str, ...] = ("ArylGym/Allocate-v0", "ArylGym/Reclaim-v0")

#: ``env_config`` key (not passed to the env) that switches the masking wrapper off.
MASK_KEY = "action_mask"

_INSTALL_HINT = "RLlib is not installed; install it with pip install -e '.[rllib]'"


class ActionMaskObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observations ``{"action_mask": float32 0/1 mask, "observations": original obs}``.

    RLlib's ``ActionMaskingTorchRLModule`` convention. The mask is the env's
    ``action_masks()`` for the state the observation describes (so the mask returned with
    a step's observation is the one that the next action must obey). ``action_masks()``
    stays available through the wrapper, so sb3-contrib or a hand-written loop can still
    use it.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)  # lets gym.make re-create it from env.spec
        gym.ObservationWrapper.__init__(self, env)
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"action masking needs a Discrete action space, got {env.action_space}")
        if not hasattr(env.unwrapped, "action_masks"):
            raise TypeError(f"{env.unwrapped!r} has no action_masks() method")
        n = int(env.action_space.n)
        self.observation_space = spaces.Dict(
            {
                "action_mask": spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32),
                "observations": env.observation_space,
            }
        )

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        mask = np.asarray(self.env.unwrapped.action_masks(), dtype=np.float32)
        return {"action_mask": mask, "observations": observation}


def make_masked_env(env_id: str = "ArylGym/Allocate-v0", **kwargs: Any) -> ActionMaskObservation:
    """``make_env(env_id, **kwargs)`` wrapped in :class:`ActionMaskObservation`."""
    return ActionMaskObservation(make_env(env_id, **kwargs))


def rllib_env_creator(env_id: str):
    """An RLlib env creator for ``env_id``: ``creator(env_config) -> env``.

    ``env_config`` holds the env's keyword arguments (``scenario``, ``episode_hours``,
    ...) plus optionally ``action_mask`` (default True: wrap in
    :class:`ActionMaskObservation`; False: the plain Box observation). Keys that RLlib
    adds itself (``num_envs``) are dropped.
    """

    def creator(env_config: dict | None = None) -> gym.Env:
        kwargs = dict(env_config or {})  # EnvContext -> plain dict (keeps only the keys)
        kwargs.pop("num_envs", None)
        masked = bool(kwargs.pop(MASK_KEY, True))
        env = make_env(env_id, **kwargs)
        return ActionMaskObservation(env) if masked else env

    creator.__name__ = f"make_{env_id.split('/')[-1].split('-')[0].lower()}_env"
    return creator


def _require_rllib():
    try:
        import ray.rllib  # noqa: F401  (checks RLlib's own dependencies: dm_tree, ...)
        from ray.tune.registry import register_env
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from e
    return register_env


def register_rllib_envs() -> tuple[str, ...]:
    """Register both envs with ``ray.tune.registry.register_env`` (idempotent).

    Names: ``"ArylGym/Allocate-v0"`` and ``"ArylGym/Reclaim-v0"``, each built by
    :func:`rllib_env_creator` (masked observations unless ``env_config["action_mask"]``
    is False). Returns the names.
    """
    register_env = _require_rllib()
    for env_id in RLLIB_ENV_NAMES:
        register_env(env_id, rllib_env_creator(env_id))
    return RLLIB_ENV_NAMES


def action_masking_module_spec(model_config: dict | None = None):
    """The ``RLModuleSpec`` of RLlib's masking PPO module (``ActionMaskingTorchRLModule``).

    It ships in RLlib's examples package; an ``ImportError`` says so if an RLlib version
    moved it.
    """
    _require_rllib()
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    try:
        from ray.rllib.examples.rl_modules.classes.action_masking_rlm import (
            ActionMaskingTorchRLModule,
        )
    except ImportError as e:  # pragma: no cover - depends on the RLlib version
        raise ImportError(
            "this RLlib version has no ray.rllib.examples.rl_modules.classes.action_masking_rlm"
            f".ActionMaskingTorchRLModule ({e}); the RLlib example needs the pinned version "
            "(pip install -e '.[rllib]')"
        ) from e
    return RLModuleSpec(
        module_class=ActionMaskingTorchRLModule,
        model_config=model_config or {"head_fcnet_hiddens": [64, 64]},
    )


__all__ = [
    "MASK_KEY",
    "RLLIB_ENV_NAMES",
    "ActionMaskObservation",
    "action_masking_module_spec",
    "make_masked_env",
    "register_rllib_envs",
    "rllib_env_creator",
]
