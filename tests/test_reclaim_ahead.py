"""ArylGym/ReclaimAhead-v0 (issue #12 item 4): always ``follow`` is Aryl's run, the rewards
add up to the documented objective, an early return really gives a server back and a
demand rise uses it up, invalid actions are masked and counted, and training envs never
draw a held-out workload."""

from __future__ import annotations

import math

import numpy as np
import pytest
from aryl_gym.baselines import make_policy
from aryl_gym.baselines.reclaim_ahead import Foresight
from gymnasium.utils.env_checker import check_env

from aryl_gym.envs import make_env
from aryl_gym.envs.protocol import InvalidAction
from aryl_gym.envs.reclaim_ahead import ReclaimAheadEnv
from aryl_gym.envs.reclaim_ahead_round import AHEAD, PICK, SLOT_FEATURES, AheadRound, DemandForecast
from aryl_gym.envs.workload_splits import workload_split_of
from aryl_gym.sim.decisions import InvalidDecision
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import ALLOCATE, Engine


def _episode(env, seed, act, options=None):
    obs, info = env.reset(seed=seed, options=options)
    total, steps = 0.0, 0
    while True:
        assert env.observation_space.contains(obs)
        obs, r, term, trunc, info = env.step(act(env))
        total += r
        steps += 1
        if term or trunc:
            return total, steps, info


def _same(a: dict, b: dict) -> bool:
    return all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
        for k in a
    )


def test_passes_the_env_checker_and_is_registered():
    check_env(ReclaimAheadEnv("small"), skip_render_check=True)
    env = make_env("ArylGym/ReclaimAhead-v0")
    assert env.unwrapped.action_space.n == env.unwrapped.round.n_slots + 2


@pytest.mark.parametrize("seed", [1, 4])
def test_always_follow_is_arys_run_exactly(seed):
    env = ReclaimAheadEnv("small", check_invariants=True)
    total, steps, info = _episode(env, seed, lambda e: e.round.follow)
    counts = info["counts"]
    assert counts["pick_points"] >= 1 and counts["ahead_points"] > 10  # both kinds reached it
    assert _same(info["summary"], info["reference_summary"])
    # ... and Aryl run on the simulator alone, not only the env's own reference run
    spec = env.episode_spec(seed)
    p = make_policy("aryl")
    e = Engine(spec.scenario, spec.jobs, spec.demand, seed=spec.engine_seed,
               periodic_rounds=p.periodic_rounds, elastic_scaling=p.elastic_scaling, rules=p.rules)  # fmt: skip
    p.reset(e.view, spec.engine_seed)
    Driver(e, p).run_until()
    assert e.metrics.summary()["lost_gpu_hours"] == info["summary"]["lost_gpu_hours"] > 0
    assert e.t == info["summary"]["sim_time_s"]
    assert total == pytest.approx(0.0, abs=1e-9)


def test_rewards_sum_to_lost_gpu_hours_and_jct_against_aryl():
    env = ReclaimAheadEnv("small", jct_weight=0.5)
    total, _, info = _episode(env, 1, Foresight().action)
    mine, ref = info["summary"], info["reference_summary"]
    assert info["counts"]["early_returns"] > 0  # the episode differs from Aryl's
    assert mine["jobs_unfinished"] == 0 and ref["jobs_unfinished"] == 0
    lost = ref["lost_gpu_hours"] - mine["lost_gpu_hours"]
    jct = (
        ref["avg_jct_s"] * ref["jobs_finished"] - mine["avg_jct_s"] * mine["jobs_finished"]
    ) / 3600
    assert abs(lost) > 0.1 and abs(jct) > 0.01  # not 0 = 0
    assert info["objective"]["lost_gpu_hours_gain"] == pytest.approx(lost, abs=1e-9)
    assert info["objective"]["job_hours_gain"] == pytest.approx(jct, rel=1e-9, abs=1e-6)
    assert total == pytest.approx(lost + 0.5 * jct, rel=1e-9, abs=1e-6)


def _first_ahead_point_with_lent(env, seed=1):
    env.reset(seed=seed)
    while not (env.round.mode == AHEAD and env.engine.view.lent_servers):
        env.step(env.round.follow)
    return env


def test_return_early_gives_the_server_back_and_release_lends_again():
    env = _first_ahead_point_with_lent(ReclaimAheadEnv("small", check_invariants=True))
    e = env.engine
    s = env.round.slots[0]
    lent_before = e.cluster.n_lent
    assert e.cluster.lent[s] and not env.round.mask[env.round.release]
    _, _, _, _, info = env.step(0)
    assert not e.cluster.lent[s] and e.cluster.n_lent == lent_before - 1
    assert e.held == 1 == info["held_servers"] and e.early_returns == 1
    assert s not in env.round.slots and env.round.mask[env.round.release]  # same point
    env.step(env.round.release)
    assert e.held == 0 and e.cluster.n_lent == lent_before  # lent again (no loan delay)


def _aryl_engine_lent_then(lent_after: int, **engine_kwargs):
    """Aryl and an engine on ``small``'s workload whose inference demand lends 3 servers at
    t = 0 and leaves ``lent_after`` lent from t = 3600 s: (policy, engine, demand, n_inf)."""
    spec = ReclaimAheadEnv("small").episode_spec(1)
    n_inf = spec.scenario.cluster.inference_servers
    demand = (np.array([0.0, 3600.0]), np.array([n_inf - 3, n_inf - lent_after]))
    p = make_policy("aryl")
    e = Engine(spec.scenario, spec.jobs, demand, seed=0, rules=p.rules, **engine_kwargs)
    p.reset(e.view, 0)
    return p, e, demand, n_inf


def test_a_demand_rise_uses_the_held_server_before_reclaiming():
    p, e, _, _ = _aryl_engine_lent_then(2, check_invariants=True)
    point = e.advance()
    assert point.kind == ALLOCATE and e.cluster.n_lent == 3
    with pytest.raises(InvalidDecision, match="not lent"):
        e.return_early([0])  # a training server
    s = e.cluster.lent_order[-1]
    for bad in (str(s), {s}, [s, s]):  # not an ordered sequence of distinct ids
        with pytest.raises(InvalidDecision, match="sequence of server ids|distinct"):
            e.return_early(bad)
    assert e.held == 0
    e.return_early([s])
    assert (e.cluster.n_lent, e.held) == (2, 1)
    Driver(e, p).decide(point)
    with pytest.raises(RuntimeError, match="no pending allocate"):
        e.return_early([e.cluster.lent_order[0]])
    Driver(e, p).run_until(lambda q: e.t >= 3600.0)  # past the rise
    assert e.reclaim_events == 0 and e.held == 0 and e.cluster.n_lent == 2


def test_masked_and_non_integer_actions():
    env = _first_ahead_point_with_lent(ReclaimAheadEnv("small"))
    with pytest.raises(InvalidAction, match="ReclaimAhead-v0"):
        env.step(1.0)
    t = env.engine.t
    _, _, _, _, info = env.step(env.round.release)  # masked: nothing held
    assert info["invalid"] and info["invalid_actions"] == 1
    assert env.engine.held == 0 and env.engine.t >= t  # treated as follow: the round went on
    # at a pick point a masked action is a counted no-op
    while env.round.mode != PICK:
        env.step(env.round.follow)
    picks = env.round.picks_left
    _, _, _, _, info = env.step(env.round.release)
    assert info["invalid_actions"] == 2 and env.round.picks_left == picks


def test_training_envs_draw_only_training_workloads():
    env = ReclaimAheadEnv("small", split="train")
    seen = {env.episode_spec(seed).workload_seed for seed in range(200)}
    assert len(seen) == 200 and {workload_split_of(w) for w in seen} == {"train"}
    val = ReclaimAheadEnv("small", split="test").episode_spec(0)
    assert workload_split_of(val.workload_seed) == "test"
    with pytest.raises(ValueError, match="unknown workload split"):
        ReclaimAheadEnv("small", split="holdout")


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="ahead_interval_s"):
        ReclaimAheadEnv("small", ahead_interval_s=0)
    with pytest.raises(ValueError, match="jct_weight"):
        ReclaimAheadEnv("small", jct_weight=-1)
    with pytest.raises(RuntimeError, match="reset"):
        ReclaimAheadEnv("small").step(0)


def test_demand_forecast():
    fc = DemandForecast((np.array([0.0, 100.0, 200.0]), np.array([2, 5, 1])), spare=8)
    assert fc.needed_at(150.0) == 5 and fc.min_loanable(0.0, 99.0) == 6
    assert fc.min_loanable(0.0, 100.0) == 3 and fc.min_loanable(200.0, 300.0) == 7
    assert fc.first_below(0.0, 300.0, 4) == 100.0 and fc.first_below(0.0, 99.0, 4) is None
    assert fc.first_below(150.0, 160.0, 4) == 150.0


def test_follow_picks_arys_plan_in_order_at_a_reclaim_of_two():
    p, e, demand, n_inf = _aryl_engine_lent_then(1)
    point = Driver(e, p).run_until(lambda q: q.kind == "reclaim")
    assert point.k == 2 and e.cluster.n_lent == 3
    plan = list(p.reclaim(e.view, 2))
    rr = AheadRound(8)
    rr.begin(e.view, PICK, 2, plan, DemandForecast(demand, n_inf), 0.0)
    assert rr.obs[rr.slots.index(plan[0]) * len(SLOT_FEATURES) + 11] == 1.0  # aryl_next
    while rr.picks_left:
        assert rr.mask[rr.follow] and not rr.mask[rr.release]
        rr.pick(rr.follow_server())
    assert rr.picked == plan


def test_training_config_keys_are_checked_and_setnet_has_the_global_actions(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sb3_contrib")
    import torch as th
    from aryl_gym.agents.networks import SetNet, set_layout
    from aryl_gym.agents.reclaim_ahead import ConfigError, load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("n_timesteps: 10\nenv_kwargs: {scenario: small, window_hour: 6}\n")
    with pytest.raises(ConfigError, match="window_hour"):
        load_config(cfg)
    cfg.write_text("n_timesteps: 10\nbc: {teacher: {horizon: 1}}\n")
    with pytest.raises(ConfigError, match="horizon"):
        load_config(cfg)
    assert load_config("agents/configs/reclaim_ahead_setnet.yaml")["n_timesteps"] > 0
    env = ReclaimAheadEnv("small")
    layout = set_layout(env)
    assert layout["n_extra"] == 2 and layout["n_ops"] == 1
    net = SetNet(env.observation_space.shape[0], **layout)
    logits, _ = net(th.zeros(3, env.observation_space.shape[0]))
    assert logits.shape == (3, env.action_space.n)


def test_the_cli_runs_the_agents_script(capsys):
    pytest.importorskip("sb3_contrib", reason="the agent's script needs the rl extra")
    from aryl_gym.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["reclaim-ahead", "evaluate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "aryl-gym reclaim-ahead evaluate" in out and "--foresight" in out
