"""ArylGym/Round-v0: a valid Gymnasium env whose zero action is Aryl, and whose rewards
add up to Aryl's total JCT minus the agent's."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from aryl_gym.envs import make_env
from aryl_gym.envs.round import JobsInSystem, RoundEnv

KW = dict(episode_hours=6.0, drain_hours=72.0)


def _episode(env: RoundEnv, seed: int, act) -> tuple[float, int, dict]:
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    total, steps = 0.0, 0
    while True:
        obs, r, term, trunc, info = env.step(act(env))
        total += r
        steps += 1
        assert env.observation_space.contains(obs)
        if term or trunc:
            return total, steps, info


def test_passes_the_env_checkers():
    env = RoundEnv("small", **KW)
    check_env(env, skip_render_check=True)
    env = make_env("ArylGym/Round-v0", scenario="small", **KW)
    assert env.unwrapped.action_space.shape == (16,)


@pytest.mark.parametrize("seed", [0, 3])
def test_zero_action_is_aryl(seed):
    env = RoundEnv("small", **KW)
    total, steps, info = _episode(env, seed, lambda e: np.zeros(e.n_slots, np.float32))
    assert steps > 5  # rounds with a choice reached the agent
    assert info["summary"] == info["reference_summary"]
    assert total == pytest.approx(0.0, abs=1e-9)


def test_rewards_sum_to_aryls_total_jct_minus_the_agents():
    env = RoundEnv("small", **KW)
    rng = np.random.default_rng(3)
    total, steps, info = _episode(  # a window where random weights change the outcome
        env, 3, lambda e: rng.uniform(-1, 1, e.n_slots).astype(np.float32)
    )
    mine, ref = info["summary"], info["reference_summary"]
    assert mine["jobs_unfinished"] == 0 and ref["jobs_unfinished"] == 0
    expected = (ref["avg_jct_s"] - mine["avg_jct_s"]) * mine["jobs_finished"] / 3600.0
    assert abs(expected) > 0.1  # the weights changed the episode: the identity is not 0 = 0
    assert total == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_jobs_in_system_integral():
    f = JobsInSystem(np.array([0.0, 10.0]), np.array([5.0, 30.0]))
    assert f(0.0) == 0.0
    assert f(5.0) == pytest.approx(5.0)
    assert f(20.0) == pytest.approx(5.0 + 10.0)
    assert f(100.0) == pytest.approx(5.0 + 20.0)  # total job-time = sum of JCTs


def test_bad_actions_and_arguments_are_refused():
    env = RoundEnv("small", **KW)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(env.n_slots, np.nan))
    with pytest.raises(ValueError, match="16 finite"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="weight_base"):
        RoundEnv("small", weight_base=1.0)
    with pytest.raises(ValueError, match="value weights"):
        RoundEnv("small", policy="baseline")


def test_free_histograms_extend_the_observation_and_change_nothing_else():
    from aryl_gym.agents.round_scorers import LinearScorer, linear_features

    from aryl_gym.envs.round import GLOBAL_FEATURES, HISTOGRAM_FEATURES

    plain = RoundEnv("small", **KW)
    env = RoundEnv("small", free_histograms=True, **KW)
    check_env(env, skip_render_check=True)
    n = plain.observation_space.shape[0]
    assert env.observation_space.shape == (n + len(HISTOGRAM_FEATURES),)
    obs, _ = env.reset(seed=0)
    obs_plain, _ = plain.reset(seed=0)
    np.testing.assert_array_equal(obs[:n], obs_plain)
    # the bins count every server with a free GPU: with 8 GPUs per server, bin f holds
    # the servers with f free GPUs, as the simulator's own histogram says
    view = env._point.view
    hist_t, hist_l = view.free_histogram
    c = env.scenario.cluster
    expected = [hist_t[f] / c.training_servers for f in range(1, 9)]
    expected += [hist_l[f] / c.inference_servers for f in range(1, 9)]
    np.testing.assert_allclose(obs[n:], expected, atol=1e-6)
    assert obs[n:].sum() > 0  # a window start has free GPUs: the check is not 0 == 0
    # the linear scorer reads the same features from both, and a zero-action episode
    # is still Aryl's
    np.testing.assert_array_equal(linear_features(obs, 16), linear_features(obs_plain, 16))
    assert n == 16 * 7 + len(GLOBAL_FEATURES)
    LinearScorer(np.zeros(8))
    total, _, info = _episode(env, 0, lambda e: np.zeros(e.n_slots, np.float32))
    assert info["summary"] == info["reference_summary"] and total == pytest.approx(0.0)
