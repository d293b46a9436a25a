"""A tiny CEM trainer of the linear Round-v0 scorer (``aryl-gym train-round-cem``).

Each CEM iteration draws ``windows`` fresh episodes of Round-v0 on *training* workloads
(the env's ``train`` workload-seed split) and scores every candidate on those same
windows, paired against Aryl (``theta = 0``) on each: the fitness is the JCT saved per
job, averaged over the windows (common windows within an iteration cancel the arrival
noise between candidates). Selection uses *validation* workloads only: every iteration's
mean (the first is ``theta = 0``, Aryl) and the final mean are replayed on one window of
each of the first ``val_workloads`` val workloads, and the best on validation is kept, so
a search that never beats Aryl on validation returns Aryl.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from aryl_gym.agents.cem import CemConfig, cem
from aryl_gym.agents.round_eval import workload_windows
from aryl_gym.agents.round_scorers import LINEAR_FEATURES, LinearScorer

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.episodes import EpisodeSpec
from aryl_gym.envs.round import RoundEnv
from aryl_gym.envs.workload_splits import held_out_seeds


def _gain(env: RoundEnv, specs: list[EpisodeSpec], aryl: list[float], theta: np.ndarray) -> float:
    """JCT saved per job against Aryl, averaged over ``specs`` (seconds)."""
    scorer = LinearScorer(theta, env.n_slots)
    gains = [
        (a - env.replay(s, scorer)["job_time_s"]) / s.n_jobs
        for s, a in zip(specs, aryl, strict=True)
    ]
    return float(np.mean(gains))


def _aryl_times(env: RoundEnv, specs: list[EpisodeSpec]) -> list[float]:
    zero = LinearScorer(np.zeros(len(LINEAR_FEATURES)), env.n_slots)
    return [env.replay(s, zero)["job_time_s"] for s in specs]


def train_round_cem(
    scenario: str | ScenarioConfig,
    cfg: CemConfig,
    *,
    windows: int = 4,
    val_workloads: int = 5,
    env_kwargs: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Search ``theta`` on training windows, select on validation workloads; returns
    ``theta`` (selected), ``selected`` (its index among the candidates: the iteration
    means, then the final mean), ``val_gain_s`` per candidate, ``train_gain_s`` per
    iteration (its mean's fitness) and ``evaluations`` (replays)."""
    if windows < 1:
        raise ValueError(f"windows per iteration must be >= 1, got {windows}")
    kw = dict(env_kwargs or {})
    env = RoundEnv(scenario, split="train", fresh_workloads=True, **kw)
    # the windows' own stream: the search's candidates and the windows stay independent
    rng = np.random.default_rng([cfg.seed, 1])
    replays = 0

    def evaluate(pop: np.ndarray, it: int) -> np.ndarray:
        nonlocal replays
        specs = [env.episode_spec(int(rng.integers(2**31 - 1))) for _ in range(windows)]
        aryl = _aryl_times(env, specs)
        fit = np.array([_gain(env, specs, aryl, theta) for theta in pop])
        replays += windows * (len(pop) + 1)
        if log:
            log(f"iteration {it}: mean's gain {fit[0]:+.1f} s/job, best {fit.max():+.1f} s/job")
        return fit

    res = cem(evaluate, len(LINEAR_FEATURES), cfg)
    val = workload_windows(scenario, held_out_seeds("val", val_workloads), "val", 1, kw, cfg.seed)
    specs = [w.spec for w in val]
    aryl = _aryl_times(env, specs)
    candidates = [*res.means, res.final_mean]
    val_gain = [_gain(env, specs, aryl, theta) for theta in candidates]
    replays += len(specs) * (len(candidates) + 1)
    k = int(np.argmax(val_gain))  # the first of ties: Aryl (index 0) wins a tie
    if log:
        log(f"selected candidate {k} of {len(candidates)}: {val_gain[k]:+.1f} s/job on val")
    return {
        "theta": candidates[k].tolist(),
        "selected": k,
        "val_gain_s": val_gain,
        "train_gain_s": res.mean_fitness,
        "evaluations": replays,
    }
