"""End-to-end runs through the public entry points: determinism, CLI, summary keys."""

from __future__ import annotations

import json

import pytest
from aryl_gym.baselines import make_policy, policy_specs

from aryl_gym.cli import main
from aryl_gym.scenarios import SCENARIOS, build_workload, get_scenario
from aryl_gym.sim.metrics import SUMMARY_KEYS
from aryl_gym.simulate import run_policy

REQUIRED_JSON_KEYS = [
    "jobs_total",
    "jobs_finished",
    "avg_jct_s",
    "p50_jct_s",
    "p95_jct_s",
    "p99_jct_s",
    "avg_queue_s",
    "p95_queue_s",
    "makespan_s",
    "preemptions",
    "resizes",
    "lost_gpu_hours",
    "usage_training",
    "usage_lent",
    "usage_overall",
    "avg_lent_servers",
    "reclaim_events",
    "sim_events",
    "wall_s",
]


def test_summary_declares_required_keys():
    assert set(REQUIRED_JSON_KEYS) <= set(SUMMARY_KEYS)


@pytest.mark.parametrize("policy", ["fifo-noloan", "sjf-noloan"])
def test_tiny_runs_to_completion_with_invariants(policy):
    r = run_policy(get_scenario("tiny"), make_policy(policy), seed=3, check_invariants=True)
    s = r.summary
    assert s["jobs_total"] > 20
    assert s["jobs_finished"] == s["jobs_total"]
    assert s["preemptions"] == 0 and s["resizes"] == 0  # no loaning, no elasticity
    assert s["avg_lent_servers"] == 0 and s["usage_lent"] == 0
    assert 0 < s["usage_training"] <= 1
    assert s["avg_queue_s"] >= 0


def test_same_seed_same_per_job_results_and_different_seed_differs():
    sc = get_scenario("tiny")
    a = run_policy(sc, make_policy("sjf-noloan"), seed=7).job_records()
    b = run_policy(sc, make_policy("sjf-noloan"), seed=7).job_records()
    c = run_policy(sc, make_policy("sjf-noloan"), seed=8).job_records()
    assert a.equals(b)
    assert not (len(a) == len(c) and a["finish"].equals(c["finish"]))


def test_sjf_beats_fifo_on_queueing_in_small():
    sc = get_scenario("small")
    fifo = run_policy(sc, make_policy("fifo-noloan"), seed=0).summary
    sjf = run_policy(sc, make_policy("sjf-noloan"), seed=0).summary
    assert sjf["avg_queue_s"] < fifo["avg_queue_s"]


def test_cli_simulate_writes_json(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert (
        main(
            [
                "simulate",
                "--scenario",
                "small",
                "--policy",
                "fifo-noloan",
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    for k in REQUIRED_JSON_KEYS:
        assert k in data, k
    assert data["jobs_finished"] == data["jobs_total"] > 0
    assert "avg_jct_s" in capsys.readouterr().out


def test_cli_lists_and_errors(capsys):
    assert main(["scenarios"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in SCENARIOS)
    assert main(["policies"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in policy_specs())
    assert main(["simulate", "--scenario", "nope", "--quiet"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err


def test_cli_trace_file(tmp_path):
    out = tmp_path / "t.json"
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "traces" / "example.csv"
    assert main(["simulate", "--scenario", "small", "--policy", "sjf-noloan", "--trace", str(example),
                 "--json", str(out), "--quiet"]) == 0  # fmt: skip
    data = json.loads(out.read_text())
    jobs, _ = build_workload(get_scenario("small", trace=str(example)), 0)
    assert data["jobs_total"] == len(jobs) == data["jobs_finished"]
