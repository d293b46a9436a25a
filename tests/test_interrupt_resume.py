"""Interrupted benchmarks and sweeps: workers stop, nothing is orphaned, the folder says
what is missing, and ``--resume`` computes only the missing runs (aryl_gym.interrupts,
aryl_gym.experiments.records)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from aryl_gym.baselines.queue import FifoNoLoan

from aryl_gym.cli import main
from aryl_gym.experiments import records
from aryl_gym.experiments.benchmark import REPORT_FILES, run_benchmark
from aryl_gym.experiments.records import MARKER, ResultFolder, run_key
from aryl_gym.experiments.runner import RunSpec
from aryl_gym.experiments.sweep import run_sweep
from aryl_gym.interrupts import (
    Interrupted,
    pending_signal,
    raise_if_interrupted,
    signals_raise,
)
from aryl_gym.scenarios import SCENARIOS

POLICIES = ["fifo-noloan", "sjf-noloan"]
CLI = "import sys; from aryl_gym.cli import main; sys.exit(main(sys.argv[1:]))"


def record_of(out: Path, policy: str, seed: int, keep_series: bool = False) -> Path:
    spec = RunSpec(policy, SCENARIOS["tiny"], seed, keep_series=keep_series)
    return ResultFolder(out, "benchmark", REPORT_FILES).record_path(spec)


def csv_without_wall(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="wall_s")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "b"
    df = run_benchmark("tiny", POLICIES, [0, 1, 2], out, workers=1, progress=False)
    return out, df


# --------------------------------------------------------------------------- resume


def test_resume_computes_only_the_missing_runs(uninterrupted, tmp_path):
    full, df_full = uninterrupted
    assert sorted(df_full.attrs["computed"]) == sorted((p, s) for p in POLICIES for s in (0, 1, 2))
    assert not (full / MARKER).exists()
    out = tmp_path / "b"
    shutil.copytree(full, out)
    # as if interrupted: two runs' records and every report are missing
    lost = [("sjf-noloan", 0), ("fifo-noloan", 2)]
    for policy, seed in lost:
        rec = record_of(out, policy, seed, keep_series=seed == 0)
        rec.unlink()
        rec.with_suffix(".npz").unlink()
    for name in REPORT_FILES:
        (out / name).unlink()
    df = run_benchmark("tiny", POLICIES, [0, 1, 2], out, workers=2, progress=False, resume=True)
    assert sorted(df.attrs["computed"]) == sorted(lost)
    assert len(df.attrs["reused"]) == 4
    pd.testing.assert_frame_equal(
        csv_without_wall(out / "results.csv"), csv_without_wall(full / "results.csv")
    )
    # the reused rows are the records' values (wall_s included)
    a, b = pd.read_csv(out / "results.csv"), pd.read_csv(full / "results.csv")
    reused = ~a.set_index(["policy", "seed"]).index.isin(lost)
    pd.testing.assert_frame_equal(a[reused], b[reused])
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    assert not (out / MARKER).exists()
    # resuming a complete folder computes nothing
    again = run_benchmark("tiny", POLICIES, [0, 1, 2], out, workers=1, progress=False, resume=True)
    assert again.attrs["computed"] == []


def test_run_key_covers_policy_scenario_seed_trace_and_code(tmp_path, monkeypatch):
    tiny = SCENARIOS["tiny"]
    base = RunSpec("fifo-noloan", tiny, 0)
    changed = [
        replace(base, policy="sjf-noloan"),
        replace(base, seed=1),
        replace(base, scenario=replace(tiny, inference=replace(tiny.inference, curve="flat"))),
        replace(base, scenario=replace(tiny, cluster=replace(tiny.cluster, training_servers=3))),
    ]
    keys = {run_key(base)} | {run_key(s) for s in changed}
    assert len(keys) == 1 + len(changed)
    assert run_key(replace(base, keep_series=True)) == run_key(base)  # what is kept: not
    trace = tmp_path / "t.csv"
    trace.write_text("job_id,submit_time,gpus,duration\na,0,1,100\n")
    with_trace = replace(base, scenario=replace(tiny, trace=str(trace)))
    k1 = run_key(with_trace)
    time.sleep(0.01)
    trace.write_text("job_id,submit_time,gpus,duration\na,0,1,200\n")
    assert run_key(with_trace) != k1  # same path, other content
    monkeypatch.setattr(records, "code_version", lambda: "0.1.0+other")
    assert run_key(base) not in keys


def test_resume_after_a_code_change_recomputes_everything(uninterrupted, tmp_path, monkeypatch):
    full, _ = uninterrupted
    out = tmp_path / "b"
    shutil.copytree(full, out)
    monkeypatch.setattr(records, "code_version", lambda: "0.1.0+changed")
    df = run_benchmark("tiny", POLICIES, [0, 1, 2], out, workers=1, progress=False, resume=True)
    assert len(df.attrs["computed"]) == 6 and df.attrs["reused"] == []


def test_sweep_resume_computes_only_the_missing_run(tmp_path):
    grid = {"load": [1.0, 1.5]}
    full = tmp_path / "full"
    run_sweep("tiny", ["aryl", "baseline"], [0], grid, full, workers=1, progress=False)
    out = tmp_path / "s"
    shutil.copytree(full, out)
    folder = ResultFolder(out, "sweep", [])
    victim = sorted(p for p in (out / "runs").glob("*.json"))[0]
    victim_doc = json.loads(victim.read_text())
    victim.unlink()
    (out / "sweep.csv").unlink()
    df = run_sweep(
        "tiny", ["aryl", "baseline"], [0], grid, out, workers=1, progress=False, resume=True
    )
    assert len(df.attrs["computed"]) == 1 and len(df.attrs["reused"]) == 3
    (point, policy, seed) = df.attrs["computed"][0]
    assert (policy, seed) == (victim_doc["policy"], victim_doc["seed"])
    pd.testing.assert_frame_equal(
        csv_without_wall(out / "sweep.csv"), csv_without_wall(full / "sweep.csv")
    )
    assert victim.exists() and not folder.marker.exists()


def test_interrupted_reports_are_marked_and_resume_finishes_them(tmp_path, monkeypatch):
    out = tmp_path / "b"

    def interrupted_plots(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("aryl_gym.experiments.benchmark.plot_all", interrupted_plots)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark("tiny", POLICIES, [0], out, workers=1, progress=False)
    marker = json.loads((out / MARKER).read_text())
    assert marker["state"] == "interrupted" and marker["missing_runs"] == []
    assert marker["runs_done"] == marker["runs_total"] == 2
    assert marker["missing_files"] == [f for f in REPORT_FILES if f.endswith(".png")]
    assert "--resume" in marker["how_to_finish"]
    monkeypatch.undo()
    with pytest.raises(ValueError, match=rf"already holds .*{MARKER}"):
        run_benchmark("tiny", POLICIES, [0], out, workers=1, progress=False)
    df = run_benchmark("tiny", POLICIES, [0], out, workers=1, progress=False, resume=True)
    assert df.attrs["computed"] == []
    assert not (out / MARKER).exists() and all((out / f).is_file() for f in REPORT_FILES)


# --------------------------------------------------------------------------- signals


def test_sigterm_becomes_interrupted_and_the_cli_exit_status(monkeypatch, capsys):
    with pytest.raises(Interrupted) as info, signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert info.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    monkeypatch.setattr("aryl_gym.cli.simulate.cmd_scenarios", killed)
    assert main(["scenarios"]) == 143
    assert "aryl-gym: interrupted (SIGTERM)" in capsys.readouterr().err

    def ctrl_c(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("aryl_gym.cli.simulate.cmd_scenarios", ctrl_c)
    assert main(["scenarios"]) == 130
    assert "aryl-gym: interrupted (SIGINT)" in capsys.readouterr().err


class SignalInFinalizer:
    """Sends SIGTERM to this process from ``__del__``: the handler's exception is raised
    inside a finalizer, where Python swallows it ("Exception ignored in ...")."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)  # the handler runs here


def test_a_signal_swallowed_in_a_finalizer_is_not_lost(monkeypatch, capsys):
    with pytest.raises(Interrupted), signals_raise():
        obj = SignalInFinalizer()
        del obj  # Python swallows the Interrupted raised in __del__
        assert pending_signal() == signal.SIGTERM
        raise_if_interrupted()  # ... and it comes back at the next safe point
    assert "Exception ignored" not in capsys.readouterr().err  # no traceback printed

    def swallowed(args):
        obj = SignalInFinalizer()
        del obj
        return 0

    monkeypatch.setattr("aryl_gym.cli.simulate.cmd_scenarios", swallowed)
    assert main(["scenarios"]) == 143  # the command ended, the exit status says SIGTERM
    assert "aryl-gym: interrupted (SIGTERM)" in capsys.readouterr().err
    assert pending_signal() is None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _start_benchmark(out: Path, seeds: int) -> subprocess.Popen:
    argv = ["benchmark", "--scenario", "small", "--policies", "fifo-noloan,sjf-noloan,aryl"]
    argv += ["--seeds", str(seeds), "--workers", "2", "--quiet", "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *argv],
        start_new_session=True,  # its own process group: the workers can be found
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_records(out: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        # pathlib's glob matches hidden names: skip the writer's temporary files
        # (".<stem>.tmp-<hex>.json"), which are not records yet
        done = [p for p in (out / "runs").glob("*.json") if not p.name.startswith(".")]
        if len(done) >= n:
            return
        time.sleep(0.05)
    pytest.fail(f"the benchmark did not write {n} records (rc {proc.poll()})")


@pytest.mark.parametrize(
    ("sig", "to_group", "status"),
    [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)],
    ids=["ctrl-c-to-the-group", "sigterm-to-the-parent"],
)
def test_interrupted_benchmark_stops_its_workers_and_marks_the_folder(
    tmp_path, sig, to_group, status
):
    out = tmp_path / "b"
    proc = _start_benchmark(out, seeds=8)
    try:
        _wait_for_records(out, 3, proc)
        t0 = time.monotonic()
        (os.killpg if to_group else os.kill)(proc.pid, sig)
        rc = proc.wait(timeout=15)
        stopped_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = proc.stderr.read()
    assert rc == status, err
    assert stopped_s < 5, stopped_s
    deadline = time.monotonic() + 3
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "worker processes outlived the benchmark"
    assert "Traceback" not in err, err
    assert f"interrupted ({signal.Signals(sig).name})" in err
    marker = json.loads((out / MARKER).read_text())
    assert marker["state"] == "interrupted" and marker["runs_total"] == 24
    done = {p.stem for p in (out / "runs").glob("*.json")}
    missing = {Path(r["record"]).stem for r in marker["missing_runs"]}
    assert marker["runs_done"] == len(done) >= 3 and done.isdisjoint(missing)
    assert len(done) + len(missing) == 24
    assert marker["missing_files"] == list(REPORT_FILES)
    assert not any((out / f).exists() for f in REPORT_FILES)
    assert not [p for p in out.rglob(".*tmp-*")], "temporary files left"
    if sig != signal.SIGINT:
        return
    # --resume computes exactly the missing runs and gives the uninterrupted results
    policies = ["fifo-noloan", "sjf-noloan", "aryl"]
    df = run_benchmark("small", policies, range(8), out, workers=2, progress=False, resume=True)
    computed = {(r["policy"], r["seed"]) for r in marker["missing_runs"]}
    assert set(df.attrs["computed"]) == computed and len(df.attrs["computed"]) == len(missing)
    full = tmp_path / "full"
    run_benchmark("small", policies, range(8), full, workers=2, progress=False)
    pd.testing.assert_frame_equal(
        csv_without_wall(out / "results.csv"), csv_without_wall(full / "results.csv")
    )
    assert not (out / MARKER).exists()


def test_interrupted_training_saves_and_leaves_no_env_worker(tmp_path):
    """Ctrl-C on ``aryl-gym train`` with subprocess envs: the trainer saves the model and
    meta.json (interrupted, SIGINT), exits 130, and no env worker survives."""
    pytest.importorskip("sb3_contrib")
    import yaml

    smoke = Path(__file__).resolve().parents[1] / "agents" / "configs" / "smoke.yaml"
    cfg = yaml.safe_load(smoke.read_text())
    cfg.update(n_timesteps=10_000_000, vec_env="subproc", bc=None, checkpoint_freq=10**9)
    cfg["eval"] = {**cfg["eval"], "eval_freq": 10**9}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "train", "--config", str(config), "--run-dir", str(run_dir)]
        + ["--no-progress"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not list(run_dir.glob("tb/*/events*")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        time.sleep(1.0)  # inside model.learn
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = proc.stdout.read()
    assert rc == 130, output
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["interrupted"] is True and meta["interrupt_signal"] == "SIGINT"
    assert (run_dir / "final_model.zip").is_file()
    assert "Traceback" not in output, output
    deadline = time.monotonic() + 20  # generous: a loaded CI machine reaps slowly
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(proc.pid), "env workers outlived the trainer"


class SleepyPolicy(FifoNoLoan):
    """FIFO that sleeps a minute per round while $ARYL_TEST_SLEEPY is set (module level:
    it pickles to workers; the environment is inherited when they fork)."""

    name = "sleepy"

    def allocate(self, view):
        if os.environ.get("ARYL_TEST_SLEEPY"):
            time.sleep(60)
        return super().allocate(view)


def test_interrupted_sweep_stops_the_pool_and_resume_finishes(tmp_path, monkeypatch):
    """A Ctrl-C in the parent while a worker is busy with a long run (workers=2): the
    workers are stopped at once (no waiting for the run, no child process left), the
    marker lists the missing runs, and --resume computes exactly those."""
    import multiprocessing

    grid = {"load": [1.0, 1.5]}
    policies, factories = ["baseline", "sleepy"], {"sleepy": SleepyPolicy}
    out = tmp_path / "s"
    real_save = ResultFolder.save

    def save_then_ctrl_c(self, spec, output):
        real_save(self, spec, output)
        raise KeyboardInterrupt

    monkeypatch.setattr(ResultFolder, "save", save_then_ctrl_c)
    monkeypatch.setenv("ARYL_TEST_SLEEPY", "1")
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(
            "tiny", policies, [0, 1], grid, out, workers=2, progress=False,
            reference="baseline", policy_factories=factories,
        )  # fmt: skip
    assert time.monotonic() - t0 < 15  # the sleeping run was not waited for
    assert multiprocessing.active_children() == []
    monkeypatch.undo()
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "sweep" and marker["state"] == "interrupted"
    assert marker["runs_total"] == 8 and marker["runs_done"] == 1
    assert "sweep_load.png" in marker["missing_files"]
    df = run_sweep(
        "tiny", policies, [0, 1], grid, out, workers=1, progress=False, resume=True,
        policy_factories=factories,
    )  # fmt: skip
    assert len(df.attrs["computed"]) == 7 and len(df.attrs["reused"]) == 1
    assert not (out / MARKER).exists() and (out / "sweep_load.png").is_file()


# A worker killed while writing its result leaves the executor's manager thread waiting
# for the rest of the message; Python's exit hook then joined that thread forever (about
# 1 interrupted run in 23 under load hung so). The script plays that state exactly.
PARTIAL_RESULT_SCRIPT = """
import os, struct, time
from concurrent.futures import ProcessPoolExecutor
from aryl_gym.experiments.runner import _abort_pool

def nap(x):
    time.sleep(x)
    return x

if __name__ == "__main__":
    pool = ProcessPoolExecutor(max_workers=1)
    pool.submit(nap, 0.1).result()  # the worker and the manager thread are up
    pool.submit(nap, 60)
    # what a worker killed halfway through its result leaves in the result pipe: a header
    # announcing 1,000 bytes, then 10 of them
    os.write(pool._result_queue._writer.fileno(), struct.pack("!i", 1000) + b"x" * 10)
    time.sleep(0.5)
    _abort_pool(pool)
    print("aborted", flush=True)
"""


def test_abort_lets_the_process_exit_after_a_worker_died_mid_result(tmp_path):
    script = tmp_path / "partial_result.py"
    script.write_text(PARTIAL_RESULT_SCRIPT)
    # a hang raises TimeoutExpired (the child is killed)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "aborted" in proc.stdout
