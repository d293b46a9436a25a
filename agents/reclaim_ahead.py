"""Train and evaluate a reclaim-with-foresight agent on ``ArylGym/ReclaimAhead-v0``.

::

    python -m aryl_gym.agents.reclaim_ahead train --config agents/configs/reclaim_ahead_setnet.yaml
    python -m aryl_gym.agents.reclaim_ahead evaluate --model runs/reclaim_ahead_setnet/best_model.zip \\
        --split test --workloads 10 --windows 6

Training (read top to bottom in :func:`train`): train-split envs (fresh training
workloads per episode) -> MaskablePPO with :class:`~aryl_gym.agents.networks.SetNet`, its
``follow`` logit biased up (``follow_bias``: the untrained policy is Aryl most of the
time, not a random server returner) -> optional behaviour cloning of the hand-written
:class:`~aryl_gym.baselines.reclaim_ahead.Foresight` rule (``bc``) -> PPO, with the
deterministic policy scored on *validation* workloads every ``eval.eval_freq`` steps
(TensorBoard ``eval/*``, ``eval_log.csv``; ``best_model.zip`` is the best mean return
there, the documented objective). The test workloads are touched only by ``evaluate``.

Config keys (every one checked; an unknown key is an error naming it and the file):
``env_id`` (``ArylGym/ReclaimAhead-v0``, the only one), ``env_kwargs`` (ReclaimAhead-v0's keywords, not ``split``), ``seed``, ``n_timesteps``,
``n_envs``, ``torch_threads``, ``policy_kwargs`` ({hidden}), ``follow_bias``,
``hyperparams`` (MaskablePPO's), ``bc`` ({episodes, epochs, lr, batch_size,
value_coef, teacher}: ``teacher`` holds Foresight's keywords), ``eval`` ({eval_freq,
workloads, windows}).
"""

from __future__ import annotations

import argparse
import csv
import functools
import inspect
import json
import random
import time
from pathlib import Path

import numpy as np
import yaml
from aryl_gym.agents.train import ConfigError, check_section

ENV_ID = "ArylGym/ReclaimAhead-v0"
CONFIG_KEYS = frozenset(
    {
        "env_id",
        "env_kwargs",
        "seed",
        "n_timesteps",
        "n_envs",
        "torch_threads",
        "policy_kwargs",
        "follow_bias",
        "hyperparams",
        "bc",
        "eval",
    }
)
BC_KEYS = frozenset({"episodes", "epochs", "lr", "batch_size", "value_coef", "teacher"})
EVAL_KEYS = frozenset({"eval_freq", "workloads", "windows"})
POLICY_KEYS = frozenset({"hidden"})


def load_config(path: str | Path) -> dict:
    """The config in ``path``, every key checked (module doc), with defaults filled in."""
    from aryl_gym.baselines.reclaim_ahead import Foresight
    from sb3_contrib import MaskablePPO

    from aryl_gym.envs.reclaim_ahead import ReclaimAheadEnv

    path = Path(path)
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a training config is a mapping, got {type(cfg).__name__}")
    check_section("", cfg, CONFIG_KEYS, path)
    if cfg.get("env_id", ENV_ID) != ENV_ID:
        raise ConfigError(f"{path}: env_id must be {ENV_ID} here, got {cfg['env_id']!r}")
    cfg["env_id"] = ENV_ID
    env_known = set(inspect.signature(ReclaimAheadEnv.__init__).parameters) - {"self", "split"}
    check_section("env_kwargs", cfg.get("env_kwargs"), env_known, path)
    check_section("bc", cfg.get("bc"), BC_KEYS, path)
    check_section("eval", cfg.get("eval"), EVAL_KEYS, path)
    check_section("policy_kwargs", cfg.get("policy_kwargs"), POLICY_KEYS, path)
    algo_known = set(inspect.signature(MaskablePPO.__init__).parameters)
    algo_known -= {"self", "policy", "env", "policy_kwargs", "seed", "tensorboard_log", "device"}
    check_section("hyperparams", cfg.get("hyperparams"), algo_known, path)
    if cfg.get("bc"):
        teacher_known = set(inspect.signature(Foresight).parameters) - {"name"}
        check_section("bc.teacher", cfg["bc"].get("teacher"), teacher_known, path)
    cfg.setdefault("seed", 0)
    cfg.setdefault("n_envs", 4)
    cfg.setdefault("torch_threads", 1)
    cfg.setdefault("follow_bias", 6.0)
    for k in ("env_kwargs", "policy_kwargs", "hyperparams", "eval"):
        cfg[k] = dict(cfg.get(k) or {})
    if "n_timesteps" not in cfg:
        raise ConfigError(f"{path}: missing key 'n_timesteps'")
    return cfg


# ---------------------------------------------------------------------- acting
def model_actor(model):
    """``env -> action`` of a MaskablePPO model (deterministic, masked)."""

    def act(env) -> int:
        u = env.unwrapped
        a, _ = model.predict(u.round.obs, action_masks=u.action_masks(), deterministic=True)
        return int(a)

    return act


def val_score(model, env, workloads: int, windows: int) -> dict[str, float]:
    """The deterministic model on the first validation workloads: mean return (the
    objective) and the paired differences to Aryl (lost GPU-h, avg JCT in h)."""
    from aryl_gym.agents.reclaim_ahead_eval import run

    rows = run(env, {"agent": model_actor(model)}, "val", workloads, windows)
    d_lost = [r["summary"]["lost_gpu_hours"] - r["aryl"]["lost_gpu_hours"] for r in rows]
    d_jct = [(r["summary"]["avg_jct_s"] - r["aryl"]["avg_jct_s"]) / 3600 for r in rows]
    return {
        "return": float(np.mean([r["return"] for r in rows])),
        "d_lost_gpu_hours": float(np.mean(d_lost)),
        "d_avg_jct_h": float(np.nanmean(d_jct)),
        "aryl_lost_gpu_hours": float(np.mean([r["aryl"]["lost_gpu_hours"] for r in rows])),
        "early_returns": float(np.mean([r["counts"]["early_returns"] for r in rows])),
        "invalid_actions": float(np.sum([r["invalid_actions"] for r in rows])),
    }


def collect_demos(env, teacher, episodes: int, gamma: float, seed0: int = 10_000):
    """(obs, masks, actions, discounted returns) of ``teacher`` on training episodes."""
    from aryl_gym.agents.bc import Demos, discounted_returns

    obs, masks, acts, rets = [], [], [], []
    for i in range(episodes):
        env.reset(seed=seed0 + i)  # the env's split: train workloads only
        u = env.unwrapped
        rewards = []
        while True:
            a = teacher.action(env)
            obs.append(u.round.obs.copy())
            masks.append(u.action_masks())
            acts.append(a)
            _, r, term, trunc, _ = env.step(a)
            rewards.append(r)
            if term or trunc:
                break
        rets += discounted_returns(rewards, gamma)
    return Demos.from_lists(obs, masks, acts, rets, episodes)


# ---------------------------------------------------------------------- training
def train(cfg: dict, run_dir: str | Path, progress: bool = True) -> dict:
    import torch
    from aryl_gym.agents.bc import pretrain_from_config
    from aryl_gym.agents.networks import MaskableSetPolicy, set_layout
    from aryl_gym.agents.train import versions
    from aryl_gym.baselines.reclaim_ahead import Foresight
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from aryl_gym.envs import make_env

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    seed = int(cfg["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(cfg["torch_threads"]))

    env_kwargs = cfg["env_kwargs"]
    factory = functools.partial(make_env, ENV_ID, split="train", **env_kwargs)
    venv = VecMonitor(DummyVecEnv([factory] * int(cfg["n_envs"])))
    venv.seed(seed)
    val_env = make_env(ENV_ID, split="val", **env_kwargs)
    train_env = make_env(ENV_ID, split="train", **env_kwargs)  # BC demonstrations

    pkw = {**set_layout(train_env), **cfg["policy_kwargs"]}
    model = MaskablePPO(
        MaskableSetPolicy,
        venv,
        policy_kwargs=pkw,
        seed=seed,
        tensorboard_log=str(run_dir / "tb"),
        device="cpu",
        **cfg["hyperparams"],
    )
    with torch.no_grad():  # extra logits: [follow, release]; start near Aryl (module doc)
        model.policy.mlp_extractor.extra_head[-1].bias[0] = float(cfg["follow_bias"])

    bc_info = None
    if cfg.get("bc"):
        bc = dict(cfg["bc"])
        teacher = Foresight(**(bc.get("teacher") or {}))
        t0 = time.perf_counter()
        demos = collect_demos(train_env, teacher, int(bc.get("episodes", 100)), model.gamma)
        hist = pretrain_from_config(model.policy, demos, bc, seed)
        bc_info = dict(
            samples=len(demos), seconds=round(time.perf_counter() - t0, 1), last=hist[-1]
        )
        model.save(run_dir / "bc_model.zip")

    ev = cfg["eval"]
    n_w, n_win = int(ev.get("workloads", 10)), int(ev.get("windows", 3))
    csv_path = run_dir / "eval_log.csv"

    class ValCallback(BaseCallback):
        """Scores the policy on validation workloads; keeps the best (by mean return)."""

        def __init__(self) -> None:
            super().__init__()
            self.best, self.last, self.rows = -np.inf, -np.inf, []

        def evaluate(self) -> None:
            s = val_score(self.model, val_env, n_w, n_win)
            s["timesteps"] = int(self.num_timesteps)
            s["wall_s"] = round(time.perf_counter() - t_start, 1)
            for k, v in s.items():
                self.logger.record(f"eval/{k}", v)
            self.rows.append(s)
            new = not csv_path.exists()
            with csv_path.open("a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(s))
                if new:
                    w.writeheader()
                w.writerow(s)
            print(f"val at {s['timesteps']}: {s}")
            if s["return"] > self.best:
                self.best = s["return"]
                self.model.save(run_dir / "best_model.zip")
            self.last = self.num_timesteps

        def _on_training_start(self) -> None:
            self.evaluate()

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last >= int(ev.get("eval_freq", 20_000)):
                self.evaluate()
            return True

    cb = ValCallback()
    t_rl = time.perf_counter()
    try:
        model.learn(int(cfg["n_timesteps"]), callback=cb, tb_log_name="rl", progress_bar=False)
    except KeyboardInterrupt:
        print("interrupted: saving")
    cb.evaluate()
    model.save(run_dir / "final_model.zip")
    meta = dict(
        config=cfg,
        steps=int(model.num_timesteps),
        wall_s=round(time.perf_counter() - t_start, 1),
        rl_wall_s=round(time.perf_counter() - t_rl, 1),
        bc=bc_info,
        best_val_return=cb.best,
        date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        versions=versions(),
    )
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    return meta


# ---------------------------------------------------------------------- evaluation
def evaluate(
    model_path: str | None,
    split: str,
    workloads: int,
    windows: int,
    env_kwargs: dict,
    foresight: list[str] = (),
):
    """The table of :func:`aryl_gym.agents.reclaim_ahead_eval.table`: Aryl, the pick rule
    alone (lost GPU-seconds, no early return), the Foresight rule for each ``H:w``
    (horizon s, idle weight) of ``foresight`` (default: its own defaults), and the agent
    when ``model_path`` is given."""
    from aryl_gym.agents.reclaim_ahead_eval import run, table
    from aryl_gym.baselines.reclaim_ahead import Foresight

    from aryl_gym.envs import make_env

    env = make_env(ENV_ID, split=split, **env_kwargs)
    actors = {"pick-by-lost": Foresight(ahead=False).action}
    for spec in foresight or [f"{Foresight.horizon_s:g}:{Foresight.idle_weight:g}"]:
        try:
            h, w = (float(x) for x in spec.split(":"))
        except ValueError:
            raise ValueError(f"--foresight takes HORIZON_S:IDLE_WEIGHT, got {spec!r}") from None
        actors[f"foresight H={h:g}s w={w:g}"] = Foresight(horizon_s=h, idle_weight=w).action
    if model_path:
        from sb3_contrib import MaskablePPO

        actors["agent"] = model_actor(MaskablePPO.load(model_path, device="cpu"))
    rows = run(env, actors, split, workloads, windows)
    return rows, table(rows)


def main(
    argv: list[str] | None = None, prog: str = "python -m aryl_gym.agents.reclaim_ahead"
) -> int:
    ap = argparse.ArgumentParser(prog=prog)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", required=True)
    t.add_argument("--run-dir")
    t.add_argument("--timesteps", type=int)
    e = sub.add_parser("evaluate")
    e.add_argument("--model", help="a MaskablePPO zip (none: the baselines alone)")
    e.add_argument("--config", help="the run's config.yaml (its env_kwargs)")
    e.add_argument("--split", default="test", choices=("val", "test"))
    e.add_argument("--workloads", type=int, default=10)
    e.add_argument("--windows", type=int, default=6)
    e.add_argument("--out", help="write the table (.md) and rows (.json) with this stem")
    e.add_argument(
        "--foresight", action="append", default=[], help="a Foresight variant H:w (repeatable)"
    )
    args = ap.parse_args(argv)
    if args.cmd == "train":
        cfg = load_config(args.config)
        if args.timesteps:
            cfg["n_timesteps"] = args.timesteps
        train(cfg, args.run_dir or f"runs/{Path(args.config).stem}")
        return 0
    env_kwargs = load_config(args.config)["env_kwargs"] if args.config else {}
    t0 = time.perf_counter()
    rows, md = evaluate(
        args.model, args.split, args.workloads, args.windows, env_kwargs, args.foresight
    )
    print(md)
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.out:
        Path(f"{args.out}.md").write_text(md + "\n")
        keep = ("lost_gpu_hours", "avg_jct_s", "preemptions", "jobs_finished", "jobs_unfinished")
        slim = [
            {
                **{k: r[k] for k in ("policy", "workload", "window", "return", "counts")},
                **{f"{k}": r["summary"][k] for k in keep},
                **{f"aryl_{k}": r["aryl"][k] for k in keep},
            }
            for r in rows
        ]
        Path(f"{args.out}.json").write_text(json.dumps(slim, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
