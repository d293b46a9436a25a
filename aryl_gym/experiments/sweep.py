"""Parameter sweeps: the benchmark over the cartesian product of scenario changes.

    aryl-gym sweep --scenario small --policies aryl,baseline --seeds 3 \\
        --grid elastic_share=0,0.25,0.5,1 --grid inference_gpu_speed=1,0.4 \\
        --grid load=0.5,1,1.5 --grid inference_curve=diurnal,servegen-llm-small --out runs/s

Every grid point (one value per ``--grid`` parameter; no ``--grid`` at all is the single
point of the unchanged scenario) x policy x seed is one run; all runs go to one task pool
on the chosen backend (``local`` processes or ``ray`` tasks, as ``aryl-gym benchmark``).
Within a grid point every policy sees the same workload for a given seed.

Grid parameters (see :data:`PARAMETERS`): ``elastic_share`` (workload.elastic_share),
``elastic_min_fraction`` and ``elastic_max_factor`` (an elastic job's range around its
request), ``large_model_share``,
``load`` (workload.scaled(load): jobs per day times ``load``), ``inference_gpu_speed``,
``training_servers``, ``inference_servers`` (cluster), ``inference_curve`` (inference.curve),
``peak_utilisation`` (inference.peak_utilisation).

Writes to ``--out``:

* ``sweep.csv`` — one row per run: every grid parameter, policy, seed, scenario and every
  summary key;
* ``sweep.md`` — per grid point and policy the mean over seeds of the catalog's
  ``SWEEP_METRICS`` (avg queue, avg JCT, overall usage, preemptions) and the ratios to the
  reference policy (``RATIO_METRICS``: queueing and JCT as reference / policy, usage gain
  in percentage points; per seed, then averaged); then one sensitivity table per swept
  parameter, the other parameters at their defaults;
* ``sweep_<parameter>.png`` — per swept parameter, the ratios of every policy to the
  reference against the parameter's values (others at their defaults);
* ``failures.json`` — the runs that raised (an empty list when none did);
* ``runs/<key>.json`` and ``INCOMPLETE.json`` — run records and the marker of an
  unfinished folder, as ``aryl-gym benchmark`` (``force`` / ``resume`` likewise; see
  :mod:`aryl_gym.experiments.records`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.experiments import runner
from aryl_gym.experiments.grid import (
    anchors,
    at_anchors,
    fmt_value,
    grid_points,
    normalise_grid,
    point_scenario,
)
from aryl_gym.experiments.plots import plot_sensitivity
from aryl_gym.experiments.records import ResultFolder, execute_in_folder
from aryl_gym.experiments.report import (
    aggregate,
    cell,
    md_table,
    ratios_note,
    setup_line,
    write_json,
)
from aryl_gym.outputs import write_csv_atomic, write_text_atomic
from aryl_gym.sim.catalog import (
    RATIO_METRICS,
    SENSITIVITY_METRICS,
    SUMMARY_KEYS,
    SWEEP_METRICS,
)
from aryl_gym.sim.limits import check_at_most

#: What :func:`point_aggregates` computes: the per-point and the sensitivity columns.
_AGGREGATED = tuple(dict.fromkeys((*SWEEP_METRICS, *SENSITIVITY_METRICS)))


# --------------------------------------------------------------------------- running


def run_sweep(
    scenario: str | ScenarioConfig,
    policies: list[str],
    seeds: list[int],
    grid: dict[str, Sequence[Any]],
    out_dir: Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    reference: str = "baseline",
    policy_factories: dict[str, runner.PolicyFactory] | None = None,
    force: bool = False,
    resume: bool = False,
) -> pd.DataFrame:
    """Run every grid point x policy x seed and write the sweep reports to ``out_dir``.

    ``grid`` maps parameter names of :data:`PARAMETERS` to values (typed; see
    :func:`parse_grid` for strings); an empty grid is one point, the scenario itself.
    Every point's scenario is built (and so validated) and ``out_dir`` is checked before
    any run starts. ``force`` replaces the results already in ``out_dir``; ``resume``
    reuses the records of its finished runs (see :mod:`aryl_gym.experiments.records`).

    Returns one row per successful run (grid parameters, policy, seed, scenario, summary
    keys), ordered by point, policy, seed; ``df.attrs`` holds ``failures``, ``paths``,
    ``computed`` and ``reused`` (``(point, policy, seed)`` of the runs computed now /
    taken from records).
    """
    base, seeds = runner.check_inputs(scenario, policies, seeds, policy_factories)
    grid = normalise_grid(dict(grid))
    runner.check_backend(backend)
    runner.check_workers(workers)
    n_runs = math.prod(len(v) for v in grid.values()) * len(policies) * len(seeds)
    check_at_most("the number of runs (grid points x policies x seeds)", n_runs, "MAX_RUNS")
    folder = sweep_folder(out_dir, grid, policies, reference)
    folder.check(force=force, resume=resume)
    points = grid_points(grid)
    scenarios = []
    for point in points:
        try:
            scenarios.append(point_scenario(base, point))
        except (KeyError, ValueError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            label = ", ".join(f"{k}={fmt_value(v)}" for k, v in point.items())
            raise ValueError(f"grid point {label}: {msg}") from None
    factories = dict(policy_factories or {})
    out_dir = Path(out_dir)

    # point- then seed-major: consecutive tasks share a workload (cached per worker)
    tasks = [
        (i, runner.RunSpec(p, sc, s, factories.get(p), keep_series=False, keep_jobs=False))
        for i, sc in enumerate(scenarios)
        for s in seeds
        for p in policies
    ]
    specs = [t for _, t in tasks]
    results, computed = execute_in_folder(
        specs,
        folder,
        force=force,
        resume=resume,
        backend=backend,
        workers=workers,
        address=address,
        progress=progress,
        desc=f"sweep {base.name} ({len(points)} points)",
    )
    by_key = {(i, t.policy, t.seed): o for (i, t), o in zip(tasks, results, strict=True)}

    keys = list(SUMMARY_KEYS)
    rows, failures = [], []
    for i, point in enumerate(points):
        for p in policies:
            for s in seeds:
                o = by_key[i, p, s]
                if o.error is not None:
                    failures.append(
                        {
                            **point,
                            "policy": p,
                            "seed": s,
                            "scenario": scenarios[i].name,
                            "error": o.error,
                            "traceback": o.traceback,
                        }
                    )
                    continue
                keys += [k for k in o.summary if k not in keys]
                rows.append({**point, "policy": p, "seed": s, "scenario": base.name, **o.summary})
    columns = [*grid, "policy", "seed", "scenario", *keys]
    df = pd.DataFrame(rows, columns=columns)

    with folder.writing_reports(specs):
        paths = write_sweep_reports(out_dir, base, df, grid, policies, seeds, reference, failures)
    runner.print_failures(
        "sweep",
        failures,
        len(tasks),
        lambda f: f"{f['policy']} / {f['scenario']} / seed {f['seed']}",
    )
    df.attrs["failures"] = [{k: v for k, v in f.items() if k != "traceback"} for f in failures]
    df.attrs["paths"] = [str(p) for p in paths]
    done_now = set(computed)
    df.attrs["computed"] = [(tasks[i][0], tasks[i][1].policy, tasks[i][1].seed) for i in computed]
    df.attrs["reused"] = [
        (i, t.policy, t.seed) for j, (i, t) in enumerate(tasks) if j not in done_now
    ]
    return df


def sweep_folder(
    out_dir: Path | str, grid: dict[str, Sequence[Any]], policies: Sequence[str], reference: str
) -> ResultFolder:
    """The :class:`~aryl_gym.experiments.records.ResultFolder` of a sweep in ``out_dir``:
    ``sweep.csv``, ``sweep.md``, ``failures.json`` and, when ``reference`` runs, one
    ``sweep_<parameter>.png`` per swept parameter (any ``sweep_*.png`` counts as a result)."""
    pngs = [f"sweep_{n}.png" for n, vs in grid.items() if len(vs) > 1 and reference in policies]
    return ResultFolder(
        out_dir, "sweep", ["sweep.csv", "sweep.md", "failures.json", *pngs], ["sweep_*.png"]
    )


# --------------------------------------------------------------------------- reports


def point_aggregates(df: pd.DataFrame, grid: dict[str, list[Any]], reference: str) -> pd.DataFrame:
    """One row per grid point x policy: the grid values, then ``report.aggregate``'s
    columns (``<key>_mean``, ``<key>_ci95`` of the sweep's metrics and, with the
    reference, of the ratios)."""
    names = list(grid)
    parts = []
    if df.empty:
        return pd.DataFrame(columns=[*names, "policy"])
    groups = df.groupby(names, sort=False, dropna=False) if names else [((), df)]
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        agg = aggregate(sub, reference, _AGGREGATED)
        for name, value in zip(names, key, strict=True):
            agg[name] = value
        parts.append(agg)
    out = pd.concat(parts, ignore_index=True)
    return out[[*names, *(c for c in out.columns if c not in names)]]


def _ratio_cells(row: pd.Series) -> list[str]:
    return [cell(row, m, with_ci=False) for m in RATIO_METRICS]


def format_sweep(
    df: pd.DataFrame,
    grid: dict[str, list[Any]],
    base: ScenarioConfig,
    policies: list[str],
    seeds: list[int],
    reference: str,
) -> str:
    """The markdown report: the per-point table, then one sensitivity table per swept
    parameter (the others at their :func:`anchors`)."""
    names = list(grid)
    has_ref = reference in set(df["policy"]) if not df.empty else False
    out = [f"# Sweep: {base.name}", ""]
    out.append(
        f"Policies {', '.join(policies)}; seeds {', '.join(str(s) for s in seeds)}; "
        f"{len(grid_points(grid))} grid point(s)."
    )
    out.append(setup_line(base))
    if grid:
        out.append(
            "Grid: "
            + "; ".join(f"`{k}` = {', '.join(fmt_value(v) for v in vs)}" for k, vs in grid.items())
            + "."
        )
    out.append(
        "Values are means over seeds (per-run values in `sweep.csv`). "
        + ratios_note(reference, has_ref, " are computed")
    )
    out.append("")
    if df.empty:
        return "\n".join([*out, "_no successful runs_", ""])
    agg = point_aggregates(df, grid, reference)

    out += ["## Per grid point", ""]
    head = [*names, "policy", "seeds", *(m.heading for m in SWEEP_METRICS)]
    if has_ref:
        head += [m.heading for m in RATIO_METRICS]
    rows = []
    for _, r in agg.iterrows():
        cells = [fmt_value(r[n]) for n in names] + [str(r["policy"]), str(int(r["seeds"]))]
        cells += [cell(r, m, with_ci=False) for m in SWEEP_METRICS]
        if has_ref:
            cells += _ratio_cells(r)
        rows.append(cells)
    out += md_table(head, rows, len(names) + 1)

    swept = [n for n in names if len(grid[n]) > 1]
    if swept:
        anchor = anchors(base, grid)
        others = [p for p in policies if p != reference and p in set(agg["policy"])]
        out += ["", "## Sensitivity: one parameter at a time", ""]
        out.append(
            "Each table varies one parameter, the others held at "
            + ", ".join(f"`{k}` = {fmt_value(v)}" for k, v in anchor.items())
            + " (the scenario's own value when the grid has it, else the grid's first value)."
        )
        for name in swept:
            sub = at_anchors(agg, grid, anchor, name)
            out += ["", f"### {name}", ""]
            first = SENSITIVITY_METRICS[0]
            if has_ref:
                head = [name, *(f"{reference} {m.heading}" for m in SENSITIVITY_METRICS)]
                for p in others:
                    head += [f"{p} {m.heading}" for m in RATIO_METRICS]
            else:
                head = [name] + [f"{p} {first.heading}" for p in policies]
            rows = []
            for value in grid[name]:
                at = sub[sub[name] == value].set_index("policy")
                cells = [fmt_value(value)]
                if has_ref:
                    ref = at.loc[reference] if reference in at.index else None
                    for m in SENSITIVITY_METRICS:
                        cells.append(cell(ref, m, with_ci=False) if ref is not None else "n/a")
                    for p in others:
                        cells += (
                            _ratio_cells(at.loc[p])
                            if p in at.index
                            else ["n/a"] * len(RATIO_METRICS)
                        )
                else:
                    for p in policies:
                        cells.append(
                            cell(at.loc[p], first, with_ci=False) if p in at.index else "n/a"
                        )
                rows.append(cells)
            out += md_table(head, rows, 1)
    return "\n".join(out) + "\n"


def write_sweep_reports(
    out_dir: Path,
    base: ScenarioConfig,
    df: pd.DataFrame,
    grid: dict[str, list[Any]],
    policies: list[str],
    seeds: list[int],
    reference: str,
    failures: list[dict],
) -> list[Path]:
    """Write ``sweep.csv``, ``sweep.md``, ``failures.json`` and the PNGs; their paths."""
    paths = [write_csv_atomic(out_dir / "sweep.csv", df)]
    paths.append(
        write_text_atomic(
            out_dir / "sweep.md", format_sweep(df, grid, base, policies, seeds, reference)
        )
    )

    paths.append(write_json(out_dir / "failures.json", failures))

    agg = point_aggregates(df, grid, reference) if not df.empty else pd.DataFrame()
    paths += plot_sensitivity(out_dir, base, agg, grid, policies, reference)
    return paths
