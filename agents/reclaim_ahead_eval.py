"""Honest evaluation on ``ArylGym/ReclaimAhead-v0``: held-out workloads, paired against Aryl.

Episodes: workload ``w`` of a held-out split (``val`` for selection, ``test`` for the
report; :func:`~aryl_gym.envs.workload_splits.held_out_seeds`), windows drawn with reset
seeds ``0 .. windows - 1``, so every policy plays exactly the same episodes, and Aryl's
run of each comes from the env's own reference run (``info["reference_summary"]``).

Statistics over workloads (the unit: windows of one workload are not independent):
paired differences policy - Aryl averaged per workload (and the episode return, the
env's objective: Aryl's lost GPU-h - the policy's + jct_weight x job-hours saved), with a percentile bootstrap
interval over workloads (:func:`aryl_gym.stats.bootstrap_groups`), and the relative
change of the total lost GPU-hours with a bootstrap interval that resamples workloads
(:func:`ratio_bootstrap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from aryl_gym.envs.workload_splits import held_out_seeds
from aryl_gym.stats import CONFIDENCE, bootstrap_groups

#: Summary metrics of the table: key, title, scale.
METRICS = (
    ("lost_gpu_hours", "lost GPU-h", 1.0),
    ("avg_jct_s", "avg JCT (h)", 1 / 3600),
    ("preemptions", "preemptions", 1.0),
)

Actor = Callable[[Any], int]  # env -> action


def play(env, actor: Actor, seed: int, options: dict) -> dict[str, Any]:
    """One episode of ``env`` with ``actor``; its summary, Aryl's and the decision counts."""
    env.reset(seed=seed, options=options)
    total = 0.0
    while True:
        _, r, term, trunc, info = env.step(actor(env))
        total += r
        if term or trunc:
            return {
                "summary": info["summary"],
                "aryl": info["reference_summary"],
                "return": total,
                "counts": info["counts"],
                "invalid_actions": info["invalid_actions"],
            }


def run(env, actors: dict[str, Actor], split: str, n_workloads: int, windows: int) -> list[dict]:
    """Every actor on the same episodes: one row per (actor, workload, window)."""
    rows = []
    for w in held_out_seeds(split, n_workloads):
        for k in range(windows):
            for name, actor in actors.items():
                out = play(env, actor, k, {"workload_seed": w, "split": split})
                rows.append({"policy": name, "workload": w, "window": k, **out})
    return rows


def ratio_bootstrap(
    a: dict[int, float], b: dict[int, float], n: int = 9999, seed: int = 0
) -> tuple[float, float, float]:
    """``sum(a) / sum(b) - 1`` over workloads (``a``, ``b``: per-workload totals) and its
    percentile bootstrap interval, resampling workloads (seeded)."""
    keys = sorted(a)
    x = np.array([a[k] for k in keys])
    y = np.array([b[k] for k in keys])
    est = x.sum() / y.sum() - 1 if y.sum() > 0 else math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(keys), size=(n, len(keys)))
    ys = y[idx].sum(1)
    ok = ys > 0
    r = x[idx].sum(1)[ok] / ys[ok] - 1
    q = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(r, [q, 1 - q]) if r.size else (math.nan, math.nan)
    return float(est), float(lo), float(hi)


def table(rows: list[dict], reference: str = "aryl") -> str:
    """A Markdown table: per policy the means, the paired differences to Aryl (bootstrap
    over workloads) and the relative change of total lost GPU-hours."""
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    aryl = {(r["workload"], r["window"]): r["aryl"] for r in rows if r["policy"] == policies[0]}
    n_w = len({r["workload"] for r in rows})
    n_e = len(aryl)
    head = ["policy"]
    for _, title, _ in METRICS:
        head += [f"{title} mean", f"{title} - Aryl [95 % CI]"]
    head += [
        "lost GPU-h vs Aryl (%) [95 % CI]",
        "return (objective) [95 % CI]",
        "early returns / ep",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    entries = [(reference, None)] + [(p, p) for p in policies]
    for label, p in entries:
        mine = (
            {k: v for k, v in aryl.items()}
            if p is None
            else {(r["workload"], r["window"]): r["summary"] for r in rows if r["policy"] == p}
        )
        cells = [label]
        for key, _, sc in METRICS:
            vals = [mine[k][key] * sc for k in aryl]
            cells.append(f"{np.nanmean(vals):.3f}")
            groups: dict[int, list[float]] = {}
            for k in aryl:
                groups.setdefault(k[0], []).append((mine[k][key] - aryl[k][key]) * sc)
            iv = bootstrap_groups(groups.values())
            cells.append(f"{iv.estimate:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}]")
        tot_a: dict[int, float] = {}
        tot_m: dict[int, float] = {}
        for k in aryl:
            tot_a[k[0]] = tot_a.get(k[0], 0.0) + aryl[k]["lost_gpu_hours"]
            tot_m[k[0]] = tot_m.get(k[0], 0.0) + mine[k]["lost_gpu_hours"]
        est, lo, hi = ratio_bootstrap(tot_m, tot_a)
        cells.append(f"{100 * est:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]")
        ret_groups: dict[int, list[float]] = {}
        for r in rows:
            if r["policy"] == p:
                ret_groups.setdefault(r["workload"], []).append(r["return"])
        iv = bootstrap_groups(ret_groups.values()) if p else None
        cells.append(f"{iv.estimate:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}]" if iv else "0")
        ret = [r["counts"]["early_returns"] for r in rows if r["policy"] == p] if p else [0]
        cells.append(f"{np.mean(ret):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{n_w} workloads x {n_e // n_w} windows = {n_e} episodes per policy.")
    return "\n".join(lines)
