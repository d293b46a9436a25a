"""``aryl-gym evaluate-round``: held-out windows that never overlap, zero == Aryl to the
last bit, a seeded oracle never worse than Aryl, the CEM trainer, scorers and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aryl_gym.agents.cem import CemConfig, cem, oracle_search
from aryl_gym.agents.cem_train import train_round_cem
from aryl_gym.agents.round_eval import (
    Roles,
    evaluate_windows,
    trace_windows,
    window_starts,
    workload_windows,
)
from aryl_gym.agents.round_scorers import (
    LINEAR_FEATURES,
    LinearScorer,
    load_linear,
    load_scorer,
    save_linear,
)

from aryl_gym.cli import main
from aryl_gym.envs.episodes import HOUR
from aryl_gym.envs.workload_splits import WORKLOAD_SEED_SPLITS
from aryl_gym.scenarios import get_scenario
from tests.conftest import shared_path

TEST = WORKLOAD_SEED_SPLITS["test"]
KW = {"episode_hours": 6.0, "drain_hours": 48.0}


@pytest.mark.parametrize("n", [1, 2, 5])
def test_windows_never_overlap(n):
    rng = np.random.default_rng(n)
    sub = np.sort(rng.exponential(3600.0, 400).cumsum())
    starts = window_starts(sub, n, 6.0)
    assert len(starts) == n
    assert all(b >= a + 6 * HOUR for a, b in zip(starts, starts[1:], strict=False))
    assert all(sub[0] <= s <= sub[-1] for s in starts)
    with pytest.raises(ValueError, match="do not fit"):
        window_starts(sub, 1000, 6.0)


def test_the_held_out_table_refuses_training_seeds():
    with pytest.raises(ValueError, match="not a 'test' workload"):
        workload_windows("small", [5], "test", 1, KW)
    with pytest.raises(ValueError, match="not train"):
        workload_windows("small", [5], "train", 1, KW)
    with pytest.raises(ValueError, match="repeat"):
        workload_windows("small", [TEST.start, TEST.start], "test", 1, KW)


def test_zero_is_aryl_exactly_and_random_is_not():
    windows = workload_windows("small", [TEST.start, TEST.start + 1], "test", 2, KW)
    assert len(windows) == 4 and {w.spec.split for w in windows} == {"test"}
    rows = evaluate_windows(windows, Roles(("zero", "random"), variants=()), CemConfig())
    by = {(r["group"], r["window"], r["policy"]): r for r in rows}
    differs = 0
    for w in windows:
        zero = by[(w.group, w.index, "agent: zero")]
        aryl = by[(w.group, w.index, "aryl")]
        for key in ("avg_jct_s", "avg_queue_s", "preemptions", "job_time_s", "resizes"):
            assert zero[key] == aryl[key], (w.label, key)
        differs += by[(w.group, w.index, "agent: random")]["avg_jct_s"] != aryl["avg_jct_s"]
        assert by[(w.group, w.index, "baseline")]["usage_lent"] == 0.0  # no loaning
    assert differs > 0  # scores do change the runs: the equality above is not vacuous


def test_cem_maximises_and_is_seeded():
    target = np.array([0.7, -0.3, 0.2])

    def evaluate(pop, _it):
        return -((pop - target) ** 2).sum(axis=1)

    cfg = CemConfig(population=20, iterations=15, seed=3)
    a, b = cem(evaluate, 3, cfg), cem(evaluate, 3, cfg)
    assert np.array_equal(a.best_theta, b.best_theta)
    assert np.allclose(a.best_theta, target, atol=0.1)
    assert np.array_equal(a.means[0], np.zeros(3))  # the first candidate is x0
    assert not np.array_equal(cem(evaluate, 3, CemConfig(20, 15, seed=4)).best_theta, a.best_theta)
    with pytest.raises(ValueError, match="population"):
        CemConfig(population=1)
    with pytest.raises(ValueError, match="elite"):
        CemConfig(elite_frac=0.0)


def test_cem_stops_on_a_flat_first_population_only_when_asked():
    def flat(pop, _it):
        return np.zeros(len(pop))

    cfg = CemConfig(population=4, iterations=5)
    assert cem(flat, 2, cfg, stop_when_flat=True).evaluations == 4
    assert cem(flat, 2, cfg).evaluations == 20


def test_oracle_is_seeded_and_never_worse_than_aryl():
    (w,) = workload_windows("small", [TEST.start + 1], "test", 1, KW)
    cfg = CemConfig(population=6, iterations=2, seed=11)
    a, b = oracle_search(w.env, w.spec, cfg), oracle_search(w.env, w.spec, cfg)
    assert a.evaluations == 12
    assert np.array_equal(a.theta, b.theta) and a.summary == b.summary
    assert a.gain_s >= 0.0
    aryl = w.env.replay(w.spec, LinearScorer(np.zeros(len(LINEAR_FEATURES))))
    assert a.summary["job_time_s"] <= aryl["job_time_s"]
    assert a.gain_s == pytest.approx((aryl["job_time_s"] - a.summary["job_time_s"]) / w.spec.n_jobs)


def test_cem_trainer_is_seeded_and_selects_on_validation():
    cfg = CemConfig(population=3, iterations=2, seed=5)
    kw = {"episode_hours": 4.0, "drain_hours": 24.0}
    a = train_round_cem("tiny", cfg, windows=1, val_workloads=2, env_kwargs=kw)
    b = train_round_cem("tiny", cfg, windows=1, val_workloads=2, env_kwargs=kw)
    assert a == b
    assert len(a["val_gain_s"]) == cfg.iterations + 1  # each iteration's mean, the final mean
    assert a["val_gain_s"][0] == 0.0  # the first mean is theta = 0: Aryl
    assert a["val_gain_s"][a["selected"]] == max(a["val_gain_s"])


def test_linear_scorer_files(tmp_path):
    theta = np.linspace(-1, 1, len(LINEAR_FEATURES))
    save_linear(tmp_path / "s.json", theta, {"note": "test"})
    assert np.array_equal(load_linear(tmp_path / "s.json").theta, theta)
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(ValueError, match="bad.json: not a Round-v0 linear scorer"):
        load_scorer(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="unknown Round-v0 policy 'nonsense'"):
        load_scorer("nonsense")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_scorer(str(tmp_path / "missing.zip"))
    with pytest.raises(ValueError, match="theta must be"):
        LinearScorer(np.zeros(3))


def test_cli_table_json_and_errors(tmp_path, capsys):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["evaluate-round", "--agents", "zero,random", "--workloads", "2", "--window-hours", "6"]
    argv += ["--traces", "none", "--json", str(out), "--markdown", str(md), "--quiet"]
    assert main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["policy"] for r in rows} == {
        "agent: zero",
        "agent: random",
        "aryl",
        "baseline",
        "aryl-requested-base",
    }
    line = next(x for x in md.read_text().splitlines() if x.startswith("| agent: zero |"))
    assert "+0 [+0, +0]" in line  # zero minus Aryl: exactly 0, interval included
    assert main(argv) == 2  # the files exist now: --force needed
    assert "--force" in capsys.readouterr().err
    assert main(["evaluate-round", "--workload-seeds", "5", "--traces", "none"]) == 2
    assert "not a 'test' workload" in capsys.readouterr().err
    assert (
        main(["evaluate-round", "--agents", "nonsense", "--workloads", "1", "--traces", "none"])
        == 2
    )
    assert "unknown Round-v0 policy" in capsys.readouterr().err
    assert (
        main(["evaluate-round", "--variants", "no-such", "--workloads", "1", "--traces", "none"])
        == 2
    )
    assert main(["evaluate-round", "--window-hours", "-1", "--traces", "none"]) == 2
    assert "--window-hours must be" in capsys.readouterr().err
    assert main(["evaluate-round", "--workload-seeds", "2000000,x", "--traces", "none"]) == 2
    assert "--workload-seeds '2000000,x'" in capsys.readouterr().err
    assert main(["evaluate-round", "--traces", "missing.csv@0.9", "--workloads", "1"]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


def test_cli_trains_a_scorer_that_evaluate_round_reads(tmp_path):
    out = tmp_path / "theta.json"
    argv = ["train-round-cem", "--scenario", "tiny", "--out", str(out), "--population", "2"]
    argv += ["--iterations", "1", "--windows", "1", "--val-workloads", "1", "--window-hours", "4"]
    assert main(argv) == 0
    assert load_linear(out).theta.shape == (len(LINEAR_FEATURES),)
    argv = ["evaluate-round", "--scenario", "tiny", "--agents", str(out), "--workloads", "1"]
    assert main([*argv, "--window-hours", "4", "--traces", "none", "--quiet"]) == 0


def test_a_real_trace_window_through_the_same_path():
    path = shared_path("traces", "train_alibaba_pai_openb2023_pods.csv")
    windows = trace_windows(get_scenario("small"), [(path, 1.3)], 1, KW)
    rows = evaluate_windows(windows, Roles(("zero",), variants=()), CemConfig())
    zero, aryl = (next(r for r in rows if r["policy"] == p) for p in ("agent: zero", "aryl"))
    assert zero["jobs"] > 0 and zero["avg_jct_s"] == aryl["avg_jct_s"]
    assert zero["job_time_s"] == aryl["job_time_s"]
