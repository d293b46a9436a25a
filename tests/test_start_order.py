"""A round's starts keep the training GPUs step 1 counted for them: a start that step 2
also grew is placed after the other starts (``baselines/aryl._bases_before_extras``).

The engine places grows in the allocation's order and decides each grow's pools on the
cluster as the round found it. With slow lent GPUs, ``no_slow_mix`` keeps a starting
job's extra workers on training servers (faster than a mix); placed first, they took the
training GPU step 1 counted for a later start, which then ran its whole run on a lent GPU
at 0.4x (seen on aryl-15d: 81 one-GPU jobs of seed 0 ran 2.5x longer than under
elastic scaling alone)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy, _bases_before_extras

from aryl_gym.policy import Allocation
from aryl_gym.sim.engine import Engine
from tests.conftest import make_jobs, two_server_scenario

ROWS = [
    dict(submit=0.0, gpus=4, duration=1e6),  # R: half of the training server
    dict(submit=1.0, gpus=4, duration=1e3, elastic=True, min=2, max=8),  # E: short, first
    dict(submit=1.0, gpus=1, duration=1e4),  # I: inelastic, second in SJF order
]


def _round(lent_speed: float):
    sc = two_server_scenario(round_interval_s=60.0)
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=lent_speed))
    policy = ArylPolicy(ArylConfig())
    demand = (np.array([0.0]), np.array([0]))
    e = Engine(sc, make_jobs(ROWS), demand, seed=0, uses_loaning=True, rules=policy.rules)
    assert e.advance().kind == "allocate"
    e.decide_allocation(Allocation({0: 4}, placement={0: {0: 4}}))
    assert e.advance().kind == "allocate" and set(e.view.queued) == {1, 2}
    assert e.view.lent_servers and e.view.free_training_gpus == 4
    policy.reset(e.view, seed=0)
    return e, policy


def test_a_later_start_keeps_the_training_gpu_step_1_counted_for_it():
    e, policy = _round(lent_speed=0.4)
    alloc = policy.allocate(e.view)
    # step 1: E at its base (2) and I (1) on the 4 free training GPUs; step 2 grows E to
    # 4 with the GPUs left (1 training, 8 lent at 0.4x), which the placer keeps on the
    # training server (faster than a mix): placed after I's start, that grow no longer
    # fits and E starts at its base
    assert list(alloc.gpus) == [2, 1] and alloc.gpus == {2: 1, 1: 2}
    e.decide_allocation(alloc)
    inelastic, elastic = e.view.job(2), e.view.job(1)
    assert inelastic.n_gpus == 1 and inelastic.lent_gpus == 0
    assert inelastic.rate == pytest.approx(1.0)
    assert elastic.n_gpus == 2 and elastic.lent_gpus == 0


def test_in_step_1_order_the_grown_start_takes_the_later_starts_training_gpu(monkeypatch):
    # what the reorder prevents (the same round, allocation left in step 1's order)
    import aryl_gym.baselines.aryl as aryl_module

    monkeypatch.setattr(aryl_module, "_bases_before_extras", lambda *a: None)
    e, policy = _round(lent_speed=0.4)
    alloc = policy.allocate(e.view)
    assert list(alloc.gpus) == [1, 2] and alloc.gpus[1] == 4
    e.decide_allocation(alloc)
    assert e.view.job(2).lent_gpus == 1  # the inelastic job runs on the lent GPU
    assert e.view.job(2).rate == pytest.approx(0.4)


def test_equal_speeds_keep_step_1_order():
    # at equal speeds extra workers go to lent servers first: nothing to reorder
    e, policy = _round(lent_speed=1.0)
    alloc = policy.allocate(e.view)
    assert list(alloc.gpus)[:2] == [1, 2]
    e.decide_allocation(alloc)
    assert e.view.job(2).lent_gpus == 0


def test_reorder_moves_only_grown_starts():
    out = {5: 2, 6: 4, 7: 1, 9: 0, 8: 3}  # starts 5, 6, 7; a shrink (9); a running grow (8)
    base_out = {5: 2, 6: 2, 7: 1, 9: 0}

    class _J:
        def __init__(self, idx):
            self.idx = idx

    _bases_before_extras(out, base_out, [_J(5), _J(6), _J(7)])
    assert list(out.items()) == [(5, 2), (7, 1), (6, 4), (9, 0), (8, 3)]
