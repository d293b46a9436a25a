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
    from aryl_gym.cli import (
        agents,
        benchmark,
        reclaim_ahead,
        round_eval,
        simulate,
        sweep,
        traces,
        watch,
    )

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
    round_eval.register(sub)
    reclaim_ahead.register(sub)
    watch.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; its exit status. Usage errors (unknown names, bad values, sizes
    beyond :mod:`aryl_gym.sim.limits`, unusable output paths) print one line and return 2;
    another ``OSError`` prints one line and returns 1; Ctrl-C, SIGTERM and SIGHUP stop the
    command cleanly (see :mod:`aryl_gym.interrupts`) and return 128 + the signal number."""
    from aryl_gym import interrupts

    try:
        with interrupts.signals_raise():
            args = build_parser().parse_args(argv)
            status = args.func(args)
            interrupts.raise_if_interrupted()  # a signal Python swallowed, or one handled
            return status  # inside the command (train saves, then returns)
    except KeyboardInterrupt as exc:
        interrupts.handled()
        print(f"aryl-gym: interrupted ({interrupts.signal_name(exc)})", file=sys.stderr)
        return interrupts.exit_status(exc)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"aryl-gym: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk that filled up, a folder removed under our feet
        print(f"aryl-gym: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
