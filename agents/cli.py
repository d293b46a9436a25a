"""``aryl-gym train`` and ``aryl-gym evaluate`` (registered by ``aryl_gym.cli``)."""

from __future__ import annotations

import argparse


def _train(args: argparse.Namespace) -> int:
    from agents.train import main_from_args

    return main_from_args(args)


def _evaluate(args: argparse.Namespace) -> int:
    from agents.evaluate import main_from_args

    return main_from_args(args)


def register(sub) -> None:
    """Add the ``train`` and ``evaluate`` sub-commands to an argparse sub-parser set."""
    from agents.evaluate import add_arguments as eval_args
    from agents.train import add_arguments as train_args

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

        print(
            f"aryl-gym {args.command}: the RL stack is missing ({reason}); "
            "install it with: pip install -e '.[rl]'",
            file=sys.stderr,
        )
        return 2

    for name in ("train", "evaluate"):
        # prefix "+" so that any "--option" lands in `rest` instead of being an error
        s = sub.add_parser(
            name,
            help=f"(needs pip install -e '.[rl]') {name} an RL agent",
            add_help=False,
            prefix_chars="+",
        )
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(func=stub)
