"""Named scenarios (typed :class:`~aryl_gym.config.ScenarioConfig` objects) and how to build
their workloads.

* ``tiny`` — 2 + 2 servers, one day, ~60 jobs: unit tests and quick checks.
* ``small`` — 8 + 8 servers (64 + 64 GPUs, the Aryl testbed's size), 3 days: RL and examples.
* ``aryl-15d`` — the paper's scale and premise (docs/model.md): 15 days, >= 50,000 jobs,
  a training pool sized so that the reference-point scheduler queues jobs as in the
  paper's production trace, an inference pool as large with a diurnal demand, whose
  T4-class GPUs train at 0.4x a training GPU; ``aryl-15d-homogeneous`` has equal speeds.

Each scenario stops 30 days after its last arrival (``max_drain_s``, far beyond the drain
of any sane policy) so that a policy that livelocks (e.g. ``deepboot-knapsack``) still
ends, with its waiting jobs reported as unfinished.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.sim.limits import check_jobs
from aryl_gym.workload.generator import ITP_DURATION_BY_GPUS, WorkloadConfig, generate_jobs
from aryl_gym.workload.inference import InferenceConfig, build_demand
from aryl_gym.workload.schema import JobTable

DAY = 86400.0

# tiny and small cap jobs at 16 GPUs (their pools have 16 and 64 GPUs) and shift weight
# to multi-GPU jobs so that small clusters still see contention between job sizes.
_SMALL_GPUS = dict(
    gpu_values=(1, 2, 4, 8, 16),
    gpu_probs=(0.55, 0.12, 0.13, 0.15, 0.05),
    duration_by_gpus=ITP_DURATION_BY_GPUS[:5],
)


#: Training pool of aryl-15d, chosen with `aryl-gym sweep --scenario aryl-15d --policies baseline --grid training_servers=...` so that the reference
#: point (``baseline``/``sjf-noloan``) queues jobs about as in the paper (docs/results.md).
ARYL_15D_TRAINING_SERVERS = 700
#: The inference pool is as large as the training pool (docs/model.md: "at least as large").
ARYL_15D_INFERENCE_SERVERS = 700
#: Training speed of a lent (T4-class) GPU relative to a training (V100-class) GPU: the
#: middle of the 0.3-0.5 range of T4-vs-V100 training throughput (spec sheets: FP16
#: tensor 65 vs 125 TFLOPS, memory bandwidth 320 vs 900 GB/s); docs/model.md gives the
#: sources and docs/reproducing-aryl.md sweeps 0.25-1.0.
LENT_GPU_SPEED = 0.4


def _scenarios() -> dict[str, ScenarioConfig]:
    named = {
        s.name: s
        for s in (
            ScenarioConfig(
                name="tiny",
                description="2 training + 2 inference servers of 8 GPUs, 1 day, ~60 jobs",
                cluster=ClusterConfig(training_servers=2, inference_servers=2),
                workload=WorkloadConfig(
                    days=1.0, jobs_per_day=60.0, duration_max_s=2 * 3600.0, **_SMALL_GPUS
                ),
                inference=InferenceConfig(curve="diurnal", peak_utilisation=1.0),
                max_drain_s=30 * DAY,
            ),
            ScenarioConfig(
                name="small",
                description="8 + 8 servers (64 + 64 GPUs, the Aryl testbed's size), 3 days, ~480 jobs",
                cluster=ClusterConfig(training_servers=8, inference_servers=8),
                workload=WorkloadConfig(
                    days=3.0, jobs_per_day=160.0, duration_max_s=4 * 3600.0, **_SMALL_GPUS
                ),
                inference=InferenceConfig(curve="diurnal", peak_utilisation=0.95),
                max_drain_s=30 * DAY,
            ),
            ScenarioConfig(
                name="aryl-15d",
                description="the paper's scale and premise: 15 days, >= 50,000 jobs, diurnal "
                "inference pool of T4-class GPUs (0.4x a training GPU) lent to training",
                cluster=ClusterConfig(
                    training_servers=ARYL_15D_TRAINING_SERVERS,
                    inference_servers=ARYL_15D_INFERENCE_SERVERS,
                    inference_gpu_speed=LENT_GPU_SPEED,
                ),
                workload=WorkloadConfig(days=15.0, jobs_per_day=3400.0),
                inference=InferenceConfig(curve="diurnal", peak_utilisation=0.95),
                # usage over the 15 days of arrivals, not the multi-day drain of the longest jobs
                window=(0.0, 15 * DAY),
                max_drain_s=30 * DAY,
            ),
        )
    }
    aryl15 = named["aryl-15d"]
    named["aryl-15d-homogeneous"] = replace(
        aryl15,
        name="aryl-15d-homogeneous",
        description="aryl-15d with lent GPUs as fast as training GPUs",
        cluster=replace(aryl15.cluster, inference_gpu_speed=aryl15.cluster.training_gpu_speed),
    )
    return named


SCENARIOS: dict[str, ScenarioConfig] = _scenarios()


def get_scenario(name: str, **overrides) -> ScenarioConfig:
    """The scenario called ``name``, with top-level fields replaced by ``overrides``."""
    try:
        sc = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return replace(sc, **overrides) if overrides else sc


def build_workload(
    scenario: ScenarioConfig, seed: int
) -> tuple[JobTable, tuple[np.ndarray, np.ndarray]]:
    """The job table and inference demand series ``(times, servers_needed)`` of a run.

    The seed is split into independent streams for the training workload and the
    inference demand, so changing one source never shifts the other's random numbers.
    With a ``trace``, the jobs are the trace's and the seed shifts the seed of the elastic
    flags and profiles the loader draws: ``trace_options.seed + seed`` (seed 0 gives the
    jobs of ``aryl-gym traces convert`` with the same options).

    The jobs are checked against the bounds of :mod:`aryl_gym.sim.limits` (count, GPUs per job,
    last arrival within ``MAX_SIM_TIME_S``) before the demand series is built, so memory
    stays proportional to the workload: ``ValueError`` naming the job and the bound.
    """
    w_seed, d_seed = (int(x) for x in np.random.SeedSequence(seed).generate_state(2))
    if scenario.trace is not None:
        from aryl_gym.workload.real_traces import MappingOptions, load_any

        options = scenario.trace_options or MappingOptions()
        if seed:
            options = replace(options, seed=options.seed + int(seed))
        jobs, _ = load_any(scenario.trace, scenario.trace_format, options=options)
    else:
        jobs = generate_jobs(scenario.workload, seed=w_seed)
    check_jobs(jobs, scenario.trace or "synthetic workload")
    last = float(jobs.submit_time[-1]) if len(jobs) else 0.0
    # Demand is generated past the last arrival so the drain phase still sees the diurnal
    # curve; after its end the last value holds.
    horizon = max(last, scenario.workload.days * DAY) + 30 * DAY
    demand = build_demand(
        scenario.inference, scenario.cluster.inference_servers, horizon, seed=d_seed
    )
    return jobs, demand


def inference_curve_line(cfg: InferenceConfig) -> str:
    """``inference curve: NAME (average-day peak/trough X.XX, peak utilisation Y)``."""
    import math

    from aryl_gym.workload.inference import peak_to_trough

    ratio = peak_to_trough(cfg)
    text = "inf" if math.isinf(ratio) else f"{ratio:.2f}"
    return (
        f"inference curve: {cfg.curve} (average-day peak/trough {text}, "
        f"peak utilisation {cfg.peak_utilisation:g})"
    )


def scenario_with_trace(
    base: ScenarioConfig,
    *,
    trace=None,
    trace_format: str | None = None,
    trace_options=None,
    target_load: float | None = None,
    inference_curve: str | None = None,
    log=None,
) -> ScenarioConfig:
    """``base`` with a trace's workload and/or another inference curve.

    ``inference_curve`` replaces the scenario's curve. ``trace`` replaces the generated
    workload, mapped with ``trace_options`` (a
    :class:`~aryl_gym.workload.real_traces.MappingOptions`; None keeps ``base``'s, the
    defaults when it has none), which the scenario keeps for its runs; the training pool
    is sized with :func:`~aryl_gym.workload.real_traces.size_cluster_for` for
    ``target_load``, or for a load of 0.9 when the trace does not fit ``base``'s cluster
    (largest job or offered load). ``log`` (e.g. ``print``) receives the mapping report and
    the sizing decisions.

    ``ValueError`` for a ``trace_format``, ``trace_options`` or ``target_load`` without a
    trace, and for ``trace_options`` with a trace in the project's format (its columns
    give the jobs as they are: no mapping applies, the options would change nothing).
    """
    say = log or (lambda _msg: None)
    overrides: dict = {}
    if inference_curve is not None:
        overrides["inference"] = replace(base.inference, curve=inference_curve)
    if trace is not None:
        from aryl_gym.workload.real_traces import load_any, offered_gpu_demand, size_cluster_for

        if target_load is not None and not (0 < target_load < float("inf")):
            raise ValueError(f"target load must be a finite number > 0, got {target_load}")
        options = base.trace_options if trace_options is None else trace_options
        jobs, report = load_any(trace, trace_format, options=options)
        if trace_options is not None:
            if report.format == "aryl":  # the format load_any found (or was given)
                raise ValueError(
                    f"trace mapping options ({trace_options.changed() or 'the defaults'}) do not apply "
                    f"to {trace}: it is in the project's format, whose columns give each "
                    "job's elasticity, range and profile (convert a public trace with them "
                    "instead, or leave them out)"
                )
            overrides["trace_options"] = trace_options
        say(report)
        check_jobs(jobs, str(trace))  # before sizing a cluster for it
        overrides.update(trace=str(trace), trace_format=report.format)
        cluster = base.cluster
        load = offered_gpu_demand(jobs) / cluster.training_gpus
        too_small = int(jobs.gpus.max()) > cluster.training_gpus or load > 1.0
        if target_load is not None or too_small:
            target = 0.9 if target_load is None else target_load
            if target_load is None:
                say(
                    f"the trace does not fit scenario {base.name!r} ({cluster.training_servers} "
                    f"training servers, offered load {load:.2f}, largest job "
                    f"{int(jobs.gpus.max())} GPUs)"
                )
            try:
                cluster = size_cluster_for(jobs, cluster, target)
            except ValueError as exc:  # e.g. a tiny target load: too many servers
                raise ValueError(f"sizing the training pool for load {target:g}: {exc}") from None
            overrides["cluster"] = cluster
            say(
                f"sized training pool to {cluster.training_servers} servers for load {target:g}; "
                f"inference pool {cluster.inference_servers} servers"
            )
    elif trace_format is not None or target_load is not None or trace_options is not None:
        raise ValueError("a trace format, trace mapping options and a target load need a trace")
    return base.with_(**overrides) if overrides else base


__all__ = [
    "SCENARIOS",
    "DynamicsConfig",
    "build_workload",
    "get_scenario",
    "inference_curve_line",
    "scenario_with_trace",
]
