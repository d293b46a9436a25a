"""Careless inputs fail at once with a clear message: size bounds (aryl_gym.sim.limits) and
output paths checked before any work, results written atomically (aryl_gym.outputs)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aryl_gym.cli import main
from aryl_gym.config import ClusterConfig
from aryl_gym.experiments.benchmark import run_benchmark
from aryl_gym.experiments.report import write_json
from aryl_gym.experiments.sweep import run_sweep
from aryl_gym.outputs import atomic_path, check_output_file, write_text_atomic
from aryl_gym.scenarios import SCENARIOS, build_workload, get_scenario
from aryl_gym.sim import limits
from aryl_gym.workload.inference import InferenceConfig, build_demand

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "example.csv"
CLI = "import sys; from aryl_gym.cli import main; sys.exit(main(sys.argv[1:]))"


def write_trace(path: Path, rows: list[tuple[str, float, int, float]]) -> Path:
    lines = ["job_id,submit_time,gpus,duration"]
    lines += [f"{j},{t!r},{g},{d!r}" for j, t, g, d in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(args: list[str], *, address_space: int | None = None, timeout: float = 120):
    """``aryl-gym ARGS`` in a fresh interpreter, optionally under ``ulimit -v`` (bytes)."""

    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


# --------------------------------------------------------------------------- 1. horizon


def test_far_future_arrival_is_refused_under_ulimit_v_2gb(tmp_path):
    """Defect 1: a 2-row trace with an arrival at t = 1e12 s used to build a demand series
    of 1.7e9 steps (~24 GB); under ``ulimit -v 2000000`` it now fails at once, clearly."""
    trace = write_trace(tmp_path / "far.csv", [("a", 0.0, 1, 100.0), ("b", 1e12, 1, 100.0)])
    t0 = time.monotonic()
    r = run_cli(["simulate", "--trace", str(trace), "--quiet"], address_space=2_000_000 * 1024)
    assert time.monotonic() - t0 < 60
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    assert "job 'b' (submit_time) is 1e+12 s (31,710 years)" in r.stderr
    assert "aryl_gym.sim.limits.MAX_SIM_TIME_S" in r.stderr and str(trace) in r.stderr


def test_build_workload_and_build_demand_bound_the_horizon(tmp_path):
    trace = write_trace(tmp_path / "far.csv", [("a", 0.0, 1, 100.0), ("b", 1e12, 1, 100.0)])
    sc = get_scenario("tiny", trace=str(trace))
    with pytest.raises(ValueError, match=r"job 'b' \(submit_time\).*MAX_SIM_TIME_S"):
        build_workload(sc, 0)
    # the demand series itself: too many steps, or a long step over too many bins
    with pytest.raises(ValueError, match=r"number of demand steps is 1,666,666,667.*MAX_DEMAND"):
        build_demand(InferenceConfig(), 4, 1e12, seed=0)
    with pytest.raises(ValueError, match=r"10-minute bins.*MAX_DEMAND_STEPS"):
        build_demand(InferenceConfig(step_s=1e12), 4, 1e12, seed=0)
    # within the bound (5 years less the drain): a bounded series, a few MB
    last = limits.MAX_SIM_TIME_S - 40 * 86400
    ok = write_trace(tmp_path / "ok.csv", [("a", 0.0, 1, 100.0), ("b", last, 1, 100.0)])
    jobs, (times, needed) = build_workload(get_scenario("tiny", trace=str(ok)), 0)
    assert len(jobs) == 2 and times.nbytes + needed.nbytes < 8 * 1024 * 1024


def test_synthetic_workload_days_and_jobs_are_bounded():
    tiny = SCENARIOS["tiny"]
    with pytest.raises(ValueError, match=r"'tiny': workload.days is 8.64e\+10 s .*MAX_SIM_TIME"):
        replace(tiny, workload=replace(tiny.workload, days=1e6))
    with pytest.raises(
        ValueError, match=r"expected number of jobs .* above the bound of 5,000,000"
    ):
        replace(tiny, workload=tiny.workload.scaled(1e9))


# --------------------------------------------------------------------------- 2. sizes


def test_cluster_pools_and_servers_are_bounded():
    with pytest.raises(ValueError, match=r"training_servers is 7,500,000,000, above .* 100,000"):
        ClusterConfig(training_servers=7_500_000_000)
    with pytest.raises(ValueError, match=r"inference_servers .*MAX_SERVERS_PER_POOL"):
        ClusterConfig(inference_servers=10**6)
    with pytest.raises(ValueError, match=r"gpus_per_server is 1,024.*MAX_GPUS_PER_SERVER"):
        ClusterConfig(gpus_per_server=1024)
    assert ClusterConfig(training_servers=limits.MAX_SERVERS_PER_POOL).training_servers > 0


def test_cli_huge_job_gpus_fails_before_sizing(tmp_path):
    trace = write_trace(tmp_path / "big.csv", [("a", 0.0, 2147483648, 100.0), ("b", 10, 1, 1.0)])
    r = run_cli(["simulate", "--trace", str(trace), "--quiet"], address_space=2_000_000 * 1024)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "job 'a' gpus is 2,147,483,648, above the bound of 65,536" in r.stderr
    assert "MAX_GPUS_PER_JOB" in r.stderr


def test_cli_target_load_tiny_or_infinite(capsys):
    rc = main(["simulate", "--trace", str(EXAMPLE), "--target-load", "1e-9", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "sizing the training pool for load 1e-09" in err
    assert "training_servers is" in err and "MAX_SERVERS_PER_POOL" in err
    rc = main(["simulate", "--trace", str(EXAMPLE), "--target-load", "inf", "--quiet"])
    assert rc == 2 and "must be a finite number > 0, got inf" in capsys.readouterr().err


def test_cli_seed_and_worker_bounds_fail_fast(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["benchmark", "--scenario", "tiny", "--policies", "fifo-noloan", "--out", str(out)]
    t0 = time.monotonic()
    assert main([*argv, "--seeds", "1000000000"]) == 2
    assert time.monotonic() - t0 < 5
    assert (
        "--seeds is 1,000,000,000, above the bound of 10,000 (aryl_gym.sim.limits.MAX_SEEDS)"
        in (capsys.readouterr().err)
    )
    assert main([*argv, "--seed-list", "0,-1"]) == 2
    assert "seeds must be >= 0, got -1" in capsys.readouterr().err
    assert main([*argv, "--workers", "100000"]) == 2
    assert "--workers is 100,000" in capsys.readouterr().err
    assert main([*argv, "--workers", "0"]) == 2
    assert "--workers must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_sweep_grid_size_and_load_are_bounded(tmp_path):
    values = [float(v) for v in range(1, 501)]
    grid = {"load": values, "elastic_share": [v / 1000 for v in range(500)]}
    with pytest.raises(ValueError, match=r"runs \(grid points x policies x seeds\) is 250,000"):
        run_sweep("tiny", ["baseline"], [0], grid, tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match=r"grid point load=1e\+09: .*MAX_JOBS"):
        run_sweep("tiny", ["baseline"], [0], {"load": [1e9]}, tmp_path / "t", progress=False)
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists()


# --------------------------------------------------------------------------- 3. outputs


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts: output errors must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("the simulation ran before the output path was checked")

    monkeypatch.setattr("aryl_gym.simulate.run_policy", boom)


def test_simulate_output_paths_are_checked_before_the_simulation(tmp_path, capsys, no_simulation):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    base = ["simulate", "--scenario", "tiny", "--quiet"]
    cases = [
        (["--json", str(afile / "s.json")], f"--json {afile / 's.json'}: {afile} is a file, not"),
        (["--jobs-csv", str(afile / "d" / "j.csv")], f"{afile} is a file, not a folder"),
        (["--json", str(tmp_path)], f"--json {tmp_path}: is a folder; give the path of a file"),
        (["--json", str(afile)], "the file exists; pass --force to replace it"),
        (["--json", str(tmp_path / "a.json"), "--jobs-csv", str(tmp_path / "a.json")], "same"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert afile.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_simulate_unwritable_folder_is_refused_up_front(tmp_path, capsys, no_simulation):
    # /proc refuses new files even to root (os.access would say yes to root)
    assert main(["simulate", "--quiet", "--json", "/proc/aryl-gym/s.json"]) == 2
    assert "--json /proc/aryl-gym/s.json: cannot write in /proc" in capsys.readouterr().err
    if os.geteuid() != 0:  # permissions bind only non-root users
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            assert main(["simulate", "--quiet", "--json", str(ro / "s.json")]) == 2
            assert f"cannot write in {ro}" in capsys.readouterr().err
        finally:
            ro.chmod(0o755)


def test_simulate_force_replaces_and_parent_folders_are_created(tmp_path):
    out = tmp_path / "new" / "deeper" / "s.json"
    argv = ["simulate", "--scenario", "tiny", "--quiet", "--json", str(out)]
    assert main(argv) == 0
    first = json.loads(out.read_text())
    out.write_text("old")
    assert main(argv) == 2 and out.read_text() == "old"
    assert main([*argv, "--force"]) == 0
    again = json.loads(out.read_text())
    assert again.pop("wall_s") > 0 and again == {k: v for k, v in first.items() if k != "wall_s"}
    assert [p.name for p in out.parent.iterdir()] == ["s.json"]  # no temp file left


def test_benchmark_out_and_trace_paths_are_checked_up_front(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = ["benchmark", "--scenario", "tiny", "--policies", "fifo-noloan", "--seeds", "1"]
    assert main([*argv, "--out", str(afile)]) == 2
    assert f"--out {afile}: is a file; give the path of a folder" in capsys.readouterr().err
    assert main([*argv, "--out", str(afile / "sub")]) == 2
    assert f"{afile} is a file, not a folder" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "o"), "--trace", str(tmp_path)]) == 2
    assert f"--trace {tmp_path}: is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "o"), "--force", "--resume"])
    assert "--resume: not allowed with argument --force" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--force and --resume exclude each other"):
        run_benchmark("tiny", ["fifo-noloan"], [0], tmp_path / "o", force=True, resume=True)
    assert not (tmp_path / "o").exists()


def test_existing_results_need_force(tmp_path, capsys):
    out = tmp_path / "b"
    argv = ["benchmark", "--scenario", "tiny", "--policies", "fifo-noloan", "--seeds", "1"]
    argv += ["--workers", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    before = (out / "results.csv").read_text()
    (out / "results.csv").write_text("stale")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {out} already holds the results of a benchmark (results.csv" in err
    assert "pass --resume to reuse its finished runs or --force to replace them" in err
    assert (out / "results.csv").read_text() == "stale"
    assert main([*argv, "--force"]) == 0
    assert capsys.readouterr().out.count("resumed") == 0  # --force recomputes everything
    a = pd.read_csv(out / "results.csv").drop(columns="wall_s")
    b = pd.read_csv(pd.io.common.StringIO(before)).drop(columns="wall_s")
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="already holds the results of a benchmark"):
        run_benchmark("tiny", ["fifo-noloan"], [0], out, progress=False)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    p = tmp_path / "r.json"
    write_json(p, {"a": 1})
    with pytest.raises(TypeError):
        write_json(p, {"a": object()})  # not serialisable: fails before the rename
    assert json.loads(p.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted mid-write")
    assert json.loads(p.read_text()) == {"a": 1}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.json"]
    assert write_text_atomic(tmp_path / "x" / "y.txt", "ok").read_text() == "ok"
    with pytest.raises(ValueError, match="the file exists; pass --force"):
        check_output_file(p, "--json")
    assert check_output_file(p, "--json", force=True) == p


def test_every_report_file_is_written_atomically(tmp_path, monkeypatch):
    """Each CSV, JSON, markdown and PNG of a benchmark and a sweep lands by os.replace
    of a temporary file beside it (never written in place)."""
    replaced: list[str] = []
    real_replace = os.replace

    def spy(src, dst):
        assert Path(src).parent == Path(dst).parent and Path(src).name.startswith(".")
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    out = tmp_path / "b"
    run_benchmark("tiny", ["fifo-noloan", "sjf-noloan"], [0], out, workers=1, progress=False)
    reports = {p.name for p in out.iterdir() if p.is_file()}
    assert reports == {
        "results.csv", "results.json", "failures.json", "table.md",
        "jct_cdf.png", "queue_cdf.png", "usage_over_time.png", "preemptions.png",
    }  # fmt: skip
    assert reports <= set(replaced)
    records = {p.name for p in (out / "runs").iterdir()}
    assert records <= set(replaced) and len(records) == 4  # 2 runs: .json + .npz each
    replaced.clear()
    s = tmp_path / "s"
    run_sweep("tiny", ["aryl", "baseline"], [0], {"load": [1.0, 1.5]}, s, workers=1, progress=False)
    sweep_files = {p.name for p in s.iterdir() if p.is_file()}
    assert sweep_files == {"sweep.csv", "sweep.md", "failures.json", "sweep_load.png"}
    assert sweep_files <= set(replaced)


def test_demand_series_unchanged_within_bounds():
    """The bounds change no result: the same series as before for a normal horizon."""
    times, needed = build_demand(InferenceConfig(), 8, 3 * 86400.0, seed=0)
    assert len(times) == 432 and times[-1] == 431 * 600.0
    assert needed.dtype == np.int64 and 0 < needed.max() <= 8
