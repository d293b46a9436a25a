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
* ``jct_cdf.png``, ``queue_cdf.png``, ``usage_over_time.png``, ``preemptions.png``;
* with ``keep`` (``--keep jobs,timeseries,events``): ``runs/<policy>_seed<k>_<kind>.csv``,
  the whole run records of every run (per-job rows, the sampled usage series, the event
  log of :mod:`aryl_gym.sim.events`; characters of a policy name other than letters,
  digits, ``_``, ``.`` and ``-`` become ``_``).
* ``runs/<key>.json`` (and ``.npz``) — one record per finished run, written as it ends;
* ``INCOMPLETE.json`` — only while the folder is unfinished (interrupted): the missing
  runs and files (see :mod:`aryl_gym.experiments.records`).

Every file is written atomically. A folder that already holds results is refused unless
``force`` (replace them) or ``resume`` (reuse the finished runs' records: only the
missing runs are computed, and the reports come out as those of an uninterrupted run).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.experiments.plots import plot_all
from aryl_gym.experiments.records import ResultFolder, execute_in_folder
from aryl_gym.experiments.report import (
    aggregate,
    format_table,
    setup_line,
    write_json,
)
from aryl_gym.experiments.runner import (
    PolicyFactory,
    RunOutput,
    RunSpec,
    check_backend,
    check_inputs,
    check_workers,
    print_failures,
)
from aryl_gym.outputs import write_csv_atomic, write_text_atomic
from aryl_gym.sim.limits import check_at_most
from aryl_gym.sim.metrics import SUMMARY_KEYS
from aryl_gym.simulate import check_record_kinds

#: The report files of a benchmark folder.
REPORT_FILES = (
    "results.csv",
    "results.json",
    "failures.json",
    "table.md",
    "jct_cdf.png",
    "queue_cdf.png",
    "usage_over_time.png",
    "preemptions.png",
)


def benchmark_folder(out_dir: Path | str) -> ResultFolder:
    """The :class:`~aryl_gym.experiments.records.ResultFolder` of a benchmark in
    ``out_dir`` (``benchmark_folder(out).check(...)`` checks it before any work)."""
    return ResultFolder(out_dir, "benchmark", REPORT_FILES)


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
    keep: Sequence[str] = (),
    force: bool = False,
    resume: bool = False,
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
        backend: ``"local"`` or ``"ray"`` (see
            :func:`~aryl_gym.experiments.runner.execute_runs`).
        address: the Ray cluster address (``backend="ray"`` only).
        keep: run records to write per run under ``out_dir/runs`` (kinds of
            :data:`aryl_gym.simulate.RECORD_KINDS`: ``jobs``, ``timeseries``, ``events``).
            They come back from the workers whole, so a large scenario with many runs
            needs the memory for all of them.
        force: replace the results already in ``out_dir``.
        resume: reuse the records of the runs already finished in ``out_dir``.

    Returns:
        One row per successful run (policy, seed, scenario, summary keys), ordered as
        ``policies`` x ``seeds``. ``df.attrs`` holds ``failures`` (list of dicts with
        policy, seed, error), ``paths`` (the files written), ``records`` (the run record
        files written), ``computed`` and ``reused`` (the ``(policy, seed)`` runs computed
        now / taken from records).

    Raises:
        ValueError: before any run, for unknown names, sizes beyond
            :mod:`aryl_gym.sim.limits`, an ``out_dir`` that cannot be written or that holds
            results without ``force`` / ``resume``.
        KeyboardInterrupt: on Ctrl-C / SIGTERM, after stopping the workers and marking
            the folder incomplete.
    """
    sc, seeds = check_inputs(scenario, policies, seeds, policy_factories)
    check_backend(backend)
    check_workers(workers)
    check_at_most("the number of runs (policies x seeds)", len(policies) * len(seeds), "MAX_RUNS")
    keep = check_record_kinds(keep)
    if keep:
        _check_record_stems(policies)
    folder = benchmark_folder(out_dir)
    folder.check(force=force, resume=resume)
    factories = dict(policy_factories or {})
    out_dir = Path(out_dir)

    # seed-major order: consecutive tasks share a workload (cached per process)
    tasks = [
        RunSpec(p, sc, s, factories.get(p), keep_series=True, keep_records=keep)
        for s in seeds
        for p in policies
    ]
    results, computed = execute_in_folder(
        tasks,
        folder,
        force=force,
        resume=resume,
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
    with folder.writing_reports(tasks):
        paths = write_reports(out_dir, sc, df, agg, ok, failures, policies, seeds, reference)
        records = write_run_records(out_dir, ok)
    print_failures("benchmark", failures, len(tasks), lambda f: f"{f['policy']} seed {f['seed']}")
    df.attrs["failures"] = [{k: f[k] for k in ("policy", "seed", "error")} for f in failures]
    df.attrs["paths"] = [str(p) for p in paths]
    df.attrs["records"] = [str(p) for p in records]
    done_now = set(computed)
    df.attrs["computed"] = [(tasks[i].policy, tasks[i].seed) for i in computed]
    df.attrs["reused"] = [(t.policy, t.seed) for i, t in enumerate(tasks) if i not in done_now]
    return df


def record_path(out_dir: Path, policy: str, seed: int, kind: str) -> Path:
    """Where :func:`run_benchmark` writes run record ``kind`` of ``policy`` / ``seed``:
    ``out_dir/runs/<policy>_seed<seed>_<kind>.csv``."""
    return Path(out_dir) / "runs" / f"{_file_stem(policy)}_seed{seed}_{kind}.csv"


def _file_stem(policy: str) -> str:
    """``policy`` with every run of characters other than letters, digits, ``_``, ``.``
    and ``-`` replaced by ``_`` (``my_pkg.mod:Cls`` -> ``my_pkg.mod_Cls``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", policy)


def _check_record_stems(policies: Sequence[str]) -> None:
    """``ValueError`` when two policies would write their run records to the same files."""
    seen: dict[str, str] = {}
    for p in policies:
        other = seen.setdefault(_file_stem(p), p)
        if other != p:
            raise ValueError(
                f"policies {other!r} and {p!r} would write their run records to the same "
                f"files (runs/{_file_stem(p)}_seed<k>_<kind>.csv); rename one"
            )


def write_run_records(out_dir: Path, outputs: list[RunOutput]) -> list[Path]:
    """Write the run records that came back in ``outputs`` (:func:`record_path`) and drop
    them from the outputs; returns the paths."""
    paths = []
    for o in outputs:
        for kind, frame in (o.records or {}).items():
            p = record_path(out_dir, o.policy, o.seed, kind)
            p.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(p, index=False)
            paths.append(p)
        o.records = None
    return paths


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
    """Write the CSV, JSON, markdown and PNG files (each atomically); returns their paths."""
    paths = [write_csv_atomic(out_dir / "results.csv", df)]

    doc = {
        "scenario": scenario.name,
        "trace": scenario.trace,
        "trace_format": scenario.trace_format,
        "trace_options": None
        if scenario.trace_options is None
        else dataclasses.asdict(scenario.trace_options),
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
    paths.append(write_json(out_dir / "results.json", doc))
    paths.append(write_json(out_dir / "failures.json", failures))

    paths.append(
        write_text_atomic(
            out_dir / "table.md",
            f"# Benchmark: {scenario.name}\n\n{setup_line(scenario)}\n\n"
            + format_table(df, reference),
        )
    )

    paths += plot_all(out_dir, scenario, agg, outputs, policies)
    return paths
