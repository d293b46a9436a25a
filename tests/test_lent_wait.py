"""The wait floor of Aryl's lent-start verdict (``ArylConfig.lent_wait_at_least_waited``,
ski rental) and the bookkeeping that keeps step 1's group skip exact with it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from aryl_gym.baselines import aryl as aryl_module
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy
from aryl_gym.baselines.overdue import OverdueWatch

from aryl_gym.scenarios import get_scenario
from aryl_gym.simulate import run_policy
from tests.conftest import make_jobs, run_engine, two_server_scenario


def _stuck_short_jobs(floor: bool):
    """One training server: job R holds 4 GPUs for a day, and twenty 2-GPU jobs of 500 s
    (a model too large for the lent GPUs) hold the other 4 two at a time, one finishing
    every 250 s until t=5,250; a lent server at 0.4x. Job K (1 GPU, 1,000 s) waits from
    t=2; job J (1 GPU, 900 s) arrives at t=1,740. The running jobs' releases always
    promise training GPUs within 250 s, so the verdict alone keeps both waiting until
    the 2-GPU jobs are done."""
    sc = two_server_scenario(round_interval_s=60.0)
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    big = dict(gpus=2, profile="imagenet-big")
    rows = [
        dict(submit=0.0, gpus=4, duration=86400.0, profile="imagenet-big"),  # R
        dict(submit=0.0, duration=250.0, **big),
        dict(submit=0.0, duration=500.0, **big),
    ]
    rows += [dict(submit=1.0, duration=500.0, **big) for _ in range(20)]
    rows += [
        dict(submit=2.0, gpus=1, duration=1000.0),  # K
        dict(submit=1740.0, gpus=1, duration=900.0),  # J
    ]
    policy = ArylPolicy(ArylConfig(elastic=False, lent_wait_at_least_waited=floor))
    demand = (np.array([0.0]), np.array([0]))  # the inference server is lent throughout
    e = run_engine(sc, make_jobs(rows), policy, demand)
    return e.view.job(23), e.view.job(24)


def test_a_job_that_waited_longer_than_lent_gpus_cost_starts_on_them(monkeypatch):
    """Ski rental: K has waited 1,738 s at the round of t=1,740, more than the 1,500 s that
    lent GPUs at 0.4x add to its 1,000 s run, so it starts there and finishes at 4,240 s
    instead of 6,250 s. J, just arrived, is judged first (shorter) and keeps waiting: the
    group skip that follows its verdict must not skip K (OverdueWatch)."""
    k, j = _stuck_short_jobs(floor=True)
    assert k.first_start == pytest.approx(1740.0)
    assert k.finish == pytest.approx(1740.0 + 1000.0 / 0.4)
    assert j.first_start > 1740.0
    k0, _ = _stuck_short_jobs(floor=False)
    assert k0.first_start == pytest.approx(5250.0)  # after the last 2-GPU job, on training
    assert k0.finish == pytest.approx(6250.0)
    # skipping the group after J's verdict regardless of overdue jobs would skip K
    monkeypatch.setattr(OverdueWatch, "counts", lambda *a, **k: {})
    assert _stuck_short_jobs(floor=True)[0].first_start > 1740.0


def _overdue_by_scan(view, base, c):
    """The overdue counts of OverdueWatch by a scan of the whole queue."""
    out: dict[int, int] = {}
    for job in view.queued.values():
        b = base(job)
        run = job.est_remaining_work(view.now) / float(job.speedup[b])
        due = job.queued_since + c * run * (1.0 - 1e-9) - 1e-6
        if due <= view.now and view.base_may_use_lent(job):
            out[b] = out.get(b, 0) + 1
    return out


def test_overdue_watch_equals_a_scan_of_the_queue(monkeypatch):
    """At every round of a loaded run where Aryl asks, the incremental counts equal a scan
    of the whole queue (jobs that started, came back after a preemption or just arrived)."""
    calls = []
    counts = OverdueWatch.counts

    def checked(self, view, base, c):
        got = counts(self, view, base, c)
        assert got == _overdue_by_scan(view, base, c), view.now
        calls.append(sum(got.values()))
        return got

    monkeypatch.setattr(OverdueWatch, "counts", checked)
    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    policy = ArylPolicy(ArylConfig(elastic=False, lent_wait_at_least_waited=True))
    run_policy(sc, policy, 0)
    assert len(calls) > 100 and max(calls) > 0  # asked often, and overdue jobs were found


@pytest.mark.parametrize("elastic", [False, True])
def test_the_group_skip_changes_no_decision_with_the_wait_floor(monkeypatch, elastic):
    """Step 1 skips a group once a job of it waits for training GPUs (``late_on_lent``);
    with the wait floor it must still walk groups that hold overdue jobs. The same run
    without the skip (no threshold ever) makes the same decisions; skipping regardless of
    overdue jobs does not (so this scenario exercises the exception)."""
    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    cfg = ArylConfig(elastic=elastic, lent_wait_at_least_waited=True)

    def summary() -> dict:
        s = dict(run_policy(sc, ArylPolicy(cfg), 0).summary)
        s.pop("wall_s", None)
        return s

    with_skip = summary()
    with monkeypatch.context() as m:
        m.setattr(aryl_module, "late_on_lent", lambda *a, **k: None)
        assert summary() == with_skip
    with monkeypatch.context() as m:
        m.setattr(OverdueWatch, "counts", lambda *a, **k: {})
        assert summary() != with_skip
