"""The statistics and markdown tables of ``aryl-gym benchmark`` and ``aryl-gym sweep``.

Per policy, the mean and 95 % confidence interval across seeds (Student's t) of the
headline metrics, and the ratios to a reference policy computed per seed then averaged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.outputs import write_text_atomic

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


def cell(
    mean: float | None, scale: float, decimals: int, suffix: str = "", ci: float = math.nan
) -> str:
    """A table cell: ``mean`` times ``scale``, then `` ± ci`` unless the CI is NaN, then
    ``suffix``; ``n/a`` for a missing value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if math.isinf(mean):
        return "inf" + (f" {suffix}" if suffix else "")
    text = f"{mean * scale:,.{decimals}f}"
    if not math.isnan(ci):
        text += f" ± {ci * scale:,.{decimals}f}"
    return text + (f" {suffix}" if suffix else "")


def md_table(head: list[str], rows: list[list[str]], n_left: int) -> list[str]:
    """The lines of a markdown table whose first ``n_left`` columns are left-aligned."""
    lines = ["| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join([":---"] * n_left + ["---:"] * (len(head) - n_left)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


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
    rows = []
    for _, row in agg.iterrows():
        cells = [str(row["policy"]), str(int(row["seeds"]))]
        for key, _t, scale, dec in TABLE_METRICS:
            cells.append(cell(row[f"{key}_mean"], scale, dec, ci=row[f"{key}_ci95"]))
        if has_ref:
            for key, _t, dec, suffix in RATIO_METRICS:
                cells.append(cell(row[f"{key}_mean"], 1.0, dec, suffix, ci=row[f"{key}_ci95"]))
        rows.append(cells)
    lines = md_table(head, rows, 1)
    scenario = ", ".join(str(s) for s in dict.fromkeys(df["scenario"]))
    seeds = ", ".join(str(s) for s in sorted(set(df["seed"])))
    notes = [
        "",
        f"Scenario {scenario}; seeds {seeds}. Mean ± 95 % CI half-width across seeds (t-distribution).",
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
        work = f"trace `{scenario.trace}` (format {scenario.trace_format or 'detected'})"
    else:
        work = "synthetic workload"
    return (
        f"Workload: {work}; {cl.training_servers} training + {cl.inference_servers} inference "
        f"servers of {cl.gpus_per_server} GPUs; inference curve `{scenario.inference.curve}` "
        f"(peak utilisation {scenario.inference.peak_utilisation:g})."
    )
