"""Property-based tests: random small workloads driven by random *valid* policies keep every
invariant of the model (the engine's checker runs after every event batch and decision)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, PlacementRules, Policy
from tests.conftest import make_jobs, run_engine

PROFILES = ["linear", "bert", "cifar10", "imagenet"]


@st.composite
def workloads(draw):
    n = draw(st.integers(1, 12))
    rows = []
    t = 0.0
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 0.0, 5.0, 37.5, 300.0]))
        g = draw(st.sampled_from([1, 2, 4, 8]))
        elastic = draw(st.booleans())
        lo = draw(st.integers(1, g)) if elastic else g
        hi = draw(st.integers(g, 2 * g)) if elastic else g
        rows.append(dict(submit=t, gpus=g, duration=draw(st.floats(10.0, 2000.0)), elastic=elastic,
                         min=lo, max=hi, profile=draw(st.sampled_from(PROFILES))))  # fmt: skip
    return rows


@st.composite
def demands(draw, n_inf):
    k = draw(st.integers(1, 6))
    times = np.cumsum([0.0] + [draw(st.sampled_from([20.0, 100.0, 450.0])) for _ in range(k - 1)])
    needed = [draw(st.integers(0, n_inf)) for _ in range(k)]
    return times, np.array(needed)


class RandomValidPolicy(Policy):
    """Random but always-valid decisions: starts, resizes and preemptions within free room,
    random reclaim choices. When nothing runs it starts the first job that fits, so
    episodes end."""

    name = "random-valid"
    uses_loaning = True
    periodic_rounds = True

    def __init__(self, seed: int, inelastic_on_lent: bool) -> None:
        self.rng = np.random.default_rng(seed)
        self.rules = PlacementRules(
            inelastic_on_lent=inelastic_on_lent, extra_on_lent_first=bool(seed % 2)
        )

    def reclaim(self, view, k):
        return list(self.rng.permutation(view.lent_servers)[:k])

    def allocate(self, view):
        rng = self.rng
        lent_ok = view.free_lent_gpus
        out: dict[int, int] = {}
        for idx, job in list(view.running.items()):
            r = rng.random()
            if r < 0.1:
                out[idx] = 0  # preempt
                lent_ok = -1  # freed GPUs may be on any class: be conservative below
            elif r < 0.3 and job.elastic and job.n_gpus > job.min_gpus:
                out[idx] = int(rng.integers(job.min_gpus, job.n_gpus))
        free_train = view.free_training_gpus
        free_lent = max(lent_ok, 0)
        for idx, job in view.queued.items():
            if idx in out:
                continue
            n = job.base_gpus
            may_lend = job.elastic or self.rules.inelastic_on_lent
            room = free_train + (free_lent if may_lend else 0)
            if n <= room and (rng.random() < 0.7 or not view.running):
                out[idx] = n
                take_t = min(n, free_train)
                free_train -= take_t
                free_lent -= n - take_t
        return Allocation(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=workloads(), n_inf=st.integers(0, 2), data=st.data(), seed=st.integers(0, 10**6),
       inelastic_on_lent=st.booleans())  # fmt: skip
def test_random_valid_policies_keep_invariants(rows, n_inf, data, seed, inelastic_on_lent):
    demand = data.draw(demands(n_inf))
    sc = ScenarioConfig(
        name="prop",
        cluster=ClusterConfig(
            training_servers=1,
            inference_servers=n_inf,
            gpus_per_server=8,
            inference_gpu_speed=data.draw(st.sampled_from([1.0, 0.4])),
        ),  # fmt: skip
        dynamics=DynamicsConfig(
            checkpoint_interval_s=data.draw(st.sampled_from([50.0, 1800.0])), round_interval_s=60.0
        ),
    )
    # every base demand (<= 8) fits the training pool, so episodes can always finish
    jobs = make_jobs(rows)
    e = run_engine(sc, jobs, RandomValidPolicy(seed, inelastic_on_lent), demand=demand)
    s = e.metrics.summary()
    assert s["jobs_finished"] == len(rows), "every job finishes exactly once"
    assert e.n_done == len(rows) and not e.running and not e.queue
    for job in e.jobs:
        fastest = job.work / (float(job.speedup[job.max_gpus]) * 1.0)
        assert job.finish - job.submit >= fastest - 1e-6
        assert job.queue_time >= -1e-9
        assert job.finish - job.submit >= job.queue_time - 1e-6
        assert job.lost_gpu_seconds >= 0 and job.gpu_seconds >= job.lost_gpu_seconds
        if job.profile.name == "linear" and sc.cluster.inference_gpu_speed == 1.0:
            # linear profile at speed 1: work units are GPU-seconds, so every GPU-second
            # is useful work, lost work or overhead pause
            useful = job.gpu_seconds - job.overhead_gpu_seconds - job.lost_gpu_seconds
            assert useful == pytest.approx(job.work, rel=1e-6, abs=1e-3)
