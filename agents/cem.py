"""The cross-entropy method over a linear Round-v0 scorer, and the oracle built on it.

:func:`cem` is the search shared by the oracle (one window, its own future) and the
trainer (:mod:`aryl_gym.agents.cem_train`, training workloads): a Gaussian over
``theta`` whose mean and per-dimension spread are refitted to the best ``elite_frac`` of
each population. Row 0 of every population is the current mean itself, so the first
candidate is ``x0`` (``theta = 0``: Aryl) and each iteration says how good its mean is.

:func:`oracle_search` is an *upper bound, not an agent*: it replays one window in the
simulator for every candidate (Round-v0 is deterministic in (episode, actions)) and keeps
the best, i.e. it tunes the scorer on the very jobs it is scored on. Because ``theta = 0``
is its first candidate, it is never worse than Aryl. It is a lower bound of the true
optimum of the action space (a search over one small scorer family), so the headroom it
shows is headroom that exists, at least.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aryl_gym.agents.round_scorers import LINEAR_FEATURES, LinearScorer

from aryl_gym.envs.episodes import EpisodeSpec
from aryl_gym.envs.round import RoundEnv

#: ``evaluate(population, iteration) -> fitness`` (higher is better), one per row.
Evaluate = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class CemConfig:
    """The search's size and seed: ``population`` candidates per iteration (the mean
    included), ``iterations``, the ``elite_frac`` refitted on, the initial spread
    ``sigma0`` and its floor ``sigma_min`` (keeps the search from collapsing early)."""

    population: int = 16
    iterations: int = 8
    elite_frac: float = 0.25
    sigma0: float = 0.5
    sigma_min: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ValueError(f"CEM population must be >= 2, got {self.population}")
        if self.iterations < 1:
            raise ValueError(f"CEM iterations must be >= 1, got {self.iterations}")
        if not 0.0 < self.elite_frac <= 1.0:
            raise ValueError(f"CEM elite fraction must lie in (0, 1], got {self.elite_frac}")
        for name in ("sigma0", "sigma_min"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"CEM {name} must be a finite number >= 0, got {v}")

    @property
    def n_elite(self) -> int:
        return max(1, int(round(self.elite_frac * self.population)))


@dataclass
class CemResult:
    """``best_theta`` / ``best_fitness``: the best candidate evaluated (comparable across
    iterations only when ``evaluate`` ignores the iteration, as the oracle's does);
    ``means[i]`` the mean evaluated in iteration ``i`` (row 0) and ``mean_fitness[i]`` its
    fitness; ``final_mean`` the mean after the last refit; ``evaluations`` in all."""

    best_theta: np.ndarray
    best_fitness: float
    means: list[np.ndarray] = field(default_factory=list)
    mean_fitness: list[float] = field(default_factory=list)
    final_mean: np.ndarray | None = None
    evaluations: int = 0


def cem(
    evaluate: Evaluate,
    dim: int,
    cfg: CemConfig,
    x0: np.ndarray | None = None,
    *,
    stop_when_flat: bool = False,
) -> CemResult:
    """Maximise ``evaluate`` over ``R^dim`` from ``x0`` (default 0); seeded by ``cfg.seed``.
    ``stop_when_flat``: stop after a first population whose fitnesses are all equal (on a
    fixed objective that means ``theta`` changes nothing there, e.g. a window where the
    free GPUs always suffice, and further replays would be wasted)."""
    rng = np.random.default_rng(cfg.seed)
    mean = np.zeros(dim) if x0 is None else np.asarray(x0, dtype=float).reshape(dim).copy()
    std = np.full(dim, cfg.sigma0)
    res = CemResult(mean.copy(), -math.inf)
    for it in range(cfg.iterations):
        pop = mean + std * rng.standard_normal((cfg.population, dim))
        pop[0] = mean
        fit = np.asarray(evaluate(pop, it), dtype=float)
        if fit.shape != (cfg.population,) or not np.all(np.isfinite(fit)):
            raise ValueError(f"CEM iteration {it}: fitness must be {cfg.population} finite numbers")
        res.evaluations += cfg.population
        res.means.append(mean.copy())
        res.mean_fitness.append(float(fit[0]))
        k = int(np.argmax(fit))  # first of the ties: the mean wins a tie with row k > 0
        if fit[k] > res.best_fitness:
            res.best_theta, res.best_fitness = pop[k].copy(), float(fit[k])
        if stop_when_flat and it == 0 and np.all(fit == fit[0]):
            break
        elite = pop[np.argsort(-fit, kind="stable")[: cfg.n_elite]]
        mean = elite.mean(axis=0)
        std = np.maximum(elite.std(axis=0), cfg.sigma_min)
    res.final_mean = mean
    return res


@dataclass
class OracleResult:
    """The oracle's outcome on one window: the best scorer's ``summary`` (with
    ``job_time_s``), its ``theta``, the JCT it saves per job against Aryl (``gain_s``,
    >= 0) and the number of replays."""

    summary: dict[str, Any]
    theta: np.ndarray
    gain_s: float
    evaluations: int


def oracle_search(env: RoundEnv, spec: EpisodeSpec, cfg: CemConfig) -> OracleResult:
    """The CEM oracle on episode ``spec``: every candidate ``theta`` of the linear scorer
    is replayed on the window, the fitness being the JCT saved per job against Aryl
    (``theta = 0``, the first candidate). A window where no candidate of the first
    population changes anything ends there (``evaluations`` = one population)."""
    n = spec.n_jobs
    best: dict[str, Any] = {}
    aryl_time: list[float] = []

    def evaluate(pop: np.ndarray, _it: int) -> np.ndarray:
        out = np.empty(len(pop))
        for i, theta in enumerate(pop):
            s = env.replay(spec, LinearScorer(theta, env.n_slots))
            if not aryl_time:  # the very first candidate is theta = 0: Aryl
                aryl_time.append(s["job_time_s"])
            out[i] = (aryl_time[0] - s["job_time_s"]) / n
            if not best or out[i] > best["gain"]:
                best.update(gain=out[i], summary=s)
        return out

    res = cem(evaluate, len(LINEAR_FEATURES), cfg, stop_when_flat=True)
    return OracleResult(best["summary"], res.best_theta, float(best["gain"]), res.evaluations)
