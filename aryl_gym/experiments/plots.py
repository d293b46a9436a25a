"""The figures of ``aryl-gym benchmark`` and ``aryl-gym sweep`` (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.experiments.grid import anchors, at_anchors, fmt_value
from aryl_gym.experiments.report import RATIO_METRICS
from aryl_gym.outputs import atomic_path

if TYPE_CHECKING:
    from aryl_gym.experiments.runner import RunOutput


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return path


def plot_all(
    out_dir: Path,
    scenario: ScenarioConfig,
    agg: pd.DataFrame,
    outputs: list[RunOutput],
    policies: list[str],
    first_seed: int,
) -> list[Path]:
    plt = pyplot()
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
    return _save(plt, fig, path)


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
    return _save(plt, fig, path)


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
    return _save(plt, fig, path)


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
    plt = pyplot()
    anchor = anchors(base, grid)
    others = [p for p in policies if p != reference and p in set(agg["policy"])]
    paths = []
    for name in swept:
        sub = at_anchors(agg, grid, anchor, name)
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
        held = ", ".join(f"{k}={fmt_value(v)}" for k, v in anchor.items() if k != name)
        fig.suptitle(
            f"{base.name}: ratios to {reference} vs {name}, mean ± 95 % CI over seeds"
            + (f" ({held})" if held else ""),
            fontsize=10,
        )
        paths.append(_save(plt, fig, out_dir / f"sweep_{name}.png"))
    return paths
