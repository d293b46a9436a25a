"""``aryl-gym train`` and ``aryl-gym evaluate`` (registered by ``aryl_gym.cli``)."""

from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from aryl_gym.agents.train import main_from_args

    return main_from_args(args)


def _evaluate(args: argparse.Namespace) -> int:
    from aryl_gym.agents.evaluate import main_from_args

    return main_from_args(args)


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
    from aryl_gym.agents.evaluate import add_arguments as eval_args
    from aryl_gym.agents.train import add_arguments as train_args

    t = sub.add_parser("train", help="train an RL agent from a YAML config (MaskablePPO / PPO)")
    train_args(t)
    t.set_defaults(func=_train)
    e = sub.add_parser("evaluate", help="a trained agent vs the baselines on the test split")
    eval_args(e)
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

    for name in ("train", "evaluate"):
        # prefix "+" so that any "--option" lands in `rest` instead of being an error
        s = sub.add_parser(
            name,
            help=f"(needs the `rl` extra) {name} an RL agent",
            add_help=False,
            prefix_chars="+",
        )
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(func=stub)
