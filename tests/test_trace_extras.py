"""Extra trace columns: kept on the JobTable, typed when declared, read by policies through
``view.job_extra`` (traces/README.md, Extra columns). Rejections are in test_trace_io.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aryl_gym.baselines import make_policy

from aryl_gym.cli import main
from aryl_gym.policy import Allocation, Policy
from aryl_gym.scenarios import get_scenario, scenario_with_trace
from aryl_gym.simulate import run_policy
from aryl_gym.workload.real_traces import load_any
from aryl_gym.workload.schema import JobTable
from aryl_gym.workload.trace_io import load_trace, save_trace

# four 16-GPU jobs (each fills tiny's training pool), all submitted at 0: the order in
# which they run is the policy's choice alone
TRACE = """job_id,submit_time,gpus,duration,team,priority:int,weight:float,urgent:bool
a,0,16,600,vision,1,0.5,false
b,0,16,600,speech,3,1.0,no
c,0,16,600,,2,2.25,TRUE
d,0,16,600,vision,0,-1,0
"""


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "extras.csv"
    path.write_text(TRACE)
    return path


class PriorityPolicy(Policy):
    """Runs one job at a time, the queued job with the highest ``priority`` first; notes
    what it read."""

    name = "priority"
    uses_loaning = False
    elastic_scaling = False

    def __init__(self) -> None:
        self.read: dict[str, tuple] = {}

    def allocate(self, view) -> Allocation:
        for job in view.queued.values():
            self.read[job.job_id] = tuple(
                view.job_extra(job, c) for c in ("team", "priority", "weight", "urgent")
            )
        if view.running or not view.queued:
            return Allocation()
        best = max(view.queued.values(), key=lambda j: view.job_extra(j, "priority"))
        return Allocation({best.idx: best.gpus})


def test_extra_columns_load_with_their_types(trace):
    jobs = load_trace(trace)
    assert list(jobs.extras) == ["team", "priority", "weight", "urgent"]
    assert jobs.extras["team"].dtype == object
    assert jobs.extras["team"].tolist() == ["vision", "speech", "", "vision"]  # empty kept
    assert jobs.extras["priority"].dtype == np.int64
    assert jobs.extras["priority"].tolist() == [1, 3, 2, 0]
    assert jobs.extras["weight"].tolist() == [0.5, 1.0, 2.25, -1.0]
    assert jobs.extras["urgent"].tolist() == [False, False, True, False]
    assert list(jobs.to_frame().columns[-4:]) == ["team", "priority", "weight", "urgent"]
    # a selection keeps the extras row-aligned
    sub = jobs.select(np.array([3, 1]))
    assert sub.extras["priority"].tolist() == [0, 3] and sub.extras["team"][0] == "vision"


def test_extra_columns_round_trip_declared(trace, tmp_path):
    jobs = load_trace(trace)
    save_trace(jobs, tmp_path / "copy.csv")
    header = (tmp_path / "copy.csv").read_text().splitlines()[0]
    assert header.endswith(",team:str,priority:int,weight:float,urgent:bool")
    again = load_trace(tmp_path / "copy.csv")
    for name, values in jobs.extras.items():
        assert again.extras[name].dtype == values.dtype
        assert again.extras[name].tolist() == values.tolist()


def test_detected_as_the_project_format_and_reported(trace):
    jobs, report = load_any(trace)
    assert report.format == "aryl"
    assert "extra columns kept: team (str), priority (int), weight (float), urgent (bool)" in (
        report.notes
    )
    assert jobs.extras["priority"].tolist() == [1, 3, 2, 0]


def test_a_policy_reads_the_extras(trace):
    sc = scenario_with_trace(get_scenario("tiny"), trace=trace)
    pol = PriorityPolicy()
    r = run_policy(sc, pol, record_events=True)
    assert pol.read == {
        "a": ("vision", 1, 0.5, False),
        "b": ("speech", 3, 1.0, False),
        "c": ("", 2, 2.25, True),
        "d": ("vision", 0, -1.0, False),
    }
    assert all(type(v) is t for v, t in zip(pol.read["c"], (str, int, float, bool), strict=True))
    starts = r.events().query("kind == 'start'")
    assert starts["job_id"].tolist() == ["b", "c", "a", "d"]  # by priority, highest first
    view = r.engine.view
    with pytest.raises(KeyError, match=r"has no extra column 'prio' \(its extra columns: team, "):
        view.job_extra(view.job(0), "prio")


def test_generated_workload_has_no_extras():
    r = run_policy(get_scenario("tiny"), make_policy("baseline"))
    with pytest.raises(KeyError, match=r"no extra column 'priority' \(its extra columns: none\)"):
        r.engine.view.job_extra(r.engine.view.job(0), "priority")


def test_simulate_cli_runs_a_trace_with_extras(trace, tmp_path):
    events = tmp_path / "events.csv"
    args = ["simulate", "--scenario", "tiny", "--trace", str(trace), "--quiet"]
    args += ["--policy", "tests.test_trace_extras:PriorityPolicy", "--events-csv", str(events)]
    assert main(args) == 0
    ev = pd.read_csv(events, keep_default_na=False, dtype={"job_id": str})
    assert ev.query("kind == 'start'")["job_id"].tolist() == ["b", "c", "a", "d"]


def test_from_columns_checks_extras():
    cols = dict(submit_time=[0.0, 1.0], gpus=[1, 1], duration=[1.0, 1.0], source="<t>")
    t = JobTable.from_columns(**cols, extras={"p": [1, 2], "s": ["x", 3], "f": [0.5, 1]})
    assert [t.extras[k].dtype.name for k in "psf"] == ["int64", "object", "float64"]
    assert t.extras["s"].tolist() == ["x", "3"]
    with pytest.raises(ValueError, match="<t>: column 'p' has 3 rows, expected 2"):
        JobTable.from_columns(**cols, extras={"p": [1, 2, 3]})
    with pytest.raises(ValueError, match="<t>: extra column 'gpus' is a format column"):
        JobTable.from_columns(**cols, extras={"gpus": [1, 2]})
