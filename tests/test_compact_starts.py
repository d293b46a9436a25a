"""``ArylConfig.compact_starts``: a start whose base fits one server, finding no training
server with that much room, takes extra workers back on one server instead of starting
split (baselines/compact_start.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, InvalidDecision, PlacementRules
from aryl_gym.sim.engine import Engine
from tests.conftest import make_jobs, two_server_scenario


def _round_after_setup(
    policy: ArylPolicy, rows: list[dict], setup: Allocation, servers: int = 3
) -> Engine:
    """An engine of ``servers`` training servers with ``setup`` applied at the first round, stopped
    at the next round (the arrival of the last job)."""
    sc = ScenarioConfig(
        name="compact",
        cluster=ClusterConfig(training_servers=servers, inference_servers=0, gpus_per_server=8),
        dynamics=DynamicsConfig(round_interval_s=60.0),
    )
    demand = (np.array([0.0]), np.array([0]))
    e = Engine(sc, make_jobs(rows), demand, seed=0, uses_loaning=False, rules=policy.rules)
    assert e.advance().kind == "allocate"
    e.decide_allocation(setup)
    point = e.advance()
    assert point is not None and point.kind == "allocate" and e.view.queued
    policy.reset(e.view, seed=0)
    return e


# servers 0-2 each hold one elastic job (base 2) grown to 7 GPUs: 3 GPUs free in all, one
# per server; a 4-GPU inelastic job arrives
ROWS = [
    dict(submit=0.0, gpus=4, duration=1e6, elastic=True, min=2, max=7),
    dict(submit=0.0, gpus=4, duration=2e6, elastic=True, min=2, max=7),
    dict(submit=0.0, gpus=4, duration=3e6, elastic=True, min=2, max=7),
    dict(submit=1.0, gpus=4, duration=1e4),
]
SETUP = Allocation({0: 7, 1: 7, 2: 7}, placement={0: {0: 7}, 1: {1: 7}, 2: {2: 7}})


@pytest.mark.parametrize("compact", [True, False])
def test_a_start_that_fits_one_server_is_not_split(compact):
    policy = ArylPolicy(ArylConfig(compact_starts=compact))
    e = _round_after_setup(policy, ROWS, SETUP)
    alloc = policy.allocate(e.view)
    e.decide_allocation(alloc)
    started = e.view.job(3)
    assert started.n_gpus == 4
    if compact:
        # one donor gave back 3 extra workers on its server, the cheapest: job 0 has the
        # least remaining work, so its extras save the least time per GPU
        assert len(started.placement) == 1
        (s,) = started.placement
        assert s == 0 and e.view.job(0).n_gpus == 4
        assert [e.view.job(i).n_gpus for i in (1, 2)] == [7, 7]
    else:
        # the 3 free GPUs plus one taken back: spread over servers
        assert len(started.placement) > 1


@pytest.mark.parametrize("compact", [True, False])
def test_a_start_of_whole_servers_gets_empty_servers(compact):
    # 4 servers: two elastic jobs (base 2) at 10 GPUs, 8 + 2 each; 12 GPUs free; a
    # 16-GPU job arrives. Shrinking a job removes its workers from the server holding the
    # fewest of them first, so taking 2 workers from each clears servers 1 and 3
    rows = [
        dict(submit=0.0, gpus=8, duration=1e6, elastic=True, min=2, max=16),
        dict(submit=0.0, gpus=8, duration=2e6, elastic=True, min=2, max=16),
        dict(submit=1.0, gpus=16, duration=1e4),
    ]
    setup = Allocation({0: 10, 1: 10}, placement={0: {0: 8, 1: 2}, 1: {2: 8, 3: 2}})
    policy = ArylPolicy(ArylConfig(compact_starts=compact))
    e = _round_after_setup(policy, rows, setup, servers=4)
    e.decide_allocation(policy.allocate(e.view))
    started = e.view.job(2)
    assert started.n_gpus == 16
    if compact:
        assert started.placement == {1: 8, 3: 8}
        assert [e.view.job(i).n_gpus for i in (0, 1)] == [8, 8]
    else:
        assert len(started.placement) > 2


def test_no_donor_is_shrunk_when_a_server_has_room():
    rows = ROWS[:2] + ROWS[3:]
    setup = Allocation({0: 7, 1: 2}, placement={0: {0: 7}, 1: {1: 2}})
    policy = ArylPolicy(ArylConfig(compact_starts=True))
    e = _round_after_setup(policy, rows, setup)
    alloc = policy.allocate(e.view)
    assert 0 not in alloc.gpus  # server 1 has room for the start: nothing taken back
    e.decide_allocation(alloc)
    assert len(e.view.job(2).placement) == 1


# ------------------------------------------------------------------ Allocation.on_training


def _lent_round(pin: bool):
    """One training and one lent server (lent GPUs at 0.4x): elastic job 0 holds 6 GPUs
    of the training server (base 2), job 1 (inelastic, 4 GPUs) waits; the decision shrinks
    job 0 to its base and starts job 1."""
    sc = two_server_scenario(round_interval_s=60.0)
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    rows = [
        dict(submit=0.0, gpus=4, duration=1e6, elastic=True, min=2, max=6),
        dict(submit=1.0, gpus=4, duration=1e4),
    ]
    rules = PlacementRules(
        extra_on_lent_first=True, base_on_lent=True, inelastic_on_lent=True, no_slow_mix=True
    )
    demand = (np.array([0.0]), np.array([0]))
    e = Engine(sc, make_jobs(rows), demand, seed=0, uses_loaning=True, rules=rules)
    assert e.advance().kind == "allocate"
    e.decide_allocation(Allocation({0: 6}, placement={0: {0: 6}}))
    assert e.advance().kind == "allocate" and e.view.lent_servers
    return e, Allocation({0: 2, 1: 4}, on_training=frozenset({1}) if pin else frozenset())


@pytest.mark.parametrize("pin", [False, True])
def test_on_training_keeps_a_start_off_lent_servers(pin):
    e, alloc = _lent_round(pin)
    # decided on the cluster as the round found it (2 training GPUs free), the start's
    # pools are the lent server alone (faster than a mix); pinned, it takes the training
    # GPUs the shrink frees
    assert e.view.can_place(alloc.gpus, on_training=alloc.on_training)
    e.decide_allocation(alloc)
    job = e.view.job(1)
    assert job.n_gpus == 4
    assert (job.lent_gpus == 0) is pin, job.placement


@pytest.mark.parametrize(
    "on_training",
    [frozenset({0}), frozenset({7}), [1]],  # a shrink, an unknown job, not a set
)
def test_on_training_must_name_grows(on_training):
    e, alloc = _lent_round(pin=False)
    with pytest.raises(InvalidDecision, match="on_training"):
        e.decide_allocation(Allocation(alloc.gpus, on_training=on_training))
    assert e.view.job(1).n_gpus == 0  # nothing applied


# ------------------------------------------------------------------ lent_start="if_sooner"


def test_sooner_on_lent_does_not_count_training_gpus_earlier_starts_took():
    """The start-rate what-if answers on the cluster as the round found it: with a free
    training server it is the training rate. When the round's earlier starts took those
    GPUs (``free_t`` 0), the job would start on lent GPUs at 0.4x: for a long job that is
    not sooner than waiting 100 s for training GPUs."""
    import aryl_gym.baselines.aryl as aryl_module

    sc = two_server_scenario(round_interval_s=60.0)
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    rows = [dict(submit=0.0, gpus=8, duration=1e6)]
    rules = PlacementRules(
        extra_on_lent_first=True, base_on_lent=True, inelastic_on_lent=True, no_slow_mix=True
    )
    demand = (np.array([0.0]), np.array([0]))
    e = Engine(sc, make_jobs(rows), demand, seed=0, uses_loaning=True, rules=rules)
    assert e.advance().kind == "allocate"
    view = e.view
    job = view.job(0)
    assert view.free_training_gpus == 8 and view.lent_servers
    assert view.rate_with(job, 8) == pytest.approx(float(job.speedup[8]))  # on training
    waits = ([view.now + 100.0], [8])  # 8 training GPUs free up in 100 s
    sooner = aryl_module.sooner_on_lent
    assert not sooner(view, job, 8, 0, waits, {}, 0.4)
    # as fast as training GPUs, lent GPUs now are sooner than waiting
    assert sooner(view, job, 8, 0, waits, {}, 1.0)
