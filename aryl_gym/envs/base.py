"""What the two environments share: the episode sampler, the engine of an episode, the
observation and action spaces and the end of an episode."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.episodes import EpisodeSampler, EpisodeSpec
from aryl_gym.envs.render import RENDER_FPS, RENDER_MODES, render_env
from aryl_gym.policy import PlacementRules, Policy
from aryl_gym.sim.engine import Engine


def resolve_policy(policy: str | Policy) -> Policy:
    """A Policy instance from a registry name (``baselines.make_policy``) or an instance."""
    if isinstance(policy, Policy):
        return policy
    from aryl_gym.baselines import make_policy  # baselines sit above the library: import lazily

    return make_policy(policy)


def episode_summary(engine: Engine, spec: EpisodeSpec) -> dict[str, Any]:
    """The engine's summary plus the episode's identity (no wall-clock fields, so that
    infos are deterministic)."""
    s = engine.metrics.summary()
    s.pop("wall_s", None)
    s.update(split=spec.split, start_s=spec.start_s, end_s=spec.end_s, engine_seed=spec.engine_seed)
    return s


class EpisodeEnv(gym.Env):
    """Base of the envs: subclasses call :meth:`_init_episodes` first in ``__init__`` and
    :meth:`_init_spaces` last, set ``check_invariants`` and keep their encoder (with
    ``mask``) in ``self.round``."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": RENDER_FPS}

    def _init_episodes(
        self,
        scenario: str | ScenarioConfig,
        split: str,
        workload_seed: int,
        episode_hours: float,
        drain_hours: float,
        split_fractions: tuple[float, float, float],
        trace: str | None,
    ) -> None:
        """The episode sampler (see :class:`EpisodeSampler` for the arguments) and the
        default split of ``reset``."""
        self.sampler = EpisodeSampler(
            scenario,
            workload_seed=workload_seed,
            episode_hours=episode_hours,
            drain_hours=drain_hours,
            split_fractions=split_fractions,
            trace=trace,
        )
        self.scenario = self.sampler.scenario
        self.split = split
        self.sampler.split_bounds(split)  # validates the split name early

    def _init_spaces(
        self,
        n_actions: int,
        obs_size: int,
        slot_features: tuple[tuple[str, str], ...],
        global_features: tuple[tuple[str, str], ...],
    ) -> None:
        self.action_space = spaces.Discrete(n_actions)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(obs_size,), dtype=np.float32)
        self.slot_feature_names = tuple(n for n, _ in slot_features)
        self.global_feature_names = tuple(n for n, _ in global_features)
        self.engine: Engine | None = None
        self.spec_: EpisodeSpec | None = None
        self._done = True

    def _new_engine(
        self,
        spec: EpisodeSpec,
        periodic_rounds: bool,
        elastic_scaling: bool,
        rules: PlacementRules,
        uses_loaning: bool = True,
    ) -> Engine:
        """The engine of episode ``spec``; loaning is on unless said (the allocate and
        reclaim decisions both need it)."""
        return Engine(
            spec.scenario,
            spec.jobs,
            spec.demand,
            seed=spec.engine_seed,
            uses_loaning=uses_loaning,
            periodic_rounds=periodic_rounds,
            elastic_scaling=elastic_scaling,
            rules=rules,
            check_invariants=self.check_invariants,
        )

    def _check_not_done(self) -> None:
        if self._done:
            raise RuntimeError("the episode is over: call reset()")

    def _end_episode(self, info: dict[str, Any]) -> tuple[bool, bool]:
        """Mark the episode over and put its summary in ``info``; (terminated, truncated):
        truncated when jobs are left that the engine could still have run."""
        self._done = True
        e = self.engine
        truncated = bool(e.queue or e.running) and not e.stalled
        info["summary"] = episode_summary(e, self.spec_)
        return not truncated, truncated

    def render(self) -> str | np.ndarray | None:
        """The frame of ``render_mode``: text (``"ansi"``) or an ``(H, W, 3)`` ``uint8``
        picture (``"rgb_array"``); see :mod:`aryl_gym.envs.render`."""
        return render_env(self)

    def action_masks(self) -> np.ndarray:
        """Valid actions now (sb3-contrib MaskablePPO protocol)."""
        return self.round.mask.copy()
