"""Aryl's sleeping candidates (baselines/growwatch.py) change no decision: a run with
jobs put to sleep equals a run where every watched job is checked every round."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aryl_gym.baselines import make_policy
from aryl_gym.baselines.growwatch import GrowWatch

from aryl_gym.scenarios import get_scenario
from aryl_gym.simulate import run_policy


def _run(speed: float, seed: int):
    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=speed))
    result = run_policy(sc, make_policy("aryl"), seed)
    summary = {k: v for k, v in result.summary.items() if k != "wall_s"}
    return summary, result.job_records()


@pytest.mark.parametrize("speed", [0.4, 1.0])
def test_sleeping_jobs_change_no_decision(speed, monkeypatch):
    slept = []
    real_sleep_all = GrowWatch.sleep_all

    def counting_sleep_all(self, grown, guard):
        slept.extend(g[0].idx for g in grown)
        real_sleep_all(self, grown, guard)

    # GrowWatch.sleep puts one job to sleep through sleep_all: patching it covers both
    monkeypatch.setattr(GrowWatch, "sleep_all", counting_sleep_all)
    with_sleep = _run(speed, 2)
    assert len(slept) > 100  # the filter was exercised
    monkeypatch.setattr(GrowWatch, "sleep_all", lambda self, grown, guard: None)
    without = _run(speed, 2)
    assert with_sleep[0] == without[0]
    assert with_sleep[1].equals(without[1])
