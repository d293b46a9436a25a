"""``ArylGym/Round-v0``: one decision per non-trivial scheduling round, on top of Aryl.

The agent does not build allocations itself: it *scores* jobs, and Aryl's fixed solver
turns the scores into an allocation. Each claimed round shows up to ``n_slots`` running
elastic jobs that could take extra workers (those with the longest remaining time
first) and the free GPUs; the action is one number ``a`` in ``[-1, 1]`` per slot, and
Aryl's knapsack values of that job's options are multiplied by ``weight_base ** a``
before the MCKP is solved (``baselines.aryl.ArylPolicy.value_weights``). The zero action
leaves every weight at 1.0, so an episode of zero actions *is* Aryl's run (a test checks
identical summaries). Rounds without free GPUs or without a candidate, and every
reclaim, are decided by Aryl itself.

Observation (all in ``[-1, 1]``), per slot: valid, GPUs now / maximum, remaining time at
the current rate (log scale), relative rate change after one more GPU and after as many
as are free (both where the default placer would put them: the simulator's
``rate_curves``), servers spanned, share of GPUs on lent servers; then globally: free
training and lent GPUs, queued jobs, lent servers, the inference demand now and 1, 2
and 4 hours ahead (the episode's demand series: an oracle forecast), and time of day.

Reward: an exact input-dependent baseline. Before an episode the env runs Aryl alone on
the same window (deterministic), which gives its number of jobs in the system ``N_A(t)``.
A step from ``t0`` to ``t1`` earns ``(integral of N_A - integral of N) / reward_scale``
over ``[t0, t1]``, with ``N(t)`` the agent's jobs in the system; the last step also adds
what is left after the agent's episode ends. Over an episode the rewards sum to (Aryl's
total JCT - the agent's) / ``reward_scale`` when every job finishes: positive means
better than Aryl, and the noise of the window's arrivals cancels out of every step.

Episodes: by default every reset draws a *fresh synthetic workload* (a workload seed from
the ``split``'s range of :data:`~aryl_gym.envs.workload_splits.WORKLOAD_SEED_SPLITS`,
with the env's seeded generator) and a window anywhere in it; ``reset(options=...)`` can
pin the ``workload_seed``, ``split``, ``start`` and ``window_hours`` (a curriculum also
calls :meth:`RoundEnv.set_window_hours`). ``fresh_workloads=False`` (the default with a
``trace``) cuts the windows from one workload by time, as the other envs do.
:meth:`RoundEnv.replay` runs a given episode with a scorer and no reference run: the
evaluation's and the oracle's fast path (the env is deterministic in (episode, actions)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.base import EpisodeEnv, episode_summary
from aryl_gym.envs.demand_clock import needed_at
from aryl_gym.envs.episodes import HOUR, EpisodeSpec
from aryl_gym.envs.workload_splits import (
    check_window_hours,
    check_workload_split,
    round_episode,
)
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import ALLOCATE, DecisionPoint, Engine
from aryl_gym.sim.job import DONE, Job
from aryl_gym.sim.view import ClusterView

DAY = 24 * HOUR
SLOT_FEATURES = (
    ("valid", "1 for a job in the slot, 0 for an empty slot"),
    ("gpus", "GPUs now / its maximum"),
    ("remaining", "remaining time at the current rate: log1p(hours) / log1p(168), to [-1, 1]"),
    ("gain_one", "rate with one more GPU / rate now - 1 (where the placer would put it)"),
    ("gain_free", "rate with as many more GPUs as are free (up to its maximum) / rate now - 1"),
    ("servers", "servers it spans / 8"),
    ("lent_share", "share of its GPUs on lent servers"),
)
GLOBAL_FEATURES = (
    ("free_training", "free training GPUs / training GPUs"),
    ("free_lent", "free lent GPUs / inference GPUs"),
    ("queued", "queued jobs / 100"),
    ("lent_servers", "lent servers / inference servers"),
    ("demand_now", "inference servers needed now / inference servers"),
    ("demand_1h", "... one hour ahead"),
    ("demand_2h", "... two hours ahead"),
    ("demand_4h", "... four hours ahead"),
    ("day_sin", "sin of the time of day"),
    ("day_cos", "cos of the time of day"),
)
#: bins of the free-GPU histograms (``free_histograms=True``), per pool
HISTOGRAM_BINS = 8
#: the ``free_histograms`` features, appended after :data:`GLOBAL_FEATURES`
HISTOGRAM_FEATURES = tuple(
    (
        f"free_{pool}_{b + 1}",
        f"{pool} servers with a free share of their GPUs in "
        f"(({b}/{HISTOGRAM_BINS}), {b + 1}/{HISTOGRAM_BINS}] / {pool} servers "
        "(one bin per free GPU with 8 GPUs per server)",
    )
    for pool in ("training", "lent")
    for b in range(HISTOGRAM_BINS)
)


def free_histogram_features(view: ClusterView) -> np.ndarray:
    """The :data:`HISTOGRAM_FEATURES` of ``view``: per pool (training, lent), the share of
    its servers by free GPUs, in :data:`HISTOGRAM_BINS` bins of the free fraction (lent:
    of all inference servers, so the lent pool's size shows too)."""
    c = view.scenario.cluster
    g = view.gpus_per_server
    out = np.zeros(2 * HISTOGRAM_BINS)
    for pool, (hist, n) in enumerate(
        zip(view.free_histogram, (c.training_servers, c.inference_servers), strict=True)
    ):
        for f in range(1, g + 1):
            if hist[f]:
                b = -(-HISTOGRAM_BINS * f // g) - 1  # ceil(8 f / g) - 1
                out[pool * HISTOGRAM_BINS + b] += hist[f] / max(n, 1)
    return out


class JobsInSystem:
    """``F(t)``: the integral of the number of jobs in the system from 0 to ``t``, from
    sorted submit and finish times (a job counts from its submit to its finish)."""

    def __init__(self, submits: np.ndarray, finishes: np.ndarray) -> None:
        self.s = np.sort(np.asarray(submits, float))
        self.f = np.sort(np.asarray(finishes, float))
        self.s_cum = np.concatenate([[0.0], np.cumsum(self.s)])
        self.f_cum = np.concatenate([[0.0], np.cumsum(self.f)])

    def __call__(self, t: float) -> float:
        i = int(np.searchsorted(self.s, t, side="right"))
        k = int(np.searchsorted(self.f, t, side="right"))
        return (i * t - self.s_cum[i]) - (k * t - self.f_cum[k])


def _finish_times(engine: Engine) -> np.ndarray:
    return np.fromiter((j.finish for j in engine.jobs if j is not None and j.state == DONE), float)


def _summary(engine: Engine, spec: EpisodeSpec) -> dict[str, Any]:
    """The episode's summary with its workload seed (a fresh one per episode)."""
    return {**episode_summary(engine, spec), "workload_seed": spec.workload_seed}


def _clip(x: float) -> float:
    return -1.0 if x < -1.0 else 1.0 if x > 1.0 else float(x)


class RoundEnv(EpisodeEnv):
    """Gymnasium env of Aryl's rounds with per-job value weights. Keyword arguments:

    ``scenario``, ``split``, ``workload_seed``, ``episode_hours``, ``drain_hours``,
    ``split_fractions``, ``trace``: the episodes, as in
    :class:`~aryl_gym.envs.allocate.AllocateEnv`, except that with ``fresh_workloads``
    (default: True without a ``trace``) ``split`` names the workload-seed split each reset
    draws a new workload from and ``workload_seed`` / ``split_fractions`` are unused;
    ``episode_hours`` is the window length until :meth:`set_window_hours`; ``n_slots``
    (jobs scored per round, default 16); ``weight_base`` (action ``a`` weights a job's values by
    ``weight_base ** a``, default 4); ``reward_scale`` (seconds of job time per reward
    unit, default 3600); ``policy`` (an Aryl policy name, default ``"aryl"``: the solver
    and the baseline of the reward); ``free_histograms`` (default False: the committed
    agents were trained without them) appends :data:`HISTOGRAM_FEATURES`, the free-GPU
    histograms of both pools, to the observation.
    """

    metadata = {"render_modes": []}  # no frames yet (the base class's renderers need slots)

    def __init__(
        self,
        scenario: str | ScenarioConfig = "small",
        *,
        split: str = "train",
        workload_seed: int = 0,
        episode_hours: float = 12.0,
        drain_hours: float = 48.0,
        split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
        trace: str | None = None,
        fresh_workloads: bool | None = None,
        n_slots: int = 16,
        weight_base: float = 4.0,
        reward_scale: float = 3600.0,
        policy: str = "aryl",
        free_histograms: bool = False,
    ) -> None:
        super().__init__()
        if n_slots < 1:
            raise ValueError(f"n_slots must be >= 1, got {n_slots}")
        if weight_base <= 1.0:
            raise ValueError(f"weight_base must be > 1, got {weight_base}")
        if reward_scale <= 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        self._init_episodes(
            scenario, split, workload_seed, episode_hours, drain_hours, split_fractions, trace
        )
        has_trace = trace is not None or self.scenario.trace is not None
        self.fresh_workloads = not has_trace if fresh_workloads is None else bool(fresh_workloads)
        if self.fresh_workloads and has_trace:
            raise ValueError(
                "fresh_workloads needs the synthetic generator: a trace is one workload "
                "(pass fresh_workloads=False)"
            )
        if self.fresh_workloads:
            check_workload_split(split)  # the default split of reset must be a seed range
        self.window_hours = check_window_hours(episode_hours, "episode_hours")
        self.n_slots = int(n_slots)
        self.weight_base = float(weight_base)
        self.reward_scale = float(reward_scale)
        self.policy_name = policy
        self._make_policy()  # fails early on a policy without value weights
        self.free_histograms = bool(free_histograms)
        n_obs = self.n_slots * len(SLOT_FEATURES) + len(GLOBAL_FEATURES)
        n_obs += len(HISTOGRAM_FEATURES) if self.free_histograms else 0
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(n_obs,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.n_slots,), dtype=np.float32)
        self.engine: Engine | None = None
        self.spec_: EpisodeSpec | None = None
        self._done = True
        self.check_invariants = False  # EpisodeEnv._new_engine reads it

    def _make_policy(self):
        from aryl_gym.baselines import make_policy  # baselines sit above the library

        policy = make_policy(self.policy_name)
        if not hasattr(policy, "value_weights") or not policy.elastic_scaling:
            raise ValueError(
                f"policy {self.policy_name!r} takes no value weights: it must be an Aryl "
                "policy with elastic scaling (whose knapsack the weights act on)"
            )
        return policy

    # ------------------------------------------------------------------ episodes
    def _engine(self, spec: EpisodeSpec, policy) -> Engine:
        """The engine of ``spec`` in the world of ``policy`` (as ``run_policy`` makes it)."""
        return self._new_engine(
            spec,
            policy.periodic_rounds,
            policy.elastic_scaling,
            policy.rules,
            uses_loaning=policy.uses_loaning,
        )

    def _reference(self, spec: EpisodeSpec) -> tuple[JobsInSystem, dict[str, Any], float]:
        """Aryl alone on the episode: its jobs-in-system integral, summary and end time."""
        policy = self._make_policy()
        e = self._engine(spec, policy)
        policy.reset(e.view, spec.engine_seed)
        Driver(e, policy).run_until()
        return (
            JobsInSystem(spec.jobs.submit_time, _finish_times(e)),
            _summary(e, spec),
            e.t,
        )

    def set_window_hours(self, hours: float) -> None:
        """The window length of the next resets (a curriculum's hook; in a vector env:
        ``env_method("set_window_hours", h)``); a ``window_hours`` reset option wins."""
        self.window_hours = check_window_hours(hours)

    def episode_spec(self, seed: int | None = None, options: dict | None = None) -> EpisodeSpec:
        """The episode that ``reset(seed=seed, options=options)`` plays (nothing is run)."""
        return self._draw(seeding.np_random(seed)[0], options)

    def _draw(self, rng: np.random.Generator, options: dict | None) -> EpisodeSpec:
        spec = round_episode(
            self.sampler,
            rng,
            self.split,
            options,
            fresh=self.fresh_workloads,
            window_hours=self.window_hours,
        )
        if spec.n_jobs == 0:
            raise ValueError(f"the window [{spec.start_s}, {spec.end_s}) holds no job")
        return spec

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        spec = self._draw(self.np_random, options)
        self.reference, self.reference_summary, self._ref_end = self._reference(spec)
        return self._begin(spec)

    def replay(self, spec: EpisodeSpec, act: Callable[[np.ndarray], Any]) -> dict[str, Any]:
        """Play episode ``spec`` with ``act(obs) -> action`` at every round with a choice,
        without Aryl's reference run (rewards are 0); the final summary plus ``job_time_s``,
        the jobs' total time in the system (the sum of JCTs when every job finishes)."""
        self.reference, self.reference_summary, self._ref_end = None, None, 0.0
        obs, _ = self._begin(spec)
        while True:
            obs, _, terminated, truncated, info = self.step(act(obs))
            if terminated or truncated:
                return {**info["summary"], "job_time_s": self.engine.metrics.jobs_in_system_s}

    def _begin(self, spec: EpisodeSpec):
        """Start the agent's run of ``spec``; ``reset``'s return."""
        self.spec_ = spec
        self.policy = self._make_policy()
        self.engine = e = self._engine(spec, self.policy)
        self.policy.reset(e.view, spec.engine_seed)
        self._driver = Driver(e, self.policy)
        self._t = 0.0
        self._mine = 0.0  # the agent's jobs-in-system integral up to self._t
        self._done = False
        self.rounds = 0
        self._point = self._driver.run_until(self._claims)
        if self._point is None:  # no round with a choice: the episode is Aryl's alone
            return self._zeros(), {"pass_through": True}
        return self._observe(), {"pass_through": False}

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode is over: call reset()")
        a = np.asarray(action, dtype=float).reshape(-1)
        if a.shape != (self.n_slots,) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"action must be {self.n_slots} finite numbers in [-1, 1], got {action!r}"
            )
        a = np.clip(a, -1.0, 1.0)
        info: dict[str, Any] = {}
        if self._point is not None:
            used = a[: len(self._slots)]  # slots beyond the candidates are empty
            weights = {
                job.idx: self.weight_base ** float(x)
                for job, x in zip(self._slots, used, strict=True)
            }
            self.policy.value_weights = weights
            try:
                self._driver.decide(self._point)
            finally:
                self.policy.value_weights = None
            self.rounds += 1
            self._point = self._driver.run_until(self._claims)
        t_prev, now = self._t, self.engine.t
        if self._point is None:  # the rest ran without a choice: settle to the later end
            now = max(now, self._ref_end)
        reward = self._reward(t_prev, now)
        self._t = now
        if self._point is None:
            self._done = True
            e = self.engine
            truncated = bool(e.queue or e.running) and not e.stalled
            info.update(self.end_info())
            return self._zeros(), reward, not truncated, truncated, info
        return self._observe(), reward, False, False, info

    def summary(self) -> dict[str, Any]:
        """The episode's summary so far, with its workload seed (a fresh one per episode)."""
        return {**super().summary(), "workload_seed": self.spec_.workload_seed}

    def end_info(self) -> dict[str, Any]:
        """The last step's extra ``info``: the episode's ``summary`` and Aryl's
        ``reference_summary`` of the same window (also when a time limit cuts the episode)."""
        return {**super().end_info(), "reference_summary": self.reference_summary}

    def _reward(self, t0: float, t1: float) -> float:
        # the agent's integral is the engine's own (metrics.jobs_in_system_s, the JCT
        # reward's base: episodes have no steady-state window), carried on to t1 at the
        # jobs still in the system when the engine stopped earlier
        e = self.engine
        mine = e.metrics.jobs_in_system_s + (len(e.queue) + len(e.running)) * (t1 - e.t)
        gained = mine - self._mine
        self._mine = mine
        ref = self.reference
        if ref is None:  # a replay: no reference, no reward
            return 0.0
        return ((ref(t1) - ref(t0)) - gained) / self.reward_scale

    # ------------------------------------------------------------------ rounds
    def _candidates(self, view: ClusterView) -> list[Job]:
        t = view.now
        jobs = [j for j in view.running.values() if j.elastic and j.n_gpus < j.max_gpus and j.rate]
        jobs.sort(key=lambda j: (-j.est_remaining_work(t) / j.rate, j.idx))
        return jobs[: self.n_slots]

    def _claims(self, point: DecisionPoint) -> bool:
        """A round with a choice: free GPUs and at least one job that could take them."""
        if point.kind != ALLOCATE:
            return False
        view = point.view
        if view.free_training_gpus + view.free_lent_gpus == 0:
            return False
        self._slots = self._candidates(view)
        return bool(self._slots)

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.observation_space.shape, dtype=np.float32)

    def _observe(self) -> np.ndarray:
        view = self._point.view
        free = view.free_training_gpus + view.free_lent_gpus
        slots = self._slots
        curves = view.rate_curves(slots, [min(j.max_gpus, j.n_gpus + free) for j in slots])
        obs = np.zeros((self.n_slots, len(SLOT_FEATURES)), dtype=np.float64)
        t = view.now
        for i, (job, rates) in enumerate(zip(slots, curves, strict=True)):
            r0 = job.rate
            hours = job.est_remaining_work(t) / r0 / HOUR
            obs[i] = (
                1.0,
                job.n_gpus / job.max_gpus,
                _clip(2.0 * math.log1p(hours) / math.log1p(168.0) - 1.0),
                _clip(rates[1] / r0 - 1.0) if len(rates) > 1 else -1.0,
                _clip(max(rates[1:]) / r0 - 1.0) if len(rates) > 1 else -1.0,
                _clip(len(job.placement) / 8.0),
                job.lent_gpus / job.n_gpus,
            )
        c = view.scenario.cluster
        n_inf = max(c.inference_servers, 1)
        times, needed = self.spec_.demand

        def demand(at: float) -> float:
            return needed_at(times, needed, at) / n_inf

        phase = 2.0 * math.pi * ((t + self.spec_.time_offset_s) % DAY) / DAY
        glob = (
            view.free_training_gpus / max(c.training_gpus, 1),
            view.free_lent_gpus / max(c.inference_gpus, 1),
            _clip(len(view.queued) / 100.0),
            len(view.lent_servers) / n_inf,
            _clip(demand(t)),
            _clip(demand(t + HOUR)),
            _clip(demand(t + 2 * HOUR)),
            _clip(demand(t + 4 * HOUR)),
            math.sin(phase),
            math.cos(phase),
        )
        parts = [obs.reshape(-1), np.asarray(glob, dtype=np.float64)]
        if self.free_histograms:
            parts.append(free_histogram_features(view))
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)
