"""Run records: the event log (aryl_gym/sim/events.py), ``simulate --events-csv /
--timeseries-csv`` and ``benchmark --keep``. The rows must reconcile with the summary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from aryl_gym.baselines import make_policy

from aryl_gym.cli import main
from aryl_gym.policy import Allocation, PlacementRules
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.events import COLUMNS, KINDS, EventLog
from aryl_gym.simulate import RECORD_KINDS, run_policy
from tests.conftest import ScriptedPolicy, make_jobs, run_engine, two_server_scenario

SERIES_COLUMNS = [
    "t",
    "busy_training",
    "busy_lent",
    "lent_servers",
    "needed",
    "queued",
    "running",
]


def check_reconciles(ev: pd.DataFrame, summary: dict, end_time: float) -> None:
    """Every count the event log implies equals the summary's (a scenario without window)."""
    kinds = ev["kind"].value_counts()
    assert set(kinds.index) <= set(KINDS)
    assert kinds.get("preempt", 0) == summary["preemptions"]
    assert kinds.get("resize", 0) == summary["resizes"]
    assert kinds.get("reclaim", 0) == summary["reclaimed_servers"]
    assert kinds.get("finish", 0) == summary["jobs_finished"]
    assert ev["time_s"].is_monotonic_increasing
    servers = ev[ev["kind"].isin(["lend", "reclaim"])]
    assert (servers["job_id"] == "").all() and servers["server"].notna().all()
    jobs = ev[ev["job_id"] != ""]
    # each job row starts where the job's previous row ended, and its placement sums up
    gpu_s = 0.0
    for _, rows in jobs.groupby("job_id", sort=False):
        before = rows["gpus_before"].to_numpy()
        after = rows["gpus_after"].to_numpy()
        assert before[0] == 0 and (before[1:] == after[:-1]).all()
        placed = [sum(int(p.split(":")[1]) for p in text.split()) for text in rows["placement"]]
        assert placed == list(after)
        t = rows["time_s"].to_numpy()
        gpu_s += float(np.sum(after * (np.append(t[1:], end_time) - t)))
    assert gpu_s / 3600.0 == pytest.approx(summary["gpu_hours"], rel=1e-9)


# (policy, seed on tiny): resizes and reclaims; preemptions by reclaims; by the policy
@pytest.mark.parametrize(
    ("policy", "seed", "expect"),
    [
        ("aryl", 0, ("resize", "reclaim", "lend")),
        ("aryl-loan-only", 3, ("preempt", "reclaim")),
        ("tiresias", 0, ("preempt",)),
    ],
)
def test_event_log_reconciles_with_summary(policy, seed, expect):
    sc = get_scenario("tiny")
    assert sc.window is None  # the summary counts every job: the counts must match
    r = run_policy(sc, make_policy(policy), seed=seed, record_events=True, check_invariants=True)
    ev = r.events()
    assert list(ev.columns) == list(COLUMNS)
    for kind in expect:  # the case exercises what it is here for
        assert (ev["kind"] == kind).any(), kind
    check_reconciles(ev, r.summary, r.engine.t)
    by_reclaim = ev[(ev["job_id"] != "") & ev["server"].notna()]
    assert (by_reclaim["kind"] == "preempt").sum() == r.engine.reclaim_preemptions
    assert set(by_reclaim["kind"]) <= {"resize", "preempt"}


def test_event_rows_of_a_hand_made_reclaim():
    # A (elastic, min 4) and B (inelastic) each hold 4 GPUs of the lent server 1; at
    # t=100 the inference side needs it back: A scales in, B is preempted, then restarts.
    jobs = make_jobs(
        [
            dict(id="A", submit=0, gpus=8, duration=1000, elastic=True, min=4, max=8),
            dict(id="B", submit=0, gpus=4, duration=1000),
        ]
    )
    first = Allocation({0: 8, 1: 4}, {0: {0: 4, 1: 4}, 1: {1: 4}})
    pol = ScriptedPolicy([first, {1: 4}], uses_loaning=True, reclaim_order=[1])
    pol.rules = PlacementRules(inelastic_on_lent=True)  # B is pinned to the lent server
    log = EventLog()
    demand = (np.array([0.0, 100.0]), np.array([0, 1]))
    e = run_engine(two_server_scenario(), jobs, pol, demand=demand, event_log=log)
    rows = [
        (t, k, j, None if pd.isna(s) else int(s), b, a, p)
        for t, k, j, s, b, a, p in log.to_frame().itertuples(index=False)
    ]
    assert rows[:7] == [
        (0.0, "lend", "", 1, 0, 8, ""),
        (0.0, "start", "A", None, 0, 8, "0:4 1:4"),
        (0.0, "start", "B", None, 0, 4, "1:4"),
        (100.0, "reclaim", "", 1, 8, 0, ""),
        (100.0, "resize", "A", 1, 8, 4, "0:4"),
        (100.0, "preempt", "B", 1, 4, 0, ""),
        (100.0, "start", "B", None, 0, 4, "0:4"),
    ]
    # B restarts after 60 s and redoes all 4000 work (no checkpoint yet): 1160; A had 800 of
    # 8000 done at 100, pauses 30 s, then runs at 4 GPUs: 130 + 7200 / 4 = 1930
    assert [r[:3] for r in rows[7:]] == [(1160.0, "finish", "B"), (1930.0, "finish", "A")]
    check_reconciles(log.to_frame(), e.metrics.summary(), e.t)


def test_recording_changes_nothing_and_is_off_by_default():
    sc, pol = get_scenario("tiny"), "aryl"
    plain = run_policy(sc, make_policy(pol), seed=1)
    logged = run_policy(sc, make_policy(pol), seed=1, record_events=True)
    assert plain.engine.event_log is None
    assert len(logged.engine.event_log) > 0
    a, b = (dict(r.summary, wall_s=0.0) for r in (plain, logged))
    assert a == b
    assert plain.job_records().equals(logged.job_records())
    with pytest.raises(ValueError, match="recorded no events: pass record_events=True"):
        plain.events()
    with pytest.raises(ValueError, match="unknown run record 'event'; known: jobs, timeseries"):
        plain.records("event")


def test_simulate_writes_events_and_timeseries_csv(tmp_path, capsys):
    ev_path, ts_path = tmp_path / "out" / "events.csv", tmp_path / "ts.csv"
    js = tmp_path / "s.json"
    args = ["simulate", "--scenario", "tiny", "--policy", "aryl", "--seed", "0", "--quiet"]
    args += ["--events-csv", str(ev_path), "--timeseries-csv", str(ts_path), "--json", str(js)]
    assert main(args) == 0
    assert f"wrote {ev_path}" in capsys.readouterr().out
    summary = json.loads(js.read_text())
    ev = pd.read_csv(ev_path, keep_default_na=False, dtype={"job_id": str})
    assert list(ev.columns) == list(COLUMNS)
    check_reconciles(ev, summary, summary["sim_time_s"])
    ts = pd.read_csv(ts_path)
    assert list(ts.columns) == SERIES_COLUMNS
    assert np.allclose(np.diff(ts["t"]), 600.0) and ts["t"].iloc[0] == 0.0
    assert ts["t"].iloc[-1] <= summary["sim_time_s"] < ts["t"].iloc[-1] + 600.0
    cl = get_scenario("tiny").cluster
    assert ts["busy_training"].between(0, cl.training_gpus).all()
    # the series' usage integrates (roughly: 10-minute samples) to the summary's
    assert ts["busy_training"].mean() / cl.training_gpus == pytest.approx(
        summary["usage_training"], abs=0.05
    )


def test_benchmark_keep_writes_every_run_record(tmp_path):
    from aryl_gym.experiments.benchmark import record_path, run_benchmark

    policies = ["aryl", "baseline"]
    df = run_benchmark(
        "tiny", policies, [0, 1], tmp_path, workers=1, progress=False, keep=RECORD_KINDS
    )
    assert len(df.attrs["records"]) == len(policies) * 2 * len(RECORD_KINDS)
    for row in df.itertuples():
        ev = pd.read_csv(
            record_path(tmp_path, row.policy, row.seed, "events"),
            keep_default_na=False,
            dtype={"job_id": str},
        )
        check_reconciles(ev, row._asdict(), row.sim_time_s)
        jobs = pd.read_csv(record_path(tmp_path, row.policy, row.seed, "jobs"))
        assert len(jobs) == row.jobs_total and jobs["preemptions"].sum() == row.preemptions
        ts = pd.read_csv(record_path(tmp_path, row.policy, row.seed, "timeseries"))
        assert list(ts.columns) == SERIES_COLUMNS
    assert record_path(tmp_path, "pkg.mod:Cls", 3, "jobs").name == "pkg.mod_Cls_seed3_jobs.csv"


def test_benchmark_keep_rejects_unknown_kinds_and_colliding_names(tmp_path):
    from aryl_gym.experiments.benchmark import run_benchmark

    with pytest.raises(ValueError, match="unknown run record 'series'; known: jobs, timeseries"):
        run_benchmark("tiny", ["aryl"], [0], tmp_path, keep=["jobs", "series"])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results.csv").exists()
    rc = main(
        ["benchmark", "--scenario", "tiny", "--policies", "aryl", "--seeds", "1"]
        + ["--out", str(tmp_path), "--quiet", "--keep", "jobs,bogus"]
    )
    assert rc == 2
    factories = {"my:pol": lambda: make_policy("aryl"), "my pol": lambda: make_policy("aryl")}
    with pytest.raises(ValueError, match="'my:pol' and 'my pol' would write their run records"):
        run_benchmark(
            "tiny", list(factories), [0], tmp_path, policy_factories=factories, keep=["jobs"]
        )


def test_empty_event_log_has_the_columns():
    df = EventLog().to_frame()
    assert list(df.columns) == list(COLUMNS) and len(df) == 0
    assert str(df["server"].dtype) == "Int64" and str(df["gpus_after"].dtype) == "int64"


def test_placement_text_round_trips():
    from aryl_gym.sim.events import _placement_text, placement_from_text

    for placement in ({}, {3: 1}, {9: 4, 0: 8, 700: 2}):
        assert placement_from_text(_placement_text(placement)) == placement
    assert placement_from_text(float("nan")) == {}
