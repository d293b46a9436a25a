"""Run one policy on one scenario: the engine's driver to the end, plus bookkeeping."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from aryl_gym.config import ScenarioConfig
from aryl_gym.policy import Policy
from aryl_gym.scenarios import build_workload
from aryl_gym.sim.driver import Driver, Stop
from aryl_gym.sim.engine import DecisionPoint, Engine
from aryl_gym.sim.events import EventLog
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
        """One row per arrived job (pandas DataFrame)."""
        return self.engine.metrics.job_records()

    def timeseries(self):
        """The usage series the metrics recorder sampled (pandas DataFrame): ``t`` (s),
        busy training and lent GPUs, lent servers, inference servers needed, queued and
        running jobs."""
        return self.engine.metrics.timeseries()

    def events(self):
        """The run's event log as a DataFrame (:mod:`aryl_gym.sim.events`); ``ValueError``
        when the run was made without ``record_events``."""
        log = self.engine.event_log
        if log is None:
            raise ValueError(
                f"run {self.policy} / {self.scenario} / seed {self.seed} recorded no events: "
                "pass record_events=True to run_policy"
            )
        return log.to_frame()

    def records(self, kind: str):
        """The run record ``kind`` (one of :data:`RECORD_KINDS`) as a DataFrame."""
        (kind,) = check_record_kinds([kind])
        return getattr(self, RECORD_KINDS[kind])()


#: The run records a caller can keep, by name, and the :class:`RunResult` method of each
#: (``aryl-gym benchmark --keep``; ``events`` needs ``record_events=True``).
RECORD_KINDS: dict[str, str] = {
    "jobs": "job_records",
    "timeseries": "timeseries",
    "events": "events",
}


def check_record_kinds(kinds) -> tuple[str, ...]:
    """``kinds`` as a tuple, in order, without repeats; ``ValueError`` naming an unknown one."""
    unknown = [k for k in kinds if k not in RECORD_KINDS]
    if unknown:
        raise ValueError(
            f"unknown run record{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; known: {', '.join(RECORD_KINDS)}"
        )
    return tuple(dict.fromkeys(kinds))


def make_engine(
    scenario: ScenarioConfig,
    policy: Policy,
    seed: int = 0,
    *,
    jobs: JobTable | None = None,
    demand: tuple[np.ndarray, np.ndarray] | None = None,
    check_invariants: bool = False,
    event_log: EventLog | None = None,
) -> Engine:
    """An engine for ``scenario`` with the capabilities ``policy`` declares (recording its
    events into ``event_log`` when one is given)."""
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
        event_log=event_log,
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
    record_events: bool = False,
) -> RunResult:
    """Simulate ``scenario`` under ``policy`` to the end and summarise it.

    ``progress`` shows a bar over simulated time (it appears only when the run lasts more
    than two seconds of wall time). ``record_events`` keeps the event log
    (:meth:`RunResult.events`).
    """
    wall0 = time.perf_counter()
    engine = make_engine(
        scenario,
        policy,
        seed,
        jobs=jobs,
        demand=demand,
        check_invariants=check_invariants,
        event_log=EventLog() if record_events else None,
    )
    policy.reset(engine.view, seed)
    bar = _progress_bar(engine, scenario) if progress else None
    with _fewer_collections():
        Driver(engine, policy).run_until(None if bar is None else _ticker(engine, bar))
    if bar is not None:
        bar.update(max(0, int(engine.t) - bar.n))
        bar.close()
    summary = engine.metrics.summary(wall_s=time.perf_counter() - wall0)
    return RunResult(scenario.name, policy.name, seed, summary, engine)


#: the cyclic garbage collector's first threshold during a run (Python's default: 700)
RUN_GC_THRESHOLD = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run with the garbage collector's first threshold raised to ``RUN_GC_THRESHOLD``.

    A run allocates millions of short-lived containers (decisions, what-if counts) but
    makes almost no reference cycles, while it holds a large, growing heap (jobs, caches,
    records): at the default threshold the collector's full passes over that heap cost
    about a tenth of a long run (aryl-15d: 22 full collections, ~4 s of ~36 s CPU).
    Collection only frees memory; no decision depends on it."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], RUN_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


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
