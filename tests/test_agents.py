"""RL agents (agents/): smoke training, behaviour cloning, the set network, and the
committed agents through ``aryl-gym evaluate``. Skips without the ``.[rl]`` extra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REASON = "the RL stack is the optional extra: pip install -e '.[rl]'"
torch = pytest.importorskip("torch", reason=REASON)
pytest.importorskip("stable_baselines3", reason=REASON)
pytest.importorskip("sb3_contrib", reason=REASON)

from aryl_gym.envs import make_env  # noqa: E402
from aryl_gym.sim.catalog import EPISODE_METRICS, METRICS, metric  # noqa: E402
from aryl_gym.sim.metrics import SUMMARY_KEYS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "agents" / "configs" / "smoke.yaml"
TRAINED = ROOT / "agents" / "trained"


def test_smoke_training_writes_model_and_tensorboard_events(tmp_path):
    from aryl_gym.agents.train import load_config, train

    cfg = load_config(SMOKE)
    meta = train(cfg, tmp_path, progress=False)
    assert meta["steps"] >= cfg["n_timesteps"]
    for name in ("final_model.zip", "bc_model.zip", "best_model.zip", "meta.json", "eval_log.csv"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "checkpoints").glob("model_*_steps.zip"))
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    # the callbacks' scalars are named by catalog keys
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for d in {e.parent for e in events}:
        ea = EventAccumulator(str(d))
        ea.Reload()
        tags |= set(ea.Tags()["scalars"])
    assert {f"eval/{m.key}" for m in (*EPISODE_METRICS, metric("invalid_actions"))} <= tags
    for tag in tags:
        group, _, name = tag.partition("/")
        if group in ("episode", "eval"):
            key = name.removeprefix("best_").removesuffix("_over_aryl")
            assert key in METRICS, tag
    saved = json.loads((tmp_path / "meta.json").read_text())
    assert {"config", "seed", "steps", "wall_s", "versions"} <= set(saved)
    # the run's config.yaml pins the env defaults it trained with (and still loads)
    import yaml
    from aryl_gym.agents.train import env_defaults

    run_cfg = load_config(tmp_path / "config.yaml")
    assert run_cfg["env_kwargs"]["periodic_rounds"] is False  # the default, pinned
    assert run_cfg["env_kwargs"]["episode_hours"] == 1.0  # the config's own
    pinned = set(yaml.safe_load((tmp_path / "config.yaml").read_text())["env_kwargs"])
    assert set(env_defaults(cfg["env_id"])) - pinned == {"split", "render_mode", "check_invariants"}
    # resume from the last checkpoint continues the step count
    ckpt = sorted((tmp_path / "checkpoints").glob("model_*_steps.zip"))[-1]
    cfg["n_timesteps"] = meta["steps"] + 512
    meta2 = train(cfg, tmp_path, resume=str(ckpt), progress=False)
    assert meta2["steps"] >= cfg["n_timesteps"]


def test_bc_reduces_its_loss_on_aryl_decisions():
    from aryl_gym.agents.bc import collect, pretrain
    from aryl_gym.agents.networks import MaskableSetPolicy, set_layout

    torch.manual_seed(0)
    # Aryl's own (periodic) rounds: more of its decisions per episode to learn from
    env = make_env(
        "ArylGym/Allocate-v0",
        scenario="tiny",
        episode_hours=2.0,
        drain_hours=4.0,
        periodic_rounds=True,
    )
    demos = collect(env, episodes=2)
    assert len(demos) > 20 and demos.masks[np.arange(len(demos)), demos.actions].all()
    pol = MaskableSetPolicy(
        env.observation_space, env.action_space, lambda _: 3e-4, **set_layout(env), hidden=32
    )
    hist = pretrain(pol, demos, epochs=6, lr=3e-3, batch_size=64)
    assert hist[-1]["cross_entropy"] < 0.5 * hist[0]["cross_entropy"]
    assert hist[-1]["accuracy"] > 0.8


@pytest.mark.parametrize("env_id", ["ArylGym/Allocate-v0", "ArylGym/Reclaim-v0"])
def test_set_network_is_permutation_equivariant(env_id):
    from aryl_gym.agents.networks import MaskableSetPolicy, set_layout

    torch.manual_seed(0)
    env = make_env(env_id, scenario="small", episode_hours=6.0)
    lay = set_layout(env)
    pol = MaskableSetPolicy(env.observation_space, env.action_space, lambda _: 3e-4, **lay)
    obs, _ = env.reset(seed=0, options={"split": "test"})
    n, f = lay["n_slots"], lay["slot_features"]
    perm = np.random.default_rng(0).permutation(n)
    slots = obs[: n * f].reshape(n, f)
    obs2 = np.concatenate([slots[perm].ravel(), obs[n * f :]])
    net = pol.mlp_extractor
    with torch.no_grad():
        l1 = net.forward_actor(torch.as_tensor(obs)[None])[0]
        l2 = net.forward_actor(torch.as_tensor(obs2)[None])[0]
        v1 = net.forward_critic(torch.as_tensor(obs)[None])
        v2 = net.forward_critic(torch.as_tensor(obs2)[None])
    k = lay["n_ops"] * n
    assert torch.allclose(
        l1[:k].reshape(lay["n_ops"], n)[:, perm], l2[:k].reshape(lay["n_ops"], n), atol=1e-5
    )
    assert torch.allclose(l1[k:], l2[k:], atol=1e-5)  # commit logit
    assert torch.allclose(v1, v2, atol=1e-5)


@pytest.mark.parametrize("task", ["allocate", "reclaim"])
def test_committed_agent_loads_and_evaluate_writes_the_keys(task, tmp_path):
    from aryl_gym.cli import main

    agent = TRAINED / task
    if not (agent / "model.zip").exists():
        pytest.fail(f"no committed agent in {agent}")
    meta = json.loads((agent / "meta.json").read_text())
    assert {"config", "seed", "steps", "wall_s"} <= set(meta)
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--agent", str(agent), "--seeds", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"agent", "aryl"} <= set(res)
    if task == "allocate":
        assert "baseline" in res
    for name, s in res.items():
        missing = set(SUMMARY_KEYS) - {"wall_s"} - set(s)
        assert not missing, (name, missing)
    assert (tmp_path / "compare.png").exists()


def test_bc_teacher_imitates_the_named_reclaim_rule():
    from aryl_gym.agents.bc import collect
    from aryl_gym.baselines.reclaim import RECLAIM_RULES

    env = make_env(
        "ArylGym/Reclaim-v0", scenario="small", episode_hours=6.0, cost="lost_gpu_seconds"
    )
    demos = {t: collect(env, episodes=20, teacher=t) for t in ("last-lent", "aryl-lost")}
    for d in demos.values():
        assert d.skipped == 0 and d.masks[np.arange(len(d)), d.actions].all()
    # two different rules disagree somewhere on these windows: the teacher is honoured
    a, b = demos["last-lent"].actions, demos["aryl-lost"].actions
    assert len(a) != len(b) or (a != b).any()
    # each recorded action is the slot of the rule's next pick (plan fixed per reclaim)
    rule = RECLAIM_RULES["aryl-lost"][0]
    u, got = env.unwrapped, []
    for ep in range(20):
        env.reset(seed=10_000 + ep, options={"split": "train"})
        done, seen, plan = False, -1, []
        while not done:
            if u.reclaims != seen:
                seen = u.reclaims
                plan = list(rule(u.engine.view, u.round.k, None))
            slot = u.round.slot_of(plan[len(u.round.picked)])
            got.append(slot)
            *_, term, trunc, _ = env.step(slot)
            done = term or trunc
    assert got == b.tolist()
    with pytest.raises(ValueError, match="teacher"):
        collect(env, episodes=1, teacher="nope")
    with pytest.raises(ValueError, match="Reclaim-v0 only"):
        collect(make_env("ArylGym/Allocate-v0", scenario="tiny"), episodes=1, teacher="aryl-lost")


def test_dagger_labels_follow_aryl_and_aggregate():
    """``expert_action`` reproduces Aryl's recorded BC actions on Aryl's own trajectory, and
    ``bc.dagger`` adds learner-visited states labelled with valid actions."""
    from aryl_gym.agents.bc import collect, dagger, expert_action
    from aryl_gym.agents.networks import MaskableSetPolicy, set_layout
    from aryl_gym.baselines.aryl import ArylPolicy

    kw = dict(scenario="tiny", episode_hours=2.0, drain_hours=4.0)
    env = make_env("ArylGym/Allocate-v0", **kw)
    demos = collect(env, episodes=1)
    # replay with expert_action choosing every step: the same actions as collect's
    u = env.unwrapped
    env.reset(seed=10_000, options={"split": "train"})
    aryl = ArylPolicy()
    aryl.reset(u.engine.view, u.spec_.engine_seed)
    acts, seen = [], -1
    while True:
        if u.round.rounds != seen:
            seen, alloc = u.round.rounds, aryl.allocate(u.engine.view)
        a = expert_action(u.round, alloc, u.engine.view)
        acts.append(a)
        if any(env.step(a)[2:4]):
            break
    assert acts == demos.actions.tolist()

    torch.manual_seed(0)
    pol = MaskableSetPolicy(
        env.observation_space, env.action_space, lambda _: 3e-4, **set_layout(env), hidden=16
    )
    agg, rows = dagger(env, pol, demos, iters=1, episodes=1, epochs=1, lr=1e-3, batch_size=64)
    assert rows[0]["new_samples"] > 0 and len(agg) == len(demos) + rows[0]["new_samples"]
    new = slice(len(demos), len(agg))
    assert agg.masks[new][np.arange(rows[0]["new_samples"]), agg.actions[new]].all()
