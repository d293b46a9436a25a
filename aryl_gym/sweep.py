"""Parameter sweeps: the benchmark over the cartesian product of scenario changes.

    aryl-gym sweep --scenario small --policies aryl,baseline --seeds 3 \\
        --grid elastic_share=0,0.25,0.5,1 --grid inference_gpu_speed=1,0.4 \\
        --grid load=0.5,1,1.5 --grid inference_curve=diurnal,servegen-llm-small --out runs/s

Every grid point (one value per ``--grid`` parameter; no ``--grid`` at all is the single
point of the unchanged scenario) x policy x seed is one run; all runs go to one task pool
on the chosen backend (``local`` processes or ``ray`` tasks, as ``aryl-gym benchmark``).
Within a grid point every policy sees the same workload for a given seed.

Grid parameters (see :data:`PARAMETERS`): ``elastic_share`` (workload.elastic_share),
``load`` (workload.scaled(load): jobs per day times ``load``), ``inference_gpu_speed``,
``training_servers``, ``inference_servers`` (cluster), ``inference_curve`` (inference.curve),
``peak_utilisation`` (inference.peak_utilisation).

Writes to ``--out``:

* ``sweep.csv`` — one row per run: every grid parameter, policy, seed, scenario and every
  summary key;
* ``sweep.md`` — per grid point and policy the mean over seeds of avg queue, avg JCT,
  overall usage and preemptions and the ratios to the reference policy (queueing and JCT
  as reference / policy, usage gain in percentage points; per seed, then averaged); then
  one sensitivity table per swept parameter, the other parameters at their defaults;
* ``sweep_<parameter>.png`` — per swept parameter, the ratios of every policy to the
  reference against the parameter's values (others at their defaults);
* ``failures.json`` — the runs that raised (an empty list when none did).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aryl_gym.benchmark import (
    RATIO_METRICS,
    PolicyFactory,
    RunSpec,
    _csv_list,
    _jsonable,
    add_backend_arguments,
    aggregate,
    check_backend,
    execute_runs,
    resolve_scenario,
    validate_policies,
)
from aryl_gym.config import ScenarioConfig
from aryl_gym.sim.metrics import SUMMARY_KEYS


@dataclass(frozen=True)
class Parameter:
    """A grid parameter: how to parse a value, apply it, and read the scenario's own value."""

    parse: Callable[[str], Any]
    apply: Callable[[ScenarioConfig, Any], ScenarioConfig]
    default: Callable[[ScenarioConfig], Any]
    help: str


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {text!r}")
    return v


def _cluster(field: str) -> Callable[[ScenarioConfig, Any], ScenarioConfig]:
    return lambda sc, v: replace(sc, cluster=replace(sc.cluster, **{field: v}))


def _inference(field: str) -> Callable[[ScenarioConfig, Any], ScenarioConfig]:
    return lambda sc, v: replace(sc, inference=replace(sc.inference, **{field: v}))


#: The known grid parameters, in the order they are applied to the scenario.
PARAMETERS: dict[str, Parameter] = {
    "elastic_share": Parameter(
        _float,
        lambda sc, v: replace(sc, workload=replace(sc.workload, elastic_share=v)),
        lambda sc: sc.workload.elastic_share,
        "share of elastic jobs (workload.elastic_share)",
    ),
    "load": Parameter(
        _float,
        lambda sc, v: replace(sc, workload=sc.workload.scaled(v)),
        lambda sc: 1.0,
        "multiplier of the jobs per day (workload.scaled(load))",
    ),
    "training_servers": Parameter(
        _int,
        _cluster("training_servers"),
        lambda sc: sc.cluster.training_servers,
        "training pool servers (cluster.training_servers)",
    ),
    "inference_servers": Parameter(
        _int,
        _cluster("inference_servers"),
        lambda sc: sc.cluster.inference_servers,
        "inference pool servers (cluster.inference_servers)",
    ),
    "inference_gpu_speed": Parameter(
        _float,
        _cluster("inference_gpu_speed"),
        lambda sc: sc.cluster.inference_gpu_speed,
        "training speed of an inference GPU relative to a training GPU (cluster)",
    ),
    "inference_curve": Parameter(
        str,
        _inference("curve"),
        lambda sc: sc.inference.curve,
        "inference demand curve (inference.curve)",
    ),
    "peak_utilisation": Parameter(
        _float,
        _inference("peak_utilisation"),
        lambda sc: sc.inference.peak_utilisation,
        "inference pool utilisation at the curve's peak (inference.peak_utilisation)",
    ),
}

#: The sweep table's per-policy metrics: (summary key, title, scale, decimals).
SWEEP_METRICS: tuple[tuple[str, str, float, int], ...] = (
    ("avg_queue_s", "avg queue (h)", 1 / 3600, 2),
    ("avg_jct_s", "avg JCT (h)", 1 / 3600, 2),
    ("usage_overall", "usage (%)", 100.0, 1),
    ("preemptions", "preemptions", 1.0, 1),
)


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown grid parameter {name!r}; known: {', '.join(PARAMETERS)}")


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["load=0.5,1", "inference_curve=diurnal"]`` -> ``{"load": [0.5, 1.0], ...}``.

    Raises ``ValueError`` for a malformed item, an unknown parameter (listing the known
    ones), a parameter given twice, no values or a repeated value."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--grid wants NAME=V1,V2,..., got {spec!r}")
        if name not in PARAMETERS:
            raise _unknown(name)
        if name in grid:
            raise ValueError(f"grid parameter {name!r} given more than once")
        try:
            parsed = [PARAMETERS[name].parse(v) for v in _csv_list(values)]
        except ValueError as exc:
            raise ValueError(f"grid parameter {name!r}: {exc}") from None
        grid[name] = parsed
    return normalise_grid(grid)


def normalise_grid(grid: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Check a grid given as a mapping (names known, values present and distinct)."""
    out: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if name not in PARAMETERS:
            raise _unknown(name)
        values = list(values)
        if not values:
            raise ValueError(f"grid parameter {name!r} has no values")
        if len(set(values)) != len(values):
            raise ValueError(f"grid parameter {name!r} has repeated values: {values}")
        out[name] = values
    return out


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product, the first parameter varying slowest; ``[{}]`` for no grid."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_scenario(base: ScenarioConfig, point: dict[str, Any]) -> ScenarioConfig:
    """``base`` with the point's changes applied; its name says the point."""
    sc = base
    for name in PARAMETERS:  # a fixed order, whatever the grid's order
        if name in point:
            sc = PARAMETERS[name].apply(sc, point[name])
    if point:
        label = ",".join(f"{k}={_fmt(v)}" for k, v in point.items())
        sc = replace(sc, name=f"{base.name}[{label}]")
    return sc


def anchors(base: ScenarioConfig, grid: dict[str, list[Any]]) -> dict[str, Any]:
    """Per parameter the value the others are held at in the sensitivity tables: the
    scenario's own value when the grid has it, else the first value of the grid."""
    out = {}
    for name, values in grid.items():
        d = PARAMETERS[name].default(base)
        out[name] = next((v for v in values if v == d), values[0])
    return out


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
    policy_factories: dict[str, PolicyFactory] | None = None,
) -> pd.DataFrame:
    """Run every grid point x policy x seed and write the sweep reports to ``out_dir``.

    ``grid`` maps parameter names of :data:`PARAMETERS` to values (typed; see
    :func:`parse_grid` for strings); an empty grid is one point, the scenario itself.
    Every point's scenario is built (and so validated) before any run starts.

    Returns one row per successful run (grid parameters, policy, seed, scenario, summary
    keys), ordered by point, policy, seed; ``df.attrs`` holds ``failures`` and ``paths``.
    """
    base = resolve_scenario(scenario)
    validate_policies(policies, policy_factories)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds given more than once: {seeds}")
    grid = normalise_grid(dict(grid))
    check_backend(backend)
    points = grid_points(grid)
    scenarios = []
    for point in points:
        try:
            scenarios.append(point_scenario(base, point))
        except (KeyError, ValueError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            label = ", ".join(f"{k}={_fmt(v)}" for k, v in point.items())
            raise ValueError(f"grid point {label}: {msg}") from None
    factories = dict(policy_factories or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # point- then seed-major: consecutive tasks share a workload (cached per worker)
    tasks = [
        (i, RunSpec(p, sc, s, factories.get(p), keep_series=False, keep_jobs=False))
        for i, sc in enumerate(scenarios)
        for s in seeds
        for p in policies
    ]
    results = execute_runs(
        [t for _, t in tasks],
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

    paths = write_sweep_reports(out_dir, base, df, grid, policies, seeds, reference, failures)
    if failures:
        print(f"sweep: {len(failures)} of {len(tasks)} runs failed:", file=sys.stderr)
        for f in failures:
            print(
                f"  {f['policy']} / {f['scenario']} / seed {f['seed']}: {f['error']}",
                file=sys.stderr,
            )
    df.attrs["failures"] = [{k: v for k, v in f.items() if k != "traceback"} for f in failures]
    df.attrs["paths"] = [str(p) for p in paths]
    return df


# --------------------------------------------------------------------------- reports


def point_aggregates(df: pd.DataFrame, grid: dict[str, list[Any]], reference: str) -> pd.DataFrame:
    """One row per grid point x policy: the grid values, then ``benchmark.aggregate``'s
    columns (``<key>_mean``, ``<key>_ci95`` and, with the reference, the ratios)."""
    names = list(grid)
    parts = []
    if df.empty:
        return pd.DataFrame(columns=[*names, "policy"])
    groups = df.groupby(names, sort=False, dropna=False) if names else [((), df)]
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        agg = aggregate(sub, reference)
        for name, value in zip(names, key, strict=True):
            agg[name] = value
        parts.append(agg)
    out = pd.concat(parts, ignore_index=True)
    return out[[*names, *(c for c in out.columns if c not in names)]]


def _cell(v: float, scale: float, decimals: int, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf" + (f" {suffix}" if suffix else "")
    return f"{v * scale:,.{decimals}f}" + (f" {suffix}" if suffix else "")


def _md_table(head: list[str], rows: list[list[str]], n_left: int) -> list[str]:
    lines = ["| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join([":---"] * n_left + ["---:"] * (len(head) - n_left)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _ratio_cells(row: pd.Series) -> list[str]:
    return [
        _cell(row.get(f"{key}_mean", math.nan), 1.0, dec, suffix)
        for key, _t, dec, suffix in RATIO_METRICS
    ]


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
    if grid:
        out.append(
            "Grid: "
            + "; ".join(f"`{k}` = {', '.join(_fmt(v) for v in vs)}" for k, vs in grid.items())
            + "."
        )
    out.append(
        "Values are means over seeds (per-run values in `sweep.csv`). "
        + (
            f"Ratios to `{reference}` are computed per seed then averaged: queueing and JCT "
            f"as {reference} avg / policy avg (x lower), usage gain as the difference of "
            "overall usage in percentage points."
            if has_ref
            else f"Reference policy `{reference}` not run: no ratios."
        )
    )
    out.append("")
    if df.empty:
        return "\n".join([*out, "_no successful runs_", ""])
    agg = point_aggregates(df, grid, reference)

    out += ["## Per grid point", ""]
    head = [*names, "policy", "seeds", *(t for _, t, _, _ in SWEEP_METRICS)]
    if has_ref:
        head += [t for _, t, _, _ in RATIO_METRICS]
    rows = []
    for _, r in agg.iterrows():
        cells = [_fmt(r[n]) for n in names] + [str(r["policy"]), str(int(r["seeds"]))]
        cells += [_cell(r[f"{k}_mean"], sc, dec) for k, _t, sc, dec in SWEEP_METRICS]
        if has_ref:
            cells += _ratio_cells(r)
        rows.append(cells)
    out += _md_table(head, rows, len(names) + 1)

    swept = [n for n in names if len(grid[n]) > 1]
    if swept:
        anchor = anchors(base, grid)
        others = [p for p in policies if p != reference and p in set(agg["policy"])]
        out += ["", "## Sensitivity: one parameter at a time", ""]
        out.append(
            "Each table varies one parameter, the others held at "
            + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in anchor.items())
            + " (the scenario's own value when the grid has it, else the grid's first value)."
        )
        for name in swept:
            sub = agg
            for other in names:
                if other != name:
                    sub = sub[sub[other] == anchor[other]]
            out += ["", f"### {name}", ""]
            if has_ref:
                head = [name, f"{reference} avg queue (h)", f"{reference} avg JCT (h)"]
                for p in others:
                    head += [f"{p} {t}" for _, t, _, _ in RATIO_METRICS]
            else:
                head = [name] + [f"{p} avg queue (h)" for p in policies]
            rows = []
            for value in grid[name]:
                at = sub[sub[name] == value].set_index("policy")
                cells = [_fmt(value)]
                if has_ref:
                    ref = at.loc[reference] if reference in at.index else None
                    for key in ("avg_queue_s", "avg_jct_s"):
                        cells.append(
                            _cell(ref[f"{key}_mean"], 1 / 3600, 2) if ref is not None else "n/a"
                        )
                    for p in others:
                        cells += (
                            _ratio_cells(at.loc[p])
                            if p in at.index
                            else ["n/a"] * len(RATIO_METRICS)
                        )
                else:
                    for p in policies:
                        cells.append(
                            _cell(at.loc[p, "avg_queue_s_mean"], 1 / 3600, 2)
                            if p in at.index
                            else "n/a"
                        )
                rows.append(cells)
            out += _md_table(head, rows, 1)
    return "\n".join(out) + "\n"


def plot_sensitivity(
    out_dir: Path,
    base: ScenarioConfig,
    agg: pd.DataFrame,
    grid: dict[str, list[Any]],
    policies: list[str],
    reference: str,
) -> list[Path]:
    """One PNG per swept parameter: each policy's ratios to ``reference`` (mean ± 95 % CI
    over seeds) against the parameter, the other parameters at their anchors."""
    if agg.empty or reference not in set(agg["policy"]):
        return []
    swept = [n for n in grid if len(grid[n]) > 1]
    if not swept:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    anchor = anchors(base, grid)
    others = [p for p in policies if p != reference and p in set(agg["policy"])]
    paths = []
    for name in swept:
        sub = agg
        for other in grid:
            if other != name:
                sub = sub[sub[other] == anchor[other]]
        values = grid[name]
        numeric = all(isinstance(v, (int, float)) for v in values)
        x = np.asarray(values, float) if numeric else np.arange(len(values), dtype=float)
        fig, axes = plt.subplots(1, len(RATIO_METRICS), figsize=(4.2 * len(RATIO_METRICS), 3.8))
        for ax, (key, title, _dec, suffix) in zip(axes, RATIO_METRICS, strict=True):
            for p in others:
                rows = sub[sub["policy"] == p].set_index(name)
                y = np.array([rows[f"{key}_mean"].get(v, np.nan) for v in values], float)
                ci = np.array([rows[f"{key}_ci95"].get(v, np.nan) for v in values], float)
                y[~np.isfinite(y)] = np.nan
                lw = 2.2 if p == "aryl" else 1.2
                ax.errorbar(x, y, yerr=np.nan_to_num(ci), marker="o", lw=lw, capsize=3, label=p)
            ax.axhline(0.0 if key == "usage_gain_pp" else 1.0, color="grey", ls=":", lw=1)
            if not numeric:
                ax.set_xticks(x, [str(v) for v in values], rotation=15, ha="right")
                ax.set_xlim(-0.5, len(values) - 0.5)
            ax.set_xlabel(name)
            ax.set_title(f"{title}" + (f" ({suffix})" if suffix else ""), fontsize=10)
            ax.grid(True, alpha=0.3)
        if axes[0].has_data():
            axes[0].legend(fontsize=8)
        held = ", ".join(f"{k}={_fmt(v)}" for k, v in anchor.items() if k != name)
        fig.suptitle(
            f"{base.name}: ratios to {reference} vs {name}, mean ± 95 % CI over seeds"
            + (f" ({held})" if held else ""),
            fontsize=10,
        )
        fig.tight_layout()
        path = out_dir / f"sweep_{name}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


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
    paths = []
    p = out_dir / "sweep.csv"
    df.to_csv(p, index=False)
    paths.append(p)

    p = out_dir / "sweep.md"
    p.write_text(format_sweep(df, grid, base, policies, seeds, reference))
    paths.append(p)

    p = out_dir / "failures.json"
    p.write_text(json.dumps(_jsonable(failures), indent=2) + "\n")
    paths.append(p)

    agg = point_aggregates(df, grid, reference) if not df.empty else pd.DataFrame()
    paths += plot_sensitivity(out_dir, base, agg, grid, policies, reference)
    return paths


# --------------------------------------------------------------------------- CLI


def cmd_sweep(args: argparse.Namespace) -> int:
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
    # validate everything before any run starts
    scenario = resolve_scenario(args.scenario)
    validate_policies(policies)
    grid = parse_grid(args.grid or [])
    check_backend(args.backend)
    df = run_sweep(
        scenario,
        policies,
        seeds,
        grid,
        Path(args.out),
        backend=args.backend,
        workers=args.workers,
        address=args.address,
        progress=not args.quiet,
        reference=args.reference,
    )
    n_points = len(grid_points(grid))
    print(
        f"sweep {scenario.name}: {n_points} point(s) x {len(policies)} policies x "
        f"{len(seeds)} seeds = {n_points * len(policies) * len(seeds)} runs, "
        f"{len(df)} succeeded"
    )
    for p in df.attrs.get("paths", []):
        print(f"wrote {p}")
    return 1 if df.attrs.get("failures") else 0


def register(subparsers) -> None:
    """Add the ``sweep`` sub-command to the ``aryl-gym`` parser."""
    known = "; ".join(f"{k}: {p.help}" for k, p in PARAMETERS.items())
    s = subparsers.add_parser(
        "sweep",
        help="run several policies over a grid of scenario changes x seeds; sensitivity tables",
    )
    s.add_argument("--scenario", required=True, help="scenario name (see `aryl-gym scenarios`)")
    s.add_argument(
        "--policies", required=True, help="comma-separated policy names (see `aryl-gym policies`)"
    )
    seeds = s.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=3, help="run seeds 0..N-1 (default 3)")
    seeds.add_argument("--seed-list", help="comma-separated seeds, e.g. 0,5,9 (instead of --seeds)")
    s.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2,...",
        help="a swept parameter and its values; repeat for a cartesian product "
        f"(none: the scenario alone). Known: {known}",
    )
    s.add_argument("--out", required=True, type=Path, help="output directory")
    add_backend_arguments(s)
    s.add_argument(
        "--reference", default="baseline", help="policy the ratios compare to (default baseline)"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)


__all__ = [
    "PARAMETERS",
    "format_sweep",
    "grid_points",
    "parse_grid",
    "point_scenario",
    "register",
    "run_sweep",
]
