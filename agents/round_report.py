"""The markdown tables of ``aryl-gym evaluate-round`` (rows from
:func:`aryl_gym.agents.round_eval.evaluate_windows`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from aryl_gym.agents.round_eval import METRICS, Roles, paired

from aryl_gym.stats import bootstrap_groups


def _num(x: float, digits: int = 0, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:{'+' if sign else ''},.{digits}f}"


def _interval(groups: dict[str, list[float]], digits: int, seed: int) -> str:
    iv = bootstrap_groups(groups.values(), seed=seed)
    est = _num(iv.estimate, digits, sign=True)
    if math.isnan(iv.low):
        return est
    return f"{est} [{_num(iv.low, digits, True)}, {_num(iv.high, digits, True)}]"


def _mean_over_groups(rows: list[dict[str, Any]], policy: str, key: str, kind: str) -> float:
    """The mean over groups of the per-group mean of ``key`` (each workload counts once)."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r["kind"] == kind and r["policy"] == policy:
            groups.setdefault(r["group"], []).append(r[key])
    means = [np.nanmean(v) for v in groups.values()]
    return float(np.mean(means)) if means else math.nan


def workload_table(rows: list[dict[str, Any]], roles: Roles, seed: int = 0) -> str:
    """Means over the held-out workloads and paired differences to Aryl with 95 %
    bootstrap intervals over workloads."""
    head = ["policy", *(t for _, t in METRICS)]
    head += [
        "Δ avg JCT vs Aryl (s) [95 % CI]",
        "Δ avg JCT vs Aryl (%) [95 % CI]",
        "Δ avg queue (s) [95 % CI]",
        "Δ preemptions [95 % CI]",
    ]
    lines = ["| " + " | ".join(head) + " |", "|:---" + "|---:" * (len(head) - 1) + "|"]
    for policy, role in roles.policies():
        cells = [policy + (" (reference)" if role == "reference" else "")]
        cells += [
            _num(_mean_over_groups(rows, policy, k, "workload"), 1 if k == "preemptions" else 0)
            for k, _ in METRICS
        ]
        if role == "aryl":
            cells += ["(itself)"] * 4
        else:
            jct, rel = paired(rows, policy, roles.aryl, "avg_jct_s", "workload")
            queue, _ = paired(rows, policy, roles.aryl, "avg_queue_s", "workload")
            pre, _ = paired(rows, policy, roles.aryl, "preemptions", "workload")
            cells += [
                _interval(jct, 0, seed),
                _interval(rel, 2, seed),
                _interval(queue, 0, seed),
                _interval(pre, 1, seed),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def window_table(rows: list[dict[str, Any]], aryl: str) -> str:
    """Every window and policy: the metrics, unfinished jobs and the difference to Aryl."""
    head = [
        "window",
        "jobs",
        "policy",
        *(t for _, t in METRICS),
        "unfinished",
        "Δ avg JCT vs Aryl (s)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|:---|---:|:---" + "|---:" * (len(head) - 3) + "|"]
    ref = {(r["group"], r["window"]): r for r in rows if r["policy"] == aryl}
    for r in rows:
        a = ref[(r["group"], r["window"])]
        cells = [f"{r['group']} #{r['window']}", f"{r['jobs']:,}", r["policy"]]
        cells += [_num(r[k]) for k, _ in METRICS]
        cells += [f"{r['jobs_unfinished']:,}", _num(r["avg_jct_s"] - a["avg_jct_s"], 0, True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(rows: list[dict[str, Any]], roles: Roles, header: list[str], seed: int = 0) -> str:
    """The whole markdown page: ``header`` lines, the held-out workloads' table (if any),
    then every window (held-out workloads and traces)."""
    parts = ["\n".join(header)]
    if any(r["kind"] == "workload" for r in rows):
        n = len({r["group"] for r in rows if r["kind"] == "workload"})
        parts.append(
            f"**Held-out workloads** ({n}; means over workloads, paired differences to "
            f"`{roles.aryl}` averaged per workload, 95 % percentile bootstrap over workloads):"
        )
        parts.append(workload_table(rows, roles, seed))
    parts.append("**Every window** (held-out workloads and real traces):")
    parts.append(window_table(rows, roles.aryl))
    if any(r["role"] == "oracle" for r in rows):
        parts.append(
            "`oracle (bound)`: a CEM search of the linear scorer on each window's own jobs "
            "(it knows the future): an upper reference for learned scorers, not an agent."
        )
    return "\n\n".join(parts) + "\n"
