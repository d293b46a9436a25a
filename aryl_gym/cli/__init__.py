"""The ``aryl-gym`` command line: one entry point, one module per sub-command.

Building the parser imports only argparse and these modules; every sub-command imports
what it needs (numpy, pandas, the simulator, torch for the RL commands) when it runs, so
``aryl-gym --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from aryl_gym import __version__
    from aryl_gym.cli import agents, benchmark, simulate, sweep, traces, watch

    p = argparse.ArgumentParser(
        prog="aryl-gym", description="Shared GPU cluster simulator and Gymnasium envs (Aryl)."
    )
    p.add_argument("--version", action="version", version=f"aryl-gym {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    simulate.register(sub)
    traces.register(sub)
    benchmark.register(sub)
    sweep.register(sub)
    agents.register(sub)
    watch.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"aryl-gym: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
