"""Run one policy on one scenario: the engine's driver to the end, plus bookkeeping."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from aryl_gym.config import ScenarioConfig
from aryl_gym.policy import Policy
from aryl_gym.scenarios import build_workload
from aryl_gym.sim.driver import Driver, Stop
from aryl_gym.sim.engine import DecisionPoint, Engine
from aryl_gym.workload.schema import JobTable


@dataclass
class RunResult:
    """Outcome of one run: the summary dict and the engine, for per-job records and series."""

    scenario: str
    policy: str
    seed: int
    summary: dict[str, Any]
    engine: Engine

    def job_records(self):
        return self.engine.metrics.job_records()

    def timeseries(self):
        return self.engine.metrics.timeseries()


def make_engine(
    scenario: ScenarioConfig,
    policy: Policy,
    seed: int = 0,
    *,
    jobs: JobTable | None = None,
    demand: tuple[np.ndarray, np.ndarray] | None = None,
    check_invariants: bool = False,
) -> Engine:
    """An engine for ``scenario`` with the capabilities ``policy`` declares."""
    if jobs is None or demand is None:
        built_jobs, built_demand = build_workload(scenario, seed)
        jobs = built_jobs if jobs is None else jobs
        demand = built_demand if demand is None else demand
    return Engine(
        scenario,
        jobs,
        demand,
        seed=seed,
        uses_loaning=policy.uses_loaning,
        periodic_rounds=policy.periodic_rounds,
        elastic_scaling=policy.elastic_scaling,
        rules=policy.rules,
        check_invariants=check_invariants,
    )


def run_policy(
    scenario: ScenarioConfig,
    policy: Policy,
    seed: int = 0,
    *,
    jobs: JobTable | None = None,
    demand: tuple[np.ndarray, np.ndarray] | None = None,
    check_invariants: bool = False,
    progress: bool = False,
) -> RunResult:
    """Simulate ``scenario`` under ``policy`` to the end and summarise it.

    ``progress`` shows a bar over simulated time (it appears only when the run lasts more
    than two seconds of wall time).
    """
    wall0 = time.perf_counter()
    engine = make_engine(
        scenario, policy, seed, jobs=jobs, demand=demand, check_invariants=check_invariants
    )
    policy.reset(engine.view, seed)
    bar = _progress_bar(engine, scenario) if progress else None
    Driver(engine, policy).run_until(None if bar is None else _ticker(engine, bar))
    if bar is not None:
        bar.update(max(0, int(engine.t) - bar.n))
        bar.close()
    summary = engine.metrics.summary(wall_s=time.perf_counter() - wall0)
    return RunResult(scenario.name, policy.name, seed, summary, engine)


def _ticker(engine: Engine, bar, every: int = 2000) -> Stop:
    """A stop predicate that claims no point and moves ``bar`` to the simulated time
    every ``every`` decision points."""
    count = itertools.count(1)

    def tick(point: DecisionPoint) -> bool:
        if next(count) % every == 0:
            bar.update(int(engine.t) - bar.n)
        return False

    return tick


def _progress_bar(engine: Engine, scenario: ScenarioConfig):
    from tqdm.auto import tqdm

    sub = engine.table.submit_time
    total = int(sub[-1]) if len(sub) else 0
    return tqdm(
        total=total, delay=2.0, unit="sim-s", unit_scale=True, desc=f"{scenario.name}", leave=False
    )
