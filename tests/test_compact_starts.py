"""``ArylConfig.compact_starts``: a start whose base fits one server, finding no training
server with that much room, takes extra workers back on one server instead of starting
split (baselines/compact_start.py)."""

from __future__ import annotations

import numpy as np
import pytest
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation
from aryl_gym.sim.engine import Engine
from tests.conftest import make_jobs


def _round_after_setup(policy: ArylPolicy, rows: list[dict], setup: Allocation):
    """An engine of 3 training servers with ``setup`` applied at the first round, stopped
    at the next round (the arrival of the last job)."""
    sc = ScenarioConfig(
        name="compact",
        cluster=ClusterConfig(training_servers=3, inference_servers=0, gpus_per_server=8),
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


def test_no_donor_is_shrunk_when_a_server_has_room():
    rows = ROWS[:2] + ROWS[3:]
    setup = Allocation({0: 7, 1: 2}, placement={0: {0: 7}, 1: {1: 2}})
    policy = ArylPolicy(ArylConfig(compact_starts=True))
    e = _round_after_setup(policy, rows, setup)
    alloc = policy.allocate(e.view)
    assert 0 not in alloc.gpus  # server 1 has room for the start: nothing taken back
    e.decide_allocation(alloc)
    assert len(e.view.job(2).placement) == 1
