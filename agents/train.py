"""Train an RL scheduler on ``Allocate-v0`` or ``Reclaim-v0`` (MaskablePPO or PPO).

    aryl-gym train --config agents/configs/allocate_maskable_setnet.yaml
    aryl-gym train --config agents/configs/smoke.yaml --run-dir runs/smoke

Read top to bottom: config -> vec envs -> model -> (behaviour-cloning warm start) ->
callbacks -> learn -> save. Everything lands in the run directory (default
``runs/<config name>``): ``tb/`` (TensorBoard), ``checkpoints/``, ``bc_model.zip`` (after
the warm start), ``best_model.zip`` (best on the validation split), ``final_model.zip``,
``config.yaml``, ``meta.json``, ``eval_log.csv`` and ``learning_curve.png``.

The YAML follows rl-baselines3-zoo's layout (one run per file)::

    env_id: ArylGym/Allocate-v0
    algo: maskable_ppo           # or ppo (no masks: invalid actions are env no-ops)
    policy: setnet               # or MlpPolicy
    policy_kwargs: {hidden: 64}
    seed: 0
    n_timesteps: 400000
    n_envs: 4
    vec_env: dummy               # or subproc
    env_kwargs: {scenario: small, episode_hours: 6.0}
    hyperparams: {learning_rate: 1.0e-4, n_steps: 512, ...}   # MaskablePPO / PPO kwargs
    bc: {episodes: 60, epochs: 10, lr: 1.0e-3}                 # optional warm start
                                 # (Reclaim-v0: teacher: aryl-lost, any RECLAIM_RULES name)
                                 # (Allocate-v0: dagger_iters, dagger_episodes, dagger_epochs)
    eval: {eval_freq: 50000, seeds: [0, 1, 2, 3, 4], split: val, metric: avg_jct_s}
    checkpoint_freq: 100000

Every key is checked (:func:`load_config`): an unknown one, at the top, in ``bc``,
``eval``, ``env_kwargs`` (the env's keyword arguments) or ``hyperparams`` (the
algorithm's), is an error naming the key and the file. ``env_kwargs`` left out take the
env's defaults, the one source of the settings that train (``docs/agents.md``, "Defaults
that learn"); the run's ``config.yaml`` pins every env default it was trained with
(:func:`resolved_env_kwargs`), so a later change of a default does not change how the
agent is loaded and evaluated.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import platform
import random
import shutil
import signal
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: The top-level keys of a training config (module docstring).
CONFIG_KEYS = frozenset(
    {
        "env_id",
        "algo",
        "policy",
        "policy_kwargs",
        "seed",
        "n_timesteps",
        "n_envs",
        "vec_env",
        "env_kwargs",
        "hyperparams",
        "bc",
        "eval",
        "checkpoint_freq",
        "torch_threads",
    }
)
#: The keys of the ``bc`` section (behaviour cloning and DAgger).
BC_KEYS = frozenset(
    {
        "episodes",
        "epochs",
        "lr",
        "batch_size",
        "value_coef",
        "teacher",
        "dagger_iters",
        "dagger_episodes",
        "dagger_epochs",
    }
)
#: The keys of the ``eval`` section (validation during training).
EVAL_KEYS = frozenset({"eval_freq", "seeds", "split", "metric"})
#: Env keywords training sets itself (the training envs' split is "train", eval.split
#: the validation one), and env keywords that do not change the episodes or the agent's
#: observations, which runs do not pin.
_ENV_SET_BY_TRAINING = frozenset({"split"})
_ENV_NOT_PINNED = frozenset({"split", "render_mode", "check_invariants"})
#: Algorithm keywords the config sets through its own keys.
_ALGO_SET_BY_CONFIG = {
    "policy": "policy",
    "env": "env_id / n_envs",
    "policy_kwargs": "policy_kwargs",
    "seed": "seed",
    "tensorboard_log": "the run directory",
    "device": "(always cpu)",
}


#: The env whose configs :mod:`aryl_gym.agents.round_train` trains (CEM, then PPO).
ROUND_ENV_ID = "ArylGym/Round-v0"


class ConfigError(ValueError):
    """A training config with an unknown or misplaced key; the message names the key and
    the file."""


def env_class(env_id: str) -> type:
    """The env class registered as ``env_id`` (``aryl_gym.envs.ENV_IDS``)."""
    from aryl_gym.envs import ENV_IDS

    if env_id not in ENV_IDS:
        raise ValueError(f"unknown env_id {env_id!r}; known: {', '.join(ENV_IDS)}")
    module, name = ENV_IDS[env_id].split(":")
    return getattr(importlib.import_module(module), name)


def env_defaults(env_id: str) -> dict[str, Any]:
    """The keyword arguments of ``env_id``'s constructor with their defaults: the one
    source of the env settings (configs repeat only what they change)."""
    sig = inspect.signature(env_class(env_id).__init__)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def _plain(value: Any) -> Any:
    """``value`` as YAML's safe dumper writes it (tuples as lists), or a ``TypeError``."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(type(value).__name__)


def resolved_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``env_kwargs`` with every other plain-valued default of the env pinned (tuples as
    lists; not the split, rendering or invariant checks; objects such as a Policy default
    are left to the env): what a run's ``config.yaml`` records, so that loading the agent
    later builds the env it was trained in even after a default changes."""
    out: dict[str, Any] = {}
    for name, default in env_defaults(env_id).items():
        if name in _ENV_NOT_PINNED or name in env_kwargs:
            continue
        try:
            out[name] = _plain(default)
        except TypeError:
            continue
    return {**env_kwargs, **out}  # the config's own keys first: they are what it chose


def _unknown(section: str, keys, known, path: Path, hint: str = "") -> None:
    bad = sorted(set(keys) - set(known))
    if bad:
        where = "at the top level" if section == "" else f"in {section}"
        raise ConfigError(
            f"{path}: unknown key{'s' * (len(bad) > 1)} {', '.join(map(repr, bad))} {where}; "
            f"known: {', '.join(sorted(known))}{hint}"
        )


def check_section(section: str, value: Any, known, path: Path) -> None:
    """Nothing for an absent section (None); else :class:`ConfigError` unless ``value`` is a
    mapping whose keys are all ``known`` (``section`` "": the top level)."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {section or 'the config'} must be a mapping")
    _unknown(section, value, known, path)


def validate_config(cfg: Any, path: str | Path = "<config>") -> None:
    """Raise :class:`ConfigError` naming the key and ``path`` for any key a training run
    would not use: at the top level, in ``bc`` and ``eval``, in ``env_kwargs`` (the env's
    keyword arguments, from its constructor) and in ``hyperparams`` (the algorithm's, when
    the RL stack is installed)."""
    path = Path(path)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a training config is a mapping, got {type(cfg).__name__}")
    if cfg.get("env_id") == "ArylGym/ReclaimAhead-v0":
        raise ConfigError(
            f"{path}: ArylGym/ReclaimAhead-v0 agents are trained and evaluated by `aryl-gym "
            "reclaim-ahead train|evaluate` (= python -m aryl_gym.agents.reclaim_ahead; its own "
            "config keys), not here"
        )
    _unknown("", cfg, CONFIG_KEYS, path)
    if "env_id" not in cfg:
        raise ConfigError(f"{path}: missing key 'env_id' (e.g. ArylGym/Allocate-v0)")
    for section, known in (("bc", BC_KEYS), ("eval", EVAL_KEYS)):
        check_section(section, cfg.get(section), known, path)
    try:
        env_known = env_defaults(cfg["env_id"])
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    env_kwargs = cfg.get("env_kwargs") or {}
    _unknown(f"env_kwargs (of {cfg['env_id']})", env_kwargs, env_known, path)
    set_here = sorted(_ENV_SET_BY_TRAINING & set(env_kwargs))
    if set_here:
        raise ConfigError(
            f"{path}: env_kwargs may not set {', '.join(map(repr, set_here))}: training "
            "envs use the train split and validation eval.split"
        )
    algo = cfg.get("algo", "maskable_ppo")
    hyper = cfg.get("hyperparams") or {}
    clash = sorted(set(hyper) & set(_ALGO_SET_BY_CONFIG))
    if clash:
        raise ConfigError(
            f"{path}: hyperparams may not set {', '.join(map(repr, clash))}: "
            + "; ".join(f"{k} comes from {_ALGO_SET_BY_CONFIG[k]}" for k in clash)
        )
    module = {"maskable_ppo": "sb3_contrib", "ppo": "stable_baselines3"}.get(algo)
    if module is None:
        raise ConfigError(f"{path}: algo must be 'maskable_ppo' or 'ppo', got {algo!r}")
    if find_spec(module) is not None:  # without the RL stack nothing trains: skip
        params = inspect.signature(algo_class(algo).__init__).parameters
        _unknown(f"hyperparams (of {algo})", hyper, set(params) - {"self"}, path)


def load_config(path: str | Path) -> dict:
    """The training config in ``path``, checked (:func:`validate_config`), with the
    defaults of the keys it leaves out. ``env_kwargs`` defaults to none: the env's own
    defaults apply. A ``ArylGym/Round-v0`` config is :mod:`aryl_gym.agents.round_train`'s
    (CEM then PPO; :func:`~aryl_gym.agents.round_train.load_round_config`)."""
    cfg = yaml.safe_load(Path(path).read_text())
    if isinstance(cfg, dict) and cfg.get("env_id") == ROUND_ENV_ID:
        from aryl_gym.agents.round_train import load_round_config

        return load_round_config(path)
    validate_config(cfg, path)
    cfg.setdefault("algo", "maskable_ppo")
    cfg.setdefault("policy", "setnet")
    cfg.setdefault("policy_kwargs", {})
    cfg.setdefault("seed", 0)
    cfg.setdefault("n_envs", 4)
    cfg.setdefault("vec_env", "dummy")
    cfg["env_kwargs"] = dict(cfg.get("env_kwargs") or {})
    cfg["hyperparams"] = dict(cfg.get("hyperparams") or {})
    cfg["eval"] = dict(cfg.get("eval") or {})
    cfg.setdefault("checkpoint_freq", 100_000)
    return cfg


def versions() -> dict:
    import gymnasium
    import sb3_contrib
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


def algo_class(algo: str):
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    if algo == "ppo":
        from stable_baselines3 import PPO

        return PPO
    raise ValueError(f"algo must be 'maskable_ppo' or 'ppo', got {algo!r}")


def policy_spec(cfg: dict, env):
    """(policy class or name, policy_kwargs) for the config."""
    from aryl_gym.agents.networks import MaskableSetPolicy, SetPolicy, set_layout

    kwargs = dict(cfg["policy_kwargs"])
    if cfg["policy"] == "setnet":
        kwargs.update(set_layout(env))
        return (MaskableSetPolicy if cfg["algo"] == "maskable_ppo" else SetPolicy), kwargs
    return cfg["policy"], kwargs


def close_vec_env(venv) -> None:
    """Close ``venv``, also after an interrupt in the middle of a step: a SubprocVecEnv
    whose step was interrupted after some workers' results were read would wait forever
    in ``close()`` for those results again, so what is still pending is drained (each
    worker gets 2 s) and the step abandoned first."""
    inner = venv
    while hasattr(inner, "venv"):  # VecEnvWrapper chain (VecMonitor, ...)
        inner = inner.venv
    if getattr(inner, "waiting", False):
        for remote in inner.remotes:
            if remote.poll(2.0):
                remote.recv()
        inner.waiting = False
    venv.close()


def train(cfg: dict, run_dir: str | Path, resume: str | None = None, progress: bool = True) -> dict:
    import torch
    from aryl_gym.agents.bc import collect, dagger, pretrain_from_config
    from aryl_gym.agents.callbacks import EpisodeMetricsCallback, TqdmCallback, ValEvalCallback
    from stable_baselines3.common.callbacks import CheckpointCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    from aryl_gym.envs import make_env
    from aryl_gym.interrupts import signal_name

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # the run's config pins every env default: loading the agent later builds this env
    cfg = {**cfg, "env_kwargs": resolved_env_kwargs(cfg["env_id"], cfg["env_kwargs"])}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    # -- seeds and threads (2-core machine: one torch thread, envs in the main process)
    seed = int(cfg["seed"])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(cfg.get("torch_threads", 1)))

    # -- vectorised training envs (train split) and one env for evaluation / BC
    env_id, env_kwargs = cfg["env_id"], dict(cfg["env_kwargs"])
    factory = functools.partial(make_env, env_id, split="train", **env_kwargs)
    if cfg["vec_env"] == "subproc":
        # env workers ignore Ctrl-C (this process stops them) and die with their parent
        factory = functools.partial(_in_env_worker, factory)
    vec_cls = SubprocVecEnv if cfg["vec_env"] == "subproc" else DummyVecEnv
    venv = VecMonitor(vec_cls([factory] * int(cfg["n_envs"])))
    venv.seed(seed)
    eval_env = make_env(env_id, **env_kwargs)
    masked = cfg["algo"] == "maskable_ppo"

    # -- the model (fresh, or resumed from a checkpoint)
    Algo = algo_class(cfg["algo"])
    tb = str(run_dir / "tb")
    if resume:
        model = Algo.load(resume, env=venv, tensorboard_log=tb, device="cpu")
    else:
        policy, pkw = policy_spec(cfg, eval_env)
        model = Algo(
            policy,
            venv,
            policy_kwargs=pkw,
            seed=seed,
            tensorboard_log=tb,
            device="cpu",
            **cfg["hyperparams"],
        )

    # -- optional warm start: behaviour cloning of Aryl's decisions
    bc_info = None
    if cfg.get("bc") and not resume:
        bc = dict(cfg["bc"])
        t0 = time.perf_counter()
        teacher = str(bc.get("teacher", "aryl"))
        demos = collect(eval_env, int(bc.get("episodes", 40)), gamma=model.gamma, teacher=teacher)
        t_collect = time.perf_counter() - t0
        history = pretrain_from_config(model.policy, demos, bc, seed, masked=masked)
        dagger_rows = []
        if int(bc.get("dagger_iters", 0)) > 0:  # DAgger: Aryl labels the learner's states
            demos, dagger_rows = dagger(
                eval_env,
                model.policy,
                demos,
                iters=int(bc["dagger_iters"]),
                episodes=int(bc.get("dagger_episodes", bc.get("episodes", 40))),
                gamma=model.gamma,
                epochs=int(bc.get("dagger_epochs", 3)),
                masked=masked,
                lr=float(bc.get("lr", 1e-3)),
                batch_size=int(bc.get("batch_size", 256)),
                value_coef=float(bc.get("value_coef", 0.5)),
                seed=seed,
                log=lambda r: print(f"dagger {r}"),
            )
        model.save(run_dir / "bc_model.zip")
        bc_info = dict(
            teacher=teacher,
            samples=len(demos),
            episodes=demos.episodes,
            skipped_decisions=demos.skipped,
            collect_s=round(t_collect, 1),
            train_s=round(history[-1]["seconds"], 1),
            history=history,
            dagger=dagger_rows,
        )
        (run_dir / "bc.json").write_text(json.dumps(bc_info, indent=2) + "\n")

    # -- callbacks: episode metrics, validation evaluation + best model, checkpoints, bar
    ev = cfg["eval"]
    metric = ev.get("metric", "avg_jct_s" if "Allocate" in env_id else "preemptions")
    val_cb = ValEvalCallback(
        eval_env,
        env_id,
        env_kwargs,
        run_dir,
        eval_freq=int(ev.get("eval_freq", 50_000)),
        seeds=ev.get("seeds", [0, 1, 2, 3, 4]),
        metric=metric,
        split=ev.get("split", "val"),
        masked=masked,
        verbose=1,
    )
    n_timesteps = int(cfg["n_timesteps"])
    callbacks = [
        EpisodeMetricsCallback(),
        val_cb,
        CheckpointCallback(
            max(int(cfg["checkpoint_freq"]) // int(cfg["n_envs"]), 1),
            str(run_dir / "checkpoints"),
            "model",
        ),
    ]
    if progress:
        callbacks.append(TqdmCallback(n_timesteps))

    # -- RL (fine-tuning when warm-started)
    t_rl = time.perf_counter()
    remaining = n_timesteps - (model.num_timesteps if resume else 0)
    interrupted = None
    try:
        model.learn(
            max(remaining, 0), callback=callbacks, tb_log_name="rl", reset_num_timesteps=not resume
        )
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM: stop early, still save and write meta
        interrupted = signal_name(exc)
        print(f"interrupted ({interrupted}) at {model.num_timesteps} steps: saving")
    val_cb.evaluate_now()  # the final model too
    rl_s = time.perf_counter() - t_rl
    model.save(run_dir / "final_model.zip")
    close_vec_env(venv)

    meta = dict(
        config=cfg,
        seed=seed,
        steps=int(model.num_timesteps),
        wall_s=round(time.perf_counter() - t_start, 1),
        rl_wall_s=round(rl_s, 1),
        bc=None if bc_info is None else {k: v for k, v in bc_info.items() if k != "history"},
        best_val={metric: val_cb.best},
        aryl_val={metric: val_cb.ref[metric]},
        resumed_from=resume,
        interrupted=interrupted is not None,
        interrupt_signal=interrupted,
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
        versions=versions(),
    )
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    plot_learning_curve(run_dir / "eval_log.csv", run_dir / "learning_curve.png", metric)
    print(f"done: {meta['steps']} steps in {meta['wall_s']} s -> {run_dir}")
    return meta


def plot_learning_curve(csv_path: Path, png: Path, metric: str, title: str | None = None) -> None:
    """Validation metric vs timesteps (agent and Aryl on the same windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(csv_path)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(df["timesteps"], df[metric], marker="o", label="agent (val, deterministic)")
    ax.axhline(df[f"aryl_{metric}"].iloc[0], color="k", ls="--", label="Aryl (same windows)")
    ax.set_xlabel("timesteps")
    ax.set_ylabel(metric)
    ax.set_title(title or Path(csv_path).parent.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main_from_args(args: argparse.Namespace) -> int:
    from aryl_gym.resources import resolve_config

    cfg = load_config(resolve_config(args.config))
    if args.timesteps is not None:
        cfg["n_timesteps"] = args.timesteps
    if args.seed is not None:
        cfg["seed"] = args.seed
    run_dir = args.run_dir or f"runs/{Path(args.config).stem}"
    theta = getattr(args, "theta", None)
    if cfg["env_id"] == ROUND_ENV_ID:
        from aryl_gym.agents.round_train import train_round

        if args.resume is not None:
            raise ValueError("--resume: a Round-v0 run restarts (give --theta to skip CEM)")
        train_round(cfg, run_dir, theta=theta, progress=not args.no_progress)
        return 0
    if theta is not None:
        raise ValueError(f"--theta is for Round-v0 configs; {args.config} trains {cfg['env_id']}")
    if args.resume is None and Path(run_dir, "eval_log.csv").exists():
        shutil.move(
            str(Path(run_dir, "eval_log.csv")),
            str(Path(run_dir, f"eval_log.{int(time.time())}.csv")),
        )
    meta = train(cfg, run_dir, resume=args.resume, progress=not args.no_progress)
    if meta["interrupt_signal"] is not None:  # saved, but say it stopped early: 128 + signal
        return 128 + int(getattr(signal, meta["interrupt_signal"]))
    return 0


def _in_env_worker(factory):
    """Build an env in a ``SubprocVecEnv`` worker after :func:`aryl_gym.interrupts.setup_worker`
    (ignore SIGINT, die with the parent): a Ctrl-C reaches the trainer alone, which then
    saves and closes the workers itself."""
    from aryl_gym.interrupts import setup_worker

    setup_worker()  # the worker's parent is multiprocessing's fork server, not this process
    return factory()
