"""The statistics and markdown tables of ``aryl-gym benchmark``, ``aryl-gym sweep`` and
``aryl-gym evaluate``.

Per policy, the mean and 95 % confidence interval across seeds (Student's t, from
:mod:`aryl_gym.stats`) of the catalog's table metrics (:mod:`aryl_gym.sim.catalog`), and
the ratios to a reference policy computed per seed then averaged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.outputs import write_text_atomic
from aryl_gym.sim.catalog import RATIO_METRICS, TABLE_METRICS, Metric
from aryl_gym.stats import CONFIDENCE, mean_ci

#: The confidence level as the notes under the tables write it ("95 %").
LEVEL = f"{100 * CONFIDENCE:g} %"


def _ratio(ref: float, run: float) -> float:
    """``ref / run``; 1 when both are 0, inf when only ``run`` is, NaN when one is missing."""
    ref, run = float(ref), float(run)
    if not (math.isfinite(ref) and math.isfinite(run)):
        return math.nan
    if run == 0:
        return 1.0 if ref == 0 else math.inf
    return ref / run


#: How each comparison of the catalog (``RATIO_METRICS``) is computed from the summaries of
#: the reference's run and a policy's run on the same seed.
_COMPARISONS: dict[str, Callable[[pd.Series, pd.Series], float]] = {
    "queue_ratio": lambda ref, run: _ratio(ref["avg_queue_s"], run["avg_queue_s"]),
    "jct_ratio": lambda ref, run: _ratio(ref["avg_jct_s"], run["avg_jct_s"]),
    "usage_gain_pp": lambda ref, run: (
        100.0 * (float(run["usage_overall"]) - float(ref["usage_overall"]))
    ),
}
if set(_COMPARISONS) != {m.key for m in RATIO_METRICS}:  # pragma: no cover - coding error
    raise RuntimeError("report: the comparisons computed here differ from the catalog's")


def _per_seed_ratios(df: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per (policy, seed) of ``df`` whose seed the reference ran: every comparison."""
    ref = df[df["policy"] == reference].set_index("seed")
    rows = [
        {
            "policy": row["policy"],
            "seed": row["seed"],
            **{m.key: _COMPARISONS[m.key](ref.loc[row["seed"]], row) for m in RATIO_METRICS},
        }
        for _, row in df.iterrows()
        if row["seed"] in ref.index
    ]
    return pd.DataFrame(rows, columns=["policy", "seed", *(m.key for m in RATIO_METRICS)])


def aggregate(
    df: pd.DataFrame, reference: str = "baseline", metrics: Sequence[Metric] = TABLE_METRICS
) -> pd.DataFrame:
    """One row per policy (in the order of ``df``): ``seeds``, then ``<key>_mean`` and
    ``<key>_ci95`` (the half-width of :func:`aryl_gym.stats.mean_ci`) for every metric of
    ``metrics`` and, when ``reference`` is in ``df``, for the ratios to it
    (:data:`~aryl_gym.sim.catalog.RATIO_METRICS`)."""
    has_ref = reference in set(df["policy"])
    ratios = _per_seed_ratios(df, reference) if has_ref else None
    rows = []
    for policy in dict.fromkeys(df["policy"]):
        sub = df[df["policy"] == policy]
        row: dict[str, Any] = {"policy": policy, "seeds": len(sub)}
        for m in metrics:
            ci = mean_ci(sub[m.key].astype(float))
            row[f"{m.key}_mean"], row[f"{m.key}_ci95"] = ci.mean, ci.half_width
        if ratios is not None:
            rs = ratios[ratios["policy"] == policy]
            for m in RATIO_METRICS:
                vals = rs[m.key].astype(float)
                if np.isinf(vals).any():  # a policy with zero queueing: infinitely lower
                    mean, half = math.inf, math.nan
                else:
                    ci = mean_ci(vals)
                    mean, half = ci.mean, ci.half_width
                row[f"{m.key}_mean"], row[f"{m.key}_ci95"] = mean, half
        rows.append(row)
    return pd.DataFrame(rows)


def cell(row: pd.Series | dict[str, Any], metric: Metric, with_ci: bool = True) -> str:
    """The cell of ``metric`` in an :func:`aggregate` row: the mean, `` ± `` the CI
    half-width when ``with_ci`` (and the half-width is known), in the metric's unit and
    decimals; ``n/a`` when the row lacks it."""
    mean = row.get(f"{metric.key}_mean", math.nan)
    half = row.get(f"{metric.key}_ci95", math.nan) if with_ci else math.nan
    return metric.format(mean, half)


def md_table(head: list[str], rows: list[list[str]], n_left: int) -> list[str]:
    """The lines of a markdown table whose first ``n_left`` columns are left-aligned."""
    lines = ["| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join([":---"] * n_left + ["---:"] * (len(head) - n_left)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def format_table(
    df: pd.DataFrame, reference: str = "baseline", metrics: Sequence[Metric] = TABLE_METRICS
) -> str:
    """The paper-style markdown table of a results frame (one row per policy x seed, with
    ``policy``, ``seed``, ``scenario`` and the summary keys): per policy the mean ± 95 % CI
    half-width across seeds (the value alone with one seed) of ``metrics``, and, when
    ``reference`` is among the policies, the ratios to it. ``aryl-gym benchmark`` and
    ``aryl-gym evaluate`` both print it."""
    if df.empty:
        return "_no successful runs_\n"
    agg = aggregate(df, reference, metrics)
    has_ref = reference in set(df["policy"])
    shown = [*metrics, *(RATIO_METRICS if has_ref else ())]
    head = ["policy", "seeds"] + [m.heading for m in shown]
    rows = [
        [str(row["policy"]), str(int(row["seeds"]))] + [cell(row, m) for m in shown]
        for _, row in agg.iterrows()
    ]
    lines = md_table(head, rows, 1)
    scenario = ", ".join(str(s) for s in dict.fromkeys(df["scenario"]))
    seeds = ", ".join(str(s) for s in sorted(set(df["seed"])))
    notes = [
        "",
        f"Scenario {scenario}; seeds {seeds}. "
        f"Mean ± {LEVEL} CI half-width across seeds (t-distribution).",
        ratios_note(reference, has_ref, ", computed"),
    ]
    return "\n".join(lines + notes) + "\n"


def ratios_note(reference: str, has_ref: bool, computed: str) -> str:
    """The sentence that says how the ratios to ``reference`` are computed (or that the
    reference was not run); ``computed`` joins the subject to the rest."""
    if not has_ref:
        return f"Reference policy `{reference}` not run: no ratios."
    return (
        f"Ratios to `{reference}`{computed} per seed then averaged: queueing and JCT as "
        f"{reference} avg / policy avg (x lower), usage gain as the difference of overall "
        "usage in percentage points."
    )


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


def write_json(path: Path, doc: Any) -> Path:
    """``doc`` as indented strict JSON (NaN and inf as null), written atomically; returns
    ``path``."""
    return write_text_atomic(path, json.dumps(_jsonable(doc), indent=2) + "\n")


def setup_line(scenario: ScenarioConfig) -> str:
    """One line naming the workload source, the pools and the inference curve of a run."""
    cl = scenario.cluster
    if scenario.trace is not None:
        work = f"trace `{scenario.trace}` (format {scenario.trace_format or 'detected'}"
        changed = scenario.trace_options.changed() if scenario.trace_options else ""
        work += f"; mapping {changed})" if changed else ")"
    else:
        work = "synthetic workload"
    return (
        f"Workload: {work}; {cl.training_servers} training + {cl.inference_servers} inference "
        f"servers of {cl.gpus_per_server} GPUs; inference curve `{scenario.inference.curve}` "
        f"(peak utilisation {scenario.inference.peak_utilisation:g})."
    )
