"""``ArylGym/Allocate-v0``: the agent makes the allocation decisions of each scheduling round.

One step = one action on the round's pending allocation (see
:class:`~aryl_gym.envs.observation.AllocationRound`); the commit action hands it to the
engine, which runs until the next allocate point. Reclaims in between are decided by
``reclaim_policy`` (Aryl's greedy by default). Rewards, episodes and every feature are
documented in ``docs/envs.md``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.base import EpisodeEnv, episode_summary, resolve_policy
from aryl_gym.envs.episodes import sample_from_options
from aryl_gym.envs.observation import (
    GLOBAL_FEATURES,
    N_SLOT_F,
    SLOT_FEATURES,
    AllocationRound,
)
from aryl_gym.envs.protocol import AllocateProtocol, OffTurnPolicy
from aryl_gym.envs.render import check_render_mode
from aryl_gym.envs.rewards import ALLOCATE_REWARDS, Reward, StepOutcome, make_reward
from aryl_gym.policy import Policy
from aryl_gym.sim.driver import Driver


def default_gpu_scale(scenario: ScenarioConfig) -> float:
    """Normaliser of GPU counts: the largest ``max_gpus`` the scenario's generator makes
    (2 x the largest request), at most the two pools' GPUs."""
    c = scenario.cluster
    top = 2 * max(scenario.workload.gpu_values)
    return float(min(top, c.training_gpus + c.inference_gpus))


class AllocateEnv(EpisodeEnv):
    """Gymnasium env of Aryl's allocation decisions. Keyword arguments:

    Episodes (see :mod:`aryl_gym.envs.episodes`): ``scenario``, ``split`` (default split of
    ``reset``), ``workload_seed``, ``episode_hours``, ``drain_hours``, ``split_fractions``,
    ``trace``.

    Actions and observations (see :class:`AllocationRound`): ``queue_slots``,
    ``running_slots``, ``deltas``, ``max_actions_per_round``, ``gpu_scale``,
    ``monotone_rounds`` (default True: within a round a job's target moves one way, so no
    op undoes another) and ``allow_preemption`` (default False: the agent cannot stop a
    running job).

    Rewards: ``reward`` (a :class:`~aryl_gym.envs.rewards.Reward` or a name; default
    ``"jct"``: :class:`~aryl_gym.envs.rewards.JobsInSystem`), configured by
    ``reward_scale`` (seconds per reward unit; the return is ``-(sum of the jobs' time in
    system) / reward_scale``, i.e. minus total JCT in hours by default) and
    ``preemption_penalty`` (job-seconds charged per preemption, by the agent's stops and
    by reclaims alike; default 0).

    Simulator: ``reclaim_policy`` (registry name or Policy; decides every reclaim),
    ``periodic_rounds`` (default False: a round at every event that changes the cluster,
    i.e. arrivals, finishes, lends and reclaims; True adds a round every
    ``round_interval_s`` while jobs are in the system, as Aryl asks),
    ``inelastic_on_lent`` (placement rule, default True as in Aryl), ``skip_trivial_rounds``
    (rounds where only commit is valid are committed without a step, except the first of
    an episode), ``check_invariants``.

    The defaults of ``periodic_rounds``, ``monotone_rounds`` and ``allow_preemption`` are
    the settings under which MaskablePPO with stable-baselines3's defaults learns to commit
    rounds in a few thousand steps (measured: ``docs/agents.md``, "Defaults that learn");
    ``periodic_rounds=True, monotone_rounds=False, allow_preemption=True`` is the env
    before them (the committed agents' ``config.yaml`` pin it).
    """

    def __init__(
        self,
        scenario: str | ScenarioConfig = "small",
        *,
        split: str = "train",
        workload_seed: int = 0,
        episode_hours: float = 6.0,
        drain_hours: float = 24.0,
        split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
        trace: str | None = None,
        queue_slots: int = 16,
        running_slots: int = 16,
        deltas: tuple[int, ...] = (1, 2, 4, 8, 16),
        max_actions_per_round: int | None = None,
        gpu_scale: float | None = None,
        monotone_rounds: bool = True,
        allow_preemption: bool = False,
        reward_scale: float = 3600.0,
        preemption_penalty: float = 0.0,
        reward: str | Reward = "jct",
        reclaim_policy: str | Policy = "aryl",
        periodic_rounds: bool = False,
        inelastic_on_lent: bool = True,
        skip_trivial_rounds: bool = True,
        check_invariants: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.render_mode = check_render_mode(render_mode)
        self._init_episodes(
            scenario, split, workload_seed, episode_hours, drain_hours, split_fractions, trace
        )
        self.check_invariants = bool(check_invariants)
        self.reclaim_policy = resolve_policy(reclaim_policy)
        # the placer's rules are those of the reclaim policy's world (Aryl's by default:
        # its readings for slower lent GPUs), with the env's choice for inelastic jobs
        self.rules = replace(self.reclaim_policy.rules, inelastic_on_lent=inelastic_on_lent)
        self.round = AllocationRound(
            queue_slots=queue_slots,
            running_slots=running_slots,
            deltas=deltas,
            rules=self.rules,
            max_actions_per_round=max_actions_per_round,
            gpu_scale=gpu_scale or default_gpu_scale(self.scenario),
            monotone_rounds=monotone_rounds,
            allow_preemption=allow_preemption,
        )
        self.reward = make_reward(
            reward, ALLOCATE_REWARDS, scale=reward_scale, preemption_penalty=preemption_penalty
        )
        self.reward_scale = getattr(self.reward, "scale", 1.0)
        self.periodic_rounds = bool(periodic_rounds)
        self.skip_trivial = bool(skip_trivial_rounds)
        self._init_spaces(self.round.n_actions, self.round.obs_size, SLOT_FEATURES, GLOBAL_FEATURES)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        spec = sample_from_options(self.sampler, self.np_random, self.split, options)
        if spec.n_jobs == 0:
            raise ValueError(
                f"the window [{spec.start_s}, {spec.end_s}) of split {spec.split!r} holds no job"
            )
        self.spec_ = spec
        self.engine = e = self._new_engine(spec, self.periodic_rounds, True, self.rules)
        self.reclaim_policy.reset(e.view, spec.engine_seed)
        self.round.clock.start_episode(spec.time_offset_s, spec.demand)
        self.protocol = AllocateProtocol(self.round, self.skip_trivial)
        self._driver = Driver(e, OffTurnPolicy(self.reclaim_policy))
        self.reward.reset(e)
        self._preempt_unpaid = 0
        self.preemptions = 0
        self._done = False
        if self._advance():  # cannot happen: a job's arrival makes a round
            raise RuntimeError(f"episode {spec.split}@{spec.start_s} ended before its first round")
        return self.round.obs.copy(), self._info(False)

    def step(self, action):
        self._check_not_done()
        rnd = self.round
        alloc = self.protocol.step(action)
        invalid = rnd.last_invalid
        if alloc is None:
            return rnd.obs.copy(), 0.0, False, False, self._info(invalid)
        # commit: hand the pending allocation to the engine, run to the next round
        e = self.engine
        self._preempt_unpaid += rnd.stops_of_running()
        e.decide_allocation(alloc)
        ended = self._advance()
        reward = self.reward(StepOutcome(e, preemptions=self._preempt_unpaid))
        self.preemptions += self._preempt_unpaid
        self._preempt_unpaid = 0
        info = self._info(invalid)
        terminated, truncated = self._end_episode(info) if ended else (False, False)
        return rnd.obs.copy(), float(reward), terminated, truncated, info

    # ------------------------------------------------------------------ internals
    def _advance(self) -> bool:
        """Run the engine to the next round the agent decides (reclaims and skipped rounds
        are decided on the way); True at the episode end."""
        point = self._driver.run_until(self.protocol.claims)
        self._preempt_unpaid += self._driver.last.reclaim_preemptions
        if point is None:
            self.round.end_episode()
            return True
        return False

    @property
    def steps(self) -> int:
        """The agent's steps in this episode."""
        return self.protocol.steps

    @property
    def invalid_actions(self) -> int:
        """The agent's invalid actions in this episode."""
        return self.protocol.invalid_actions

    def _info(self, invalid: bool) -> dict[str, Any]:
        e = self.engine
        return {
            "action_mask": self.round.mask.copy(),
            "invalid": invalid,
            "invalid_actions": self.invalid_actions,
            "rounds": self.round.rounds,
            "commits": self.protocol.commits,
            "sim_time_s": e.t,
            "preemptions": self.preemptions,
        }

    def slot_features(self, obs: np.ndarray) -> np.ndarray:
        """The slot block of an observation as an ``(n_slots, n_features)`` view."""
        return obs[: self.round.n_slots * N_SLOT_F].reshape(self.round.n_slots, N_SLOT_F)


# defined here before the envs shared them through aryl_gym.envs.base
__all__ = ["AllocateEnv", "default_gpu_scale", "episode_summary", "resolve_policy"]
