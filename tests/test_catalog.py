"""The metric catalog (aryl_gym.sim.catalog) as the one source of every report's metrics:
the engine summary, the benchmark, sweep and evaluate tables, the plots and the
TensorBoard scalars."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pandas as pd
import pytest
from aryl_gym.agents import evaluate as agent_eval
from aryl_gym.baselines import make_policy

from aryl_gym.experiments import plots
from aryl_gym.experiments.benchmark import run_benchmark
from aryl_gym.experiments.report import aggregate, format_table
from aryl_gym.experiments.sweep import format_sweep, point_aggregates
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.catalog import (
    CATALOG,
    COMPARE_METRICS,
    EPISODE_METRICS,
    METRICS,
    RATIO_METRICS,
    SENSITIVITY_METRICS,
    SUMMARY_KEYS,
    SWEEP_METRICS,
    TABLE_METRICS,
    Metric,
    metric,
)
from aryl_gym.simulate import run_policy
from aryl_gym.stats import mean_ci, paired_diff

POLICIES = ["aryl", "baseline"]
SEEDS = [0, 1]
REF = "baseline"


def md_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table of ``text`` as (header cells, rows of cells)."""
    lines, out, i = text.splitlines(), [], 0

    def split(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.fullmatch(r"\|[:\-|]+\|", lines[i + 1]):
            head, rows, i = split(lines[i]), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(split(lines[i]))
                i += 1
            out.append((head, rows))
        else:
            i += 1
    return out


def has_decimals(text: str, decimals: int) -> bool:
    """Whether ``text`` is a number (± a number) written with exactly ``decimals``."""
    num = r"[+-]?[\d,]+" + (rf"\.\d{{{decimals}}}" if decimals else "")
    return text in ("n/a", "inf", "-inf") or bool(re.fullmatch(rf"{num}( ± {num})?", text))


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> pd.DataFrame:
    """A tiny benchmark of Aryl and the baseline over two seeds (one row per run)."""
    out = tmp_path_factory.mktemp("catalog-bench")
    return run_benchmark("tiny", POLICIES, SEEDS, out, workers=1, progress=False, reference=REF)


def test_catalog_entries_are_complete_and_distinct():
    assert len({m.heading for m in CATALOG}) == len(CATALOG)
    for m in CATALOG:
        assert m.key and m.title and m.description.endswith("."), m
        assert m.direction in ("lower", "higher", None)
        assert (m.no_change is not None) == (m.kind == "comparison"), m
    for selection in (TABLE_METRICS, SWEEP_METRICS, COMPARE_METRICS, EPISODE_METRICS):
        assert all(METRICS[m.key] is m for m in selection)
    assert {m.kind for m in RATIO_METRICS} == {"comparison"}
    with pytest.raises(KeyError, match="unknown metric 'nope'; known: jobs_total"):
        metric("nope")
    with pytest.raises(ValueError, match="decimals"):
        Metric("x", "x", "", 1.0, -1, None, "x.")


def test_engine_summary_holds_exactly_the_catalog_keys_in_order():
    s = run_policy(get_scenario("tiny"), make_policy("aryl"), seed=0).summary
    assert list(s) == list(SUMMARY_KEYS)


def test_metric_format():
    jct = metric("avg_jct_s")
    assert jct.heading == "avg JCT (h)" and jct.format(5400.0) == "1.50"
    assert jct.format(5400.0, 360.0) == "1.50 ± 0.10"
    assert jct.format(5400.0, math.nan) == "1.50" and jct.format(math.nan) == "n/a"
    assert jct.format(None) == "n/a" and jct.format(math.inf) == "inf"
    assert jct.format(-3600.0, 7200.0, sign=True) == "-1.00 ± 2.00"
    assert metric("usage_overall").format(0.8761, 0.01) == "87.6 ± 1.0"
    assert metric("sim_events").format(12345.4) == "12,345"
    assert metric("preemptions").format(2.0, sign=True) == "+2.0"


def test_every_table_producer_uses_catalog_entries(bench, monkeypatch, tmp_path):
    """Walks the catalog: each column of the benchmark, sweep and evaluate tables is a
    catalog entry, with its title, unit and decimals, and its value and interval come
    from aryl_gym.stats; the plots title their axes from the catalog too."""
    df = bench
    ratio_cols = len(RATIO_METRICS)

    def check(head: list[str], rows: list[list[str]], metrics, n_left: int, with_ci: bool):
        """Headings, decimals and values of the columns after the first ``n_left`` (the
        last two of which are the policy and its number of seeds)."""
        assert head[n_left - 2 : n_left] == ["policy", "seeds"]
        assert head[n_left:] == [m.heading for m in metrics]
        for row in rows:
            sub = df[df["policy"] == row[n_left - 2]]
            for m, text in zip(metrics, row[n_left:], strict=True):
                assert has_decimals(text, m.decimals), (m.key, text)
                if m.kind == "summary":
                    ci = mean_ci(sub[m.key])
                    assert text == m.format(ci.mean, ci.half_width if with_ci else math.nan)

    # benchmark: the catalog's table metrics, then the ratios to the reference
    (head, rows), *_ = md_tables(format_table(df, REF))
    assert [r[0] for r in rows] == POLICIES
    check(head, rows, [*TABLE_METRICS, *RATIO_METRICS], 2, with_ci=True)
    assert rows[1][-ratio_cols:] == ["1.00 ± 0.00", "1.00 ± 0.00", "0.0 ± 0.0"]

    # sweep: per grid point (means), then the sensitivity of one swept parameter
    grid = {"load": [1.0, 1.5]}
    swept = pd.concat([df.assign(load=v) for v in grid["load"]], ignore_index=True)
    tables = md_tables(format_sweep(swept, grid, get_scenario("tiny"), POLICIES, SEEDS, REF))
    (head, rows), (shead, srows) = tables
    assert head[0] == "load" and len(rows) == len(grid["load"]) * len(POLICIES)
    check(head, rows, [*SWEEP_METRICS, *RATIO_METRICS], 3, with_ci=False)
    assert shead[1:] == [f"{REF} {m.heading}" for m in SENSITIVITY_METRICS] + [
        f"aryl {m.heading}" for m in RATIO_METRICS
    ]
    assert len(srows) == 2

    # evaluate: from the per-seed rows, the very table of the benchmark ...
    results = {
        p: agent_eval.summarize(df[df["policy"] == p].to_dict(orient="records")) for p in POLICIES
    }
    assert agent_eval.table(results, reference=REF) == format_table(df, REF)
    assert (
        results["aryl"]["ci95"]["avg_jct_s"]
        == mean_ci(df[df.policy == "aryl"].avg_jct_s).half_width
    )
    # ... and the paired differences to the reference, with the paired t-test
    (head, rows), *_ = md_tables(agent_eval.paired(results, ref=REF))
    assert head == [f"policy - {REF}", *(m.heading for m in COMPARE_METRICS)]
    a, b = (df[df.policy == p].set_index("seed") for p in ("aryl", REF))
    for m, text in zip(COMPARE_METRICS, rows[0][1:], strict=True):
        d = paired_diff(a[m.key], b[m.key])
        assert text.startswith(m.format(d.mean, d.half_width, sign=True))

    # plots: axis titles and labels name catalog headings
    seen: list[str] = []
    save = plots.save_figure

    def record(fig, path):
        seen.extend(t for ax in fig.axes for t in (ax.get_title(), ax.get_ylabel()) if t)
        return save(fig, path)

    monkeypatch.setattr(plots, "save_figure", record)
    tiny = get_scenario("tiny")
    bars = tmp_path / "bars.png"
    plots.plot_bars(bars, aggregate(df, REF), metric("preemptions"), tiny)
    plots.plot_sensitivity(tmp_path, tiny, point_aggregates(swept, grid, REF), grid, POLICIES, REF)
    agent_eval.plot(results, tmp_path)
    assert f"{metric('preemptions').heading} per run (mean ± 95 % CI)" in seen
    assert all(m.heading in seen for m in (*RATIO_METRICS, *COMPARE_METRICS))


def test_tensorboard_scalars_are_catalog_keys(bench):
    pytest.importorskip("stable_baselines3", reason="the RL extra: pip install -e '.[rl]'")
    from aryl_gym.agents.callbacks import EpisodeMetricsCallback

    recorded: dict[str, float] = {}
    logger = SimpleNamespace(record_mean=lambda k, v: recorded.setdefault(k, v))
    cb = EpisodeMetricsCallback()
    cb.model = SimpleNamespace(logger=logger)
    summary = bench.iloc[0][list(SUMMARY_KEYS)].to_dict()
    cb.locals = {"infos": [{}, {"summary": summary, "invalid_actions": 3}]}
    assert cb._on_step()
    assert set(recorded) == {
        f"episode/{m.key}" for m in (*EPISODE_METRICS, metric("invalid_actions"))
    }
    for name, value in recorded.items():
        key = name.removeprefix("episode/")
        assert value == (3.0 if key == "invalid_actions" else pytest.approx(summary[key]))
