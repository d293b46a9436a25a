"""Honest evaluation of Round-v0 policies: held-out workloads and real traces, paired
against Aryl, beside the reference point and hand-written Aryl variants.

Windows (:func:`window_starts`): a workload is evaluated in ``n`` windows of
``window_hours`` each; window ``i`` starts at the submit time of the job at quantile
``(i + 1/2) / n`` of the workload's jobs (the median job for one window, so that sparse
traces are met where their jobs are), moved later when needed so that it starts no earlier
than the previous window's end: windows never overlap. The engine runs each window's jobs
until they finish or ``window_hours + drain_hours`` pass, from an empty cluster.

Workloads: synthetic workloads of a *held-out* workload-seed split
(:data:`~aryl_gym.envs.workload_splits.WORKLOAD_SEED_SPLITS`: ``test`` for the report,
``val`` for selection; a training seed is refused), and real trace files, sized as
``aryl-gym simulate --trace FILE --target-load L`` sizes them
(:func:`~aryl_gym.scenarios.scenario_with_trace`), with the loader's seed 0.

Every policy runs on exactly the same episodes (jobs, demand, engine seed): the Round-v0
policies through :meth:`RoundEnv.replay`, the heuristics through ``run_policy``, as
``aryl_gym.evaluate`` runs them. Differences are paired per window, averaged per workload,
and given with a percentile bootstrap interval over workloads (:mod:`aryl_gym.stats`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from aryl_gym.agents.cem import CemConfig, oracle_search
from aryl_gym.agents.round_scorers import load_scorer

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.base import episode_summary
from aryl_gym.envs.episodes import HOUR, WHOLE, EpisodeSpec
from aryl_gym.envs.round import RoundEnv
from aryl_gym.envs.workload_splits import check_workload_seed

#: The hand-written Aryl variants reported by default (when the registry has them).
DEFAULT_VARIANTS = ("aryl-requested-base",)
#: The real traces of ``../shared/traces`` and the loads they are sized for (those of
#: docs/real-traces.md: ITP as `simulate` sizes it, Helios and PAI under load).
DEFAULT_TRACES = (
    ("train_microsoft_itp_cluster04.csv", 0.9),
    ("train_sensetime_helios_last15k.csv", 1.3),
    ("train_alibaba_pai_openb2023_pods.csv", 1.3),
)
ORACLE = "oracle"
#: The metrics of the tables: summary key, title, and whether a difference is shown.
METRICS = (
    ("avg_jct_s", "avg JCT (s)"),
    ("avg_queue_s", "avg queue (s)"),
    ("preemptions", "preemptions"),
)


@dataclass(frozen=True)
class Window:
    """One evaluation episode: ``group`` is its workload (the bootstrap's unit), ``kind``
    ``"workload"`` or ``"trace"``, ``index`` its place among the group's windows."""

    group: str
    kind: str
    index: int
    spec: EpisodeSpec
    env: RoundEnv = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.group} #{self.index}"


def window_starts(submit_times: np.ndarray, n: int, window_hours: float) -> list[float]:
    """The starts of ``n`` non-overlapping windows of ``window_hours`` (see the module
    docstring); ``ValueError`` when the workload is too short for them."""
    sub = np.sort(np.asarray(submit_times, dtype=float))
    if n < 1:
        raise ValueError(f"the number of windows per workload must be >= 1, got {n}")
    if sub.size == 0:
        raise ValueError("a workload without jobs has no window")
    w = window_hours * HOUR
    starts: list[float] = []
    for i in range(n):
        s = float(sub[min(int((i + 0.5) * sub.size / n), sub.size - 1)])
        if starts:
            s = max(s, starts[-1] + w)
        if s > sub[-1]:
            raise ValueError(
                f"{n} windows of {window_hours:g} h do not fit in a workload whose jobs "
                f"span {(sub[-1] - sub[0]) / HOUR:.1f} h"
            )
        starts.append(s)
    return starts


def _window_seed(seed: int, key: str, index: int) -> int:
    """The seed of a window's engine, fixed by (run seed, workload, window index) so a
    window's episode does not depend on which other windows are evaluated."""
    words = [int(seed), index, *key.encode()]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def workload_windows(
    scenario: str | ScenarioConfig,
    seeds: Sequence[int],
    split: str,
    n_windows: int,
    env_kwargs: dict[str, Any],
    seed: int = 0,
) -> list[Window]:
    """The windows of the synthetic workloads ``seeds`` of held-out ``split``; every seed
    must belong to it (``ValueError`` otherwise: a training seed is never evaluated here)."""
    if split == "train":
        raise ValueError("the held-out table takes val or test workloads, not train")
    seeds = [check_workload_seed(s, split) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"workload seeds repeat: {seeds}")
    env = RoundEnv(scenario, split=split, fresh_workloads=True, **env_kwargs)
    out = []
    for s in seeds:
        sub = env.sampler.workload(workload_seed=s)[0].submit_time
        for i, start in enumerate(window_starts(sub, n_windows, env.window_hours)):
            opts = {"workload_seed": s, "split": split, "start": start}
            spec = env.episode_spec(_window_seed(seed, f"workload {s}", i), opts)
            out.append(Window(f"workload {s}", "workload", i, spec, env))
    return out


def trace_windows(
    base: ScenarioConfig,
    traces: Sequence[tuple[Path, float | None]],
    n_windows: int,
    env_kwargs: dict[str, Any],
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[Window]:
    """The windows of each ``(trace file, target load)``, the training pool sized as
    ``aryl-gym simulate --trace FILE --target-load L`` does (``None``: only if needed)."""
    from aryl_gym.scenarios import scenario_with_trace

    out = []
    for path, load in traces:
        if not Path(path).is_file():
            raise FileNotFoundError(f"trace {path}: no such file")
        sc = scenario_with_trace(base, trace=Path(path), target_load=load, log=log)
        env = RoundEnv(sc, fresh_workloads=False, **env_kwargs)
        sub = env.sampler.workload()[0].submit_time
        name = Path(path).stem
        for i, start in enumerate(window_starts(sub, n_windows, env.window_hours)):
            spec = env.episode_spec(_window_seed(seed, name, i), {"split": WHOLE, "start": start})
            out.append(Window(name, "trace", i, spec, env))
    return out


# ---------------------------------------------------------------------- runs
def run_heuristic(name: str, spec: EpisodeSpec) -> dict[str, Any]:
    """A registry policy on ``spec``'s episode, with its own capabilities (loaning or not)."""
    from aryl_gym.baselines import make_policy

    from aryl_gym.simulate import run_policy

    res = run_policy(
        spec.scenario, make_policy(name), spec.engine_seed, jobs=spec.jobs, demand=spec.demand
    )
    return {**episode_summary(res.engine, spec), "job_time_s": res.engine.metrics.jobs_in_system_s}


@dataclass(frozen=True)
class Roles:
    """Who is compared: the Round-v0 ``agents`` (scorer names / paths, ``oracle``), the
    Aryl policy everything is paired with, the ``reference`` point and the ``variants``."""

    agents: tuple[str, ...]
    aryl: str = "aryl"
    reference: str = "baseline"
    variants: tuple[str, ...] = DEFAULT_VARIANTS

    def policies(self) -> list[tuple[str, str]]:
        """``(column name, role)`` in table order."""
        rows = [(f"agent: {a}" if a != ORACLE else "oracle (bound)", a) for a in self.agents]
        rows += [(self.aryl, "aryl"), (self.reference, "reference")]
        return rows + [(v, "variant") for v in self.variants]


def evaluate_windows(
    windows: Sequence[Window],
    roles: Roles,
    oracle: CemConfig,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (window, policy): the summary plus ``policy``, ``role``, ``group``,
    ``kind``, ``window`` and ``wall_s``."""
    from aryl_gym.baselines import resolve_policy_spec

    columns = [c for c, _ in roles.policies()]
    if len(set(columns)) != len(columns):
        raise ValueError(f"a policy is named twice among {columns}")
    for name in (roles.aryl, roles.reference, *roles.variants):
        resolve_policy_spec(name)  # unknown names fail before any run
    factories = {a: load_scorer(a) for a in roles.agents if a != ORACLE}
    rows = []
    for w in windows:
        base = {"group": w.group, "kind": w.kind, "window": w.index, "jobs": w.spec.n_jobs}
        for column, role in roles.policies():
            t0 = time.perf_counter()
            extra: dict[str, Any] = {}
            if role == ORACLE:
                cfg = replace(oracle, seed=_window_seed(seed, w.label, 1))
                res = oracle_search(w.env, w.spec, cfg)
                s = res.summary
                extra = {"theta": res.theta.tolist(), "evaluations": res.evaluations}
            elif role in factories:
                s = w.env.replay(w.spec, factories[role](_window_seed(seed, w.label, 2)))
            else:
                s = run_heuristic(column, w.spec)
            wall = time.perf_counter() - t0
            rows.append({**base, **s, **extra, "policy": column, "role": role, "wall_s": wall})
            if log:
                log(f"{w.label}: {column}: avg JCT {s['avg_jct_s']:,.0f} s ({wall:.1f} s)")
    return rows


# ---------------------------------------------------------------------- statistics
def paired(rows: list[dict[str, Any]], policy: str, aryl: str, key: str, kind: str):
    """Per group of ``kind``: the per-window differences ``policy - aryl`` of ``key`` and
    the relative ones (in %), as two ``{group: [values]}`` dicts."""
    by = {(r["group"], r["window"], r["policy"]): r for r in rows if r["kind"] == kind}
    diff: dict[str, list[float]] = {}
    rel: dict[str, list[float]] = {}
    for (g, i, p), r in by.items():
        if p != policy:
            continue
        a = by[(g, i, aryl)][key]
        diff.setdefault(g, []).append(r[key] - a)
        rel.setdefault(g, []).append(100.0 * (r[key] - a) / a if a else math.nan)
    return diff, rel
