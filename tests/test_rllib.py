"""RLlib support (aryl_gym/envs/rllib.py) and the example agents/rllib_ppo.py.

The wrapper tests need only gymnasium; the RLlib ones skip when RLlib is not installed
(``pip install -e '.[rllib]'``).
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from aryl_gym.envs import make_env
from aryl_gym.envs.rllib import ActionMaskObservation, make_masked_env, rllib_env_creator

SMALL = {"scenario": "tiny", "episode_hours": 0.5, "drain_hours": 1.0}
# Reclaim-v0 needs a window in which the inference pool reclaims lent servers
KWARGS = {
    "ArylGym/Allocate-v0": SMALL,
    "ArylGym/Reclaim-v0": {"scenario": "small", "episode_hours": 24.0, "drain_hours": 2.0},
}
NEEDS_RLLIB = "RLlib not installed (pip install -e '.[rllib]')"


def _rllib():
    """Skip the calling test when RLlib (with its own dependencies) cannot be imported."""
    return pytest.importorskip("ray.rllib", reason=NEEDS_RLLIB)


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")
@pytest.mark.parametrize("env_id", list(KWARGS))
def test_masked_env_passes_gymnasium_checker(env_id):
    env = make_masked_env(env_id, **KWARGS[env_id])
    check_env(env, skip_render_check=True)
    env.close()


def test_mask_matches_env_and_episode_has_no_invalid_actions():
    env = make_masked_env("ArylGym/Allocate-v0", **SMALL)
    assert set(env.observation_space.spaces) == {"action_mask", "observations"}
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=3)
    done, steps = False, 0
    while not done and steps < 400:
        assert obs["action_mask"].dtype == np.float32
        assert obs in env.observation_space
        mask = env.unwrapped.action_masks()
        np.testing.assert_array_equal(obs["action_mask"], mask.astype(np.float32))
        np.testing.assert_array_equal(env.action_masks(), mask)
        action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
        obs, _, terminated, truncated, info = env.step(action)
        done, steps = terminated or truncated, steps + 1
    assert not info.get("invalid", False)
    assert info.get("invalid_actions", 0) == 0


def test_creator_passes_env_kwargs_and_can_skip_the_mask():
    masked = rllib_env_creator("ArylGym/Allocate-v0")({**SMALL, "queue_slots": 2, "num_envs": 1})
    assert isinstance(masked, ActionMaskObservation)
    assert masked.action_space.n == 12 * (2 + 16) + 1  # 2 queue + 16 running slots
    kw = KWARGS["ArylGym/Reclaim-v0"]
    plain = rllib_env_creator("ArylGym/Reclaim-v0")({**kw, "action_mask": False})
    assert not isinstance(plain, ActionMaskObservation)
    assert plain.observation_space == make_env("ArylGym/Reclaim-v0", **kw).observation_space


def test_register_rllib_envs_registers_both_names():
    _rllib()
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from aryl_gym.envs.rllib import register_rllib_envs

    names = register_rllib_envs()
    assert names == ("ArylGym/Allocate-v0", "ArylGym/Reclaim-v0")
    for name in names:
        assert _global_registry.contains(ENV_CREATOR, name)
        env = _global_registry.get(ENV_CREATOR, name)(dict(KWARGS[name]))
        assert isinstance(env, ActionMaskObservation)
        env.close()


def test_rllib_ppo_example_trains_two_iterations(capsys):
    _rllib()
    import ray
    import torch
    from aryl_gym.agents import rllib_ppo

    threads = torch.get_num_threads()  # the example sets 1; give the other tests theirs back
    try:
        out = rllib_ppo.main(["--iterations", "2", "--batch", "256", "--minibatch", "128",
                              "--epochs", "1"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
        if ray.is_initialized():
            ray.shutdown()
    printed = capsys.readouterr().out
    assert "iteration 1: episode_return_mean=" in printed
    assert "iteration 2: episode_return_mean=" in printed
    assert len(out["episode_return_mean"]) == 2
    # masking held: no masked action while sampling for training (counted by the env) and
    # none in the trained module's greedy episode
    assert out["train_invalid_actions"] == 0
    assert out["masked_picks"] == 0 and out["invalid_actions"] == 0
    assert out["greedy_steps"] > 0 and np.isfinite(out["greedy_return"])
