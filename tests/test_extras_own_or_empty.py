"""The placement rule ``extras_own_or_empty``: extra workers only on the job's own servers
or on empty servers; the simulator's counts follow it, and the engine cuts (and counts) a
grow whose room an earlier change of the same round took."""

from __future__ import annotations

import numpy as np

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, PlacementRules
from aryl_gym.sim.engine import Engine
from tests.conftest import make_jobs

RULE = PlacementRules(extra_on_lent_first=False, extras_own_or_empty=True)


def _engine(rows: list[dict], training_servers: int = 2, rules: PlacementRules = RULE) -> Engine:
    sc = ScenarioConfig(
        name="own-or-empty",
        cluster=ClusterConfig(
            training_servers=training_servers, inference_servers=0, gpus_per_server=8
        ),
        dynamics=DynamicsConfig(round_interval_s=60.0),
    )
    demand = (np.array([0.0]), np.array([0]))
    return Engine(sc, make_jobs(rows), demand, seed=0, uses_loaning=False, rules=rules)


def _at_first_round(e: Engine):
    point = e.advance()
    assert point is not None and point.kind == "allocate"
    return e.view


def test_extras_skip_other_jobs_holes_and_take_an_empty_server():
    # job 0 (inelastic, 6 GPUs) on server 0 leaves a 2-GPU hole; job 1 elastic at 4 GPUs
    rows = [
        dict(submit=0.0, gpus=6, duration=1e5),
        dict(submit=0.0, gpus=4, duration=1e5, elastic=True, min=4, max=12),
    ]
    e = _engine(rows, training_servers=3)
    view = _at_first_round(e)
    e.decide_allocation(Allocation({0: 6, 1: 4}))  # what-if queries on the state it left
    job1 = view.job(1)
    assert job1.n_gpus == 4 and len(job1.placement) == 1
    (own,) = job1.placement
    # +4 fills its own server; +6 needs 2 more: not the other job's hole, an empty server
    assert view.placement_with(job1, 8) == {own: 8}
    place = view.placement_with(job1, 10)
    hole = next(s for s in view.job(0).placement)
    assert hole not in place and sum(place.values()) == 10 and len(place) == 2
    assert view.extra_room_of((0,)) == 8  # one empty server


def test_grow_cut_when_a_start_took_its_own_servers_room():
    # server 0: job 0 elastic (6 GPUs, 2 free); server 1: job 1 (4 GPUs, 4 free)
    rows = [
        dict(submit=0.0, gpus=6, duration=1e5, elastic=True, min=6, max=8),
        dict(submit=0.0, gpus=4, duration=1e5),
        dict(submit=1.0, gpus=2, duration=1e5),
    ]
    e = _engine(rows)
    view = _at_first_round(e)
    e.decide_allocation(Allocation({0: 6, 1: 4}))
    point = e.advance()
    assert point is not None and view.queued
    job0 = view.job(0)
    assert job0.n_gpus == 6 and job0.placement == {0: 6}
    # alone, each change fits exactly as counted
    assert view.can_place({0: 8}) and view.can_place({2: 2})
    # together, the start's base (best fit: the 2-GPU hole on job 0's server) goes first
    # and leaves job 0 no own or empty room: the count cannot tell which server the base
    # takes, the engine cuts the grow and counts it
    cut = e.grows_cut
    e.decide_allocation(Allocation({2: 2, 0: 8}))
    assert view.job(2).n_gpus == 2 and view.job(2).placement == {0: 2}
    assert job0.n_gpus == 6 and e.grows_cut == cut + 1
    assert e.metrics.summary()["grows_cut"] == cut + 1


def test_without_the_rule_extras_take_any_hole():
    rows = [
        dict(submit=0.0, gpus=6, duration=1e5, elastic=True, min=6, max=8),
        dict(submit=0.0, gpus=4, duration=1e5),
    ]
    e = _engine(rows, rules=PlacementRules(extra_on_lent_first=False))
    view = _at_first_round(e)
    e.decide_allocation(Allocation({0: 6, 1: 4}))
    # job 0's server has 2 free; the other server's 4-GPU hole is fair game for +2 more
    assert view.placement_with(view.job(0), 8) == {0: 8}
    assert view.extra_room_of((0,)) == 6
