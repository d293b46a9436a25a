"""What the environments share: the episode sampler, the engine of an episode, the
observation and action spaces, the end of an episode and its summary, also when a
time limit cuts it (:class:`SummaryOnTruncation`)."""

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

    def summary(self) -> dict[str, Any]:
        """The summary of the episode so far (:func:`episode_summary`): at its end what the
        last step's ``info["summary"]`` holds; before, the jobs of the window not finished
        yet (arrived or not) count as unfinished."""
        if self.engine is None or self.spec_ is None:
            raise RuntimeError("no episode yet: call reset()")
        return episode_summary(self.engine, self.spec_)

    def end_info(self) -> dict[str, Any]:
        """The keys the last step's ``info`` carries however the episode ends (by the env,
        or cut by a time limit: :class:`SummaryOnTruncation`): ``summary``."""
        return {"summary": self.summary()}

    def _end_episode(self, info: dict[str, Any]) -> tuple[bool, bool]:
        """Mark the episode over and put :meth:`end_info` in ``info``; (terminated,
        truncated): truncated when jobs are left that the engine could still have run."""
        self._done = True
        e = self.engine
        truncated = bool(e.queue or e.running) and not e.stalled
        info.update(self.end_info())
        return not truncated, truncated

    def render(self) -> str | np.ndarray | None:
        """The frame of ``render_mode``: text (``"ansi"``) or an ``(H, W, 3)`` ``uint8``
        picture (``"rgb_array"``); see :mod:`aryl_gym.envs.render`."""
        return render_env(self)

    def action_masks(self) -> np.ndarray:
        """Valid actions now (sb3-contrib MaskablePPO protocol)."""
        return self.round.mask.copy()


class SummaryOnTruncation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Gives a step that an outer time limit truncates the keys of :meth:`EpisodeEnv.end_info`
    (``info["summary"]``, and Round-v0's ``reference_summary``), as the env gives them when
    it ends an episode itself.

    Every id of :mod:`aryl_gym.envs` is registered with this wrapper outermost, so that
    ``gym.make(env_id, max_episode_steps=N)``, whose ``TimeLimit`` the env cannot see,
    still reports the episode (training callbacks log ``info["summary"]`` of every
    finished episode). A ``TimeLimit`` wrapped around ``gym.make``'s result by hand sits
    outside it: pass ``max_episode_steps`` to ``gym.make`` instead.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if truncated and "summary" not in info:
            info = {**info, **self.env.unwrapped.end_info()}
        return obs, reward, terminated, truncated, info
