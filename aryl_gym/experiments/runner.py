"""Executing simulation runs for ``aryl-gym benchmark`` and ``aryl-gym sweep``.

A :class:`RunSpec` names one run (policy, scenario, seed); :func:`execute_runs` sends a
list of them to a *backend*: ``local`` (worker processes on this machine) or ``ray`` (one
Ray task per run; ``pip install -e '.[ray]'``, see ``docs/scale-out.md``). Results depend
neither on the backend nor on the number of workers. This module also holds the checks
and command-line options both commands share.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from aryl_gym._install import install_hint
from aryl_gym.config import ScenarioConfig
from aryl_gym.interrupts import (
    raise_if_interrupted,
    setup_worker,
    signals_deferred,
    stop_processes,
)
from aryl_gym.sim.limits import check_at_most

if TYPE_CHECKING:
    from aryl_gym.policy import Policy

PolicyFactory = Callable[[], "Policy"]

#: Per-job columns that come back from a worker (the CDF plots need only these).
JOB_COLUMNS = ("jct", "queue_time")
#: Time-series columns that come back from a worker (only for the first seed).
SERIES_COLUMNS = ("t", "busy_training", "busy_lent", "lent_servers", "needed")


@dataclass
class RunOutput:
    """What one worker sends back: small on purpose (it is pickled)."""

    policy: str
    seed: int
    summary: dict[str, Any] | None = None
    jobs: pd.DataFrame | None = None
    series: pd.DataFrame | None = None
    records: dict[str, pd.DataFrame] | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run to execute: ``policy`` on ``scenario`` with workload seed ``seed``.

    ``factory`` builds the policy (``None``: the registry, ``baselines.make_policy``);
    ``keep_series`` / ``keep_jobs`` say whether the time series / per-job columns come back;
    ``keep_records`` names whole run records that come back in ``RunOutput.records``
    (kinds of :data:`aryl_gym.simulate.RECORD_KINDS`: jobs, timeseries, events).
    """

    policy: str
    scenario: ScenarioConfig
    seed: int
    factory: PolicyFactory | None = None
    keep_series: bool = False
    keep_jobs: bool = True
    keep_records: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.policy} / {self.scenario.name} / seed {self.seed}"


@lru_cache(maxsize=4)
def _workload(scenario: ScenarioConfig, seed: int):
    from aryl_gym.scenarios import build_workload

    return build_workload(scenario, seed)


def _run_spec(spec: RunSpec) -> RunOutput:
    """One run, in a worker process or in-process; never raises."""
    from aryl_gym.simulate import run_policy

    try:
        if spec.factory is None:
            from aryl_gym.baselines import make_policy

            policy = make_policy(spec.policy)
        else:
            policy = spec.factory()
        jobs, demand = _workload(spec.scenario, spec.seed)
        result = run_policy(
            spec.scenario,
            policy,
            spec.seed,
            jobs=jobs,
            demand=demand,
            record_events="events" in spec.keep_records,
        )
        records = result.job_records()
        series = result.timeseries()[list(SERIES_COLUMNS)] if spec.keep_series else None
        return RunOutput(
            spec.policy,
            spec.seed,
            summary=dict(result.summary),
            jobs=records[list(JOB_COLUMNS)].reset_index(drop=True) if spec.keep_jobs else None,
            series=series,
            records={k: result.records(k) for k in spec.keep_records} or None,
        )
    except Exception as exc:  # a failing run must not stop the others
        return _failed(spec, exc)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` (a ``KeyError``'s message without the quotes ``str`` adds)."""
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return f"{type(exc).__name__}: {msg}"


def _failed(spec: RunSpec, exc: BaseException) -> RunOutput:
    return RunOutput(
        spec.policy, spec.seed, error=describe_error(exc), traceback=traceback.format_exc()
    )


# --------------------------------------------------------------------------- backends

#: Where the runs execute: ``local`` (process pool) or ``ray`` (Ray tasks).
BACKENDS = ("local", "ray")


class BackendUnavailable(ImportError, ValueError):
    """A backend whose package is not installed (a ``ValueError`` too, so the CLI reports
    it as a usage error)."""


def check_backend(backend: str) -> None:
    """Raise ``ValueError`` for an unknown backend, ``BackendUnavailable`` when the
    backend's package is missing."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "ray":
        _import_ray()


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailable(
            f"the ray backend needs Ray, which is not installed ({exc}); "
            f"install it with `{install_hint('ray')}`"
        ) from None
    return ray


#: Called in the parent process as each run ends: (index in ``specs``, its output).
OnDone = Callable[[int, RunOutput], None]


def check_workers(workers: int | None) -> None:
    """``ValueError`` unless ``workers`` is ``None`` or an integer in
    ``[1, aryl_gym.sim.limits.MAX_WORKERS]``."""
    if workers is None:
        return
    if int(workers) != workers or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    check_at_most("--workers", workers, "MAX_WORKERS")


def execute_runs(
    specs: Sequence[RunSpec],
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    desc: str = "runs",
    on_done: OnDone | None = None,
) -> list[RunOutput]:
    """Execute ``specs`` on ``backend``; one :class:`RunOutput` per spec, in order.

    A run that raises (or whose worker dies) comes back with ``error`` and ``traceback``
    set; the other runs are kept. ``local``: ``workers`` processes (default
    ``min(os.cpu_count(), runs)``, never more than the runs; 1 runs in-process). ``ray``:
    one task per run on the cluster at ``address`` (``ray.init(address=...)``; ``None``:
    ``$RAY_ADDRESS`` or a new local instance with ``workers`` CPUs, default all). A Ray
    session that is already initialised is used as it is and left running. ``on_done``
    is called in this process as each run ends (e.g. to keep a record of it).

    On ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM under
    :func:`aryl_gym.interrupts.signals_raise`) or any other exception, the runs not
    started are cancelled, the local worker processes are terminated (killed after two
    seconds) and reaped, Ray tasks are cancelled, and the exception propagates: nothing
    is left running. Local workers ignore SIGINT and die with this process
    (:func:`aryl_gym.interrupts.setup_worker`).
    """
    check_backend(backend)
    check_workers(workers)
    specs = list(specs)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(specs), desc=desc, unit="run", disable=not progress)
    outputs: list[RunOutput | None] = [None] * len(specs)

    def finish(i: int, output: RunOutput) -> None:
        raise_if_interrupted()  # a Ctrl-C that Python swallowed in a finalizer
        outputs[i] = output
        bar.update(1)
        if on_done is not None:
            on_done(i, output)

    try:
        if backend == "ray":
            _execute_ray(specs, workers, address, finish)
        else:
            _execute_local(specs, workers, bar, finish)
    finally:
        bar.close()
    return outputs  # type: ignore[return-value]


def _execute_local(specs: list[RunSpec], workers: int | None, bar, finish: OnDone) -> None:
    n_workers = min((os.cpu_count() or 1) if workers is None else int(workers), len(specs))
    if n_workers <= 1:
        for i, spec in enumerate(specs):
            bar.set_postfix_str(spec.label)
            finish(i, _run_spec(spec))
        return
    pool = ProcessPoolExecutor(
        max_workers=n_workers, initializer=setup_worker, initargs=(os.getpid(),)
    )
    try:
        futures = {pool.submit(_run_spec, spec): i for i, spec in enumerate(specs)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                output = fut.result()
            except Exception as exc:  # pickling errors, a worker that died
                output = _failed(specs[i], exc)
            finish(i, output)
    except BaseException:  # Ctrl-C, SIGTERM, a failing on_done: stop every worker now
        _abort_pool(pool)
        raise
    pool.shutdown(wait=True)


def _abort_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued runs and terminate the pool's worker processes (no waiting for
    the runs in progress)."""
    with signals_deferred():
        # the executor forgets its processes, manager thread and result pipe on shutdown:
        # take them first
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        result_queue = getattr(pool, "_result_queue", None)
        pool.shutdown(wait=False, cancel_futures=True)
        stop_processes(processes)
        if manager is not None:
            # it ends once it sees the workers gone; joining it here avoids a race with
            # concurrent.futures' exit hook (a write to its closed wake-up pipe, Python 3.11)
            manager.join(timeout=2.0)
            if manager.is_alive():
                # a worker killed while writing its result leaves the manager thread
                # waiting for the rest of that message, and the exit hook would join it
                # forever: this process holds the last write end of the result pipe, and
                # closing it gives the thread end-of-file (it then marks the pool broken)
                with contextlib.suppress(Exception):
                    result_queue._writer.close()
                manager.join(timeout=2.0)


def _execute_ray(
    specs: list[RunSpec], workers: int | None, address: str | None, finish: OnDone
) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {}
        if address in (None, "local"):  # a new local instance: these options apply
            kwargs = {"include_dashboard": False}
            if workers is not None:
                kwargs["num_cpus"] = max(1, int(workers))
        ray.init(address=address, **kwargs)
        started = True
    pending: list = []
    try:
        remote = ray.remote(num_cpus=1)(_run_spec)
        refs = {remote.remote(spec): i for i, spec in enumerate(specs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    output = ray.get(ref)
                except Exception as exc:  # a worker or node that died, a pickling error
                    output = _failed(specs[i], exc)
                finish(i, output)
    except BaseException:  # Ctrl-C, SIGTERM: cancel what is still queued or running
        with signals_deferred():
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------- checks


def resolve_scenario(scenario: str | ScenarioConfig) -> ScenarioConfig:
    """The scenario object; an unknown name raises ``ValueError`` listing the known ones."""
    if isinstance(scenario, ScenarioConfig):
        return scenario
    from aryl_gym.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario]


def validate_policies(
    policies: Sequence[str], policy_factories: dict[str, PolicyFactory] | None = None
) -> None:
    """Raise ``ValueError`` naming every unknown or repeated policy; a ``module:Class``
    policy is imported here, so a bad one fails before any run (naming the module and
    the class)."""
    from aryl_gym.baselines import is_import_path, load_policy_class, policy_specs

    known = list(policy_specs()) + list(policy_factories or {})
    if not policies:
        raise ValueError("no policies given")
    for p in policies:
        if p not in known and is_import_path(p):
            load_policy_class(p)
    unknown = [p for p in policies if p not in known and not is_import_path(p)]
    if unknown:
        raise ValueError(
            f"unknown polic{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(repr(p) for p in unknown)}; known: {', '.join(known)}"
        )
    dup = sorted({p for p in policies if list(policies).count(p) > 1})
    if dup:
        raise ValueError(f"policies given more than once: {', '.join(dup)}")


def check_inputs(
    scenario: str | ScenarioConfig,
    policies: Sequence[str],
    seeds: Sequence[int],
    policy_factories: dict[str, PolicyFactory] | None = None,
) -> tuple[ScenarioConfig, list[int]]:
    """The scenario object and the seeds as ints, after checking the scenario, the
    policies and the seeds (``ValueError`` for the first that is wrong)."""
    sc = resolve_scenario(scenario)
    validate_policies(policies, policy_factories)
    return sc, validate_seeds(seeds)


def validate_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds as ints; ``ValueError`` when there are none, more than
    ``aryl_gym.sim.limits.MAX_SEEDS``, one outside ``[0, MAX_SEED]`` or one repeated."""
    check_at_most("the number of seeds", len(seeds), "MAX_SEEDS")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds given")
    for s in seeds:
        if s < 0:
            raise ValueError(f"seeds must be >= 0, got {s}")
        check_at_most("seed", s, "MAX_SEED")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds given more than once: {seeds}")
    return seeds


def print_failures(
    command: str, failures: list[dict], runs: int, label: Callable[[dict], str]
) -> None:
    """On stderr: how many of ``runs`` failed, then ``label(failure): error`` for each."""
    if not failures:
        return
    print(f"{command}: {len(failures)} of {runs} runs failed:", file=sys.stderr)
    for f in failures:
        print(f"  {label(f)}: {f['error']}", file=sys.stderr)
