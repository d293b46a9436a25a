"""Aryl's knapsack values are the remaining-time reductions the engine really produces.

At random allocate points of heterogeneous runs (lent GPUs slower), every option ``k``
Aryl values for an elastic job is applied alone to a copy of the engine; the value must
equal ``R / rate_now - R / rate_after`` with the rate and placement the engine then
applies — bit for bit, because both come from the simulator's one placer.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from aryl_gym.baselines import aryl as aryl_module
from aryl_gym.baselines import make_policy

from aryl_gym.policy import Allocation
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.engine import RECLAIM
from aryl_gym.simulate import make_engine


def _starts(view) -> list:
    """Up to three queued elastic jobs whose base fits in the free GPUs: step 2's rows for
    them as if step 1 started them."""
    free = view.free_training_gpus + view.free_lent_gpus
    return [j for j in view.queued.values() if j.elastic and j.min_gpus <= free][:3]


def _states(speed: float, seed: int, n_points: int):
    """``(engine, rows)`` at ``n_points`` allocate points of an Aryl run on ``small`` at
    twice its load (a queue beside free GPUs), spread over simulated time: a copy of the
    engine before Aryl's decision there, and the value rows step 2 hands its solver
    (:meth:`ArylPolicy.value_rows`, on a copy of the policy), for the running jobs the
    grow watch holds awake and for queued elastic jobs as if started (:func:`_starts`)."""
    sc = get_scenario("small")
    sc = replace(
        sc,
        cluster=replace(sc.cluster, inference_gpu_speed=speed),
        workload=sc.workload.scaled(2.0),
    )
    policy = make_policy("aryl")
    engine = make_engine(sc, policy, seed)
    policy.reset(engine.view, seed)
    rng = np.random.default_rng(seed)
    next_t = rng.uniform(0, 2 * 3600.0)
    point = engine.advance()
    out = []
    while point is not None and len(out) < n_points:
        if point.kind == RECLAIM:
            engine.decide_reclaim(policy.reclaim(point.view, point.k))
        else:
            view = point.view
            if engine.t >= next_t and view.free_training_gpus + view.free_lent_gpus:
                trial_engine, trial_policy = copy.deepcopy((engine, policy))
                v = trial_engine.view
                free = v.free_training_gpus + v.free_lent_gpus
                rows = trial_policy.value_rows(v, _starts(v), set(), free)
                if rows is not None:
                    out.append((trial_engine, rows))
                    next_t = engine.t + rng.uniform(0.5 * 3600.0, 2 * 3600.0)
            engine.decide_allocation(policy.allocate(point.view))
        point = engine.advance()
    return out


@pytest.mark.parametrize("few_rows", [16, 0], ids=["plain-rows", "numpy-rows"])
@pytest.mark.parametrize("speed,seed", [(0.4, 0), (1.0, 1), (0.25, 2)])
def test_each_option_value_equals_the_engines_remaining_time_reduction(
    speed, seed, few_rows, monkeypatch
):
    # the rows step 2 hands its solver (ArylPolicy.value_rows: starts' and running jobs'
    # rows, the latter in plain Python for a few rows or in numpy, _FEW_ROWS), each option
    # applied alone to a copy of the engine
    monkeypatch.setattr(aryl_module, "_FEW_ROWS", few_rows)
    checked = {"start": 0, "grow": 0}
    for engine, rows in _states(speed, seed, n_points=10):
        view = engine.view
        for i, job in enumerate(rows.jobs[:10]):
            n = rows.bases[i]
            rate_now = job.rate if job.n_gpus else view.rate_with(job, n)
            r = job.remaining_work(view.now)  # oracle scenario: estimate == truth
            assert job.est_remaining_work(view.now) == r
            values = rows.row(i)
            assert values[0] == 0.0
            for k in range(1, len(values)):
                trial = copy.deepcopy(engine)
                tjob = trial.jobs[job.idx]
                trial.decide_allocation(Allocation({job.idx: n + k}))
                assert tjob.n_gpus == n + k
                assert tjob.placement == view.placement_with(job, n + k)
                assert values[k] == r / rate_now - r / tjob.rate, (job.idx, n, k)
                checked["grow" if job.n_gpus else "start"] += 1
    # the states did offer options of both kinds to check
    assert checked["start"] > 10 and checked["grow"] > 10, checked


@pytest.mark.parametrize("speed,policy,seed", [(0.25, "aryl-loan-only", 0), (0.6, "aryl", 1)])
def test_aryl_allocations_are_always_placeable_with_slower_lent_gpus(speed, policy, seed):
    # these runs once made Aryl hand the engine a start or extras its pool accounting
    # thought would fit but the placer's no_slow_mix choice made unplaceable
    from aryl_gym.simulate import run_policy

    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=speed))
    res = run_policy(sc, make_policy(policy), seed, check_invariants=True)
    assert res.summary["jobs_finished"] == res.summary["jobs_total"]
