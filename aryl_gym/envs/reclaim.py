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
    reclaim_is_choice,
)
from aryl_gym.envs.render import check_render_mode
from aryl_gym.policy import Policy
from aryl_gym.sim.engine import RECLAIM, Engine

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
    GPU-hours); ``allocation_policy`` (registry name or Policy, default ``"aryl"``);
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
        self.reward_scale = float(reward_scale or (1.0 if cost == "count" else 3600.0))
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
        return e

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.invalid_actions = self.preemptions = 0
        self.lost_gpu_seconds = 0.0
        pinned = bool(options) and ("start" in options)
        for _ in range(1 if pinned else self.max_redraws):
            spec = sample_from_options(self.sampler, self.np_random, self.split, options)
            self.spec_ = spec
            self.engine = self._start(spec)
            self._unpaid = (0, 0.0)
            self.reclaims = 0
            if not self._advance():
                break
        else:
            raise RuntimeError(
                "no reclaim reached the agent in the drawn window(s); use longer episode_hours "
                "or another start"
            )
        self.invalid_actions = 0
        self.preemptions = 0
        self.lost_gpu_seconds = 0.0
        self._done = False
        return self.round.obs.copy(), self._info(False)

    def step(self, action):
        self._check_not_done()
        rnd = self.round
        a = int(action)
        n_pre, lost = 0.0, 0.0
        invalid = not (0 <= a < rnd.n_slots and rnd.mask[a])
        if invalid:
            self.invalid_actions += 1
            self._invalid_here += 1
            if self._invalid_here >= self.max_invalid:
                n_pre, lost = rnd.pick_cheapest_rest(self.cost)
        else:
            _, n_pre, lost = rnd.pick(a)
        ended = False
        self._paid_this = (self._paid_this[0] + n_pre, self._paid_this[1] + lost)
        if rnd.picks_left == 0:
            self.engine.decide_reclaim(rnd.picked)  # does what the picks' what-ifs said
            ended = self._advance()
        # costs of reclaims decided without the agent since the last step
        un_pre, un_lost = self._unpaid
        self._unpaid = (0, 0.0)
        tot_pre, tot_lost = n_pre + un_pre, lost + un_lost
        self.preemptions += int(tot_pre)
        self.lost_gpu_seconds += tot_lost
        c = tot_pre if self.cost == "count" else tot_lost
        reward = -c / self.reward_scale
        info = self._info(invalid)
        terminated, truncated = self._end_episode(info) if ended else (False, False)
        return rnd.obs.copy(), float(reward), terminated, truncated, info

    # ------------------------------------------------------------------ internals
    def _advance(self) -> bool:
        """Run to the next reclaim the agent decides; True at the episode end."""
        e = self.engine
        p = self.allocation_policy
        while True:
            point = e.advance()
            if point is None:
                self.round.obs[:] = 0.0
                self.round.mask[:] = False
                return True
            if point.kind == RECLAIM:
                if reclaim_is_choice(point.view, point.k):
                    self.round.begin(point.view, point.k)
                    self.reclaims += 1
                    self._invalid_here = 0
                    self._paid_this = (0.0, 0.0)
                    return False
                eff = e.decide_reclaim(p.reclaim(point.view, point.k))
                self._unpaid = (
                    self._unpaid[0] + len(eff.preempted),
                    self._unpaid[1] + eff.lost_gpu_seconds,
                )
            else:
                e.decide_allocation(p.allocate(point.view))

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
