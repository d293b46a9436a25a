"""``ArylGym/Reclaim-v0``: when lent servers must be returned, the agent picks them one at a
time; allocation is left to ``allocation_policy`` (Aryl's MCKP by default).

Only reclaims that are a real choice reach the agent (``k`` smaller than the lent
servers and at least one lent server busy, see
:func:`~aryl_gym.envs.observation.reclaim_is_choice`); the others are decided by the
allocation policy's own reclaim rule, and the preemptions they cause are still charged
in the reward of the next step, so the return stays minus the total reclaim cost.
"""

from __future__ import annotations

from typing import Any

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.base import EpisodeEnv, resolve_policy
from aryl_gym.envs.episodes import EpisodeSpec, sample_from_options
from aryl_gym.envs.observation import (
    RECLAIM_GLOBAL_FEATURES,
    RECLAIM_SLOT_FEATURES,
    ReclaimRound,
)
from aryl_gym.envs.protocol import ReclaimProtocol
from aryl_gym.envs.render import check_render_mode
from aryl_gym.envs.rewards import RECLAIM_REWARDS, Reward, StepOutcome, make_reward
from aryl_gym.policy import Policy
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import Engine

COSTS = ("count", "lost_gpu_seconds")


class ReclaimEnv(EpisodeEnv):
    """Gymnasium env of Aryl's reclaim decisions. Keyword arguments:

    Episodes: as :class:`~aryl_gym.envs.allocate.AllocateEnv` (``episode_hours`` defaults
    to 24 so that a window spans a diurnal rise of inference demand); a drawn window in
    which no reclaim reaches the agent is redrawn (up to ``max_redraws`` times).

    ``n_server_slots`` (default: the inference servers, at most 64); ``cost``:
    ``"count"`` (each pick costs the preemptions it causes given earlier picks) or
    ``"lost_gpu_seconds"`` (the GPU-seconds those preemptions lose); ``reward_scale``
    (cost units per reward unit; default 1 for count, 3600 for lost GPU-seconds, i.e.
    GPU-hours); ``reward`` (a :class:`~aryl_gym.envs.rewards.Reward` or a name; default:
    the one ``cost`` names, scaled by ``reward_scale``); ``allocation_policy`` (registry
    name or Policy, default ``"aryl"``);
    ``max_invalid_per_reclaim`` (after that many invalid actions in one reclaim, the
    remaining picks are made by the cheapest-server rule).
    """

    def __init__(
        self,
        scenario: str | ScenarioConfig = "small",
        *,
        split: str = "train",
        workload_seed: int = 0,
        episode_hours: float = 24.0,
        drain_hours: float = 24.0,
        split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
        trace: str | None = None,
        n_server_slots: int | None = None,
        cost: str = "count",
        reward_scale: float | None = None,
        reward: str | Reward | None = None,
        allocation_policy: str | Policy = "aryl",
        max_invalid_per_reclaim: int | None = None,
        max_redraws: int = 50,
        check_invariants: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.render_mode = check_render_mode(render_mode)
        self._init_episodes(
            scenario, split, workload_seed, episode_hours, drain_hours, split_fractions, trace
        )
        self.check_invariants = bool(check_invariants)
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
        self.cost = cost
        reward = cost if reward is None else reward
        per_hour = reward == "lost_gpu_seconds"  # GPU-seconds counted in GPU-hours
        scale = float(reward_scale or (3600.0 if per_hour else 1.0))
        self.reward = make_reward(reward, RECLAIM_REWARDS, scale=scale)
        self.reward_scale = getattr(self.reward, "scale", 1.0)
        n_slots = n_server_slots or min(max(self.scenario.cluster.inference_servers, 1), 64)
        self.round = ReclaimRound(n_slots)
        self.allocation_policy = resolve_policy(allocation_policy)
        self.max_invalid = int(max_invalid_per_reclaim or 2 * n_slots)
        self.max_redraws = int(max_redraws)
        self._init_spaces(
            n_slots, self.round.obs_size, RECLAIM_SLOT_FEATURES, RECLAIM_GLOBAL_FEATURES
        )

    # ------------------------------------------------------------------ episodes
    def _start(self, spec: EpisodeSpec) -> Engine:
        p = self.allocation_policy
        e = self._new_engine(spec, p.periodic_rounds, p.elastic_scaling, p.rules)
        p.reset(e.view, spec.engine_seed)
        self.round.clock.start_episode(spec.time_offset_s, spec.demand)
        self.protocol = ReclaimProtocol(self.round, self.cost, self.max_invalid)
        self._driver = Driver(e, p)
        return e

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        pinned = bool(options) and ("start" in options)
        for _ in range(1 if pinned else self.max_redraws):
            spec = sample_from_options(self.sampler, self.np_random, self.split, options)
            self.spec_ = spec
            self.engine = self._start(spec)
            if not self._advance():
                break
        else:
            raise RuntimeError(
                "no reclaim reached the agent in the drawn window(s); use longer episode_hours "
                "or another start"
            )
        self.preemptions = 0
        self.lost_gpu_seconds = 0.0
        self._done = False
        return self.round.obs.copy(), self._info(False)

    def step(self, action):
        self._check_not_done()
        proto = self.protocol
        invalid, n_pre, lost = proto.step(action)
        ended = False
        if proto.done:
            self.engine.decide_reclaim(proto.picked)  # does what the picks' what-ifs said
            ended = self._advance()
        # costs of reclaims decided without the agent since the last step
        un_pre, un_lost = self._unpaid
        self._unpaid = (0, 0.0)
        tot_pre, tot_lost = n_pre + un_pre, lost + un_lost
        self.preemptions += int(tot_pre)
        self.lost_gpu_seconds += tot_lost
        reward = self.reward(StepOutcome(self.engine, tot_pre, tot_lost))
        info = self._info(invalid)
        terminated, truncated = self._end_episode(info) if ended else (False, False)
        return self.round.obs.copy(), float(reward), terminated, truncated, info

    # ------------------------------------------------------------------ internals
    def _advance(self) -> bool:
        """Run to the next reclaim the agent decides (the allocation policy decides the
        rest; the preemptions of its reclaims are unpaid until the next step); True at
        the episode end."""
        point = self._driver.run_until(self.protocol.claims)
        last = self._driver.last
        self._unpaid = (last.reclaim_preemptions, last.reclaim_lost_gpu_seconds)
        if point is None:
            self.round.obs[:] = 0.0
            self.round.mask[:] = False
            return True
        return False

    @property
    def reclaims(self) -> int:
        """Reclaims that reached the agent in this episode."""
        return self.protocol.reclaims

    @property
    def invalid_actions(self) -> int:
        """The agent's invalid actions in this episode."""
        return self.protocol.invalid_actions

    def _info(self, invalid: bool) -> dict[str, Any]:
        return {
            "action_mask": self.round.mask.copy(),
            "invalid": invalid,
            "invalid_actions": self.invalid_actions,
            "reclaims": self.reclaims,
            "picks_left": self.round.picks_left,
            "sim_time_s": self.engine.t,
            "preemptions": self.preemptions,
            "lost_gpu_seconds": self.lost_gpu_seconds,
        }
