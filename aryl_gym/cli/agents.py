"""``aryl-gym train`` and ``aryl-gym evaluate`` (registered by ``aryl_gym.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path

#: evaluate's step guard (aryl_gym.evaluation.DEFAULT_MAX_STEPS, which test_cli_light
#: checks): repeated here so that the parser imports no library module
DEFAULT_MAX_STEPS = 100_000


def _train(args: argparse.Namespace) -> int:
    from aryl_gym.agents.train import main_from_args

    return main_from_args(args)


def _train_round(args: argparse.Namespace) -> int:
    from aryl_gym.agents.round_train import load_round_config
    from aryl_gym.agents.train import main_from_args
    from aryl_gym.resources import resolve_config

    load_round_config(resolve_config(args.config))  # a non-Round config is an error here
    return main_from_args(args)


def _evaluate(args: argparse.Namespace) -> int:
    from aryl_gym.agents.evaluate import main_from_args, round_model

    round_zip = round_model(args.agent, args.model)
    if round_zip is not None:
        return _evaluate_round_model(round_zip, args)
    return main_from_args(args)


def _evaluate_round_model(zip_path: Path, args: argparse.Namespace) -> int:
    """``evaluate`` of a Round-v0 model: ``evaluate-round --agents ZIP`` on the first
    ``--seeds`` workloads of ``--split`` (val or test), its defaults otherwise."""
    from aryl_gym.cli import build_parser

    if args.split == "train":
        raise ValueError("a Round-v0 model is evaluated on val or test workloads, not train")
    argv = ["evaluate-round", "--agents", str(zip_path), "--split", args.split]
    argv += ["--workloads", str(args.seeds)]
    if args.scenario:
        argv += ["--scenario", args.scenario]
    if args.markdown:
        argv += ["--markdown", str(args.markdown), "--force"]
    if args.json:
        argv += ["--json", str(args.json), "--force"]
    if args.quiet:
        argv.append("--quiet")
    print(f"{zip_path} is a Round-v0 model: aryl-gym {' '.join(argv)}")
    inner = build_parser().parse_args(argv)
    return inner.func(inner)


def add_train_arguments(p: argparse.ArgumentParser, config: str | None = None) -> None:
    p.add_argument(
        "--config",
        required=config is None,
        default=config,
        help="YAML config, or the name of a packaged one (see agents/configs/, e.g. smoke"
        + (f"; default {config})" if config else ")"),
    )
    p.add_argument("--run-dir", help="output directory (default runs/<config name>)")
    p.add_argument("--timesteps", type=int, help="override n_timesteps")
    p.add_argument("--seed", type=int, help="override seed")
    p.add_argument("--resume", help="continue from a checkpoint zip (same run dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--theta",
        help="Round-v0 configs: start PPO from this linear scorer JSON (skips the CEM stage)",
    )


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--agent",
        required=True,
        type=Path,
        help="agent directory (config.yaml + model zip) or zip, or the name of a packaged "
        "trained agent (allocate, reclaim)",
    )
    p.add_argument(
        "--model",
        help="model file inside --agent (default model.zip / best_model.zip / final_model.zip)",
    )
    p.add_argument("--scenario", help="scenario (default: the agent's training scenario)")
    p.add_argument(
        "--env-kwarg",
        action="append",
        metavar="KEY=VALUE",
        help="an episode keyword of the agent's env for every policy (episode_hours, "
        "drain_hours, workload_seed, split_fractions, trace); repeatable",
    )
    p.add_argument(
        "--seeds", type=int, default=5, help="evaluate on windows of seeds 0..N-1 (default 5)"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--baselines", nargs="*", help="baseline policy names (default: per env)")
    p.add_argument("--json", type=Path, help="write {policy: summary} as JSON here")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    p.add_argument(
        "--max-steps",
        type=int,
        default=DEFAULT_MAX_STEPS,
        help="step guard: the agent's env steps per episode before the evaluation stops "
        f"with an error naming it, the scenario and the episode (default {DEFAULT_MAX_STEPS:,}; "
        "0: no guard)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--plots",
        type=Path,
        help="directory for the plots (default next to --json or PATH/eval_plots)",
    )


def _rl_stack_missing() -> str | None:
    """The first RL package that is not installed, without importing any of them."""
    from importlib.util import find_spec

    for mod in ("torch", "stable_baselines3", "sb3_contrib"):
        if find_spec(mod) is None:
            return mod
    return None


def register(sub) -> None:
    """Add ``train`` and ``evaluate``, or stubs explaining how to install the RL extra."""
    missing = _rl_stack_missing()
    if missing is not None:
        register_stubs(sub, f"no module named {missing!r}")
        return
    t = sub.add_parser("train", help="train an RL agent from a YAML config (MaskablePPO / PPO)")
    add_train_arguments(t)
    t.set_defaults(func=_train)
    r = sub.add_parser(
        "train-round",
        help="Round-v0: CEM search of a linear scorer, then PPO fine-tuning (YAML config)",
        description="Stage 1 searches a linear scorer by CEM on training workloads (skipped "
        "with --theta), stage 2 fine-tunes a set policy started from it with PPO; selection "
        "on validation workloads only (agents/round_train.py).",
    )
    add_train_arguments(r, config="round_ppo")
    r.set_defaults(func=_train_round)
    e = sub.add_parser("evaluate", help="a trained agent vs the baselines on the test split")
    add_evaluate_arguments(e)
    e.set_defaults(func=_evaluate)


def register_stubs(sub, reason: str) -> None:
    """``train`` / ``evaluate`` that explain how to install the RL extra."""

    def stub(args: argparse.Namespace) -> int:
        import sys

        from aryl_gym._install import install_hint

        print(
            f"aryl-gym {args.command}: the RL stack is missing ({reason}); "
            f"install it with: {install_hint('rl')}",
            file=sys.stderr,
        )
        return 2

    for name in ("train", "train-round", "evaluate"):
        # prefix "+" so that any "--option" lands in `rest` instead of being an error
        s = sub.add_parser(
            name,
            help=f"(needs the `rl` extra) {name} an RL agent",
            add_help=False,
            prefix_chars="+",
        )
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(func=stub)
