"""The Gymnasium environments: API checkers, masks, determinism, episodes, vector envs,
rewards and the one evaluation path."""

from __future__ import annotations

import functools
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest

import aryl_gym
from aryl_gym.envs import make_env
from aryl_gym.envs.allocate import AllocateEnv
from aryl_gym.envs.episodes import SPLITS, EpisodeSampler
from aryl_gym.envs.observation import GLOBAL_FEATURES, N_SLOT_F, SLOT_FEATURES
from aryl_gym.envs.reclaim import ReclaimEnv
from aryl_gym.evaluation import AgentPolicy, evaluate
from aryl_gym.sim.metrics import SUMMARY_KEYS

ALLOC, RECL = "ArylGym/Allocate-v0", "ArylGym/Reclaim-v0"


def _random_episode(env, rng, max_steps=None):
    """Play random valid actions; returns (steps, total reward, last info)."""
    env.reset(seed=int(rng.integers(1 << 30)))
    total, steps = 0.0, 0
    while True:
        valid = np.flatnonzero(env.action_masks())
        _, r, term, trunc, info = env.step(int(rng.choice(valid)))
        total += r
        steps += 1
        if term or trunc or (max_steps and steps >= max_steps):
            return steps, total, info


# ---------------------------------------------------------------------- API
def test_make_after_import():
    for env_id in (ALLOC, RECL):
        env = gym.make(env_id)
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert info["action_mask"].shape == (env.action_space.n,)
        assert info["action_mask"].dtype == bool and info["action_mask"].any()
        env.close()


def test_feature_docs_match_the_observation():
    env = AllocateEnv("small")
    assert env.observation_space.shape == (env.round.n_slots * N_SLOT_F + len(GLOBAL_FEATURES),)
    assert len(SLOT_FEATURES) == N_SLOT_F
    assert env.action_space.n == env.round.n_ops * env.round.n_slots + 1


@pytest.mark.parametrize("env_id", [ALLOC, RECL])
def test_gymnasium_check_env(env_id):
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", [ALLOC, RECL])
def test_sb3_check_env(env_id):
    pytest.importorskip("stable_baselines3", reason="the RL stack is the optional extra .[rl]")
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 reports problems as warnings
        check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", [ALLOC, RECL])
def test_same_seed_same_actions_same_trajectory(env_id):
    runs = []
    for _ in range(2):
        env = gym.make(env_id)
        rng = np.random.default_rng(7)
        obs, _ = env.reset(seed=3)
        traj = [obs]
        for _ in range(300):
            a = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
            obs, r, term, trunc, _ = env.step(a)
            traj += [obs, r]
            if term or trunc:
                break
        runs.append(traj)
    assert len(runs[0]) == len(runs[1])
    for x, y in zip(*runs, strict=True):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------- masks
def _reference_mask(rnd, monotone: bool, allow_preemption: bool) -> np.ndarray:
    """Brute force: every op whose target respects the bounds and keeps the pending
    allocation placeable (a pooled count of free GPUs when every job may use any GPU,
    else the simulator's ``can_place``); with ``monotone`` only ops that move a job's
    target the way it already moved this round (the pending target against the job's
    GPUs at the round's start), without ``allow_preemption`` no stop of a running job."""
    m = np.zeros(rnd.n_actions, bool)
    m[-1] = True
    for slot, job in enumerate(rnd.slot_jobs):
        if job is None:
            continue
        t = rnd.pending.get(job.idx, job.n_gpus)
        moved = np.sign(t - job.n_gpus)
        for op in range(rnd.n_ops):
            kind, d = rnd.op_kind[op], rnd.op_delta[op]
            if kind == 0:
                new = job.base_gpus if t == 0 else None
            elif kind == 3:
                new = 0 if t > 0 and (allow_preemption or job.n_gpus == 0) else None
            elif t > 0 and job.elastic:
                new = t + d if kind == 1 else t - d
                if not job.min_gpus <= new <= job.max_gpus:
                    new = None
            else:
                new = None
            if new is not None and monotone and moved and np.sign(new - t) != moved:
                new = None
            if new is None:
                continue
            if new <= t and not rnd.rules.extras_own_or_empty:
                fits = True  # a shrink or stop only frees GPUs (it may move where a
                # start's base goes, which matters only when extras keep to own servers)
            elif rnd.pooled:
                fits = rnd.pf - (new - t) >= 0
            else:
                fits = rnd.view.can_place({**rnd.pending, job.idx: new})
            m[op * rnd.n_slots + slot] = fits
    return m


@pytest.mark.parametrize(
    "monotone,allow_preemption,world",
    [
        (True, False, "aryl"),  # the env's defaults: Aryl's placement rules
        # a world where extra workers may take any free GPU (pooled counts apply)
        (True, False, "aryl-extras-anywhere"),
        (False, True, "aryl-extras-anywhere"),
        (True, True, "aryl-extras-anywhere"),
        (False, False, "aryl-extras-anywhere"),
    ],
)
def test_mask_matches_brute_force_and_engine_never_rejects(monotone, allow_preemption, world):
    env = AllocateEnv(
        "small",
        check_invariants=True,
        monotone_rounds=monotone,
        allow_preemption=allow_preemption,
        reclaim_policy=world,
    )
    rng = np.random.default_rng(0)
    env.reset(seed=1)
    stops = 0
    for _ in range(3000):
        mask = env.action_masks()
        np.testing.assert_array_equal(mask, _reference_mask(env.round, monotone, allow_preemption))
        _, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        stops += env.round.stops_of_running()
        assert not info["invalid"]
        if term or trunc:
            env.reset(seed=int(rng.integers(100)))
    # the rule is live: random valid actions stop running jobs exactly when allowed
    assert (stops > 0) == allow_preemption


def test_monotone_rounds_end_without_a_commit_and_never_undo():
    """Under the default round rules a round ends after finitely many valid ops: an agent
    that never commits (it takes the first valid non-commit op) still only commits when
    nothing else is valid, long before the cap; with the old rules it loops to the cap."""
    for monotone in (True, False):
        env = AllocateEnv("tiny", episode_hours=2.0, drain_hours=2.0, monotone_rounds=monotone)
        env.reset(seed=0, options={"split": "test"})
        rnd, longest, steps = env.round, 0, 0
        while True:
            targets: dict[int, list[int]] = {}
            n = 0
            while True:
                mask = env.action_masks()
                ops = np.flatnonzero(mask[:-1])
                a = int(ops[0]) if ops.size else rnd.commit_action
                if a != rnd.commit_action:
                    job = rnd.slot_jobs[a % rnd.n_slots]
                    targets.setdefault(job.idx, [job.n_gpus])
                before = rnd.rounds
                *_, term, trunc, info = env.step(a)
                steps += 1
                n += 1
                if rnd.rounds != before or term or trunc:  # committed, or the cap did
                    break
                targets[job.idx].append(rnd.pending[job.idx])
            longest = max(longest, n)
            for seq in targets.values():  # each job's target moved one way only
                d = np.diff(seq)
                assert not monotone or (d > 0).all() or (d < 0).all(), seq
            if term or trunc or steps > 20_000:
                break
        if monotone:
            assert term or trunc
            assert longest < rnd.max_actions  # every round ended with the agent's commit
        else:
            assert longest == rnd.max_actions  # the cap ended a round


@pytest.mark.parametrize(
    "kwargs", [{}, {"inelastic_on_lent": False}, {"queue_slots": 4, "running_slots": 2}]
)
def test_random_masked_policy_never_triggers_invalid_decision(kwargs):
    # InvalidDecision from the engine would propagate out of step()
    env = AllocateEnv("tiny", episode_hours=4.0, drain_hours=6.0, check_invariants=True, **kwargs)
    rng = np.random.default_rng(1)
    for _ in range(3):
        steps, _, info = _random_episode(env, rng, max_steps=20_000)
        assert info["invalid_actions"] == 0
    env = ReclaimEnv("small", check_invariants=True)
    for _ in range(3):
        _, _, info = _random_episode(env, rng)
        assert info["invalid_actions"] == 0


def test_invalid_action_is_a_counted_noop():
    env = AllocateEnv("small")
    obs0, info0 = env.reset(seed=2)
    bad = np.flatnonzero(~info0["action_mask"])
    assert bad.size
    pending = dict(env.round.pending)
    obs1, r, term, trunc, info = env.step(int(bad[0]))
    assert info["invalid"] and info["invalid_actions"] == 1 and r == 0.0 and not (term or trunc)
    assert env.round.pending == pending
    changed = np.flatnonzero(obs0 != obs1)
    round_actions = env.round.n_slots * N_SLOT_F + 11
    assert set(changed) <= {round_actions}
    np.testing.assert_array_equal(info["action_mask"], info0["action_mask"])

    renv = ReclaimEnv("small")
    _, rinfo = renv.reset(seed=0)
    rbad = np.flatnonzero(~rinfo["action_mask"])
    if rbad.size:
        _, r, *_, info = renv.step(int(rbad[0]))
        assert info["invalid"] and info["invalid_actions"] == 1 and r == 0.0


def test_unmasked_random_actions_are_safe():
    """check_env-style play without masks: invalid actions never crash, and the per-round
    cap ends every round."""
    env = AllocateEnv("tiny", episode_hours=3.0, drain_hours=3.0, max_actions_per_round=20)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(3000):
        *_, term, trunc, info = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    assert info["invalid_actions"] >= 0
    renv = ReclaimEnv("small")
    renv.reset(seed=0)
    renv.action_space.seed(0)
    for _ in range(200):
        *_, term, trunc, _ = renv.step(renv.action_space.sample())
        if term or trunc:
            renv.reset()


# ---------------------------------------------------------------------- episodes
def test_splits_are_disjoint_and_windows_stay_inside():
    s = EpisodeSampler("small", episode_hours=6.0)
    bounds = [s.split_bounds(x) for x in SPLITS]
    assert bounds[0][1] == bounds[1][0] and bounds[1][1] == bounds[2][0]
    seen: dict[str, set[str]] = {x: set() for x in SPLITS}
    for split, (lo, hi) in zip(SPLITS, bounds, strict=True):
        for seed in range(30):
            spec = s.sample(np.random.default_rng(seed), split)
            assert spec.split == split and lo <= spec.start_s < spec.end_s <= hi
            sub = spec.jobs.submit_time + spec.start_s
            assert len(sub) and (sub >= spec.start_s).all() and (sub < spec.end_s).all()
            assert spec.jobs.submit_time.min() >= 0.0
            seen[split] |= set(spec.jobs.job_id.tolist())
    assert (
        not seen["train"] & seen["val"]
        and not seen["train"] & seen["test"]
        and not seen["val"] & seen["test"]
    )


def test_reset_options_pin_split_start_and_trace(tmp_path):
    from aryl_gym.workload.trace_io import save_trace

    env = AllocateEnv("small")
    lo, hi = env.sampler.split_bounds("val")
    env.reset(seed=0, options={"split": "val", "start": lo + 3600.0})
    assert env.spec_.split == "val" and env.spec_.start_s == lo + 3600.0
    env.reset(options={"start": lo + 10.0})  # the split follows from the start
    assert env.spec_.split == "val"
    with pytest.raises(ValueError):
        env.reset(options={"split": "train", "start": lo + 10.0})
    with pytest.raises(ValueError):
        env.reset(options={"bogus": 1})
    # a trace file replaces the workload
    jobs, _ = env.sampler.workload()
    path = tmp_path / "t.csv"
    save_trace(jobs.select(np.arange(200)), path)
    env.reset(seed=0, options={"trace": str(path), "split": "test"})
    assert set(env.spec_.jobs.job_id.tolist()) <= set(jobs.job_id[:200].tolist())
    # the same seed gives the same window
    a = env.reset(seed=5)[0]
    s5 = env.spec_.start_s
    b = env.reset(seed=5)[0]
    assert env.spec_.start_s == s5 and np.array_equal(a, b)


# ---------------------------------------------------------------------- rewards
def _aryl_driver_episode(env, seed: int, split: str = "test"):
    """Aryl acting through Allocate-v0's actions; returns (summary, return, untranslatable)."""
    from aryl_gym.baselines.aryl import ArylPolicy

    env.reset(seed=seed, options={"split": split})
    aryl = ArylPolicy()
    aryl.reset(env.engine.view, env.spec_.engine_seed)
    total, missing = 0.0, 0
    while True:
        rnd, view = env.round, env.engine.view
        acts, untranslatable = rnd.actions_for(aryl.allocate(view), view)
        missing += untranslatable
        for a in acts + [rnd.commit_action]:
            if not env.action_masks()[a]:  # only when a job of the plan had no slot
                assert missing
                continue
            _, r, term, trunc, info = env.step(a)
            total += r
            if term or trunc:
                return info["summary"], total, missing


def test_allocate_return_is_minus_total_jct_and_final_info_has_summary():
    env = AllocateEnv("small", reclaim_policy="aryl")
    summary, ret, _ = _aryl_driver_episode(env, seed=4)
    assert set(SUMMARY_KEYS) - {"wall_s"} <= set(summary)
    assert summary["jobs_finished"] == summary["jobs_total"] > 0
    total_jct = summary["avg_jct_s"] * summary["jobs_finished"]
    assert math.isclose(-ret * env.reward_scale, total_jct, rel_tol=1e-9)


def test_preemption_penalty_charges_every_preemption():
    # the env before the learning defaults: periodic rounds, and the random agent's
    # stops preempt too (allow_preemption), besides the reclaims
    env = AllocateEnv(
        "tiny",
        episode_hours=4.0,
        drain_hours=6.0,
        preemption_penalty=600.0,
        periodic_rounds=True,
        monotone_rounds=False,
        allow_preemption=True,
    )
    rng = np.random.default_rng(3)
    _, ret, info = _random_episode(env, rng)
    jis = env.engine.metrics.jobs_in_system_s
    assert info["preemptions"] == info["summary"]["preemptions"] > 0
    assert math.isclose(-ret * 3600.0, jis + 600.0 * info["preemptions"], rel_tol=1e-9)


@pytest.mark.parametrize("cost", ["count", "lost_gpu_seconds"])
def test_reclaim_return_is_minus_reclaim_cost(cost):
    env = ReclaimEnv("small", cost=cost)
    rng = np.random.default_rng(5)
    for _ in range(3):
        _, ret, info = _random_episode(env, rng)
        s = info["summary"]
        # Aryl's allocation never preempts, so every preemption comes from a reclaim
        if cost == "count":
            assert -ret == s["preemptions"]
        else:
            assert math.isclose(-ret, s["lost_gpu_hours"], rel_tol=1e-9, abs_tol=1e-9)


# ---------------------------------------------------------------------- consistency
@pytest.mark.parametrize(
    "scenario,split,seed",
    [
        ("tiny", "test", 0),
        ("small", "test", 0),
        ("small", "test", 1),
        ("small", "train", 2),
        ("small", "val", 3),
    ],
)
def test_aryl_through_allocate_actions_equals_aryl_on_the_simulator(scenario, split, seed):
    # 64 + 64 slots: every job Aryl touches gets one (with the default 16 + 16 a busy
    # round of the train split can touch a running job without a slot; docs/envs.md).
    # Aryl's own rounds (periodic); the default round rules (monotone, no preemption)
    # express all of its decisions.
    env = AllocateEnv(scenario, split=split, queue_slots=64, running_slots=64, periodic_rounds=True)
    via_env, _, missing = _aryl_driver_episode(env, seed, split)
    direct = evaluate("aryl", scenario, split, seeds=(seed,))[0]
    assert missing == 0  # every job Aryl touched had a slot
    for k, v in direct.items():
        if k in ("policy", "seed"):
            continue
        w = via_env[k]
        assert (v == w) or (v != v and w != w), (k, v, w)


def test_aryl_through_reclaim_actions_equals_aryl_on_the_simulator():
    from aryl_gym.baselines.aryl import ArylPolicy

    from aryl_gym.simulate import run_policy

    env = ReclaimEnv("small", split="test")
    for seed in range(3):
        via_env = evaluate("aryl", "small", "test", seeds=(seed,), env="reclaim")[0]
        env.reset(seed=seed, options={"split": "test"})
        spec = env.spec_
        res = run_policy(
            spec.scenario, ArylPolicy(), spec.engine_seed, jobs=spec.jobs, demand=spec.demand
        )
        direct = res.summary
        assert via_env["untranslatable_picks"] == 0
        for k in (
            "jobs_finished",
            "avg_jct_s",
            "p95_jct_s",
            "preemptions",
            "resizes",
            "lost_gpu_hours",
            "rounds",
        ):
            assert via_env[k] == direct[k], k
        assert via_env["reward_preemptions"] == direct["preemptions"]


# ---------------------------------------------------------------------- evaluate
def test_evaluate_heuristics_on_small_test_split():
    rows = aryl_gym.evaluate("aryl", "small", "test", seeds=(0, 1))
    base = evaluate("baseline", "small", "test", seeds=(0, 1))
    assert [r["seed"] for r in rows] == [0, 1]
    for a, b in zip(rows, base, strict=True):
        assert a["start_s"] == b["start_s"] and a["jobs_total"] == b["jobs_total"]
        assert a["policy"] == "aryl" and b["policy"] == "baseline"
        assert a["avg_lent_servers"] > 0 and b["avg_lent_servers"] == 0
    df = evaluate("baseline", "small", "test", seeds=(0,), as_frame=True)
    assert list(df["avg_jct_s"]) == [base[0]["avg_jct_s"]]
    # the windows are the env's: reset(seed) on the same split gives the same start
    env = AllocateEnv("small")
    env.reset(seed=1, options={"split": "test"})
    assert env.spec_.start_s == rows[1]["start_s"]


def _greedy_start(n_slots: int):
    """A scripted agent: start the first startable slot, else commit."""

    def act(obs, mask):
        starts = np.flatnonzero(mask[:n_slots])
        return int(starts[0]) if starts.size else len(mask) - 1

    return act


def test_agent_policy_matches_the_env():
    env = AllocateEnv("small")
    act = _greedy_start(env.round.n_slots)
    agent = AgentPolicy.from_env(env, act, name="greedy-start")
    via_eval = evaluate(agent, "small", "test", seeds=(2,))[0]
    obs, info = env.reset(seed=2, options={"split": "test"})
    while True:
        obs, _, term, trunc, info = env.step(act(obs, info["action_mask"]))
        if term or trunc:
            break
    s = info["summary"]
    for k in ("jobs_finished", "avg_jct_s", "preemptions", "resizes", "rounds", "sim_time_s"):
        assert via_eval[k] == s[k], k
    assert via_eval["policy"] == "greedy-start"


def test_reclaim_agent_policy_through_evaluate():
    env = ReclaimEnv("small")
    agent = AgentPolicy.from_env(env, lambda obs, mask: int(np.flatnonzero(mask)[-1]))
    rows = evaluate(agent, "small", "test", seeds=(0, 1), env="reclaim")
    assert all(r["jobs_finished"] == r["jobs_total"] for r in rows)


# ---------------------------------------------------------------------- vector envs
def test_gymnasium_vector_envs():
    for cls in (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv):
        for env_id in (ALLOC, RECL):
            venv = cls([functools.partial(make_env, env_id) for _ in range(2)])
            venv.reset(seed=0)
            for _ in range(5):
                obs, r, term, trunc, info = venv.step(np.full(2, venv.single_action_space.n - 1))
            assert obs.shape == (2, *venv.single_observation_space.shape)
            venv.close()


def test_sb3_subproc_vec_env():
    pytest.importorskip("stable_baselines3", reason="the RL stack is the optional extra .[rl]")
    from stable_baselines3.common.vec_env import SubprocVecEnv

    for env_id in (ALLOC, RECL):
        venv = SubprocVecEnv([functools.partial(make_env, env_id) for _ in range(2)])
        venv.seed(0)
        venv.reset()
        for _ in range(5):
            masks = np.stack(venv.env_method("action_masks"))
            acts = np.array([np.flatnonzero(m)[0] for m in masks])
            venv.step(acts)
        venv.close()


def test_maskable_ppo_trains_and_evaluates():
    pytest.importorskip("sb3_contrib", reason="the RL stack is the optional extra .[rl]")
    from sb3_contrib import MaskablePPO

    short = dict(episode_hours=1.0, drain_hours=1.0)  # an untrained agent's episodes are long
    env = gym.make(ALLOC, scenario="tiny", max_actions_per_round=4, **short)
    model = MaskablePPO(
        "MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(128)
    agent = AgentPolicy.from_env(
        env, lambda obs, mask: int(model.predict(obs, action_masks=mask, deterministic=True)[0])
    )
    rows = evaluate(agent, "tiny", "test", seeds=(0,), **short)
    assert rows[0]["jobs_total"] > 0 and agent.invalid_actions == 0


def test_reward_objects_by_name_or_instance():
    from aryl_gym.envs.rewards import JobsInSystem, Reward, StepOutcome

    class CountPreemptions(Reward):
        name = "count-preemptions"

        def __call__(self, outcome: StepOutcome) -> float:
            return -float(outcome.preemptions)

    # the default named reward equals an explicit instance with the same settings
    a = AllocateEnv("tiny", episode_hours=4.0, drain_hours=6.0, reward="jct")
    b = AllocateEnv("tiny", episode_hours=4.0, drain_hours=6.0, reward=JobsInSystem(3600.0))
    _, ret_a, _ = _random_episode(a, np.random.default_rng(7))
    _, ret_b, _ = _random_episode(b, np.random.default_rng(7))
    assert ret_a == ret_b != 0.0
    # a new reward is one class: the env calls it and returns its value
    c = AllocateEnv("tiny", episode_hours=4.0, drain_hours=6.0, reward=CountPreemptions())
    _, ret_c, info = _random_episode(c, np.random.default_rng(3))
    assert ret_c == -info["preemptions"]
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        AllocateEnv("tiny", reward="nope")
    r = ReclaimEnv("small", reward="lost_gpu_seconds")
    assert r.reward.name == "lost_gpu_seconds" and r.reward_scale == 3600.0
