"""``aryl-gym train-round``: CEM search, then PPO fine-tuning, of a Round-v0 scorer.

    aryl-gym train-round --config round_ppo --run-dir runs/round-ppo
    aryl-gym train-round --config round_ppo --theta runs/round-cem/theta.json   # PPO only

Stage 1 (unless ``--theta`` or the config's ``theta`` gives a scorer): the CEM search of
:func:`~aryl_gym.agents.cem_train.train_round_cem` on training workloads, selected on
validation workloads; it writes ``cem_theta.json``. Stage 2: SB3 PPO with
:class:`~aryl_gym.agents.round_policy.RoundSetPolicy` started from that ``theta`` (at step
0 the deterministic policy *is* the scorer), on fresh training workloads with a window
curriculum. Selection on validation workloads only: the deterministic policy is replayed
on ``eval.val_workloads`` x ``eval.windows`` val windows (paired against Aryl on each,
JCT saved per job) at step 0 and every ``eval.eval_freq`` steps; ``best_model.zip`` is
the best (step 0 wins ties, so it is never below the scorer on validation).

The run directory gets ``config.yaml`` (the config with every env default pinned),
``cem_theta.json``, ``tb/`` (TensorBoard), ``val_log.csv``, ``best_model.zip``,
``final_model.zip`` and ``meta.json`` (wall and CPU time, steps, validation gains).

Config (YAML; every key is checked, an unknown one is an error naming it and the file)::

    env_id: ArylGym/Round-v0
    seed: 0
    env_kwargs: {scenario: small}          # RoundEnv keywords (not split)
    theta: null                            # a CEM JSON: skip the CEM stage
    cem: {population: 12, iterations: 6, elite: 0.25, sigma: 0.5, windows: 4, val_workloads: 5}
    policy_kwargs: {hidden: 32, learn_theta: true, log_std_init: -1.5}
    n_timesteps: 100000
    n_envs: 2
    curriculum: [[0, 4.0], [40000, 12.0]]  # (from_step, window hours)
    hyperparams: {learning_rate: 3.0e-5, n_steps: 512, ...}   # PPO keywords
    eval: {eval_freq: 20000, val_workloads: 10, windows: 2}
    torch_threads: 1
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from aryl_gym.agents.train import (
    _ALGO_SET_BY_CONFIG,
    ConfigError,
    _unknown,
    check_section,
    env_defaults,
    resolved_env_kwargs,
    versions,
)

ENV_ID = "ArylGym/Round-v0"
CONFIG_KEYS = frozenset(
    {
        "env_id", "seed", "env_kwargs", "theta", "cem", "policy_kwargs", "n_timesteps",
        "n_envs", "curriculum", "hyperparams", "eval", "torch_threads",
    }
)  # fmt: skip
CEM_KEYS = frozenset({"population", "iterations", "elite", "sigma", "windows", "val_workloads"})
POLICY_KEYS = frozenset({"hidden", "learn_theta", "log_std_init", "ortho_init"})
EVAL_KEYS = frozenset({"eval_freq", "val_workloads", "windows"})
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "theta": None,
    "cem": {"population": 12, "iterations": 6, "elite": 0.25, "sigma": 0.5, "windows": 4,
            "val_workloads": 5},
    "policy_kwargs": {},
    "n_envs": 2,
    "curriculum": [[0, 12.0]],
    "hyperparams": {},
    "eval": {"eval_freq": 20_000, "val_workloads": 10, "windows": 2},
    "torch_threads": 1,
}  # fmt: skip


def validate_round_config(cfg: Any, path: str | Path = "<config>") -> None:
    """:class:`~aryl_gym.agents.train.ConfigError` naming the key and ``path`` for any key
    the run would not use (top level, ``cem``, ``policy_kwargs``, ``eval``, ``env_kwargs``
    against RoundEnv's constructor, ``hyperparams`` against PPO's)."""
    from aryl_gym.agents.curriculum import check_schedule

    path = Path(path)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a training config is a mapping, got {type(cfg).__name__}")
    _unknown("", cfg, CONFIG_KEYS, path)
    if cfg.get("env_id", ENV_ID) != ENV_ID:
        raise ConfigError(f"{path}: train-round trains {ENV_ID}, got env_id {cfg['env_id']!r}")
    for section, known in (("cem", CEM_KEYS), ("policy_kwargs", POLICY_KEYS), ("eval", EVAL_KEYS)):
        check_section(section, cfg.get(section), known, path)
    env_kwargs = cfg.get("env_kwargs") or {}
    _unknown(f"env_kwargs (of {ENV_ID})", env_kwargs, env_defaults(ENV_ID), path)
    for key in ("split", "fresh_workloads"):
        if key in env_kwargs:
            raise ConfigError(f"{path}: env_kwargs may not set {key!r}: training draws fresh train workloads")  # fmt: skip
    hyper = cfg.get("hyperparams") or {}
    clash = sorted(set(hyper) & set(_ALGO_SET_BY_CONFIG))
    if clash:
        raise ConfigError(f"{path}: hyperparams may not set {', '.join(map(repr, clash))}")
    from importlib.util import find_spec

    if find_spec("stable_baselines3") is not None:
        import inspect

        from stable_baselines3 import PPO

        _unknown("hyperparams (of ppo)", hyper, set(inspect.signature(PPO.__init__).parameters) - {"self"}, path)  # fmt: skip
    if "n_timesteps" not in cfg:
        raise ConfigError(f"{path}: missing key 'n_timesteps'")
    try:
        check_schedule(cfg.get("curriculum") or DEFAULTS["curriculum"])
    except ValueError as exc:
        raise ConfigError(f"{path}: curriculum: {exc}") from None


def load_round_config(path: str | Path) -> dict:
    """The config in ``path``, checked, with the defaults of the keys it leaves out."""
    cfg = yaml.safe_load(Path(path).read_text())
    validate_round_config(cfg, path)
    out = {"env_id": ENV_ID, **{k: v for k, v in DEFAULTS.items()}, **cfg}
    for section in ("cem", "eval"):
        out[section] = {**DEFAULTS[section], **(cfg.get(section) or {})}
    out["env_kwargs"] = dict(cfg.get("env_kwargs") or {})
    return out


def _val_windows(cfg: dict, env_kwargs: dict):
    from aryl_gym.agents.round_eval import workload_windows

    from aryl_gym.envs.workload_splits import held_out_seeds

    ev = cfg["eval"]
    kw = {k: v for k, v in env_kwargs.items() if k != "scenario"}
    seeds = held_out_seeds("val", int(ev["val_workloads"]))
    return workload_windows(env_kwargs.get("scenario", "small"), seeds, "val", int(ev["windows"]), kw, cfg["seed"])  # fmt: skip


def val_callback(windows, run_dir: Path, eval_freq: int, verbose: int = 1):
    """The SB3 callback of the validation selection (see the module doc)."""
    from aryl_gym.agents.round_scorers import zero_scorer
    from stable_baselines3.common.callbacks import BaseCallback

    class ValGain(BaseCallback):
        """Replays the deterministic policy on the val windows; keeps the best model."""

        def __init__(self) -> None:
            super().__init__(verbose)
            self.env = windows[0].env
            self.specs = [w.spec for w in windows]
            zero = zero_scorer(self.env.n_slots)(0)
            self.aryl = [self.env.replay(s, zero)["job_time_s"] for s in self.specs]
            self.best, self.best_step, self.last, self.history = -np.inf, 0, 0, []

        def gain(self) -> float:
            def act(obs):
                return self.model.predict(obs, deterministic=True)[0]

            times = [self.env.replay(s, act)["job_time_s"] for s in self.specs]
            per_job = [(a - t) / s.n_jobs for a, t, s in zip(self.aryl, times, self.specs, strict=True)]  # fmt: skip
            return float(np.mean(per_job))

        def evaluate_now(self) -> float:
            g, step = self.gain(), int(self.num_timesteps)
            self.last = step
            self.history.append((step, g))
            self.logger.record("val/gain_s_per_job", g)
            if g > self.best:  # strict: the earlier (step 0: the scorer) wins a tie
                self.best, self.best_step = g, step
                self.model.save(run_dir / "best_model.zip")
            self.logger.record("val/best_gain_s_per_job", self.best)
            with open(run_dir / "val_log.csv", "a", newline="") as f:
                csv.writer(f).writerow([step, f"{g:.4f}", f"{self.best:.4f}"])
            if self.verbose:
                print(f"val at {step:,} steps: {g:+.2f} s/job vs Aryl (best {self.best:+.2f} at {self.best_step:,})", flush=True)  # fmt: skip
            return g

        def _on_training_start(self) -> None:
            (run_dir / "val_log.csv").write_text("timesteps,gain_s_per_job,best\n")
            self.evaluate_now()  # step 0: the linear scorer itself

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last >= eval_freq:
                self.evaluate_now()
            return True

    return ValGain()


def cem_stage(cfg: dict, env_kwargs: dict, run_dir: Path, log) -> Path:
    """Stage 1: the CEM search; writes and returns ``run_dir/cem_theta.json``."""
    from aryl_gym.agents.cem import CemConfig
    from aryl_gym.agents.cem_train import train_round_cem
    from aryl_gym.agents.round_scorers import save_linear

    c = cfg["cem"]
    t0 = time.perf_counter()
    kw = {k: v for k, v in env_kwargs.items() if k != "scenario"}
    res = train_round_cem(
        env_kwargs.get("scenario", "small"),
        CemConfig(
            int(c["population"]),
            int(c["iterations"]),
            float(c["elite"]),
            float(c["sigma"]),
            seed=int(cfg["seed"]),
        ),  # fmt: skip
        windows=int(c["windows"]),
        val_workloads=int(c["val_workloads"]),
        env_kwargs=kw,
        log=log,
    )
    out = run_dir / "cem_theta.json"
    save_linear(out, res["theta"], {**res, "settings": c, "wall_s": time.perf_counter() - t0})
    log(f"cem: wrote {out} ({res['val_gain_s'][res['selected']]:+.1f} s/job on val)")
    return out


def train_round(cfg: dict, run_dir: str | Path, theta: str | None = None, progress: bool = True) -> dict:  # fmt: skip
    """Run both stages (CEM unless ``theta`` or ``cfg['theta']`` names a scorer JSON);
    returns the meta written to ``run_dir/meta.json``."""
    import random

    import torch
    from aryl_gym.agents.callbacks import TqdmCallback
    from aryl_gym.agents.curriculum import window_curriculum
    from aryl_gym.agents.round_policy import RoundSetPolicy
    from aryl_gym.agents.round_scorers import load_linear
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from aryl_gym.envs.round import RoundEnv

    t_start, cpu_start = time.perf_counter(), time.process_time()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = {**cfg, "env_kwargs": resolved_env_kwargs(ENV_ID, cfg["env_kwargs"])}
    cfg["env_kwargs"].pop("fresh_workloads", None)  # a training env always draws fresh ones
    env_kwargs = cfg["env_kwargs"]
    seed = int(cfg["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(cfg["torch_threads"]))

    def log(msg: str) -> None:
        print(msg, flush=True)

    theta_path = theta or cfg.get("theta")
    if theta_path is None:
        log("stage 1: CEM search of the linear scorer (training workloads, val selection)")
        theta_path = cem_stage(cfg, env_kwargs, run_dir, log)
    cfg["theta"] = str(theta_path)
    cem_s = time.perf_counter() - t_start
    scorer = load_linear(theta_path, int(env_kwargs["n_slots"]))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    log(f"stage 2: PPO from theta {np.round(scorer.theta, 3).tolist()}")
    venv = VecMonitor(DummyVecEnv([lambda: RoundEnv(split="train", fresh_workloads=True, **env_kwargs)] * int(cfg["n_envs"])))  # fmt: skip
    venv.seed(seed)
    pkw = {**cfg["policy_kwargs"], "n_slots": int(env_kwargs["n_slots"]), "theta": scorer.theta.tolist()}  # fmt: skip
    model = PPO(
        RoundSetPolicy, venv, policy_kwargs=pkw, seed=seed, tensorboard_log=str(run_dir / "tb"),
        device="cpu", **cfg["hyperparams"],
    )  # fmt: skip
    val = val_callback(_val_windows(cfg, env_kwargs), run_dir, int(cfg["eval"]["eval_freq"]))
    callbacks = [window_curriculum(cfg["curriculum"]), val]
    n = int(cfg["n_timesteps"])
    if progress:
        callbacks.append(TqdmCallback(n))
    t_ppo = time.perf_counter()
    model.learn(n, callback=callbacks, tb_log_name="ppo")
    if val.last != model.num_timesteps:
        val.evaluate_now()  # the final model too
    model.save(run_dir / "final_model.zip")
    venv.close()
    meta = {
        "config": cfg,
        "steps": int(model.num_timesteps),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "cpu_s": round(time.process_time() - cpu_start, 1),
        "cem_wall_s": round(cem_s, 1),
        "ppo_wall_s": round(time.perf_counter() - t_ppo, 1),
        "val_gain_s_per_job": {
            "scorer (step 0)": val.history[0][1],
            "best": val.best,
            "best_step": val.best_step,
        },  # fmt: skip
        "val_history": val.history,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "versions": versions(),
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    log(f"done: {meta['steps']:,} steps, {meta['wall_s']} s wall, {meta['cpu_s']} s CPU; "
        f"best on val {val.best:+.2f} s/job at step {val.best_step:,} -> {run_dir}/best_model.zip")  # fmt: skip
    return meta


#: The held-out window of a committed agent's check (``check.json`` beside the zip).
CHECK_WINDOW = {"workload_seed": 2_000_000, "window_hours": 12.0, "drain_hours": 48.0, "seed": 0}


def agent_check(zip_path: str | Path, window: dict | None = None) -> dict:
    """The committed agent's numbers on one small held-out test window (the first test
    workload, a ``window_hours`` window at its median job, as ``evaluate-round`` places
    it): its ``job_time_s`` and ``avg_jct_s`` and Aryl's ``aryl_job_time_s``, with the
    window's settings; ``check.json`` stores them, a test replays them."""
    from aryl_gym.agents.round_eval import workload_windows
    from aryl_gym.agents.round_scorers import sb3_scorer, zero_scorer

    w = {**CHECK_WINDOW, **(window or {})}
    kw = {"episode_hours": w["window_hours"], "drain_hours": w["drain_hours"]}
    win = workload_windows("small", [w["workload_seed"]], "test", 1, kw, w["seed"])[0]
    mine = win.env.replay(win.spec, sb3_scorer(Path(zip_path))(0))
    aryl = win.env.replay(win.spec, zero_scorer(win.env.n_slots)(0))
    return {
        **w,
        "job_time_s": mine["job_time_s"],
        "avg_jct_s": mine["avg_jct_s"],
        "aryl_job_time_s": aryl["job_time_s"],
    }
