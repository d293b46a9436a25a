"""Parameter sweeps (aryl_gym.experiments.sweep) and the execution backends of aryl_gym.experiments.benchmark."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from aryl_gym.cli import main
from aryl_gym.experiments.benchmark import run_benchmark
from aryl_gym.experiments.grid import PARAMETERS, parse_grid, point_scenario
from aryl_gym.experiments.runner import RunSpec, execute_runs
from aryl_gym.experiments.sweep import run_sweep
from aryl_gym.scenarios import SCENARIOS

POLICIES = ["aryl", "baseline"]
EXAMPLE_TRACE = Path(__file__).resolve().parents[1] / "traces" / "example.csv"
HAS_RAY = importlib.util.find_spec("ray") is not None


def test_sweep_2x2_grid_rows_and_files(tmp_path):
    grid = parse_grid(["elastic_share=0,1", "load=1,1.5"])
    df = run_sweep("tiny", POLICIES, [0], grid, tmp_path, workers=2, progress=False)
    assert len(df) == 2 * 2 * len(POLICIES) * 1
    assert df.attrs["failures"] == []
    csv = pd.read_csv(tmp_path / "sweep.csv")
    assert len(csv) == 8
    assert list(csv.columns[:5]) == ["elastic_share", "load", "policy", "seed", "scenario"]
    assert {"avg_queue_s", "avg_jct_s", "usage_overall", "preemptions"} <= set(csv.columns)
    assert set(zip(csv.elastic_share, csv.load, strict=True)) == {
        (0.0, 1.0), (0.0, 1.5), (1.0, 1.0), (1.0, 1.5)
    }  # fmt: skip
    for name in (
        "sweep.csv",
        "sweep.md",
        "failures.json",
        "sweep_elastic_share.png",
        "sweep_load.png",
    ):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "failures.json").read_text()) == []
    md = (tmp_path / "sweep.md").read_text()
    assert "queueing vs ref" in md and "### elastic_share" in md and "### load" in md
    # a grid point runs the changed scenario: more load, more jobs
    base = csv[(csv.elastic_share == 0) & (csv.policy == "baseline")].set_index("load")
    assert base.loc[1.5, "jobs_total"] > base.loc[1.0, "jobs_total"]
    # the policies of a grid point share its workload
    assert (csv.groupby(["elastic_share", "load"])["jobs_total"].nunique() == 1).all()


def test_no_grid_is_one_point_like_the_benchmark(tmp_path):
    df = run_sweep("tiny", POLICIES, [0], {}, tmp_path / "s", workers=1, progress=False)
    bench = run_benchmark("tiny", POLICIES, [0], tmp_path / "b", workers=1, progress=False)
    assert len(df) == len(POLICIES)
    cols = ["avg_queue_s", "avg_jct_s", "usage_overall", "preemptions"]
    pd.testing.assert_frame_equal(df[cols], bench[cols])
    assert not list(tmp_path.glob("s/*.png"))


def test_grid_key_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown grid parameter 'nope'; known: elastic_share"):
        parse_grid(["nope=1,2"])
    with pytest.raises(ValueError, match="unknown grid parameter 'nope'"):
        run_sweep("tiny", POLICIES, [0], {"nope": [1]}, tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="given more than once"):
        parse_grid(["load=1", "load=2"])
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        parse_grid(["load"])
    with pytest.raises(ValueError, match="'training_servers': expected an integer"):
        parse_grid(["training_servers=2.5"])
    # a value the scenario rejects fails before any run, naming the point
    with pytest.raises(ValueError, match="grid point inference_curve=nowhere: unknown inference"):
        run_sweep("tiny", POLICIES, [0], {"inference_curve": ["nowhere"]}, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_grid_error_exit_code_2(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--scenario", "tiny", "--policies", "aryl", "--grid", "speed=1,2"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown grid parameter 'speed'" in err and "inference_gpu_speed" in err
    assert not out.exists()


def test_every_parameter_changes_the_scenario():
    base = SCENARIOS["tiny"]
    values = {
        "elastic_share": 0.25,
        "elastic_min_fraction": 1.0,
        "elastic_max_factor": 3.0,
        "large_model_share": 0.2,
        "load": 2.0,
        "training_servers": 3,
        "inference_servers": 1,
        "inference_gpu_speed": 0.4,
        "inference_curve": "servegen-llm-small",
        "peak_utilisation": 0.5,
    }
    assert set(values) == set(PARAMETERS)
    sc = point_scenario(base, values)
    assert sc.workload.elastic_share == 0.25
    assert sc.workload.large_model_share == 0.2
    assert (sc.workload.elastic_min_fraction, sc.workload.elastic_max_factor) == (1.0, 3.0)
    assert sc.workload.jobs_per_day == 2.0 * base.workload.jobs_per_day
    assert (sc.cluster.training_servers, sc.cluster.inference_servers) == (3, 1)
    assert sc.cluster.inference_gpu_speed == 0.4
    assert sc.inference == replace(base.inference, curve="servegen-llm-small", peak_utilisation=0.5)
    assert sc.name.startswith(
        "tiny[elastic_share=0.25,elastic_min_fraction=1,elastic_max_factor=3,large_model_share=0.2,"
    )


def test_ray_backend_missing_gives_install_hint(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    out = tmp_path / "out"
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        run_benchmark("tiny", POLICIES, [0], out, backend="ray", progress=False)
    assert not out.exists()


@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install -e '.[ray]')")
def test_ray_and_local_backends_give_identical_metrics(tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        df_ray = run_benchmark(
            "tiny", POLICIES, [0, 1], tmp_path / "ray", backend="ray", progress=False
        )
        # a failing run comes back as an error, the others are kept
        bad = replace(SCENARIOS["tiny"], name="broken", trace=str(tmp_path / "missing.csv"))
        outs = execute_runs(
            [RunSpec("baseline", bad, 0), RunSpec("baseline", SCENARIOS["tiny"], 0)],
            backend="ray",
            progress=False,
        )
        assert ray.is_initialized()  # a session started by the caller is left running
    finally:
        ray.shutdown()
    df_local = run_benchmark(
        "tiny", POLICIES, [0, 1], tmp_path / "local", workers=2, progress=False
    )
    pd.testing.assert_frame_equal(df_ray.drop(columns="wall_s"), df_local.drop(columns="wall_s"))
    assert df_ray.attrs["failures"] == []
    assert outs[0].summary is None and outs[0].policy == "baseline" and outs[0].seed == 0
    assert "FileNotFoundError" in outs[0].error
    assert outs[1].error is None and outs[1].summary["jobs_total"] > 0


def test_sweep_takes_a_trace_sized_by_the_library(tmp_path, capsys):
    from aryl_gym.resources import resolve_trace

    example = resolve_trace("example")
    out = tmp_path / "s"
    argv = ["sweep", "--scenario", "tiny", "--trace", str(example), "--policies", "sjf-noloan"]
    argv += ["--seeds", "1", "--grid", "inference_gpu_speed=0.4,1", "--out", str(out)]
    assert main([*argv, "--workers", "1", "--quiet", "--target-load", "0.8"]) == 0
    text = capsys.readouterr().out
    assert "sized training pool to" in text  # the same sizing as simulate and benchmark
    df = pd.read_csv(out / "sweep.csv")
    assert len(df) == 2 and (df["jobs_finished"] == df["jobs_total"]).all()
    assert sorted(df["inference_gpu_speed"]) == [0.4, 1.0]


def test_elastic_grid_parameters_act_on_a_public_trace_mapping(tmp_path):
    trace = tmp_path / "itp.csv"
    trace.write_text("job_id,submission_time,duration,num_gpu\na,100,3600,1\nb,160,7200,8\n")
    base = replace(SCENARIOS["tiny"], trace=str(trace))
    sc = point_scenario(base, {"elastic_share": 1.0, "elastic_min_fraction": 0.25})
    assert sc.trace_options.elastic_share == 1.0
    assert sc.trace_options.elastic_min_fraction == 0.25
    assert sc.workload == base.workload  # the synthetic workload is not what changes
    assert PARAMETERS["elastic_max_factor"].default(sc) == 2.0  # read from the mapping


@pytest.mark.parametrize(
    ("point", "match"),
    [
        ({"load": 2.0}, "'load' changes the synthetic workload, which the trace"),
        ({"large_model_share": 0.5}, "'large_model_share' changes the synthetic workload"),
        ({"elastic_share": 1.0}, "project's format, whose columns give each job's elasticity"),
    ],
)
def test_grid_parameters_a_trace_would_ignore_are_refused(point, match):
    base = replace(SCENARIOS["tiny"], trace=str(EXAMPLE_TRACE))  # the project's format
    with pytest.raises(ValueError, match=match):
        point_scenario(base, point)
