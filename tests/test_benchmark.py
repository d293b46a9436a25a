"""The multi-seed benchmark runner (aryl_gym.experiments.benchmark) and its CLI sub-command."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from aryl_gym.baselines.queue import FifoNoLoan

from aryl_gym.cli import main
from aryl_gym.experiments.benchmark import run_benchmark
from aryl_gym.experiments.report import format_table

POLICIES = ["fifo-noloan", "sjf-noloan"]
SEEDS = [0, 1]
FILES = (
    "results.csv",
    "results.json",
    "failures.json",
    "table.md",
    "jct_cdf.png",
    "queue_cdf.png",
    "usage_over_time.png",
    "preemptions.png",
)


class ExplodingPolicy(FifoNoLoan):
    """Fails in its first scheduling round (module level so it pickles to workers)."""

    name = "exploding"

    def allocate(self, view):
        raise RuntimeError("boom in allocate")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The same benchmark with a process pool and in-process."""
    out2 = tmp_path_factory.mktemp("bench-w2")
    out1 = tmp_path_factory.mktemp("bench-w1")
    df2 = run_benchmark("tiny", POLICIES, SEEDS, out2, workers=2, progress=False)
    df1 = run_benchmark("tiny", POLICIES, SEEDS, out1, workers=1, progress=False)
    return out2, df2, out1, df1


def test_pool_and_in_process_give_identical_results(bench):
    out2, df2, out1, df1 = bench
    a = pd.read_csv(out2 / "results.csv").drop(columns="wall_s")
    b = pd.read_csv(out1 / "results.csv").drop(columns="wall_s")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(df2.drop(columns="wall_s"), df1.drop(columns="wall_s"))
    assert list(zip(a["policy"], a["seed"], strict=True)) == [
        (p, s) for p in POLICIES for s in SEEDS
    ]
    assert set(a["scenario"]) == {"tiny"}
    assert a["jobs_total"].gt(0).all()


def test_policies_share_each_seeds_workload(bench):
    _, df, _, _ = bench
    per_seed = df.groupby("seed")["jobs_total"].nunique()
    assert (per_seed == 1).all()


def test_files_written_and_table_lists_each_policy(bench):
    out2, df2, _, _ = bench
    for name in FILES:
        assert (out2 / name).is_file() and (out2 / name).stat().st_size > 0, name
    table = (out2 / "table.md").read_text()
    for p in POLICIES:
        assert f"| {p} |" in table
    # the default reference ("baseline") is not run: no ratio columns, a note instead
    assert "vs ref" not in table and "no ratios" in table
    doc = json.loads((out2 / "results.json").read_text())
    assert len(doc["runs"]) == len(POLICIES) * len(SEEDS)
    assert [r["policy"] for r in doc["aggregate"]] == POLICIES
    assert json.loads((out2 / "failures.json").read_text()) == []
    assert df2.attrs["failures"] == []


def test_ratios_to_reference(bench):
    _, df, _, _ = bench
    table = format_table(df, reference="fifo-noloan")
    assert "queueing vs ref (x lower)" in table and "usage gain vs ref (pp)" in table
    ref_row = next(line for line in table.splitlines() if line.startswith("| fifo-noloan |"))
    # the reference against itself: ratios 1, usage gain 0 (the last three columns)
    assert ref_row.endswith("| 1.00 ± 0.00 | 1.00 ± 0.00 | 0.0 ± 0.0 |")
    # ratio = ref avg queue / policy avg queue, per seed, then averaged
    fifo = df[df.policy == "fifo-noloan"].set_index("seed")
    sjf = df[df.policy == "sjf-noloan"].set_index("seed")
    expected = (fifo["avg_queue_s"] / sjf["avg_queue_s"]).mean()
    sjf_row = next(line for line in table.splitlines() if line.startswith("| sjf-noloan |"))
    assert f"{expected:,.2f} ±" in sjf_row


def test_one_seed_prints_value_alone(bench):
    _, df, _, _ = bench
    table = format_table(df[df.seed == 0], reference="none")
    assert "±" not in table.split("\n\n")[0].split("\n", 2)[2]


def test_failing_run_is_reported_and_others_kept(tmp_path, capsys):
    df = run_benchmark(
        "tiny",
        ["fifo-noloan", "exploding"],
        [0],
        tmp_path,
        workers=2,
        progress=False,
        reference="fifo-noloan",
        policy_factories={"exploding": ExplodingPolicy},
    )
    assert list(df["policy"]) == ["fifo-noloan"]
    assert df.attrs["failures"] == [
        {"policy": "exploding", "seed": 0, "error": "RuntimeError: boom in allocate"}
    ]
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert failures[0]["policy"] == "exploding" and "boom in allocate" in failures[0]["traceback"]
    assert "exploding seed 0: RuntimeError: boom in allocate" in capsys.readouterr().err
    table = (tmp_path / "table.md").read_text()
    assert "| fifo-noloan |" in table and "exploding" not in table


def test_unknown_names_rejected_before_running(tmp_path):
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        run_benchmark("tiny", ["fifo-noloan", "nope"], [0], tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="unknown scenario 'nowhere'"):
        run_benchmark("nowhere", ["fifo-noloan"], [0], tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_unknown_policy_exit_code_2(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        ["benchmark", "--scenario", "tiny", "--policies", "fifo-noloan,nope", "--out", str(out)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown policy 'nope'" in err and "fifo-noloan" in err
    assert not out.exists()
    rc = main(
        ["benchmark", "--scenario", "nowhere", "--policies", "fifo-noloan", "--out", str(out)]
    )
    assert rc == 2 and "unknown scenario 'nowhere'" in capsys.readouterr().err


def test_cli_runs_and_prints_table(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["benchmark", "--scenario", "tiny", "--policies", "sjf-noloan", "--seed-list", "3,5"]
    rc = main([*argv, "--out", str(out), "--workers", "1", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| sjf-noloan | 2 |" in printed and f"wrote {out / 'table.md'}" in printed
    assert list(pd.read_csv(out / "results.csv")["seed"]) == [3, 5]
