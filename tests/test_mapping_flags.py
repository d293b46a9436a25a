"""The trace mapping flags (``--elastic-share``, ``--drop-failed``, ``--max-gpus``, ...) on
``simulate``, ``benchmark`` and ``sweep``: they reach the jobs of the runs (worker
processes included), they need ``--trace``, bad values are refused naming the flag, and
``traces convert`` / ``stats`` share their one definition."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aryl_gym.cli import build_parser, main
from aryl_gym.cli.common import MAPPING_FLAGS
from aryl_gym.cli.traces import options_from_args
from aryl_gym.scenarios import get_scenario, scenario_with_trace
from aryl_gym.workload.real_traces import MappingOptions, load_any

# 8 jobs of 1 to 16 GPUs, one failed and one killed (the 16-GPU one); the default mapping
# (seed 0) makes 3 of them elastic, seed 1 four
HELIOS = """u_id,user,gpu_num,cpu_num,node_num,interval,run_time,wall_time,new_status
0,1,1,1,1,0,600,0,Pass
1,1,2,2,1,30,1200,0,Pass
2,2,4,4,1,40,900,0,Failed
3,2,8,8,1,50,1800,0,Pass
4,3,16,16,2,60,2400,0,Killed
5,3,1,1,1,70,300,0,Pass
6,4,2,2,1,80,3600,0,Pass
7,4,4,4,1,90,1500,0,Pass
"""
GPUS = [1, 2, 4, 8, 16, 1, 2, 4]


@pytest.fixture
def trace(tmp_path) -> Path:
    p = tmp_path / "helios.csv"
    p.write_text(HELIOS)
    return p


def _simulate(tmp_path: Path, trace: Path, *flags: str) -> tuple[dict, pd.DataFrame]:
    out, jobs = tmp_path / "s.json", tmp_path / "jobs.csv"
    argv = ["simulate", "--scenario", "tiny", "--trace", str(trace), "--policy", "aryl"]
    argv += ["--json", str(out), "--jobs-csv", str(jobs), "--force", "--quiet", *flags]
    assert main(argv) == 0
    return json.loads(out.read_text()), pd.read_csv(jobs)


def test_default_mapping_mixes_elastic_and_rigid_jobs(trace):
    # what the flag tests below change: without flags both kinds are there
    for seed in (0, 1):
        jobs, _ = load_any(trace, options=MappingOptions(seed=seed))
        assert 0 < jobs.elastic.sum() < len(GPUS)


@pytest.mark.parametrize("seed", ["0", "1"])
def test_simulate_elastic_share_reaches_the_jobs(tmp_path, trace, seed):
    _, jobs = _simulate(tmp_path, trace, "--seed", seed, "--elastic-share", "0")
    assert len(jobs) == len(GPUS) and not jobs["elastic"].any()
    _, jobs = _simulate(tmp_path, trace, "--seed", seed, "--elastic-share", "1")
    assert jobs["elastic"].all()


def test_simulate_range_flags_reach_the_jobs(tmp_path, trace):
    flags = ("--elastic-share", "1", "--elastic-min-fraction", "0.25", "--elastic-max-factor", "3")
    _, jobs = _simulate(tmp_path, trace, *flags)
    by_id = jobs.set_index("job_id").sort_index()
    assert list(by_id["min_gpus"]) == [max(1, g // 4) for g in GPUS]
    assert list(by_id["max_gpus"]) == [3 * g for g in GPUS]


def test_simulate_drop_flags_change_the_job_count(tmp_path, trace, capsys):
    summary, _ = _simulate(tmp_path, trace)
    assert summary["jobs_total"] == len(GPUS)
    summary, jobs = _simulate(tmp_path, trace, "--max-gpus", "4")
    assert summary["jobs_total"] == sum(g <= 4 for g in GPUS) == len(jobs)
    assert jobs["gpus"].max() == 4
    assert "over_max_gpus_dropped    2" in capsys.readouterr().out  # the mapping report
    summary, _ = _simulate(tmp_path, trace, "--drop-failed")
    assert summary["jobs_total"] == len(GPUS) - 2  # the failed and the killed job
    summary, _ = _simulate(tmp_path, trace, "--min-duration", "1000")
    assert summary["jobs_total"] == 5  # run times 600, 900 and 300 s dropped


def test_benchmark_workers_get_the_mapping(tmp_path, trace, capsys):
    out = tmp_path / "b"
    argv = ["benchmark", "--scenario", "tiny", "--trace", str(trace), "--out", str(out)]
    argv += ["--policies", "aryl,aryl-elastic-only", "--seeds", "2", "--workers", "2"]
    argv += ["--keep", "jobs", "--quiet", "--elastic-share", "1", "--max-gpus", "4"]
    assert main(argv) == 0
    capsys.readouterr()
    doc = json.loads((out / "results.json").read_text())
    assert [r["jobs_total"] for r in doc["runs"]] == [6] * 4
    assert doc["trace_options"]["elastic_share"] == 1.0 and doc["trace_options"]["max_gpus"] == 4
    kept = sorted((out / "runs").glob("*_jobs.csv"))
    assert len(kept) == 4
    for path in kept:  # written by the worker processes
        jobs = pd.read_csv(path)
        assert len(jobs) == 6 and jobs["elastic"].all() and jobs["gpus"].max() == 4
    assert "mapping elastic_share=1.0, max_gpus=4)" in (out / "table.md").read_text()


def test_sweep_points_keep_the_flags_and_vary_the_grid(tmp_path, trace, capsys):
    out = tmp_path / "s"
    argv = ["sweep", "--scenario", "tiny", "--trace", str(trace), "--out", str(out)]
    argv += ["--policies", "sjf-noloan", "--seeds", "1", "--workers", "1", "--quiet"]
    argv += ["--grid", "elastic_share=0,1", "--max-gpus", "4"]
    assert main([*argv, "--elastic-share", "1"]) == 0  # the flag's value is in the grid
    df = pd.read_csv(out / "sweep.csv")
    assert sorted(df["elastic_share"]) == [0.0, 1.0]
    assert (df["jobs_total"] == 6).all()  # --max-gpus holds at every point
    assert "mapping elastic_share=1.0, max_gpus=4)" in (out / "sweep.md").read_text()
    capsys.readouterr()
    # a flag value the grid overrides everywhere would change nothing: refused
    assert main([*argv, "--elastic-share", "0.25", "--force"]) == 2
    err = capsys.readouterr().err
    assert "--elastic-share 0.25 and --grid elastic_share=0,1 both set" in err
    assert "give 0.25 among the grid's values" in err


@pytest.mark.parametrize("command", ["simulate", "benchmark", "sweep"])
def test_mapping_flags_need_a_trace(tmp_path, capsys, command):
    out = tmp_path / "out"
    argv = [command, "--scenario", "tiny", "--quiet"]
    if command != "simulate":
        argv += ["--policies", "sjf-noloan", "--out", str(out)]
    assert main([*argv, "--elastic-share", "0.25", "--drop-failed"]) == 2
    err = capsys.readouterr().err
    assert "--elastic-share, --drop-failed: trace mapping options need --trace" in err
    assert not out.exists()  # refused before any run
    assert main([*argv, "--max-gpus", "4"]) == 2
    assert "--max-gpus: trace mapping option needs --trace" in capsys.readouterr().err
    assert main([*argv, "--fractional-gpu", "ceil"]) == 2  # the default value, still given
    assert "--fractional-gpu: trace mapping option needs --trace" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--elastic-share", "1.5", "MappingOptions.elastic_share must be in [0, 1], got 1.5"),
        ("--elastic-share", "nan", "MappingOptions.elastic_share must be in [0, 1], got nan"),
        ("--elastic-min-fraction", "0", "MappingOptions.elastic_min_fraction: must lie in (0, 1]"),
        ("--elastic-max-factor", "0.5", "MappingOptions.elastic_max_factor: must be a finite"),
        ("--min-duration", "-1", "MappingOptions.min_duration_s must be a finite number >= 0"),
        ("--max-gpus", "0", "MappingOptions.max_gpus must be >= 1, got 0"),
        ("--qos", ",", "bad qos filter ','"),
    ],
)
def test_bad_mapping_values_are_refused_naming_the_flag(
    tmp_path, trace, capsys, flag, value, message
):
    out = tmp_path / "b"
    for argv in (
        ["simulate", "--scenario", "tiny", "--trace", str(trace), "--quiet"],
        ["benchmark", "--scenario", "tiny", "--trace", str(trace), "--out", str(out), "--quiet"],
        ["traces", "convert", str(trace), str(tmp_path / "o.csv")],
    ):
        assert main([*argv, flag, value]) == 2
        assert f"aryl-gym: error: {flag} {value}: {message}" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "o.csv").exists()


def test_traces_seed_must_be_a_natural_number(tmp_path, trace, capsys):
    assert main(["traces", "convert", str(trace), str(tmp_path / "o.csv"), "--seed", "-1"]) == 2
    assert "--seed -1: MappingOptions.seed must be >= 0, got -1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="MappingOptions.seed must be an integer"):
        MappingOptions(seed=1.5)


def test_mapping_flags_on_a_project_format_trace_are_refused(tmp_path, capsys):
    argv = ["simulate", "--scenario", "tiny", "--trace", "example", "--quiet"]
    assert main([*argv, "--elastic-share", "0", "--drop-failed"]) == 2
    err = capsys.readouterr().err
    assert "trace mapping options (elastic_share=0.0, keep_failed=False) do not apply" in err
    assert "it is in the project's format" in err
    assert main(argv) == 0  # without them it runs


def _mapping_help(capsys, argv: list[str]) -> str:
    """The lines of ``argv -h`` from ``--elastic-share`` to ``--max-gpus``'s help."""
    with pytest.raises(SystemExit):
        main([*argv, "-h"])
    text = capsys.readouterr().out
    start = text.index("  --elastic-share")
    end = text.index("\n", text.index("  --max-gpus"))
    return text[start:end]


def test_one_definition_and_the_dataclass_defaults(capsys):
    parser = build_parser()
    convert = parser.parse_args(["traces", "convert", "in.csv", "out.csv"])
    assert options_from_args(convert) == MappingOptions()  # traces keep their defaults
    simulate = parser.parse_args(["simulate", "--trace", "t.csv"])
    assert all(getattr(simulate, dest) is None for dest, _, _ in MAPPING_FLAGS)
    # the same flags with the same help texts everywhere; the mapping's --seed is traces' own
    convert_help = _mapping_help(capsys, ["traces", "convert"])
    assert "--max-gpus" in convert_help and "--qos" in convert_help
    for command in ("simulate", "benchmark", "sweep"):
        assert _mapping_help(capsys, [command]) == convert_help, command
    with pytest.raises(SystemExit):
        main(["simulate", "-h"])
    assert "seed of elastic flags" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["traces", "stats", "-h"])
    assert "seed of elastic flags and profiles (default 0)" in capsys.readouterr().out


def test_scenario_with_trace_takes_the_options(trace):
    opts = MappingOptions(elastic_share=1.0, max_gpus=4)
    sc = scenario_with_trace(get_scenario("tiny"), trace=trace, trace_options=opts)
    assert sc.trace_options == opts
    with pytest.raises(ValueError, match="trace mapping options and a target load need a trace"):
        scenario_with_trace(get_scenario("tiny"), trace_options=opts)
