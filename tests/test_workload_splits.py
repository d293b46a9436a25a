"""Round-v0's fresh workloads: named, disjoint workload-seed splits that training never
draws from the held-out ranges, reset options that pin or check them, and the
window-length curriculum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from aryl_gym.agents.curriculum import check_schedule, window_hours_at

from aryl_gym.envs.episodes import HOUR
from aryl_gym.envs.round import RoundEnv
from aryl_gym.envs.workload_splits import (
    HELD_OUT,
    WORKLOAD_SEED_SPLITS,
    check_workload_seed,
    draw_workload_seed,
    held_out_seeds,
    workload_split_of,
)

KW = dict(episode_hours=6.0, drain_hours=48.0)


def test_the_splits_are_disjoint_and_name_every_held_out_split():
    for (a, ra), (b, rb) in itertools.combinations(WORKLOAD_SEED_SPLITS.items(), 2):
        assert set(ra).isdisjoint(rb), (a, b)
    assert set(HELD_OUT) == set(WORKLOAD_SEED_SPLITS) - {"train"}
    assert workload_split_of(0) == "train"  # every seed used before the splits is train
    assert workload_split_of(WORKLOAD_SEED_SPLITS["test"].start) == "test"
    with pytest.raises(ValueError, match="no workload split"):
        workload_split_of(WORKLOAD_SEED_SPLITS["test"].stop)


def test_a_training_env_never_produces_a_held_out_seed():
    rng = np.random.default_rng(0)
    drawn = {draw_workload_seed(rng, "train") for _ in range(20_000)}
    assert all(workload_split_of(s) == "train" for s in drawn)
    env = RoundEnv("small", **KW)  # the default: fresh training workloads
    seeds = [env.episode_spec(seed=i).workload_seed for i in range(200)]
    assert all(s in WORKLOAD_SEED_SPLITS["train"] for s in seeds)
    assert len(set(seeds)) == 200  # a fresh workload per episode
    # the same code draws held-out seeds when asked to: the check above can fail
    val = RoundEnv("small", split="val", **KW)
    assert val.episode_spec(seed=0).workload_seed in WORKLOAD_SEED_SPLITS["val"]


def test_reset_draws_a_fresh_workload_deterministically():
    env = RoundEnv("small", **KW)
    env.reset(seed=3)
    spec = env.spec_
    assert spec.split == "train" and spec.workload_seed in WORKLOAD_SEED_SPLITS["train"]
    assert _same(env.episode_spec(seed=3), spec)  # what reset(seed=3) plays
    env.reset(seed=4)
    assert env.spec_.workload_seed != spec.workload_seed


def _same(a, b) -> bool:
    return (a.workload_seed, a.start_s, a.engine_seed) == (
        b.workload_seed,
        b.start_s,
        b.engine_seed,
    )


def test_reset_options_pin_and_check_the_workload_seed():
    env = RoundEnv("small", **KW)
    test_seed = WORKLOAD_SEED_SPLITS["test"].start + 7
    env.reset(seed=0, options={"workload_seed": test_seed})
    assert env.spec_.workload_seed == test_seed and env.spec_.split == "test"
    with pytest.raises(ValueError, match="not a 'train' workload"):
        env.reset(seed=0, options={"workload_seed": test_seed, "split": "train"})
    with pytest.raises(ValueError, match="no workload split"):
        env.reset(seed=0, options={"workload_seed": 5_000_000})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"workload": 1})
    with pytest.raises(ValueError, match="fresh_workloads=False"):
        env.reset(seed=0, options={"trace": "x.csv"})
    with pytest.raises(ValueError, match="fresh_workloads needs"):
        RoundEnv("small", trace="traces/example.csv", fresh_workloads=True)
    with pytest.raises(ValueError, match="integer"):
        check_workload_seed(2.5, "train")


def test_window_hours_per_reset_and_by_the_curriculum_hook():
    env = RoundEnv("small", **KW)
    env.reset(seed=1, options={"window_hours": 3})
    assert env.spec_.end_s - env.spec_.start_s == pytest.approx(3 * HOUR)
    assert env.spec_.scenario.max_time_s == pytest.approx((3 + 48) * HOUR)
    env.set_window_hours(2.0)
    env.reset(seed=1)
    assert env.spec_.end_s - env.spec_.start_s == pytest.approx(2 * HOUR)
    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(ValueError, match="window_hours"):
            env.reset(seed=1, options={"window_hours": bad})
        with pytest.raises(ValueError, match="window_hours"):
            env.set_window_hours(bad)


def test_fixed_workload_mode_keeps_the_time_splits():
    env = RoundEnv("small", fresh_workloads=False, workload_seed=0, **KW)
    lo, hi = env.sampler.split_bounds("test")
    env.reset(seed=0, options={"split": "test"})
    assert env.spec_.workload_seed == 0 and lo <= env.spec_.start_s < hi


def test_held_out_seeds_come_from_held_out_splits_only():
    assert held_out_seeds("test", 5) == list(WORKLOAD_SEED_SPLITS["test"][:5])
    with pytest.raises(ValueError, match="not 'train'"):
        held_out_seeds("train", 5)
    with pytest.raises(ValueError, match="number of workloads"):
        held_out_seeds("val", 0)


def test_curriculum_schedule():
    sched = [(0, 2.0), (1000, 6.0), (5000, 12.0)]
    assert [window_hours_at(s, sched) for s in (0, 999, 1000, 4999, 10**6)] == [2, 2, 6, 6, 12]
    with pytest.raises(ValueError, match="step 0"):
        check_schedule([(10, 2.0)])
    with pytest.raises(ValueError, match="rise"):
        check_schedule([(0, 2.0), (0, 3.0)])
    with pytest.raises(ValueError, match="entry 1 hours"):
        check_schedule([(0, 2.0), (5, -1)])


def test_curriculum_callback_sets_the_envs_window():
    pytest.importorskip("stable_baselines3")
    from aryl_gym.agents.curriculum import window_curriculum
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from aryl_gym.envs import make_env

    vec = make_vec_env(
        make_env, n_envs=1, seed=0, env_kwargs=dict(env_id="ArylGym/Round-v0", scenario="tiny")
    )
    model = PPO("MlpPolicy", vec, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(32, callback=window_curriculum([(0, 2.0), (16, 3.0)]))
    assert vec.get_attr("window_hours") == [3.0]
