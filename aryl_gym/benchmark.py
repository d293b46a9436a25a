"""Benchmark several policies on one scenario over several seeds: the paper-style table.

Every ``(policy, seed)`` run simulates the same workload for a given seed (the workload
is a deterministic function of the scenario and the seed), so policies are compared on
identical jobs and inference demand. Runs go to a *backend*: ``local`` (worker processes
on this machine, the default) or ``ray`` (one Ray task per run, on a local Ray instance or
a cluster; ``pip install -e '.[ray]'``, see ``docs/scale-out.md``). Results depend neither on
the backend nor on the number of workers.

    aryl-gym benchmark --scenario small --policies fifo-noloan,sjf-noloan --seeds 3 --out runs/b
    aryl-gym benchmark --scenario small --policies aryl,baseline --backend ray --address auto ...

writes to ``--out``:

* ``results.csv`` — one row per policy x seed: policy, seed, scenario and every summary key;
* ``results.json`` — the same rows, the per-policy aggregate and the failed runs;
* ``table.md`` — per policy the mean and 95 % confidence interval across seeds
  (t-distribution) of the headline metrics, and ratios to the reference policy;
* ``failures.json`` — the runs that raised (an empty list when none did);
* ``jct_cdf.png``, ``queue_cdf.png``, ``usage_over_time.png``, ``preemptions.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.sim.metrics import SUMMARY_KEYS

if TYPE_CHECKING:
    from aryl_gym.policy import Policy

PolicyFactory = Callable[[], "Policy"]

#: Per-job columns that come back from a worker (the CDF plots need only these).
JOB_COLUMNS = ("jct", "queue_time")
#: Time-series columns that come back from a worker (only for the first seed).
SERIES_COLUMNS = ("t", "busy_training", "busy_lent", "lent_servers", "needed")

#: The table's metrics: (summary key, column title, scale applied to the value, decimals).
TABLE_METRICS: tuple[tuple[str, str, float, int], ...] = (
    ("avg_queue_s", "avg queue (h)", 1 / 3600, 2),
    ("p95_queue_s", "p95 queue (h)", 1 / 3600, 2),
    ("avg_jct_s", "avg JCT (h)", 1 / 3600, 2),
    ("p95_jct_s", "p95 JCT (h)", 1 / 3600, 2),
    ("usage_training", "training usage (%)", 100.0, 1),
    ("usage_overall", "overall usage (%)", 100.0, 1),
    ("preemptions", "preemptions", 1.0, 1),
    ("lost_gpu_hours", "lost GPU-h", 1.0, 1),
    ("resizes", "resizes", 1.0, 1),
    ("avg_lent_servers", "avg lent servers", 1.0, 2),
)
#: Ratios to the reference, computed per seed then averaged: (key, title, decimals, suffix).
RATIO_METRICS: tuple[tuple[str, str, int, str], ...] = (
    ("queue_ratio", "queueing vs ref", 2, "x lower"),
    ("jct_ratio", "JCT vs ref", 2, "x lower"),
    ("usage_gain_pp", "usage gain vs ref (pp)", 1, ""),
)

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion around the normal quantile; error < 1e-4 beyond df = 30.
    z = 1.959963984540054
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, 95 % CI half-width (t-distribution; NaN with fewer than 2 values) and count
    of the finite values."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    n = int(a.size)
    if n == 0:
        return math.nan, math.nan, 0
    m = float(a.mean())
    if n < 2:
        return m, math.nan, n
    return m, t_quantile_975(n - 1) * float(a.std(ddof=1)) / math.sqrt(n), n


# --------------------------------------------------------------------------- running


@dataclass
class RunOutput:
    """What one worker sends back: small on purpose (it is pickled)."""

    policy: str
    seed: int
    summary: dict[str, Any] | None = None
    jobs: pd.DataFrame | None = None
    series: pd.DataFrame | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run to execute: ``policy`` on ``scenario`` with workload seed ``seed``.

    ``factory`` builds the policy (``None``: the registry, ``baselines.make_policy``);
    ``keep_series`` / ``keep_jobs`` say whether the time series / per-job columns come back.
    """

    policy: str
    scenario: ScenarioConfig
    seed: int
    factory: PolicyFactory | None = None
    keep_series: bool = False
    keep_jobs: bool = True

    @property
    def label(self) -> str:
        return f"{self.policy} / {self.scenario.name} / seed {self.seed}"


@lru_cache(maxsize=4)
def _workload(scenario: ScenarioConfig, seed: int):
    from aryl_gym.scenarios import build_workload

    return build_workload(scenario, seed)


def _run_one(
    scenario: ScenarioConfig,
    policy_name: str,
    seed: int,
    factory: PolicyFactory | None,
    keep_series: bool,
    keep_jobs: bool = True,
) -> RunOutput:
    """One run, in a worker process or in-process; never raises."""
    from aryl_gym.simulate import run_policy

    try:
        if factory is None:
            from baselines import make_policy

            policy = make_policy(policy_name)
        else:
            policy = factory()
        jobs, demand = _workload(scenario, seed)
        result = run_policy(scenario, policy, seed, jobs=jobs, demand=demand)
        records = result.job_records()
        series = result.timeseries()[list(SERIES_COLUMNS)] if keep_series else None
        return RunOutput(
            policy_name,
            seed,
            summary=dict(result.summary),
            jobs=records[list(JOB_COLUMNS)].reset_index(drop=True) if keep_jobs else None,
            series=series,
        )
    except Exception as exc:  # a failing run must not stop the others
        return RunOutput(policy_name, seed, error=_describe(exc), traceback=traceback.format_exc())


def _run_spec(spec: RunSpec) -> RunOutput:
    return _run_one(
        spec.scenario, spec.policy, spec.seed, spec.factory, spec.keep_series, spec.keep_jobs
    )


def _describe(exc: BaseException) -> str:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return f"{type(exc).__name__}: {msg}"


def _failed(spec: RunSpec, exc: BaseException) -> RunOutput:
    return RunOutput(spec.policy, spec.seed, error=_describe(exc), traceback=traceback.format_exc())


# --------------------------------------------------------------------------- backends

#: Where the runs execute: ``local`` (process pool) or ``ray`` (Ray tasks).
BACKENDS = ("local", "ray")
RAY_INSTALL_HINT = "pip install -e '.[ray]'"


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
            f"install it with `{RAY_INSTALL_HINT}`"
        ) from None
    return ray


def execute_runs(
    specs: Sequence[RunSpec],
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    desc: str = "runs",
) -> list[RunOutput]:
    """Execute ``specs`` on ``backend``; one :class:`RunOutput` per spec, in order.

    A run that raises (or whose worker dies) comes back with ``error`` and ``traceback``
    set; the other runs are kept. ``local``: ``workers`` processes (default
    ``min(os.cpu_count(), runs)``; 1 runs in-process). ``ray``: one task per run on the
    cluster at ``address`` (``ray.init(address=...)``; ``None``: ``$RAY_ADDRESS`` or a new
    local instance with ``workers`` CPUs, default all). A Ray session that is already
    initialised is used as it is and left running.
    """
    check_backend(backend)
    specs = list(specs)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(specs), desc=desc, unit="run", disable=not progress)
    try:
        if backend == "ray":
            return _execute_ray(specs, workers, address, bar)
        return _execute_local(specs, workers, bar)
    finally:
        bar.close()


def _execute_local(specs: list[RunSpec], workers: int | None, bar) -> list[RunOutput]:
    n_workers = min(os.cpu_count() or 1, len(specs)) if workers is None else max(1, int(workers))
    outputs: list[RunOutput | None] = [None] * len(specs)
    if n_workers == 1:
        for i, spec in enumerate(specs):
            bar.set_postfix_str(spec.label)
            outputs[i] = _run_spec(spec)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            futures = {pool.submit(_run_spec, spec): i for i, spec in enumerate(specs)}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    outputs[i] = fut.result()
                except Exception as exc:  # pickling errors, a worker that died
                    outputs[i] = _failed(specs[i], exc)
                bar.update(1)
    return outputs  # type: ignore[return-value]


def _execute_ray(
    specs: list[RunSpec], workers: int | None, address: str | None, bar
) -> list[RunOutput]:
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
    try:
        remote = ray.remote(num_cpus=1)(_run_spec)
        refs = {remote.remote(spec): i for i, spec in enumerate(specs)}
        outputs: list[RunOutput | None] = [None] * len(specs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    outputs[i] = ray.get(ref)
                except Exception as exc:  # a worker or node that died, a pickling error
                    outputs[i] = _failed(specs[i], exc)
                bar.update(1)
        return outputs  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


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
    """Raise ``ValueError`` naming every unknown or repeated policy."""
    from baselines import policy_specs

    known = list(policy_specs()) + list(policy_factories or {})
    if not policies:
        raise ValueError("no policies given")
    unknown = [p for p in policies if p not in known]
    if unknown:
        raise ValueError(
            f"unknown polic{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(repr(p) for p in unknown)}; known: {', '.join(known)}"
        )
    dup = sorted({p for p in policies if list(policies).count(p) > 1})
    if dup:
        raise ValueError(f"policies given more than once: {', '.join(dup)}")


def run_benchmark(
    scenario: str | ScenarioConfig,
    policies: list[str],
    seeds: list[int],
    out_dir: Path,
    *,
    workers: int | None = None,
    progress: bool = True,
    reference: str = "baseline",
    policy_factories: dict[str, PolicyFactory] | None = None,
    backend: str = "local",
    address: str | None = None,
) -> pd.DataFrame:
    """Run every policy on every seed of ``scenario`` and write the reports to ``out_dir``.

    Args:
        scenario: a scenario name or object.
        policies: registered policy names (``baselines.policy_specs()``), or names of
            ``policy_factories``.
        seeds: workload seeds; each seed's workload is shared by all policies.
        out_dir: created if needed.
        workers: worker processes (default ``min(os.cpu_count(), runs)``); 1 runs in-process.
            With ``backend="ray"`` and no cluster address: the CPUs of the local Ray instance.
        progress: a progress bar over runs.
        reference: the policy the ratios compare to (skipped when it is not run).
        policy_factories: extra ``name -> zero-argument callable returning a Policy``
            (used before the registry; must be picklable when ``workers > 1`` or on Ray).
        backend: ``"local"`` or ``"ray"`` (see :func:`execute_runs`).
        address: the Ray cluster address (``backend="ray"`` only).

    Returns:
        One row per successful run (policy, seed, scenario, summary keys), ordered as
        ``policies`` x ``seeds``. ``df.attrs`` holds ``failures`` (list of dicts with
        policy, seed, error) and ``paths`` (the files written).
    """
    sc = resolve_scenario(scenario)
    validate_policies(policies, policy_factories)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds given more than once: {seeds}")
    check_backend(backend)
    factories = dict(policy_factories or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # seed-major order: consecutive tasks share a workload (cached per process)
    tasks = [
        RunSpec(p, sc, s, factories.get(p), keep_series=s == seeds[0])
        for s in seeds
        for p in policies
    ]
    results = execute_runs(
        tasks,
        backend=backend,
        workers=workers,
        address=address,
        progress=progress,
        desc=f"benchmark {sc.name}",
    )
    outputs = {(t.policy, t.seed): o for t, o in zip(tasks, results, strict=True)}
    ordered = [outputs[p, s] for p in policies for s in seeds]
    ok = [o for o in ordered if o.error is None]
    failures = [
        {"policy": o.policy, "seed": o.seed, "error": o.error, "traceback": o.traceback}
        for o in ordered
        if o.error is not None
    ]
    df = _results_frame(sc.name, ok)
    agg = aggregate(df, reference)
    paths = write_reports(out_dir, sc, df, agg, ok, failures, policies, seeds, reference)
    if failures:
        print(f"benchmark: {len(failures)} of {len(tasks)} runs failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f['policy']} seed {f['seed']}: {f['error']}", file=sys.stderr)
    df.attrs["failures"] = [{k: f[k] for k in ("policy", "seed", "error")} for f in failures]
    df.attrs["paths"] = [str(p) for p in paths]
    return df


def _results_frame(scenario_name: str, outputs: list[RunOutput]) -> pd.DataFrame:
    keys = list(SUMMARY_KEYS)
    for o in outputs:
        keys += [k for k in o.summary if k not in keys]
    rows = [
        {
            "policy": o.policy,
            "seed": o.seed,
            "scenario": scenario_name,
            **{k: o.summary.get(k) for k in keys},
        }
        for o in outputs
    ]
    return pd.DataFrame(rows, columns=["policy", "seed", "scenario", *keys])


# --------------------------------------------------------------------------- aggregating


def _per_seed_ratios(df: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per (policy, seed): ref/policy avg queue and avg JCT, usage gain in pp."""
    ref = df[df["policy"] == reference].set_index("seed")

    def ratio(r: float, p: float) -> float:
        if not (math.isfinite(r) and math.isfinite(p)):
            return math.nan
        if p == 0:
            return 1.0 if r == 0 else math.inf
        return r / p

    rows = []
    for _, row in df.iterrows():
        if row["seed"] not in ref.index:
            continue
        r = ref.loc[row["seed"]]
        rows.append(
            {
                "policy": row["policy"],
                "seed": row["seed"],
                "queue_ratio": ratio(float(r["avg_queue_s"]), float(row["avg_queue_s"])),
                "jct_ratio": ratio(float(r["avg_jct_s"]), float(row["avg_jct_s"])),
                "usage_gain_pp": 100.0 * (float(row["usage_overall"]) - float(r["usage_overall"])),
            }
        )
    return pd.DataFrame(rows, columns=["policy", "seed", *(m[0] for m in RATIO_METRICS)])


def aggregate(df: pd.DataFrame, reference: str = "baseline") -> pd.DataFrame:
    """One row per policy (in the order of ``df``): ``seeds``, then ``<key>_mean`` and
    ``<key>_ci95`` (half-width) for every table metric and, when ``reference`` is in
    ``df``, for the ratios to it."""
    has_ref = reference in set(df["policy"])
    ratios = _per_seed_ratios(df, reference) if has_ref else None
    rows = []
    for policy in dict.fromkeys(df["policy"]):
        sub = df[df["policy"] == policy]
        row: dict[str, Any] = {"policy": policy, "seeds": len(sub)}
        for key, *_ in TABLE_METRICS:
            m, ci, _n = mean_ci(sub[key].astype(float))
            row[f"{key}_mean"], row[f"{key}_ci95"] = m, ci
        if ratios is not None:
            rs = ratios[ratios["policy"] == policy]
            for key, *_ in RATIO_METRICS:
                vals = rs[key].astype(float)
                if np.isinf(vals).any():  # a policy with zero queueing: infinitely lower
                    m, ci = math.inf, math.nan
                else:
                    m, ci, _n = mean_ci(vals)
                row[f"{key}_mean"], row[f"{key}_ci95"] = m, ci
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, ci: float, scale: float, decimals: int, suffix: str = "") -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isinf(mean):
        return "inf" + (f" {suffix}" if suffix else "")
    text = f"{mean * scale:,.{decimals}f}"
    if not math.isnan(ci):
        text += f" ± {ci * scale:,.{decimals}f}"
    return text + (f" {suffix}" if suffix else "")


def format_table(df: pd.DataFrame, reference: str = "baseline") -> str:
    """The paper-style markdown table of a results frame (one row per policy x seed):
    per policy the mean ± 95 % CI half-width across seeds (the value alone with one
    seed), and, when ``reference`` is among the policies, the ratios to it."""
    if df.empty:
        return "_no successful runs_\n"
    agg = aggregate(df, reference)
    has_ref = reference in set(df["policy"])
    head = ["policy", "seeds"] + [t for _, t, _, _ in TABLE_METRICS]
    if has_ref:
        head += [t for _, t, _, _ in RATIO_METRICS]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join([":---", "---:"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for _, row in agg.iterrows():
        cells = [str(row["policy"]), str(int(row["seeds"]))]
        for key, _t, scale, dec in TABLE_METRICS:
            cells.append(_cell(row[f"{key}_mean"], row[f"{key}_ci95"], scale, dec))
        if has_ref:
            for key, _t, dec, suffix in RATIO_METRICS:
                cells.append(_cell(row[f"{key}_mean"], row[f"{key}_ci95"], 1.0, dec, suffix))
        lines.append("| " + " | ".join(cells) + " |")
    scenario = ", ".join(str(s) for s in dict.fromkeys(df["scenario"]))
    seeds = ", ".join(str(s) for s in sorted(set(df["seed"])))
    notes = [
        "",
        f"Scenario {scenario}; seeds {seeds}. Mean ± 95 % CI half-width across seeds (t-distribution).",
    ]
    if has_ref:
        notes.append(
            f"Ratios to `{reference}`, computed per seed then averaged: queueing and JCT as "
            f"{reference} avg / policy avg (x lower), usage gain as the difference of overall "
            "usage in percentage points."
        )
    else:
        notes.append(f"Reference policy `{reference}` not run: no ratios.")
    return "\n".join(lines + notes) + "\n"


# --------------------------------------------------------------------------- reports


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None  # strict JSON has no NaN / inf
    return v


def write_reports(
    out_dir: Path,
    scenario: ScenarioConfig,
    df: pd.DataFrame,
    agg: pd.DataFrame,
    outputs: list[RunOutput],
    failures: list[dict],
    policies: list[str],
    seeds: list[int],
    reference: str,
) -> list[Path]:
    """Write the CSV, JSON, markdown and PNG files; returns their paths."""
    paths = []
    p = out_dir / "results.csv"
    df.to_csv(p, index=False)
    paths.append(p)

    p = out_dir / "results.json"
    doc = {
        "scenario": scenario.name,
        "trace": scenario.trace,
        "trace_format": scenario.trace_format,
        "training_servers": scenario.cluster.training_servers,
        "inference_servers": scenario.cluster.inference_servers,
        "inference_curve": scenario.inference.curve,
        "policies": policies,
        "seeds": seeds,
        "reference": reference,
        "runs": df.to_dict(orient="records"),
        "aggregate": agg.to_dict(orient="records"),
        "failures": [{k: f[k] for k in ("policy", "seed", "error")} for f in failures],
    }
    p.write_text(json.dumps(_jsonable(doc), indent=2) + "\n")
    paths.append(p)

    p = out_dir / "failures.json"
    p.write_text(json.dumps(_jsonable(failures), indent=2) + "\n")
    paths.append(p)

    p = out_dir / "table.md"
    p.write_text(
        f"# Benchmark: {scenario.name}\n\n{_setup_line(scenario)}\n\n" + format_table(df, reference)
    )
    paths.append(p)

    paths += plot_all(out_dir, scenario, agg, outputs, policies, seeds[0])
    return paths


def _setup_line(scenario: ScenarioConfig) -> str:
    """One line naming the workload source, the pools and the inference curve of a run."""
    cl = scenario.cluster
    if scenario.trace is not None:
        work = f"trace `{scenario.trace}` (format {scenario.trace_format or 'detected'})"
    else:
        work = "synthetic workload"
    return (
        f"Workload: {work}; {cl.training_servers} training + {cl.inference_servers} inference "
        f"servers of {cl.gpus_per_server} GPUs; inference curve `{scenario.inference.curve}` "
        f"(peak utilisation {scenario.inference.peak_utilisation:g})."
    )


def plot_all(
    out_dir: Path,
    scenario: ScenarioConfig,
    agg: pd.DataFrame,
    outputs: list[RunOutput],
    policies: list[str],
    first_seed: int,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_policy = {p: [o for o in outputs if o.policy == p] for p in policies}
    paths = [
        _plot_cdf(
            plt, out_dir / "jct_cdf.png", by_policy, "jct", "job completion time (s)", scenario
        ),
        _plot_cdf(
            plt, out_dir / "queue_cdf.png", by_policy, "queue_time", "queueing time (s)", scenario
        ),
        _plot_usage(plt, out_dir / "usage_over_time.png", by_policy, first_seed, scenario),
        _plot_preemptions(plt, out_dir / "preemptions.png", agg, scenario),
    ]
    return paths


def _plot_cdf(plt, path: Path, by_policy, column: str, label: str, scenario) -> Path:
    """Per-job CDF pooled over seeds, log x; values below 1 s are drawn at 1 s."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for policy, outs in by_policy.items():
        # finished jobs only (an unfinished job has a NaN JCT)
        vals = [
            o.jobs.loc[np.isfinite(o.jobs["jct"].to_numpy(float)), column].to_numpy(float)
            for o in outs
            if o.jobs is not None
        ]
        if not vals:
            continue
        x = np.concatenate(vals)
        x = np.sort(np.maximum(x[np.isfinite(x)], 1.0))
        if x.size == 0:
            continue
        y = np.arange(1, x.size + 1) / x.size
        ax.step(x, y, where="post", label=f"{policy} ({x.size:,} jobs)")
    ax.set_xscale("log")
    ax.set_xlabel(f"{label}, log scale (values < 1 s shown at 1 s)")
    ax.set_ylabel("fraction of finished jobs")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{scenario.name}: {label.split(' (')[0]} CDF, pooled over seeds")
    if ax.has_data():
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_usage(plt, path: Path, by_policy, seed: int, scenario) -> Path:
    cl = scenario.cluster
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    needed_drawn = lent_any = False
    for policy, outs in by_policy.items():
        s = next((o.series for o in outs if o.seed == seed and o.series is not None), None)
        if s is None:
            continue
        days = s["t"].to_numpy(float) / 86400.0
        axes[0].plot(days, 100.0 * s["busy_training"] / cl.training_gpus, label=policy, lw=1)
        lent_gpus = s["lent_servers"].to_numpy(float) * cl.gpus_per_server
        with np.errstate(invalid="ignore", divide="ignore"):
            lent_use = np.where(lent_gpus > 0, 100.0 * s["busy_lent"] / lent_gpus, np.nan)
        axes[1].plot(days, lent_use, label=policy, lw=1)
        lent_any |= bool(np.isfinite(lent_use).any())
        axes[2].plot(days, s["lent_servers"], label=policy, lw=1)
        if not needed_drawn:
            idle = cl.inference_servers - s["needed"].to_numpy(float)
            axes[2].plot(days, idle, color="grey", ls=":", lw=1, label="idle inference servers")
            needed_drawn = True
    if not lent_any:
        axes[1].text(
            0.5, 0.5, "no servers lent", ha="center", va="center", transform=axes[1].transAxes
        )
    axes[0].set_ylabel("training pool\nGPU usage (%)")
    axes[1].set_ylabel("lent servers\nGPU usage (%)")
    axes[2].set_ylabel("lent servers")
    axes[2].set_xlabel("time (days)")
    axes[0].set_title(f"{scenario.name}, seed {seed}: usage over time")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_preemptions(plt, path: Path, agg: pd.DataFrame, scenario) -> Path:
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(agg) + 2), 4))
    if not agg.empty:
        names = list(agg["policy"])
        means = agg["preemptions_mean"].to_numpy(float)
        ci = np.nan_to_num(agg["preemptions_ci95"].to_numpy(float))
        ax.bar(range(len(names)), means, yerr=ci, capsize=5, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("preemptions per run (mean ± 95 % CI)")
    ax.set_title(f"{scenario.name}: preemptions")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- CLI


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def cmd_benchmark(args: argparse.Namespace) -> int:
    policies = _csv_list(args.policies)
    if args.seed_list is not None:
        try:
            seeds = [int(x) for x in _csv_list(args.seed_list)]
        except ValueError:
            raise ValueError(
                f"--seed-list must be integers separated by commas, got {args.seed_list!r}"
            ) from None
    else:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        seeds = list(range(args.seeds))
    # validate everything before any run starts (the scenario last: it may load a trace)
    validate_policies(policies)
    check_backend(args.backend)
    from aryl_gym.cli import scenario_from_args

    scenario = scenario_from_args(args)
    df = run_benchmark(
        scenario,
        policies,
        seeds,
        Path(args.out),
        workers=args.workers,
        progress=not args.quiet,
        reference=args.reference,
        backend=args.backend,
        address=args.address,
    )
    print(format_table(df, args.reference))
    for p in df.attrs.get("paths", []):
        print(f"wrote {p}")
    return 1 if df.attrs.get("failures") else 0


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--address`` and ``--workers`` (shared with ``aryl-gym sweep``)."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where runs execute: local worker processes (default) or Ray tasks "
        f"(needs `{RAY_INSTALL_HINT}`)",
    )
    parser.add_argument(
        "--address",
        help="Ray cluster address for --backend ray, e.g. auto or ray://head:10001 "
        "(default: $RAY_ADDRESS, else a new local Ray instance)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="local: worker processes (default: min(CPUs, runs); 1 = in-process); "
        "ray without --address: CPUs of the local Ray instance (default: all)",
    )


def register(subparsers) -> None:
    """Add the ``benchmark`` sub-command to the ``aryl-gym`` parser."""
    b = subparsers.add_parser(
        "benchmark",
        help="run several policies over several seeds and write the paper-style table and plots",
    )
    b.add_argument("--scenario", required=True, help="scenario name (see `aryl-gym scenarios`)")
    from aryl_gym.cli import add_scenario_arguments

    add_scenario_arguments(b)
    b.add_argument(
        "--policies",
        default="aryl,baseline,aryl-loan-only,aryl-elastic-only",
        help="comma-separated policy names (see `aryl-gym policies`; default: Aryl, the "
        "reference point and both ablations)",
    )
    seeds = b.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=3, help="run seeds 0..N-1 (default 3)")
    seeds.add_argument("--seed-list", help="comma-separated seeds, e.g. 0,5,9 (instead of --seeds)")
    b.add_argument("--out", required=True, type=Path, help="output directory")
    add_backend_arguments(b)
    b.add_argument(
        "--reference", default="baseline", help="policy the ratios compare to (default baseline)"
    )
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_benchmark)


__all__ = [
    "BACKENDS",
    "RunSpec",
    "aggregate",
    "execute_runs",
    "format_table",
    "mean_ci",
    "register",
    "run_benchmark",
    "t_quantile_975",
]
