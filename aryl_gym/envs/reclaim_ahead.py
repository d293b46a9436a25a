"""``ArylGym/ReclaimAhead-v0``: reclaim with foresight (issue #12, item 4).

Reclaim-v0 asks only *which* lent servers go back when the inference side reclaims them,
and Aryl's greedy already picks the fewest preemptions there. This env also lets the agent
act **ahead of the demand**: before a rise it may return a lent server early (when its
jobs just checkpointed, or scale in, or it is empty: a server lent a moment ago is empty,
so returning it is *lending less*) and hold it back from training; the next demand rise
takes the held servers first (:meth:`Engine.return_early
<aryl_gym.sim.engine.Engine.return_early>`), and *release* lends them again.

Decision points (allocation stays Aryl's, or ``policy``'s):

* **pick**: a reclaim that is a real choice (Reclaim-v0's rule); one step per server.
* **ahead**: an allocate point, before the policy allocates, with a server lent or held,
  at most one per ``ahead_interval_s`` of simulated time, and always right after a server
  is lent; while the forecast says a lent server must go back within ``alert_s``, every
  allocate point (Aryl's rounds come about once a minute), so that a job's checkpoint can
  be caught. Steps at one point go on until ``follow`` or ``release``.

Actions (``Discrete(n_slots + 2)``, masked: ``action_masks()``): slot ``i`` picks (pick) or
returns early (ahead) that slot's server; ``follow`` (= ``n_slots``) does what Aryl does,
its reclaim's next server at a pick point (the policy's own plan of that reclaim) and
nothing at an ahead point; ``release`` (= ``n_slots + 1``) lends the held servers again.
An action that is not an integer raises ``InvalidAction``; a masked one is counted
(``info["invalid_actions"]``) and does nothing at a pick point (after
``max_invalid_per_point`` of them the reclaim follows Aryl), ``follow`` at an ahead point.
So **always ``follow`` is Aryl's run**, to the last bit (a test checks the summaries).

Observation: :mod:`aryl_gym.envs.reclaim_ahead_round` (per lent server: what returning it
now would preempt and lose, its jobs' checkpoint age and remaining time; globally the
servers the demand takes back within 1, 2 and 4 h from the episode's demand series: an
*oracle* forecast, as Round-v0's).

Reward: an exact input-dependent baseline, as Round-v0's. Before an episode the env runs
Aryl alone on the same window, recording its lost GPU-seconds ``L_A(t)`` and its jobs in
the system ``N_A(t)``. A step from ``t0`` to ``t1`` earns::

    [(L_A(t1) - L_A(t0)) - (L(t1) - L(t0))] / 3600
      + jct_weight * [(integral of N_A - integral of N) over [t0, t1]] / 3600

(``L``, ``N``: the agent's run; the last step settles both runs to the later end). Over an
episode the rewards sum to ``(Aryl's lost GPU-hours - the agent's) + jct_weight x (Aryl's
total JCT - the agent's, in hours)`` when every job finishes (``info["objective"]``
gives both terms; a test checks the sum).

Episodes: as Round-v0, every reset draws a fresh synthetic workload from the ``split``'s
workload-seed range (:mod:`aryl_gym.envs.workload_splits`: the held-out ``val`` and
``test`` workloads are never drawn by a training env) and a window anywhere in it;
``reset(options=...)`` pins ``workload_seed``, ``split``, ``start``, ``window_hours``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.base import EpisodeEnv, episode_summary
from aryl_gym.envs.episodes import EpisodeSpec
from aryl_gym.envs.protocol import as_action
from aryl_gym.envs.reclaim_ahead_round import (
    AHEAD,
    GLOBAL_FEATURES,
    PICK,
    SLOT_FEATURES,
    AheadRound,
    DemandForecast,
)
from aryl_gym.envs.reclaim_round import reclaim_is_choice
from aryl_gym.envs.round import JobsInSystem, _finish_times
from aryl_gym.envs.workload_splits import check_window_hours, check_workload_split, round_episode
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import ALLOCATE, RECLAIM, DecisionPoint, Engine

ENV_ID = "ReclaimAhead-v0"


class StepFunction:
    """``L(t)``: a non-decreasing total recorded at instants (the last record at or before
    ``t``; 0 before the first)."""

    def __init__(self, times: list[float], values: list[float]) -> None:
        self.t = np.asarray(times, float)
        self.v = np.asarray(values, float)

    def __call__(self, t: float) -> float:
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        return float(self.v[i]) if i >= 0 else 0.0


class ReclaimAheadEnv(EpisodeEnv):
    """Gymnasium env of reclaims with foresight (module doc). Keyword arguments:
    ``scenario``; ``split`` (workload-seed split the resets draw from); ``window_hours``
    and ``drain_hours`` (the episode: jobs submitted in the window, run until they finish
    or the window plus the drain has passed); ``n_server_slots`` (default: the inference
    servers, at most 32); ``ahead_interval_s`` (least simulated time between two ahead
    points without a new lend); ``alert_s`` (every allocate point is an ahead point while
    a lent server is due back within it; 0: never); ``jct_weight`` (reward weight of a job-hour in the system
    against a lost GPU-hour); ``policy`` (allocation and reference, an Aryl registry
    name); ``max_invalid_per_point``; ``check_invariants``."""

    metadata = {"render_modes": []}
    #: Actions after the per-slot ones (``follow``, ``release``): SetNet's global logits.
    extra_actions = 2

    def __init__(
        self,
        scenario: str | ScenarioConfig = "small",
        *,
        split: str = "train",
        window_hours: float = 6.0,
        drain_hours: float = 24.0,
        n_server_slots: int | None = None,
        ahead_interval_s: float = 900.0,
        alert_s: float = 3600.0,
        jct_weight: float = 1.0,
        policy: str = "aryl",
        max_invalid_per_point: int | None = None,
        check_invariants: bool = False,
    ) -> None:
        super().__init__()
        check_workload_split(split)
        self.window_hours = check_window_hours(window_hours, "window_hours")
        self._init_episodes(
            scenario, split, 0, self.window_hours, drain_hours, (0.6, 0.2, 0.2), None
        )
        if not (math.isfinite(ahead_interval_s) and ahead_interval_s > 0):
            raise ValueError(
                f"ahead_interval_s must be a finite number > 0, got {ahead_interval_s}"
            )
        if not (math.isfinite(alert_s) and alert_s >= 0):
            raise ValueError(f"alert_s must be a finite number >= 0, got {alert_s}")
        if not (math.isfinite(jct_weight) and jct_weight >= 0):
            raise ValueError(f"jct_weight must be a finite number >= 0, got {jct_weight}")
        n_inf = self.scenario.cluster.inference_servers
        n_slots = int(n_server_slots or min(max(n_inf, 1), 32))
        if n_slots < 1:
            raise ValueError(f"n_server_slots must be >= 1, got {n_server_slots}")
        self.ahead_interval_s = float(ahead_interval_s)
        self.alert_s = float(alert_s)
        self.jct_weight = float(jct_weight)
        self.policy_name = policy
        self._make_policy()  # fails early on an unknown name
        self.check_invariants = bool(check_invariants)
        self.round = AheadRound(n_slots)
        self.max_invalid = int(max_invalid_per_point or 2 * n_slots)
        self._init_spaces(self.round.n_actions, self.round.obs_size, SLOT_FEATURES, GLOBAL_FEATURES)

    def _make_policy(self):
        from aryl_gym.baselines import make_policy  # baselines sit above the library

        return make_policy(self.policy_name)

    # ------------------------------------------------------------------ episodes
    def _engine(self, spec: EpisodeSpec, policy) -> Engine:
        e = self._new_engine(spec, policy.periodic_rounds, policy.elastic_scaling, policy.rules)
        policy.reset(e.view, spec.engine_seed)
        return e

    def _reference(self, spec: EpisodeSpec) -> None:
        """Aryl alone on ``spec``: its lost GPU-seconds over time, jobs-in-system integral,
        summary and end time."""
        policy = self._make_policy()
        e = self._engine(spec, policy)
        times, lost = [], []

        def record(point: DecisionPoint) -> bool:  # every decision point: the total so far
            times.append(e.t)
            lost.append(e.lost_gpu_seconds)
            return False

        Driver(e, policy).run_until(record)
        times.append(e.t)
        lost.append(e.lost_gpu_seconds)
        self.ref_lost = StepFunction(times, lost)
        self.ref_jobs = JobsInSystem(spec.jobs.submit_time, _finish_times(e))
        self.reference_summary = {**episode_summary(e, spec), "workload_seed": spec.workload_seed}
        self._ref_end = e.t

    def episode_spec(self, seed: int | None = None, options: dict | None = None) -> EpisodeSpec:
        """The episode ``reset(seed=seed, options=options)`` plays (nothing is run)."""
        from gymnasium.utils import seeding

        return self._draw(seeding.np_random(seed)[0], options)

    def _draw(self, rng: np.random.Generator, options: dict | None) -> EpisodeSpec:
        return round_episode(
            self.sampler, rng, self.split, options, fresh=True, window_hours=self.window_hours
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        spec = self.spec_ = self._draw(self.np_random, options)
        self._reference(spec)
        self.policy = self._make_policy()
        self.engine = e = self._engine(spec, self.policy)
        self._driver = Driver(e, self.policy)
        c = spec.scenario.cluster
        self.forecast = DemandForecast(
            spec.demand, c.inference_servers - spec.scenario.inference.reserve_servers
        )
        self._t = 0.0
        self._mine_jobs = 0.0  # the agent's jobs-in-system integral up to self._t
        self._mine_lost = 0.0  # the agent's lost GPU-seconds up to self._t
        self._last_ahead = -math.inf
        self._seen: set[int] = set()
        self.counts = dict(pick_points=0, ahead_points=0, early_returns=0, releases=0)
        self.invalid_actions = 0
        self._invalid_here = 0
        self._done = False
        self._advance()
        self.pass_through = self._point is None
        return self.round.obs.copy(), self._info(False)

    def step(self, action):
        self._check_not_done()
        a = as_action(action, ENV_ID)
        rr = self.round
        invalid = not (0 <= a < rr.n_actions and rr.mask[a])
        if self._point is not None:
            if invalid:
                self.invalid_actions += 1
                self._invalid_here += 1
            if rr.mode == PICK:
                self._pick_step(None if invalid else a)
            else:
                self._ahead_step(rr.follow if invalid else a)
        t_prev, now = self._t, self.engine.t
        ended = self._point is None
        if ended:  # the rest ran without a choice: settle both runs to the later end
            now = max(now, self._ref_end)
        reward = self._reward(t_prev, now)
        self._t = now
        info = self._info(invalid)
        if ended:
            terminated, truncated = self._end_episode(info)
            return self.round.obs.copy(), reward, terminated, truncated, info
        return self.round.obs.copy(), reward, False, False, info

    # ------------------------------------------------------------------ the two kinds of step
    def _pick_step(self, a: int | None) -> None:
        rr = self.round
        if a is None:
            if self._invalid_here < self.max_invalid:
                return  # a no-op: the same reclaim waits
            while rr.picks_left > 0:  # too many invalid actions: Aryl picks the rest
                rr.pick(rr.follow_server())
        else:
            rr.pick(rr.follow_server() if a == rr.follow else rr.slots[a])
        if rr.picks_left == 0:
            self.engine.decide_reclaim(rr.picked)  # what the picks' what-ifs said
            self._advance()

    def _ahead_step(self, a: int) -> None:
        rr, e = self.round, self.engine
        if a < rr.n_slots:  # return that server now; the same point continues
            e.return_early([rr.slots[a]])
            self.counts["early_returns"] += 1
            self._begin(AHEAD, 0, [])
            return
        if a == rr.release:
            e.release_holds()
            self.counts["releases"] += 1
        self._seen = set(e.view.lent_servers)  # lends up to now were offered
        self._driver.decide(self._point)  # the policy allocates the round
        self._advance()

    # ------------------------------------------------------------------ internals
    def _claims(self, point: DecisionPoint) -> bool:
        """The driver's stop predicate: the points the agent decides (module doc)."""
        view = point.view
        if point.kind == RECLAIM:
            if not reclaim_is_choice(view, point.k):
                return False
            self.counts["pick_points"] += 1
            self._begin(PICK, point.k, list(self.policy.reclaim(view, point.k)))
            return True
        if point.kind != ALLOCATE:
            return False
        lent = view.lent_servers
        if not lent and not view.held_servers:
            return False
        new_lend = any(s not in self._seen for s in lent)
        now = view.now
        if not new_lend and now - self._last_ahead < self.ahead_interval_s:
            alert = self.alert_s > 0 and self.forecast.min_loanable(now, now + self.alert_s) < len(
                lent
            )
            if not alert:
                return False
        self._last_ahead = view.now
        self.counts["ahead_points"] += 1
        self._begin(AHEAD, 0, [])
        return True

    def _begin(self, mode: int, k: int, plan: list[int]) -> None:
        self._invalid_here = 0
        self.round.begin(self.engine.view, mode, k, plan, self.forecast, self.spec_.time_offset_s)

    def _advance(self) -> None:
        self._point = self._driver.run_until(self._claims)
        if self._point is None:
            self.round.clear()

    def _reward(self, t0: float, t1: float) -> float:
        e = self.engine
        # the agent's integrals are the engine's own, carried on to t1 at the jobs still in
        # the system when the engine stopped earlier (as Round-v0)
        jobs = e.metrics.jobs_in_system_s + (len(e.queue) + len(e.running)) * (t1 - e.t)
        d_jobs, self._mine_jobs = jobs - self._mine_jobs, jobs
        d_lost, self._mine_lost = e.lost_gpu_seconds - self._mine_lost, e.lost_gpu_seconds
        lost_gain = (self.ref_lost(t1) - self.ref_lost(t0)) - d_lost
        jct_gain = (self.ref_jobs(t1) - self.ref_jobs(t0)) - d_jobs
        return float((lost_gain + self.jct_weight * jct_gain) / 3600.0)

    def objective(self) -> dict[str, float]:
        """The two terms the rewards of the episode so far add up to (hours): Aryl's lost
        GPU-hours minus the agent's, and Aryl's job-hours in the system minus the agent's
        (their total JCT difference when every job has finished), both up to ``_t``."""
        return {
            "lost_gpu_hours_gain": (self.ref_lost(self._t) - self._mine_lost) / 3600.0,
            "job_hours_gain": (self.ref_jobs(self._t) - self._mine_jobs) / 3600.0,
        }

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "workload_seed": self.spec_.workload_seed}

    def end_info(self) -> dict[str, Any]:
        """The last step's extra keys: ``summary``, Aryl's ``reference_summary`` of the same
        window, the ``objective`` terms and the decision ``counts``."""
        return {
            **super().end_info(),
            "reference_summary": self.reference_summary,
            "objective": self.objective(),
            "counts": dict(self.counts),
        }

    def _info(self, invalid: bool) -> dict[str, Any]:
        return {
            "action_mask": self.round.mask.copy(),
            "invalid": invalid,
            "invalid_actions": self.invalid_actions,
            "mode": "pick" if self.round.mode == PICK else "ahead",
            "held_servers": self.engine.held,
            "sim_time_s": self.engine.t,
            "pass_through": self._point is None,
        }
