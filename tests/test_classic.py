"""Tiresias (2D-LAS) and AFS (marginal-gain elastic) baselines: hand-made cases on the
2-server cluster (1 training server of 8 GPUs; linear scaling, so times work out on
paper), plus full runs on tiny/small with invariants checked, and determinism."""

from __future__ import annotations

import pytest
from aryl_gym.baselines import make_policy
from aryl_gym.baselines.classic import Afs, Tiresias, attained_service

from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.engine import Engine
from aryl_gym.sim.job import QUEUED, RUNNING
from aryl_gym.simulate import run_policy
from tests.conftest import make_jobs, run_engine, two_server_scenario


def _engine(scenario, jobs, policy) -> Engine:
    return Engine(scenario, jobs, (([0.0]), ([scenario.cluster.inference_servers])),
                  uses_loaning=policy.uses_loaning, periodic_rounds=policy.periodic_rounds,
                  elastic_scaling=policy.elastic_scaling, rules=policy.rules, check_invariants=True)  # fmt: skip


def _run_until(e: Engine, policy, t_stop: float) -> None:
    """Drive ``e`` with ``policy`` through every decision point at or before ``t_stop`` and
    stop before processing any later event (so the state is the one at ``t_stop``)."""
    while True:
        point = e._waiting
        if point is None:
            t_next = e._next_event_time()
            if t_next is None or t_next > t_stop:
                return
            point = e.advance()
            if point is None:
                return
        e.decide_allocation(policy.allocate(point.view))


# ------------------------------------------------------------------------------ Tiresias
def test_attained_service_counts_the_current_allocation():
    jobs = make_jobs([dict(submit=0, gpus=4, duration=1000)])
    pol = Tiresias()
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 0.0)
    job = e.jobs[0]
    assert job.n_gpus == 4 and job.gpu_seconds == 0.0
    assert attained_service(job, 100.0) == pytest.approx(400.0)


def test_tiresias_preempts_long_job_for_new_arrival_and_resumes_it():
    # A (8 GPUs, long) passes 3250 GPU-s at ~406 s (Q1) and may be preempted once it ran
    # a checkpoint interval (1800 s). B (8 GPUs, Q0) arrives at 3000: A is preempted
    # (losing the 1200 s since its checkpoint), B runs 3000..3600, A restarts at 3600.
    jobs = make_jobs(
        [dict(submit=0, gpus=8, duration=20000), dict(submit=3000, gpus=8, duration=600)]
    )
    e = run_engine(two_server_scenario(), jobs, Tiresias())
    a, b = e.jobs
    assert b.first_start == pytest.approx(3000.0) and b.finish == pytest.approx(3600.0)
    assert b.preemptions == 0 and b.queue_time == 0.0
    assert a.preemptions == 1
    assert a.queue_time == pytest.approx(600.0)
    assert a.lost_gpu_seconds == pytest.approx(8 * 1200.0)
    # 20000 s of work + 1200 s redone + 60 s restart, shifted by B's 600 s
    assert a.finish == pytest.approx(20000 + 1200 + 60 + 600)


def test_tiresias_never_preempts_a_recent_job():
    # Same as above but B arrives at 1000, before A ran a checkpoint interval: B waits
    # until A becomes preemptible at 1800 (a periodic round, every 60 s).
    jobs = make_jobs(
        [dict(submit=0, gpus=8, duration=20000), dict(submit=1000, gpus=8, duration=600)]
    )
    e = run_engine(two_server_scenario(), jobs, Tiresias())
    a, b = e.jobs
    assert b.first_start == pytest.approx(1800.0)
    assert a.preemptions == 1 and a.lost_gpu_seconds == pytest.approx(0.0)


def test_tiresias_preempts_only_when_the_waiting_job_can_start():
    # A (4 GPUs, long) is a Q1 victim from 1800. D (4 GPUs) starts at 2500 in the free half
    # and stays in Q0 / not preemptible until 2500 + 1800. B (8 GPUs) arrives at 2600: A's
    # 4 GPUs alone cannot start it, so nothing is preempted until D is preemptible too;
    # then both go and B starts at the first round from 4300 on.
    jobs = make_jobs([
        dict(submit=0, gpus=4, duration=50000),
        dict(submit=2500, gpus=4, duration=20000),
        dict(submit=2600, gpus=8, duration=300),
    ])  # fmt: skip
    pol = Tiresias()
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 4299.0)
    a, d, b = e.jobs
    assert a.preemptions == 0 and d.preemptions == 0 and b.n_gpus == 0
    _run_until(e, pol, 4360.0)
    assert a.preemptions == 1 and d.preemptions == 1
    assert 4300.0 <= b.first_start <= 4360.0


def test_tiresias_fifo_within_a_queue():
    # R holds the server until 1000 (not yet preemptible). X, Y, Z wait in Q0; they run in
    # submit order although Z is the shortest and Y shorter than X.
    jobs = make_jobs([
        dict(submit=0, gpus=8, duration=1000),
        dict(submit=10, gpus=8, duration=300),
        dict(submit=20, gpus=8, duration=200),
        dict(submit=30, gpus=8, duration=100),
    ])  # fmt: skip
    e = run_engine(two_server_scenario(), jobs, Tiresias())
    r, x, y, z = e.jobs
    assert x.first_start == pytest.approx(1000.0)
    assert y.first_start == pytest.approx(1300.0)
    assert z.first_start == pytest.approx(1500.0)
    assert sum(j.preemptions for j in e.jobs) == 0


def _starvation_case(knob):
    # A (8 GPUs, very long) is preempted at 2000 by B (8 GPUs, long). Both end up in Q1 and
    # Q1 jobs never preempt each other, so without promotion A waits until B finishes.
    # With knob 2, A (ran 2000 s) is promoted to Q0 after waiting 2 x 2000 s, at 6000 (a
    # round: they come every 60 s), and preempts B, preemptible since 2000 + 1800.
    jobs = make_jobs(
        [dict(submit=0, gpus=8, duration=100000), dict(submit=2000, gpus=8, duration=50000)]
    )
    pol = Tiresias(promote_knob=knob)
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 5999.0)
    a, b = e.jobs
    assert a.state == QUEUED and b.state == RUNNING and a.preemptions == 1 and pol.promotions == 0
    _run_until(e, pol, 6000.0)
    return e, pol


def test_tiresias_starvation_promotion():
    e, pol = _starvation_case(2.0)
    a, b = e.jobs
    assert pol.promotions == 1
    assert a.state == RUNNING and b.state == QUEUED and b.preemptions == 1
    assert a.queue_time == pytest.approx(4000.0)
    assert pol.queue_of(a, 6000.0) == 0 and pol.queue_of(b, 6000.0) == 1


def test_tiresias_no_promotion_without_knob():
    e, pol = _starvation_case(None)
    a, b = e.jobs
    assert pol.promotions == 0 and a.state == QUEUED and b.state == RUNNING
    _run_until(e, pol, float("inf"))
    assert b.preemptions == 0
    assert a.queue_time == pytest.approx(b.finish - 2000.0)  # waited for all of B


# ------------------------------------------------------------------------------ AFS
def test_afs_extra_gpus_go_to_the_larger_marginal_gain():
    # Both elastic on 1..8 GPUs, linear scaling: the extra GPU's throughput gain is the
    # same, so the AFS value gain / remaining work favours the shorter job B. Both get
    # their base of 1; B takes the 6 free GPUs.
    jobs = make_jobs([
        dict(submit=0, gpus=1, duration=80000, elastic=True, min=1, max=8),
        dict(submit=0, gpus=1, duration=8000, elastic=True, min=1, max=8),
    ])  # fmt: skip
    pol = Afs()
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 0.0)
    a, b = e.jobs
    assert (a.n_gpus, b.n_gpus) == (1, 7)
    assert a.resizes == 0 and b.resizes == 0  # started at their sizes, no resize


def test_afs_equal_values_share_the_extras():
    # same sub-linear profile and remaining work: marginal gains fall with n, so the GPUs
    # are handed out alternately
    jobs = make_jobs([
        dict(submit=0, gpus=1, duration=8000, elastic=True, min=1, max=8, profile="bert"),
        dict(submit=0, gpus=1, duration=8000, elastic=True, min=1, max=8, profile="bert"),
    ])  # fmt: skip
    pol = Afs()
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 0.0)
    a, b = e.jobs
    assert a.n_gpus + b.n_gpus == 8 and abs(a.n_gpus - b.n_gpus) <= 1


def test_afs_better_scaling_job_gets_more():
    # equal remaining work; imagenet scales almost linearly, ncf poorly
    jobs = make_jobs([
        dict(submit=0, gpus=1, duration=8000, elastic=True, min=1, max=8, profile="ncf"),
        dict(submit=0, gpus=1, duration=8000, elastic=True, min=1, max=8, profile="imagenet"),
    ])  # fmt: skip
    pol = Afs()
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 0.0)
    a, b = e.jobs
    assert a.n_gpus + b.n_gpus == 8 and b.n_gpus > a.n_gpus
    # the greedy's split maximises the summed values (concave gains: greedy is exact)
    r = [a.est_remaining_work(0.0), b.est_remaining_work(0.0)]

    def total(j, n, rr):
        return sum(Afs.value(j, k, rr) for k in range(1, n))

    best = max(total(a, k, r[0]) + total(b, 8 - k, r[1]) for k in range(1, 8))
    assert total(a, a.n_gpus, r[0]) + total(b, b.n_gpus, r[1]) == pytest.approx(best)


def _guard_case(b_duration: float):
    # A: elastic 2..8, 1000 s at 2 GPUs. B: inelastic 6 GPUs, finishes at b_duration and
    # frees 6 GPUs. Growing A to 8 then saves 0.75 x its remaining time.
    jobs = make_jobs([
        dict(submit=0, gpus=2, duration=1000, elastic=True, min=2, max=8),
        dict(submit=0, gpus=6, duration=b_duration),
    ])  # fmt: skip
    return run_engine(two_server_scenario(scale_overhead_s=30.0), jobs, Afs())


def test_afs_never_resizes_for_a_gain_below_the_overhead():
    # at 980 A has 20 s left: growing saves 15 s < 30 s overhead -> no resize
    a, _ = _guard_case(980.0).jobs
    assert a.resizes == 0 and a.finish == pytest.approx(1000.0)
    # at 500 A has 500 s left: growing to 8 saves 375 s > 30 s -> it grows once
    a, _ = _guard_case(500.0).jobs
    assert a.resizes == 1
    assert a.finish == pytest.approx(500 + 30 + 500 * 2 / 8)


def test_afs_base_demand_takes_extras_back_and_never_preempts():
    # A (elastic 1..8) fills the server with extras; C (inelastic 4) arrives and gets its
    # base from A's extras: A shrinks to 4, nobody is preempted.
    jobs = make_jobs([
        dict(submit=0, gpus=1, duration=40000, elastic=True, min=1, max=8),
        dict(submit=100, gpus=4, duration=1000),
    ])  # fmt: skip
    pol = Afs()
    e = _engine(two_server_scenario(), jobs, pol)
    _run_until(e, pol, 0.0)
    assert e.jobs[0].n_gpus == 8
    _run_until(e, pol, 100.0)
    a, c = e.jobs
    assert c.n_gpus == 4 and a.n_gpus == 4 and a.preemptions == 0


# ------------------------------------------------------------------------------ full runs
@pytest.mark.parametrize("scenario", ["tiny", "small"])
@pytest.mark.parametrize("name", ["tiresias", "afs"])
def test_finishes_every_job_with_invariants(name, scenario):
    r = run_policy(get_scenario(scenario), make_policy(name), seed=1, check_invariants=True)
    s = r.summary
    assert s["jobs_total"] > 0 and s["jobs_finished"] == s["jobs_total"]
    assert s["usage_lent"] == 0.0  # training pool only
    if name == "afs":
        assert s["preemptions"] == 0


@pytest.mark.parametrize("name", ["tiresias", "afs"])
def test_deterministic(name):
    sc = get_scenario("tiny")
    r1 = run_policy(sc, make_policy(name), seed=5)
    r2 = run_policy(sc, make_policy(name), seed=5)
    assert r1.job_records().equals(r2.job_records())
    # a reset policy object reproduces it too
    pol = make_policy(name)
    run_policy(sc, pol, seed=2)
    assert run_policy(sc, pol, seed=5).job_records().equals(r1.job_records())


def test_registered_with_descriptions():
    from aryl_gym.baselines import policy_specs

    specs = policy_specs()
    for name, cls in (("tiresias", Tiresias), ("afs", Afs)):
        assert specs[name].description == cls.description and cls.description
        assert not cls.uses_loaning
    assert Tiresias.periodic_rounds and not Tiresias.elastic_scaling
    assert Afs.elastic_scaling


def test_bad_parameters():
    with pytest.raises(ValueError):
        Tiresias(thresholds=(7200.0, 3250.0))
    with pytest.raises(ValueError):
        Tiresias(promote_knob=0.0)
    with pytest.raises(ValueError):
        Afs(resize_guard=-1.0)
