"""Defaults that learn: the shortest training script of docs/agents.md trains and its
evaluation commits rounds; evaluate's step guard, progress bar and env settings; the
episode summary when a time limit truncates an episode; checked training configs."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import aryl_gym  # noqa: F401  (registers the envs)
from aryl_gym.envs.allocate import AllocateEnv
from aryl_gym.envs.reclaim import ReclaimEnv
from aryl_gym.evaluation import DEFAULT_MAX_STEPS, AgentPolicy, StepLimitExceeded, evaluate
from aryl_gym.sim.metrics import SUMMARY_KEYS

ROOT = Path(__file__).resolve().parents[1]
AGENTS_MD = ROOT / "docs" / "agents.md"
RL_REASON = "the RL stack is the optional extra: pip install -e '.[rl]'"
#: Allocate-v0's round settings before the defaults that learn.
OLD_ROUNDS = dict(periodic_rounds=True, monotone_rounds=False, allow_preemption=True)


def _shortest_script() -> str:
    """The Python block after the ``<!-- shortest-script -->`` marker of docs/agents.md."""
    text = AGENTS_MD.read_text()
    m = re.search(r"<!-- shortest-script -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/agents.md lost its shortest script (the <!-- shortest-script --> block)"
    return m.group(1)


def _first_op(n_ops_actions: int):
    """A scripted agent that never commits by itself: the first valid op, else commit."""

    def act(obs: np.ndarray, mask: np.ndarray) -> int:
        ops = np.flatnonzero(mask[:n_ops_actions])
        return int(ops[0]) if ops.size else len(mask) - 1

    return act


# ---------------------------------------------------------------------- the shortest script
def test_the_documented_shortest_script_trains_and_its_evaluation_commits_rounds(capsys):
    """The script at the top of docs/agents.md, run as written (MaskablePPO with SB3's
    defaults, 2,048 steps, then evaluate on the test split): every evaluation episode
    ends (evaluate returns only then; the step guard would raise), finishes jobs, and the
    agent commits its rounds itself instead of running them to the round cap."""
    pytest.importorskip("sb3_contrib", reason=RL_REASON)
    torch = pytest.importorskip("torch", reason=RL_REASON)
    torch.set_num_threads(1)  # as the 2-core machine the figures come from
    code = _shortest_script()
    assert 'scenario="tiny"' in code  # the test's budget: tiny (the docs give small's time)
    scope: dict = {}
    exec(compile(code, str(AGENTS_MD), "exec"), scope)  # its time: docs/agents.md, measured
    rows, env = scope["rows"], scope["env"].unwrapped
    assert scope["model"].num_timesteps >= 2048
    assert [r["seed"] for r in rows] == [0, 1, 2, 3, 4]
    for r in rows:
        assert r["jobs_finished"] > 0, r
        assert r["agent_commits"] > 0, r  # its own commit action, not the cap
        assert r["agent_capped"] == 0, r  # no round ran to the cap
        assert r["agent_steps"] < DEFAULT_MAX_STEPS
        # far fewer steps per round than the cap allows
        assert r["agent_steps"] < 0.25 * env.round.max_actions * r["agent_commits"], r
    assert "rounds committed" in capsys.readouterr().out  # the script's own report


def test_the_same_script_under_the_old_round_settings_does_not_commit():
    """Why the defaults changed: the same untrained-ish start under the old settings never
    commits, so the step guard stops the evaluation with a message naming the agent,
    the scenario, the episode and the step count. (A scripted agent that never commits
    stands for it: deterministic and without the RL stack.)"""
    env = AllocateEnv("tiny", **OLD_ROUNDS)
    agent = AgentPolicy.from_env(env, _first_op(env.round.commit_action), name="first-op")
    with pytest.raises(StepLimitExceeded) as err:
        evaluate(agent, seeds=(0,), max_steps=3000, progress=False)
    msg = str(err.value)
    for part in ("'first-op'", "3001 env steps", "scenario 'tiny'", "test split, seed 0"):
        assert part in msg, (part, msg)
    assert "0 rounds committed" in msg and "round cap of 192 actions" in msg
    # the same agent under the default settings: every round ends, committed by it
    env = AllocateEnv("tiny")
    agent = AgentPolicy.from_env(env, _first_op(env.round.commit_action), name="first-op")
    (row,) = evaluate(agent, seeds=(0,), max_steps=3000, progress=False)
    assert row["jobs_finished"] > 0 and row["agent_commits"] > 0
    assert row["agent_steps"] <= 3000


# ---------------------------------------------------------------------- evaluate
def test_evaluate_takes_the_envs_scenario_and_episodes():
    env = AllocateEnv("tiny", episode_hours=2.0, drain_hours=3.0)
    agent = AgentPolicy.from_env(env, _first_op(env.round.commit_action))
    (row,) = evaluate(agent, seeds=(1,), progress=False)  # no scenario: the env's
    env.reset(seed=1, options={"split": "test"})
    assert (row["start_s"], row["end_s"]) == (env.spec_.start_s, env.spec_.end_s)
    assert row["jobs_total"] == env.spec_.n_jobs
    # a heuristic on an env instance runs on that env's episodes too
    (aryl,) = evaluate("aryl", seeds=(1,), env=env, progress=False)
    assert (aryl["start_s"], aryl["end_s"], aryl["jobs_total"]) == (
        row["start_s"],
        row["end_s"],
        row["jobs_total"],
    )
    # explicit keywords override the env's
    (short,) = evaluate("aryl", seeds=(1,), env=env, episode_hours=1.0, progress=False)
    assert short["end_s"] - short["start_s"] <= 3600.0 < row["end_s"] - row["start_s"]
    # Reclaim-v0: the env's windows (3 h here), not the defaults
    renv = ReclaimEnv("small", episode_hours=3.0)
    rows = evaluate("aryl", seeds=(0, 1), env=renv, progress=False)
    assert all(r["end_s"] - r["start_s"] <= 3 * 3600.0 for r in rows)


def test_reclaim_evaluation_runs_on_pass_through_episodes():
    """tiny's inference pool never lends two servers: every Reclaim-v0 episode passes
    through, and evaluating a heuristic on it used to fail on its empty plan."""
    rows = evaluate("aryl", "tiny", seeds=(0, 1), env="reclaim", progress=False)
    assert all(r["jobs_finished"] > 0 for r in rows)


def test_evaluate_shows_a_progress_bar_unless_told_not_to(monkeypatch):
    bars: list = []

    class FakeBar:
        def __init__(self, **kw) -> None:
            self.kw, self.n, self.postfix = kw, 0, []
            bars.append(self)

        def update(self, k: int) -> None:
            self.n += k

        def set_postfix_str(self, s: str) -> None:
            self.postfix.append(s)

        def close(self) -> None:
            self.closed = True

    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    env = AllocateEnv("tiny", **OLD_ROUNDS)
    agent = AgentPolicy.from_env(env, _first_op(env.round.commit_action), name="first-op")
    with pytest.raises(StepLimitExceeded):
        evaluate(agent, seeds=(0, 1), max_steps=2500)
    (bar,) = bars
    assert not bar.kw["disable"] and bar.kw["total"] == 2 and bar.closed
    assert bar.kw["desc"] == "first-op on tiny (test)"
    # the agent's steps and simulated time while an episode runs
    assert bar.postfix and bar.postfix[-1].startswith(
        "scenario 'tiny', test split, seed 0: 2000 steps"
    )
    evaluate("aryl", "tiny", seeds=(0, 1, 2), progress=False)
    assert bars[-1].kw["disable"] and bars[-1].n == 3


def test_cli_step_guard_default_matches_the_library():
    from aryl_gym.cli import agents as cli_agents

    assert cli_agents.DEFAULT_MAX_STEPS == DEFAULT_MAX_STEPS


# ---------------------------------------------------------------------- summary on truncation
@pytest.mark.parametrize(
    "env_id,kwargs,action",
    [
        ("ArylGym/Allocate-v0", {"scenario": "tiny"}, "masked"),
        ("ArylGym/Reclaim-v0", {"scenario": "small"}, "masked"),
        ("ArylGym/Round-v0", {"scenario": "small", "episode_hours": 6.0}, "zeros"),
    ],
)
def test_summary_on_truncation_by_a_time_limit_and_by_the_horizon(env_id, kwargs, action):
    """gym.make's TimeLimit truncates outside the env; the step it truncates still carries
    the episode's summary (Round-v0: and Aryl's reference summary), equal to the env's
    summary at that point. The env's own horizon truncation carries it as well."""
    want = set(SUMMARY_KEYS) - {"wall_s"}

    def act(env):
        if action == "zeros":
            return np.zeros(env.action_space.shape, np.float32)
        return int(np.flatnonzero(env.unwrapped.action_masks())[0])

    cut = 0
    for seed in range(6):  # TimeLimit after 2 steps: an episode that lasts longer is cut
        env = gym.make(env_id, max_episode_steps=2, **kwargs)
        env.reset(seed=seed)
        for _ in range(2):
            *_, term, trunc, info = env.step(act(env))
            if term or trunc:
                break
        assert "summary" in info and want <= set(info["summary"])
        if trunc and not term and not env.unwrapped._done:  # cut by the time limit
            cut += 1
            assert info["summary"] == env.unwrapped.summary()
            if env_id.endswith("Round-v0"):
                assert info["reference_summary"] == env.unwrapped.reference_summary
    assert cut > 0  # the time limit did cut episodes
    # the horizon: 6 min of drain after a 1 h window (Reclaim: 6 h) leaves jobs unfinished
    env = gym.make(env_id, **{**kwargs, "episode_hours": 1.0, "drain_hours": 0.1})
    for seed in range(10):
        env.reset(seed=seed)
        while True:
            *_, term, trunc, info = env.step(act(env))
            if term or trunc:
                break
        if trunc:
            assert want <= set(info["summary"]) and info["summary"]["jobs_unfinished"] > 0
            break
    else:
        pytest.fail("no episode reached the horizon")


# ---------------------------------------------------------------------- defaults
def test_env_defaults_are_the_learning_settings_and_the_old_ones_stay_reachable():
    env = AllocateEnv("tiny")
    assert not env.periodic_rounds and env.round.monotone and not env.round.allow_preemption
    old = AllocateEnv("tiny", **OLD_ROUNDS)
    assert old.periodic_rounds and not old.round.monotone and old.round.allow_preemption
    assert ReclaimEnv("small").sampler.episode_s == 6 * 3600.0
    # an agent built from an env takes its settings; one built by hand the env's defaults
    agent = AgentPolicy(lambda o, m: 0)
    assert not agent.periodic_rounds and agent.round.options() == env.round.options() | {
        "gpu_scale": 32.0
    }


def test_committed_agents_pin_the_env_they_were_trained_in():
    """Their config.yaml holds every env default of their training, so the changed
    defaults leave their evaluation (eval.md) as it was."""
    from aryl_gym.agents.train import env_defaults

    for task in ("allocate", "reclaim"):
        cfg = yaml.safe_load((ROOT / "agents" / "trained" / task / "config.yaml").read_text())
        kw = cfg["env_kwargs"]
        missing = set(env_defaults(cfg["env_id"])) - set(kw)
        assert missing <= {"split", "render_mode", "check_invariants"}, (task, missing)
    cfg = yaml.safe_load((ROOT / "agents" / "trained" / "allocate" / "config.yaml").read_text())
    assert {k: cfg["env_kwargs"][k] for k in OLD_ROUNDS} == OLD_ROUNDS


# ---------------------------------------------------------------------- configs
def _write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.parametrize(
    "patch,key",
    [
        ({"n_timestep": 100}, "n_timestep"),  # a typo at the top level
        ({"env_kwargs": {"scenario": "tiny", "max_action_per_round": 8}}, "max_action_per_round"),
        ({"bc": {"episodes": 2, "epoch": 2}}, "epoch"),
        ({"eval": {"eval_freq": 10, "seed": [0]}}, "seed"),
        ({"env_kwargs": {"split": "val"}}, "split"),
        ({"hyperparams": {"seed": 3}}, "seed"),
    ],
)
def test_unknown_config_key_is_an_error_naming_key_and_file(tmp_path, patch, key):
    from aryl_gym.agents.train import ConfigError, load_config

    cfg = yaml.safe_load((ROOT / "agents" / "configs" / "smoke.yaml").read_text())
    cfg.update(patch)
    path = _write(tmp_path, cfg)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert repr(key) in str(err.value) and str(path) in str(err.value)


def test_unknown_hyperparameter_is_an_error(tmp_path):
    pytest.importorskip("sb3_contrib", reason=RL_REASON)
    from aryl_gym.agents.train import ConfigError, load_config

    cfg = yaml.safe_load((ROOT / "agents" / "configs" / "smoke.yaml").read_text())
    cfg["hyperparams"] = {"learning_rte": 1e-3}
    path = _write(tmp_path, cfg)
    with pytest.raises(ConfigError, match=r"'learning_rte'.*hyperparams"):
        load_config(path)


def test_every_packaged_and_committed_config_is_valid():
    pytest.importorskip("sb3_contrib", reason=RL_REASON)  # load_config checks the algorithm
    import yaml
    from aryl_gym.agents import reclaim_ahead
    from aryl_gym.agents.train import ConfigError, load_config

    paths = sorted((ROOT / "agents" / "configs").glob("*.yaml"))
    paths += sorted((ROOT / "agents" / "trained").glob("*/config.yaml"))
    assert len(paths) >= 12
    for p in paths:
        if yaml.safe_load(p.read_text()).get("env_id") == reclaim_ahead.ENV_ID:
            reclaim_ahead.load_config(p)  # its own trainer and keys
            with pytest.raises(ConfigError, match="aryl_gym.agents.reclaim_ahead"):
                load_config(p)
        else:
            load_config(p)


def test_resolved_env_kwargs_pin_every_plain_default_and_build_the_same_env():
    from aryl_gym.agents.train import env_defaults, resolved_env_kwargs

    kw = resolved_env_kwargs("ArylGym/Allocate-v0", {"scenario": "tiny", "episode_hours": 2.0})
    assert kw["episode_hours"] == 2.0 and kw["periodic_rounds"] is False
    assert "split" not in kw and "render_mode" not in kw
    assert set(env_defaults("ArylGym/Allocate-v0")) - set(kw) == {
        "split",
        "render_mode",
        "check_invariants",
    }
    # through YAML (tuples become lists) to the same env
    again = yaml.safe_load(yaml.safe_dump(kw))
    a, b = AllocateEnv(**again), AllocateEnv("tiny", episode_hours=2.0)
    assert a.round.options() == b.round.options() and a.periodic_rounds == b.periodic_rounds
    oa, _ = a.reset(seed=0)
    ob, _ = b.reset(seed=0)
    np.testing.assert_array_equal(oa, ob)


@pytest.mark.skipif(find_spec("sb3_contrib") is None, reason=RL_REASON)
def test_cli_evaluate_step_guard_and_episode_keywords(tmp_path, capsys):
    from aryl_gym.cli import main

    # the committed agent stopped after 10 steps: exit 1, the message names it all
    assert main(["evaluate", "--agent", "allocate", "--seeds", "1", "--max-steps", "10"]) == 1
    err = capsys.readouterr().err
    assert "'agent' took 11 env steps" in err and "scenario 'small', test split, seed 0" in err
    # only episode keywords may change for a trained agent (a usage error: 2)
    bad = ["evaluate", "--agent", "allocate", "--env-kwarg", "queue_slots=8", "--quiet"]
    assert main(bad) == 2
    assert "queue_slots" in capsys.readouterr().err
    # 1 h windows for every policy
    from aryl_gym.agents.evaluate import compare

    res = compare("reclaim", seeds=(0,), env_kwargs={"episode_hours": 1.0}, progress=False)
    for name, s in res.items():
        (row,) = s["per_seed"]
        assert row["end_s"] - row["start_s"] <= 3600.0, name
