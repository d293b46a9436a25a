"""The figures of ``aryl-gym benchmark`` and ``aryl-gym sweep`` (matplotlib, each figure on
its own Agg canvas: pyplot's global state is left alone).

Metric titles and units come from the catalog (:mod:`aryl_gym.sim.catalog`), intervals
from :func:`aryl_gym.experiments.report.aggregate` (:mod:`aryl_gym.stats`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aryl_gym.config import ScenarioConfig
from aryl_gym.experiments.grid import anchors, at_anchors, fmt_value
from aryl_gym.experiments.report import LEVEL
from aryl_gym.outputs import atomic_path
from aryl_gym.sim.catalog import RATIO_METRICS, Metric, metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from aryl_gym.experiments.runner import RunOutput


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[Figure, Any]:
    """A figure drawn on its own Agg canvas, and its axes (``Figure.subplots(nrows, ncols,
    **kwargs)``; ``figsize`` goes to the figure).

    pyplot is not used: its global backend and figure registry stay as they are, so a
    notebook that makes these plots keeps its own backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize", None))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay ``fig`` out and write it to ``path`` (PNG, 120 dpi); returns ``path``."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    return path


def plot_all(
    out_dir: Path,
    scenario: ScenarioConfig,
    agg: pd.DataFrame,
    outputs: list[RunOutput],
    policies: list[str],
) -> list[Path]:
    """The benchmark's figures: the JCT and queueing CDFs, usage over time, preemptions."""
    by_policy = {p: [o for o in outputs if o.policy == p] for p in policies}
    paths = [
        _plot_cdf(out_dir / "jct_cdf.png", by_policy, "jct", "job completion time (s)", scenario),
        _plot_cdf(
            out_dir / "queue_cdf.png", by_policy, "queue_time", "queueing time (s)", scenario
        ),
        _plot_usage(out_dir / "usage_over_time.png", by_policy, scenario),
        plot_bars(out_dir / "preemptions.png", agg, metric("preemptions"), scenario),
    ]
    return paths


def _plot_cdf(path: Path, by_policy, column: str, label: str, scenario) -> Path:
    """Per-job CDF pooled over seeds, log x; values below 1 s are drawn at 1 s."""
    fig, ax = new_figure(figsize=(7, 4.5))
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
    return save_figure(fig, path)


def seed_band(
    series: list[pd.DataFrame], values
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(t, mean, low, high)`` of ``values(frame) -> array`` over the seeds' series, on the
    sample times all of them share (up to the end of the shortest run): the mean and the
    range across seeds at each time, ignoring NaN (all-NaN times stay NaN)."""
    n = min(len(s) for s in series)
    t = series[0]["t"].to_numpy(float)[:n]
    for s in series[1:]:
        if not np.array_equal(s["t"].to_numpy(float)[:n], t):
            raise ValueError("the seeds' time series were sampled at different times")
    v = np.vstack([np.asarray(values(s), float)[:n] for s in series])
    some = np.isfinite(v).any(axis=0)
    mean, low, high = (np.full(n, np.nan) for _ in range(3))
    if some.any():
        mean[some] = np.nanmean(v[:, some], axis=0)
        low[some] = np.nanmin(v[:, some], axis=0)
        high[some] = np.nanmax(v[:, some], axis=0)
    return t, mean, low, high


def _plot_usage(path: Path, by_policy, scenario) -> Path:
    """Per policy (columns) the training pool's usage, the lent servers' usage and the
    number of lent servers (rows) over time: the mean over seeds, the seeds' range as a
    band."""
    from matplotlib.ticker import MaxNLocator

    cl = scenario.cluster
    g = cl.gpus_per_server
    series = {p: [o.series for o in outs if o.series is not None] for p, outs in by_policy.items()}
    series = {p: s for p, s in series.items() if s} or {"(no runs)": []}
    n_seeds = max(len(s) for s in series.values())
    fig, axes = new_figure(
        3,
        len(series),
        figsize=(max(8.0, 3.6 * len(series)), 8.4),
        sharex=True,
        sharey="row",
        squeeze=False,
    )

    def lent_usage(s: pd.DataFrame) -> np.ndarray:
        lent = s["lent_servers"].to_numpy(float) * g
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(lent > 0, 100.0 * s["busy_lent"].to_numpy(float) / lent, np.nan)

    rows = (
        (lambda s: 100.0 * s["busy_training"].to_numpy(float) / cl.training_gpus, "tab:blue"),
        (lent_usage, "tab:green"),
        (lambda s: s["lent_servers"].to_numpy(float), "tab:purple"),
    )
    for col, (policy, runs) in enumerate(series.items()):
        axes[0, col].set_title(policy)
        for row, (values, colour) in enumerate(rows):
            ax = axes[row, col]
            t, mean, low, high = seed_band(runs, values) if runs else (np.zeros(0),) * 4
            days = t / 86400.0
            if row == 2 and runs:  # the ceiling, drawn first: lent servers lie on it
                idle = seed_band(runs, lambda s: cl.inference_servers - s["needed"].to_numpy(float))
                ax.plot(days, idle[1], color="0.6", lw=3, alpha=0.5, label="idle inference servers")
            if np.isfinite(mean).any():
                ax.fill_between(days, low, high, color=colour, alpha=0.25, lw=0, label="range")
                ax.plot(days, mean, color=colour, lw=1, label="mean")
            elif row == 1:
                ax.text(
                    0.5, 0.5, "no servers lent", ha="center", va="center", transform=ax.transAxes
                )
            ax.grid(True, alpha=0.3)
        axes[2, col].set_xlabel("time (days)")
    axes[0, 0].set_ylabel("training pool\nGPU usage (%)")
    axes[1, 0].set_ylabel("lent servers\nGPU usage (%)")
    axes[2, 0].set_ylabel("lent servers")
    axes[0, 0].set_ylim(0, 105)
    axes[1, 0].set_ylim(0, 105)
    axes[2, 0].set_ylim(bottom=0)
    axes[2, 0].yaxis.set_major_locator(MaxNLocator(integer=True))
    if axes[2, 0].has_data():
        axes[2, 0].legend(loc="upper right", fontsize=7)
    what = f"mean (line) and range (band) over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    fig.suptitle(
        f"{scenario.name}: usage over time per policy\n{what} "
        "(up to the end of the policy's shortest run)",
        fontsize=10,
    )
    return save_figure(fig, path)


def _cannot_be_negative(m: Metric) -> bool:
    """Whether ``m``'s values are never below 0: summary and agent metrics (counts, times,
    fractions) and ratios, but not differences (a comparison whose no-change value is 0)."""
    return m.kind != "comparison" or (m.no_change is not None and m.no_change > 0)


def error_bars(mean: np.ndarray, half_width: np.ndarray, m: Metric) -> np.ndarray:
    """``yerr`` (2 x n: down, up) for ``mean`` ± ``half_width`` (stored units) in ``m``'s
    shown unit: NaN half-widths as none, and the lower bar clipped at 0 where ``m`` cannot
    be negative (a 95 % interval of few seeds often reaches below it)."""
    y = np.asarray(mean, float) * m.scale
    up = np.nan_to_num(np.asarray(half_width, float)) * m.scale
    down = np.minimum(up, np.maximum(np.nan_to_num(y), 0.0)) if _cannot_be_negative(m) else up
    return np.vstack([down, up])


def bar_panel(
    ax, names: list[str], mean: np.ndarray, half_width: np.ndarray, m: Metric, colours=None
) -> None:
    """Bars of ``m`` per name on ``ax``: ``mean`` with error bars of ``half_width`` (stored
    units; NaN half-widths are drawn as none), in ``m``'s shown unit. A metric that cannot
    be negative gets its lower error bar clipped at 0; when every mean and half-width is 0
    the axis says "no <title>" instead of showing an empty range around 0."""
    y = np.asarray(mean, float) * m.scale
    yerr = error_bars(mean, half_width, m)
    x = np.arange(len(names))
    ax.bar(x, y, yerr=yerr, capsize=4, color=colours or "tab:blue", alpha=0.85)
    ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    if len(names) and np.all(y == 0) and np.all(yerr == 0):
        ax.set_ylim(0, 1)
        ax.set_yticks([0])
        ax.text(
            0.5, 0.5, f"no {m.title}\n(0 in every run)", ha="center", va="center",
            transform=ax.transAxes, fontsize=9, color="0.3",
        )  # fmt: skip
    elif _cannot_be_negative(m):
        ax.set_ylim(bottom=0)


def plot_bars(path: Path, agg: pd.DataFrame, m: Metric, scenario) -> Path:
    """Per policy, the mean of ``m`` per run with its CI (an :func:`aggregate` frame)."""
    fig, ax = new_figure(figsize=(max(4.0, 1.2 * len(agg) + 2), 4))
    if not agg.empty:
        bar_panel(ax, list(agg["policy"]), agg[f"{m.key}_mean"], agg[f"{m.key}_ci95"], m)
    ax.set_ylabel(f"{m.heading} per run (mean ± {LEVEL} CI)")
    ax.set_title(f"{scenario.name}: {m.title}")
    return save_figure(fig, path)


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
    anchor = anchors(base, grid)
    others = [p for p in policies if p != reference and p in set(agg["policy"])]
    paths = []
    for name in swept:
        sub = at_anchors(agg, grid, anchor, name)
        values = grid[name]
        numeric = all(isinstance(v, (int, float)) for v in values)
        x = np.asarray(values, float) if numeric else np.arange(len(values), dtype=float)
        fig, axes = new_figure(1, len(RATIO_METRICS), figsize=(4.2 * len(RATIO_METRICS), 3.8))
        for ax, m in zip(axes, RATIO_METRICS, strict=True):
            for p in others:
                rows = sub[sub["policy"] == p].set_index(name)
                y = np.array([rows[f"{m.key}_mean"].get(v, np.nan) for v in values], float)
                ci = np.array([rows[f"{m.key}_ci95"].get(v, np.nan) for v in values], float)
                y[~np.isfinite(y)] = np.nan
                lw = 2.2 if p == "aryl" else 1.2
                ax.errorbar(
                    x,
                    y * m.scale,
                    yerr=error_bars(y, ci, m),
                    marker="o",
                    lw=lw,
                    capsize=3,
                    label=p,
                )
            if m.no_change is not None:
                ax.axhline(m.no_change * m.scale, color="grey", ls=":", lw=1)
            if not numeric:
                ax.set_xticks(x, [str(v) for v in values], rotation=15, ha="right")
                ax.set_xlim(-0.5, len(values) - 0.5)
            ax.set_xlabel(name)
            ax.set_title(m.heading, fontsize=10)
            ax.grid(True, alpha=0.3)
        if axes[0].has_data():
            axes[0].legend(fontsize=8)
        held = ", ".join(f"{k}={fmt_value(v)}" for k, v in anchor.items() if k != name)
        fig.suptitle(
            f"{base.name}: ratios to {reference} vs {name}, mean ± {LEVEL} CI over seeds"
            + (f" ({held})" if held else ""),
            fontsize=10,
        )
        paths.append(save_figure(fig, out_dir / f"sweep_{name}.png"))
    return paths
