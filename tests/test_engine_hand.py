"""Hand-computed cases on a 2-server cluster (1 training + 1 inference server, 8 GPUs each),
linear scaling profile, so every finish time can be worked out on paper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aryl_gym.sim.engine import InvalidDecision
from tests.conftest import ScriptedPolicy, make_jobs, run_engine, two_server_scenario


def finish(e, i):
    return e.jobs[i].finish


def test_fifo_two_jobs_exact_times():
    # A holds all 8 GPUs for 100 s; B waits for it, then runs 50 s.
    jobs = make_jobs([dict(submit=0, gpus=8, duration=100), dict(submit=10, gpus=4, duration=50)])
    pol = ScriptedPolicy([{0: 8}, {}, {1: 4}])  # rounds at t=0, 10, 100
    e = run_engine(two_server_scenario(), jobs, pol)
    assert pol.times == [0.0, 10.0, 100.0]
    assert finish(e, 0) == pytest.approx(100.0)
    assert finish(e, 1) == pytest.approx(150.0)
    assert e.jobs[1].queue_time == pytest.approx(90.0)
    s = e.metrics.summary()
    assert s["jobs_finished"] == 2 and s["avg_jct_s"] == pytest.approx((100 + 140) / 2)
    # training pool: 8 GPUs busy for 100 s, then 4 for 50 s, over a 150 s span
    assert s["usage_training"] == pytest.approx((800 + 200) / (8 * 150))


def test_resize_pays_overhead_then_runs_faster():
    # Elastic A (4 GPUs requested, work 4*100=400) starts on 4; at t=20 it grows to 8:
    # progress 80, pause 30 s until 50, then 320 work at rate 8 -> finishes at 90.
    jobs = make_jobs(
        [
            dict(submit=0, gpus=4, duration=100, elastic=True, min=2, max=8),
            dict(submit=20, gpus=1, duration=1000),  # only there to trigger a round at t=20
        ]
    )
    pol = ScriptedPolicy([{0: 4}, {0: 8}])
    e = run_engine(two_server_scenario(scale_overhead_s=30.0), jobs, pol)
    a = e.jobs[0]
    assert a.resizes == 1
    assert a.finish == pytest.approx(90.0)
    assert a.gpu_seconds == pytest.approx(4 * 20 + 8 * 70)


def test_preemption_loses_work_since_checkpoint_and_pays_restart():
    # A (8 GPUs, work 1600) runs from 0; at t=120 it is preempted for B. Checkpoints every
    # 50 s -> the last one at 100: 20 s x 8 = 160 work lost, progress 960 -> 800.
    # B runs 120..130. A restarts at 130, pays 60 s, then 800 work at rate 8 -> 290.
    jobs = make_jobs([dict(submit=0, gpus=8, duration=200), dict(submit=120, gpus=8, duration=10)])
    pol = ScriptedPolicy([{0: 8}, {0: 0, 1: 8}, {0: 8}])
    e = run_engine(
        two_server_scenario(checkpoint_interval_s=50.0, restart_overhead_s=60.0), jobs, pol
    )
    a, b = e.jobs
    assert b.finish == pytest.approx(130.0)
    assert a.finish == pytest.approx(290.0)
    assert a.preemptions == 1
    assert a.lost_gpu_seconds == pytest.approx(160.0)
    assert a.queue_time == pytest.approx(10.0)
    # work conservation: GPU-seconds used = useful work + lost work (linear profile, speed 1)
    assert a.gpu_seconds == pytest.approx(120 * 8 + 160 * 8)
    assert a.gpu_seconds - a.lost_gpu_seconds - 60 * 8 == pytest.approx(a.work)


def test_reclaim_scales_elastic_job_in():
    # A elastic (8 requested, [4, 16], work 3200) runs on 16 GPUs (8 training + 8 lent) from 0.
    # At t=100 inference needs its server back: A keeps 8 >= min 4, so it is scaled in:
    # progress 1600, pause 30 s, 1600 more at rate 8 -> finishes at 330.
    jobs = make_jobs([dict(submit=0, gpus=8, duration=400, elastic=True, min=4, max=16)])
    demand = (np.array([0.0, 100.0]), np.array([0, 1]))
    pol = ScriptedPolicy([{0: 16}], uses_loaning=True)
    e = run_engine(two_server_scenario(scale_overhead_s=30.0), jobs, pol, demand=demand)
    a = e.jobs[0]
    assert a.preemptions == 0 and a.resizes == 1
    assert a.finish == pytest.approx(330.0)
    s = e.metrics.summary()
    assert s["reclaim_events"] == 1 and s["reclaimed_servers"] == 1
    assert s["avg_lent_servers"] == pytest.approx(100.0 / 330.0)
    assert s["usage_lent"] == pytest.approx(1.0)


def test_reclaim_preempts_job_that_would_drop_below_min():
    # A elastic [12, 16] on 16 GPUs; losing the lent 8 would leave 8 < 12, so it is preempted,
    # and with 12 > 8 training GPUs it waits until the server is lent again at t=200.
    jobs = make_jobs([dict(submit=0, gpus=12, duration=100, elastic=True, min=12, max=16)])
    demand = (np.array([0.0, 50.0, 200.0]), np.array([0, 1, 0]))
    pol = ScriptedPolicy([{0: 16}, {}, {0: 16}], uses_loaning=True)
    e = run_engine(
        two_server_scenario(checkpoint_interval_s=1800.0, restart_overhead_s=60.0),
        jobs,
        pol,
        demand=demand,
    )
    a = e.jobs[0]
    assert a.preemptions == 1
    # work 1200; at 50 progress 800 all lost (no checkpoint yet); restart at 200 + 60 s pause,
    # 1200 at rate 16 -> 75 s -> 335
    assert a.lost_gpu_seconds == pytest.approx(800.0)
    assert a.finish == pytest.approx(335.0)


def test_invalid_allocations_are_rejected_with_reasons():
    jobs = make_jobs(
        [
            dict(submit=0, gpus=4, duration=10),
            dict(submit=0, gpus=2, duration=10, elastic=True, min=1, max=6),
        ]
    )
    for bad, msg in [({0: 3}, "outside its allowed 4"), ({1: 7}, r"outside its allowed \[1, 6\]"),
                     ({7: 1}, "job index 7"), ({0: 4, 1: 6}, "no room")]:  # fmt: skip
        pol = ScriptedPolicy([bad])
        with pytest.raises(InvalidDecision, match=msg):
            run_engine(two_server_scenario(), jobs, pol)


def test_job_too_large_for_cluster_is_a_clear_error():
    jobs = make_jobs([dict(submit=0, gpus=16, duration=10)])
    with pytest.raises(ValueError, match="needs 16 GPUs but the training pool .* has only 8"):
        run_engine(two_server_scenario(), jobs, ScriptedPolicy([]))


def test_stalled_policy_ends_with_unfinished_jobs():
    jobs = make_jobs([dict(submit=0, gpus=1, duration=10)])
    e = run_engine(two_server_scenario(), jobs, ScriptedPolicy([]))
    s = e.metrics.summary()
    assert s["jobs_unfinished"] == 1 and s["stalled"] is True and math.isnan(s["avg_jct_s"])


def test_job_speedups_mirror_the_speedup_table():
    # Job.speedups (what the placer reads) holds float(speedup[n]) for every n, one list
    # per profile shared by its jobs
    rows = [dict(submit=0, gpus=2, duration=100), dict(submit=0, gpus=4, duration=50)]
    e = run_engine(two_server_scenario(), make_jobs(rows), ScriptedPolicy([{0: 2, 1: 4}]))
    a, b = e.jobs[0], e.jobs[1]
    assert a.speedups == [float(x) for x in a.speedup]
    assert all(type(x) is float for x in a.speedups)
    assert a.speedups is b.speedups
