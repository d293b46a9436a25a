"""``Allocation.to_training``: a running job's workers on (slow) lent servers move to
training servers, placed as its extra workers would be; and Aryl's ``move_off_lent``
option, which asks for such moves (off by default: measured worse, docs/model.md)."""

from __future__ import annotations

import numpy as np
import pytest
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, InvalidDecision
from aryl_gym.sim.engine import Engine
from tests.conftest import make_jobs

# two training servers (0, 1) and one inference server (2) lent at 0.4x the speed
SCENARIO = ScenarioConfig(
    name="move",
    cluster=ClusterConfig(
        training_servers=2, inference_servers=1, gpus_per_server=8, inference_gpu_speed=0.4
    ),
    dynamics=DynamicsConfig(round_interval_s=60.0),
)
ROWS = [
    # job 0: elastic, base 2, grown to 10 GPUs: 2 on training server 0, 8 on the lent server
    dict(submit=0.0, gpus=4, duration=1e6, elastic=True, min=2, max=10),
    dict(submit=1.0, gpus=1, duration=1e4),  # job 1: arrives next (the next round)
]


def _mixed_round(policy: ArylPolicy | None = None) -> Engine:
    """The round after job 0 was placed on 2 training and 8 lent GPUs (job 1 arrives)."""
    rules = (policy or ArylPolicy()).rules
    demand = (np.array([0.0]), np.array([0]))
    e = Engine(SCENARIO, make_jobs(ROWS), demand, seed=0, uses_loaning=True, rules=rules)
    assert e.advance().kind == "allocate" and e.view.lent_servers == [2]
    e.decide_allocation(Allocation({0: 10}, placement={0: {0: 2, 2: 8}}))
    assert e.advance().kind == "allocate" and set(e.view.queued) == {1}
    if policy is not None:
        policy.reset(e.view, seed=0)
    return e


def test_a_move_puts_the_lent_workers_on_training_servers_at_the_predicted_rate():
    e = _mixed_round()
    view = e.view
    job = view.job(0)
    rate_before, resizes = job.rate, job.resizes
    predicted = view.placement_moved_to_training(job)
    # its own training server first (6 free), then an empty one for the rest
    assert predicted == {0: 8, 1: 2}
    predicted_rate = view.rate_moved_to_training(job)
    assert predicted_rate == pytest.approx(rate_before / 0.4)
    e.decide_allocation(Allocation({}, to_training=frozenset({0})))
    assert job.placement == predicted and job.n_gpus == 10 and job.lent_gpus == 0
    assert job.rate == pytest.approx(predicted_rate)
    assert job.resizes == resizes + 1  # paused like a resize
    assert view.free_lent_gpus == 8


@pytest.mark.parametrize(
    "alloc",
    [
        Allocation({}, to_training=[0]),  # not a set
        Allocation({}, to_training=frozenset({1})),  # queued, not on lent servers
        Allocation({0: 9}, to_training=frozenset({0})),  # also a count change
        Allocation({}, to_training=frozenset({7})),  # unknown job
    ],
)
def test_malformed_moves_are_rejected_and_change_nothing(alloc):
    e = _mixed_round()
    with pytest.raises(InvalidDecision, match="to_training|job index 7"):
        e.decide_allocation(alloc)
    assert e.view.job(0).placement == {0: 2, 2: 8}


def test_room_checks_count_moves_and_agree_with_the_engine():
    e = _mixed_round()
    view = e.view
    # job 1 (1 GPU) fits beside the move: 14 training GPUs free, the move takes 8
    assert view.can_place({1: 1}, to_training={0})
    assert view.fit({1: 1}, to_training={0}) == {1: 1}
    e.decide_allocation(Allocation({1: 1}, to_training=frozenset({0})))
    assert view.job(0).lent_gpus == 0 and view.job(1).n_gpus == 1
    assert view.free_training_gpus == 16 - 10 - 1


def test_a_move_without_room_is_refused():
    # job 1 fills training server 1: 6 training GPUs free, the move needs 8
    rows = [ROWS[0], dict(submit=0.0, gpus=8, duration=1e6), ROWS[1]]
    demand = (np.array([0.0]), np.array([0]))
    rules = ArylPolicy().rules
    e = Engine(SCENARIO, make_jobs(rows), demand, seed=0, uses_loaning=True, rules=rules)
    assert e.advance().kind == "allocate"
    e.decide_allocation(Allocation({0: 10, 1: 8}, placement={0: {0: 2, 2: 8}, 1: {1: 8}}))
    assert e.advance().kind == "allocate"
    view = e.view
    job = view.job(0)
    assert view.free_training_gpus == 6
    assert view.placement_moved_to_training(job) is None
    assert view.rate_moved_to_training(job) is None
    assert not view.can_place({}, to_training={0})
    with pytest.raises(InvalidDecision, match="no room"):
        e.decide_allocation(Allocation({}, to_training=frozenset({0})))
    assert job.placement == {0: 2, 2: 8}
    # Aryl asks for no move it cannot make
    policy = ArylPolicy(ArylConfig(move_off_lent=True))
    policy.reset(view, seed=0)
    assert not policy.allocate(view).to_training


@pytest.mark.parametrize("move", [False, True])
def test_aryl_moves_a_job_stuck_at_the_lent_speed_only_with_the_option(move):
    policy = ArylPolicy(ArylConfig(move_off_lent=move))
    e = _mixed_round(policy)
    alloc = policy.allocate(e.view)
    assert (alloc.to_training == {0}) is move
    e.decide_allocation(alloc)
    assert (e.view.job(0).lent_gpus == 0) is move
    assert e.view.job(1).n_gpus == 1  # the start is not held back by the move
