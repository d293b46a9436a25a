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
from aryl_gym.envs.protocol import ReclaimProtocol, as_action
from aryl_gym.envs.render import check_render_mode
from aryl_gym.envs.rewards import RECLAIM_REWARDS, Reward, StepOutcome, make_reward
from aryl_gym.policy import Policy
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import Engine

COSTS = ("count", "lost_gpu_seconds")


class ReclaimEnv(EpisodeEnv):
    """Gymnasium env of Aryl's reclaim decisions. Keyword arguments:

    Episodes: as :class:`~aryl_gym.envs.allocate.AllocateEnv`, 6 h windows by default
    (the committed agent's; 24 h windows are longer than ``small``'s 14.4 h test split, so
    every test seed gave the same clipped window: ``docs/agents.md``); a drawn window in
    which no reclaim reaches the agent is redrawn (up to ``max_redraws`` times; a window
    whose inference demand never leaves two servers to lend cannot hold a choice and is
    redrawn without being simulated). When no draw holds one (always on ``tiny``, whose
    inference pool never lends more than one server; or a pinned ``start``), the last
    window is a *pass-through* episode: ``reset`` returns the all-zero observation with
    only slot 0 valid, and the first step, whatever its action, ends the episode with the
    allocation policy having decided every reclaim (its reward charges their costs;
    ``info["pass_through"]`` is True in such an episode).

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
        episode_hours: float = 6.0,
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
        self._pass_through = False
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

    def _may_hold_a_choice(self, spec: EpisodeSpec) -> bool:
        """Whether a reclaim of episode ``spec`` can be a choice at all: that needs two lent
        servers, so an inference demand that leaves at least two idle at some point."""
        c = spec.scenario.cluster
        reserve = spec.scenario.inference.reserve_servers
        least_needed = int(spec.demand[1].min()) if len(spec.demand[1]) else 0
        return c.inference_servers - reserve - least_needed >= 2

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        pinned = bool(options) and ("start" in options)
        for _ in range(1 if pinned else max(self.max_redraws, 1)):
            spec = sample_from_options(self.sampler, self.np_random, self.split, options)
            self.spec_ = spec
            simulated = self._may_hold_a_choice(spec)
            if simulated:
                self.engine = self._start(spec)
                if not self._advance():
                    self._pass_through = False
                    break
        else:
            # no reclaim reached the agent: the last window as a pass-through episode
            if not simulated:
                self.engine = self._start(spec)
                self._advance()  # to the end: no reclaim can reach the agent
            self._pass_through = True
            self.round.mask[0] = True  # the one action of a pass-through step
        self.preemptions = 0
        self.lost_gpu_seconds = 0.0
        self._done = False
        return self.round.obs.copy(), self._info(False)

    def step(self, action):
        self._check_not_done()
        proto = self.protocol
        if self._pass_through:  # the episode ran to its end in reset
            as_action(action, "Reclaim-v0")
            invalid, n_pre, lost, ended = False, 0.0, 0.0, True
        else:
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
    def pass_through(self) -> bool:
        """Whether this episode is a pass-through one (no reclaim reaches the agent; its one
        step ends it, whatever the action)."""
        return self._pass_through

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
            "pass_through": self._pass_through,
        }
