"""The figures (aryl_gym/experiments/plots.py, agents/evaluate.py's compare.png): what
their axes show, checked on the matplotlib objects before they are written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from aryl_gym.agents import evaluate as agent_eval

from aryl_gym.experiments import plots
from aryl_gym.experiments.runner import RunOutput
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.catalog import COMPARE_METRICS, metric


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, by file name (they are still written)."""
    seen = {}
    save = plots.save_figure

    def keep(fig, path):
        seen[path.name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return seen


def error_bars(ax) -> list[tuple[float, float]]:
    """(low, high) end of each bar's error bar."""
    from matplotlib.container import BarContainer

    (segments,) = [
        c.errorbar.lines[2][0].get_segments() for c in ax.containers if isinstance(c, BarContainer)
    ]
    return [(float(s[0][1]), float(s[1][1])) for s in segments]


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def agg_frame(key: str, means, cis) -> pd.DataFrame:
    return pd.DataFrame(
        {"policy": ["a", "b", "c"][: len(means)], f"{key}_mean": means, f"{key}_ci95": cis}
    )


def test_bars_clip_the_lower_error_bar_at_zero(tmp_path, figures):
    m = metric("preemptions")
    plots.plot_bars(
        tmp_path / "p.png",
        agg_frame(m.key, [20.0, 0.0, 5.0], [38.0, 0.0, 2.0]),
        m,
        get_scenario("tiny"),
    )
    (ax,) = figures["p.png"].axes
    assert error_bars(ax) == [(0.0, 58.0), (0.0, 0.0), (3.0, 7.0)]
    assert ax.get_ylim()[0] == 0.0 and not texts(ax)
    assert ax.get_ylabel() == "preemptions per run (mean ± 95 % CI)"
    assert (tmp_path / "p.png").stat().st_size > 0


def test_bars_of_a_difference_may_go_below_zero(tmp_path, figures):
    m = metric("usage_gain_pp")
    plots.plot_bars(
        tmp_path / "d.png", agg_frame(m.key, [1.0, -2.0], [3.0, 1.0]), m, get_scenario("tiny")
    )
    assert error_bars(figures["d.png"].axes[0]) == [(-2.0, 4.0), (-3.0, -1.0)]


def test_sweep_error_bars_clip_ratios_but_not_differences():
    ratio, diff = metric("jct_ratio"), metric("usage_gain_pp")
    y, ci = np.array([1.5, 0.5, np.nan]), np.array([2.0, 0.1, np.nan])
    assert np.allclose(plots.error_bars(y, ci, ratio), [[1.5, 0.1, 0.0], [2.0, 0.1, 0.0]])
    assert np.allclose(plots.error_bars(y, ci, diff), [[2.0, 0.1, 0.0], [2.0, 0.1, 0.0]])


def test_all_zero_bars_say_so_instead_of_an_empty_axis(tmp_path, figures):
    m = metric("preemptions")
    plots.plot_bars(
        tmp_path / "z.png", agg_frame(m.key, [0.0, 0.0], [0.0, np.nan]), m, get_scenario("tiny")
    )
    (ax,) = figures["z.png"].axes
    assert texts(ax) == ["no preemptions\n(0 in every run)"]
    assert ax.get_ylim() == (0.0, 1.0) and list(ax.get_yticks()) == [0.0]


def series(seed: int, n: int, lent: list[int] | None = None) -> pd.DataFrame:
    """A sampled usage series of ``n`` samples, values depending on the seed."""
    t = np.arange(n) * 600.0
    lent_servers = np.asarray(lent if lent is not None else [1] * n, float)
    return pd.DataFrame(
        {
            "t": t,
            "busy_training": np.full(n, 4.0 * (seed + 1)),  # tiny: 16 training GPUs
            "busy_lent": lent_servers * 2.0 * (seed + 1),
            "lent_servers": lent_servers,
            "needed": np.full(n, 1.0),
        }
    )


def test_usage_is_the_mean_over_seeds_with_their_range(tmp_path, figures):
    sc = get_scenario("tiny")  # 2 + 2 servers of 8 GPUs
    outs = [
        RunOutput("loan", 0, series=series(0, 5, [1, 2, 2, 0, 1])),
        RunOutput("loan", 1, series=series(1, 6, [1, 2, 2, 0, 1, 1])),
        RunOutput("noloan", 0, series=series(0, 4, [0] * 4)),
    ]
    plots.plot_all(
        tmp_path, sc, agg_frame("preemptions", [0.0, 0.0], [0, 0]), outs, ["loan", "noloan"]
    )
    fig = figures["usage_over_time.png"]
    axes = np.array(fig.axes).reshape(3, 2)
    assert [ax.get_title() for ax in axes[0]] == ["loan", "noloan"]
    assert "mean (line) and range (band) over 2 seeds" in fig._suptitle.get_text()
    # training usage: seeds at 25 % and 50 %, over the 5 samples both runs have
    (mean,) = [line for line in axes[0, 0].lines]
    assert list(mean.get_xdata()) == list(np.arange(5) * 600.0 / 86400.0)
    assert np.allclose(mean.get_ydata(), 37.5)
    band = axes[0, 0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(25.0) and band.max() == pytest.approx(50.0)
    # lent usage: 25 % and 50 % of the lent GPUs; none lent at sample 3
    lent = axes[1, 0].lines[0].get_ydata()
    assert np.allclose(lent[[0, 1, 2, 4]], 37.5) and np.isnan(lent[3])
    assert texts(axes[1, 1]) == ["no servers lent"]
    # lent servers: whole numbers on the axis, idle inference servers drawn as well
    ticks = axes[2, 0].get_yticks()
    assert len(ticks) > 1 and np.allclose(ticks, np.round(ticks))
    assert [line.get_label() for line in axes[2, 0].lines] == ["idle inference servers", "mean"]
    assert np.allclose(axes[2, 0].lines[0].get_ydata(), 1.0)  # 2 servers, 1 needed


def test_evaluate_compare_png_uses_the_catalog(tmp_path, figures):
    def summary(jct_h: float, ci_h: float, preemptions: float) -> dict:
        row = {"seed": 0, "scenario": "small", "avg_jct_s": jct_h * 3600.0}
        return {
            "avg_jct_s": jct_h * 3600.0,
            "avg_queue_s": 1800.0,
            "preemptions": preemptions,
            "lost_gpu_hours": 0.0,
            "seeds": [0, 1],
            "ci95": {"avg_jct_s": ci_h * 3600.0, "preemptions": 0.0, "avg_queue_s": 7200.0},
            "per_seed": [row],
        }

    results = {"agent": summary(2.0, 3.0, 0.0), "aryl": summary(1.5, 0.5, 0.0)}
    (path,) = agent_eval.plot(results, tmp_path)
    assert path == tmp_path / "compare.png" and path.stat().st_size > 0
    fig = figures["compare.png"]
    assert [ax.get_title() for ax in fig.axes] == [m.title for m in COMPARE_METRICS]
    assert [ax.get_ylabel() for ax in fig.axes] == [m.heading for m in COMPARE_METRICS]
    jct, queue, preempt, lost = fig.axes
    assert error_bars(jct) == [(0.0, 5.0), (1.0, 2.0)]  # in hours, clipped at 0
    assert error_bars(queue) == [(0.0, 2.5), (0.0, 2.5)]
    assert texts(preempt) == ["no preemptions\n(0 in every run)"]
    assert texts(lost) == ["no lost GPU time\n(0 in every run)"]
    assert "small: mean ± 95 % CI over 2 seeds" in fig._suptitle.get_text()


def test_plotting_leaves_pyplot_and_its_backend_alone(tmp_path):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import pandas as pd
from aryl_gym.experiments import plots
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.catalog import metric
agg = pd.DataFrame({{"policy": ["a"], "preemptions_mean": [1.0], "preemptions_ci95": [0.5]}})
plots.plot_bars({str(tmp_path / "b.png")!r}, agg, metric("preemptions"), get_scenario("tiny"))
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "False"]
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
