"""``aryl-gym reclaim-ahead {train,evaluate}``: the ReclaimAhead-v0 agent's script
(:mod:`aryl_gym.agents.reclaim_ahead`, docs/agents.md) under the one entry point."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    try:
        from aryl_gym.agents.reclaim_ahead import main
    except ImportError as exc:  # torch / SB3 missing: the rl extra
        raise SystemExit(
            f"aryl-gym reclaim-ahead needs the rl extra ({exc.name} is missing): "
            "pip install -e '.[rl]'"
        ) from None
    return main(args.args, prog="aryl-gym reclaim-ahead")


def register(sub) -> None:
    p = sub.add_parser(
        "reclaim-ahead",
        help="train or evaluate a ReclaimAhead-v0 agent (reclaim with foresight; rl extra)",
        description="train --config YAML | evaluate --model ZIP --config YAML ...; "
        "'aryl-gym reclaim-ahead train --help' lists the options",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="train ... or evaluate ...")
    p.set_defaults(func=_run)
