"""The one engine loop (:class:`aryl_gym.sim.driver.Driver`) and the step protocols that
the envs share with :class:`aryl_gym.evaluation.AgentPolicy`."""

from __future__ import annotations

import numpy as np
import pytest
from aryl_gym.baselines import make_policy

from aryl_gym.envs.protocol import AllocateProtocol, ReclaimProtocol
from aryl_gym.envs.reclaim import ReclaimEnv
from aryl_gym.evaluation import AgentPolicy
from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import RECLAIM, Engine
from aryl_gym.simulate import make_engine, run_policy


def _aryl_engine(seed: int) -> tuple[Engine, object]:
    policy = make_policy("aryl")
    e = make_engine(get_scenario("small"), policy, seed)
    policy.reset(e.view, seed)
    return e, policy


def test_driver_counts_what_the_policy_decided():
    e, policy = _aryl_engine(0)
    d = Driver(e, policy)
    assert d.run_until() is None and e.finished
    c = d.total
    assert c == d.last  # one call: the last run is everything
    assert c.rounds == e.rounds and c.reclaims == e.reclaim_events > 0
    assert c.decisions == c.rounds + c.reclaims
    # Aryl's allocation never preempts: every preemption is a reclaim's
    assert c.reclaim_preemptions == e.reclaim_preemptions == sum(j.preemptions for j in e.jobs) > 0
    lost = sum(j.lost_gpu_seconds for j in e.jobs)
    assert c.reclaim_lost_gpu_seconds == pytest.approx(lost, rel=1e-12)


def test_claimed_points_are_the_callers_and_claiming_changes_nothing():
    """Stopping at every reclaim and handing it back with ``decide`` runs the same
    episode as the plain loop; a claimed point must be decided before the next call."""
    ref = run_policy(get_scenario("small"), make_policy("aryl"), 0).engine.metrics.summary()
    e, policy = _aryl_engine(0)
    d = Driver(e, policy)
    claimed = 0
    rounds = 0
    while (point := d.run_until(lambda p: p.kind == RECLAIM)) is not None:
        assert point.kind == RECLAIM and d.last.reclaims == 0
        rounds += d.last.rounds
        if claimed == 0:
            with pytest.raises(RuntimeError, match="pending reclaim"):
                d.run_until()
        d.decide(point)
        assert d.last.reclaims == 1 and d.last.rounds == 0
        claimed += 1
    rounds += d.last.rounds
    assert claimed == e.reclaim_events == d.total.reclaims
    assert rounds == d.total.rounds == e.rounds
    s = e.metrics.summary()
    for k in ("jobs_finished", "avg_jct_s", "preemptions", "resizes", "lost_gpu_hours", "rounds"):
        assert s[k] == ref[k], k


def test_agent_policy_shares_the_env_protocols():
    env = ReclaimEnv("small", cost="lost_gpu_seconds", max_invalid_per_reclaim=2)
    agent = AgentPolicy.from_env(env, lambda obs, mask: 0)
    assert agent.cost == env.cost == "lost_gpu_seconds" and agent.max_invalid == 2
    assert isinstance(agent.allocate_protocol, AllocateProtocol)
    assert isinstance(agent.reclaim_protocol, ReclaimProtocol)
    env.reset(seed=0)
    assert type(env.protocol) is type(agent.reclaim_protocol)


def test_reclaim_agent_on_the_engine_equals_the_agent_in_the_env():
    """A reclaim agent (with invalid actions, so the fallback with the env's cost runs)
    gives the same episode through ``run_policy`` as through Reclaim-v0's steps (on train
    window 4 the fallback by lost GPU-seconds differs from the one by count)."""
    env = ReclaimEnv("small", split="train", cost="lost_gpu_seconds", max_invalid_per_reclaim=2)

    def make_act():
        calls = iter(range(1 << 30))

        def act(obs, mask) -> int:  # two invalid actions (then the fallback), one valid
            return int(np.flatnonzero(mask)[-1]) if next(calls) % 3 == 2 else len(mask)

        return act

    for seed in (0, 4):
        act = make_act()
        obs, info = env.reset(seed=seed, options={"split": "train"})
        while True:
            obs, _, term, trunc, info = env.step(act(obs, info["action_mask"]))
            if term or trunc:
                break
        spec, via_env = env.spec_, info["summary"]
        agent = AgentPolicy.from_env(env, make_act())
        agent.set_episode(spec)
        res = run_policy(spec.scenario, agent, spec.engine_seed, jobs=spec.jobs, demand=spec.demand)
        direct = res.summary
        assert agent.invalid_actions == info["invalid_actions"] > 0
        assert agent.reclaim_protocol.reclaims == info["reclaims"] > 0
        for k in ("jobs_finished", "avg_jct_s", "preemptions", "resizes", "lost_gpu_hours"):
            assert direct[k] == via_env[k], k
