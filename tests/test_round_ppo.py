"""Round-v0 PPO (``aryl-gym train-round``): the set policy starts as the linear scorer
(same decisions), is permutation equivariant / invariant, its configs are checked key by key,
training is seeded, and the committed agent replays to the number stored beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("stable_baselines3")

import torch as th  # noqa: E402
from aryl_gym.agents.round_eval import workload_windows  # noqa: E402
from aryl_gym.agents.round_policy import RoundSetPolicy  # noqa: E402
from aryl_gym.agents.round_scorers import LINEAR_FEATURES, LinearScorer  # noqa: E402
from aryl_gym.agents.round_train import (  # noqa: E402
    CHECK_WINDOW,
    agent_check,
    load_round_config,
    train_round,
)
from aryl_gym.agents.train import ConfigError, load_config  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

from aryl_gym.cli import main  # noqa: E402
from aryl_gym.envs.round import RoundEnv  # noqa: E402
from aryl_gym.envs.workload_splits import WORKLOAD_SEED_SPLITS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "agents" / "configs"
AGENT = ROOT / "agents" / "trained" / "round"
THETA = [0.1, 0.3, -0.2, -0.4, 0.5, -0.1, 0.6, 0.4]


def _model(env: RoundEnv, theta=THETA, seed: int = 0) -> PPO:
    return PPO(RoundSetPolicy, env, policy_kwargs={"theta": theta}, seed=seed, device="cpu")


def _window(hours: float = 4.0):
    kw = {"episode_hours": hours, "drain_hours": 24.0}
    return workload_windows("small", [WORKLOAD_SEED_SPLITS["test"].start], "test", 1, kw)[0]


def test_step0_policy_is_the_linear_scorer():
    w = _window()
    model, scorer = _model(w.env), LinearScorer(np.asarray(THETA))
    seen = []

    def act(obs):
        a = model.predict(obs, deterministic=True)[0]
        # float64 dot products summed in another order can round to the next float32
        np.testing.assert_allclose(a, scorer(obs), rtol=0, atol=6e-8)
        seen.append(bool(np.any(a != 0)))
        return a

    mine = w.env.replay(w.spec, act)
    assert len(seen) > 20 and any(seen)  # the scorer does act on this window
    assert mine == w.env.replay(w.spec, scorer)  # the same decisions, to the last number
    # theta = 0 is Aryl: the same summary as the zero action
    zero = _model(w.env, theta=[0.0] * len(LINEAR_FEATURES))
    assert w.env.replay(w.spec, lambda o: zero.predict(o, deterministic=True)[0]) == (
        w.env.replay(w.spec, lambda o: np.zeros(16, np.float32))
    )


def test_mean_is_equivariant_and_value_invariant_in_the_filled_slots():
    env = RoundEnv("small", episode_hours=4.0)
    policy = _model(env).policy
    th.manual_seed(1)
    with th.no_grad():  # a residual that is not zero, so that the MLPs matter
        for p in policy.mlp_extractor.residual.parameters():
            p.normal_(0.0, 0.3)
    obs, _ = env.reset(seed=2)
    for _ in range(5):  # a round with several filled slots
        obs, *_ = env.step(np.zeros(16))
    n = int(obs[: 16 * 7].reshape(16, 7)[:, 0].sum())
    assert n >= 3
    perm = np.arange(16)
    perm[:n] = np.random.default_rng(0).permutation(n)
    slots = obs[: 16 * 7].reshape(16, 7)[perm].reshape(-1)
    both = th.as_tensor(np.stack([obs, np.concatenate([slots, obs[16 * 7 :]])]))
    with th.no_grad():
        mean = policy.mlp_extractor.forward_actor(both)
        value = policy.predict_values(both)
    assert th.allclose(mean[1], mean[0][perm], atol=1e-6)
    assert th.all(mean[0][n:] == 0)
    assert th.allclose(value[0], value[1], atol=1e-6)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (None, "n_timestep"),
        ("cem", "populaton"),
        ("policy_kwargs", "hiden"),
        ("eval", "eval_frq"),
        ("env_kwargs", "n_slot"),
        ("hyperparams", "learning_rte"),
    ],
)
def test_an_unknown_key_is_an_error_naming_it(tmp_path, section, key):
    cfg = yaml.safe_load((CONFIGS / "round_ppo.yaml").read_text())
    if section is None:
        cfg[key] = 1
    else:
        cfg[section] = {**(cfg.get(section) or {}), key: 1}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=rf"bad.yaml: unknown key '{key}'"):
        load_round_config(path)
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        load_config(path)  # `aryl-gym train` reads Round-v0 configs the same way


def test_config_errors_beyond_keys(tmp_path):
    cfg = yaml.safe_load((CONFIGS / "round_ppo.yaml").read_text())
    for change, match in [
        ({"env_kwargs": {"split": "val"}}, "may not set 'split'"),
        ({"curriculum": [[5, 4.0]]}, "curriculum"),
        ({"hyperparams": {"seed": 1}}, "may not set 'seed'"),
        ({"cem": [1, 2]}, "cem must be a mapping"),
    ]:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({**cfg, **change}))
        with pytest.raises(ConfigError, match=match):
            load_round_config(path)
    assert load_round_config(CONFIGS / "round_ppo.yaml")["cem"]["windows"] == 8


def _small_cfg() -> dict:
    cfg = load_round_config(CONFIGS / "round_ppo_smoke.yaml")
    cfg["env_kwargs"] = {"scenario": "small", "episode_hours": 1.0, "drain_hours": 6.0}
    cfg["curriculum"] = [[0, 1.0]]
    cfg["theta"] = None
    return cfg


def test_training_is_seeded_and_selects_on_validation(tmp_path, capsys):
    metas = [train_round(_small_cfg(), tmp_path / f"r{i}", progress=False) for i in range(2)]
    a, b = (PPO.load(tmp_path / f"r{i}" / "final_model.zip", device="cpu") for i in range(2))
    for (na, pa), (nb, pb) in zip(
        a.policy.state_dict().items(), b.policy.state_dict().items(), strict=True
    ):
        assert na == nb and th.equal(pa, pb), na
    assert metas[0]["val_history"] == metas[1]["val_history"]
    steps = [s for s, _ in metas[0]["val_history"]]
    assert steps == [0, 128, 256]
    # the policy moved, and best_model.zip is the best on validation (step 0 wins ties)
    theta0 = json.loads((tmp_path / "r0" / "cem_theta.json").read_text())["theta"]
    assert not th.equal(
        a.policy.mlp_extractor.residual[-1].weight,
        th.zeros_like(a.policy.mlp_extractor.residual[-1].weight),  # fmt: skip
    )
    gains = [g for _, g in metas[0]["val_history"]]
    assert metas[0]["val_gain_s_per_job"]["best"] == max(gains)
    assert metas[0]["val_gain_s_per_job"]["best_step"] == steps[gains.index(max(gains))]
    best = PPO.load(tmp_path / "r0" / "best_model.zip", device="cpu")
    assert best.policy.mlp_extractor.n_slots == 16
    assert len(theta0) == len(LINEAR_FEATURES)
    out = capsys.readouterr().out
    assert "stage 1: CEM" in out and "val at 0 steps" in out and "done:" in out


def test_cli_train_round_with_theta_skips_cem_and_evaluate_round_reads_the_zip(
    tmp_path, monkeypatch, capsys
):
    theta = tmp_path / "theta.json"
    from aryl_gym.agents.round_scorers import save_linear

    save_linear(theta, THETA)
    run = tmp_path / "run"
    args = ["train-round", "--config", str(CONFIGS / "round_ppo_smoke.yaml")]
    assert main([*args, "--run-dir", str(run), "--theta", str(theta), "--no-progress"]) == 0
    assert not (run / "cem_theta.json").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["theta"] == str(theta)
    assert main(["train-round", "--config", "smoke", "--run-dir", str(tmp_path / "x")]) == 2
    md = tmp_path / "t.md"
    common = ["--workloads", "1", "--window-hours", "2", "--drain-hours", "12"]
    common += ["--traces", "none", "--variants", "", "--scenario", "tiny", "--quiet"]
    ev = ["evaluate-round", "--agents", str(run / "best_model.zip"), *common]
    assert main([*ev, "--markdown", str(md)]) == 0
    assert "best_model.zip" in md.read_text()
    # `aryl-gym evaluate --agent ZIP` of a Round-v0 model is evaluate-round on it
    monkeypatch.setattr("aryl_gym.cli.round_eval.SHARED_TRACES", (tmp_path / "no-traces",))
    zip_path = str(run / "best_model.zip")
    ev = ["evaluate", "--agent", zip_path, "--seeds", "1", "--scenario", "tiny", "--quiet"]
    assert main([*ev, "--markdown", str(tmp_path / "e.md")]) == 0
    out = capsys.readouterr().out
    assert "is a Round-v0 model: aryl-gym evaluate-round --agents" in out
    assert "aryl-requested-base" in (tmp_path / "e.md").read_text()
    assert main([*ev, "--split", "train"]) == 2


@pytest.mark.skipif(not (AGENT / "model.zip").is_file(), reason="no committed round agent")
def test_the_committed_agent_replays_to_the_number_stored_beside_it():
    check = json.loads((AGENT / "check.json").read_text())
    window = {k: check[k] for k in CHECK_WINDOW}
    assert agent_check(AGENT / "model.zip", window) == check  # deterministic, and stored
    load_config(AGENT / "config.yaml")  # the committed config is valid


def test_the_set_policy_takes_free_histograms_as_globals():
    from aryl_gym.agents.round_policy import RoundSetNet

    env = RoundEnv("small", free_histograms=True, episode_hours=6.0)
    obs, _ = env.reset(seed=0)
    net = RoundSetNet(obs.shape[0], env.n_slots, [0.0] * 8)
    net.zero_residual()
    with th.no_grad():
        mean = net.forward_actor(th.as_tensor(obs[None, :]))
    assert mean.shape == (1, env.n_slots) and float(mean.abs().max()) == 0.0
    with pytest.raises(ValueError, match="not a Round-v0 observation"):
        RoundSetNet(obs.shape[0] + 1, env.n_slots, [0.0] * 8)
