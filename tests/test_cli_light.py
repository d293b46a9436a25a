"""The command line stays light: ``aryl-gym --help`` and a simulation of ``tiny`` import
none of the heavy optional stacks (torch, stable-baselines3, sb3-contrib, Ray,
matplotlib). Whole-process timings are in scripts/ (docs/results.md), not here."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("torch", "stable_baselines3", "sb3_contrib", "ray", "matplotlib")


def _heavy_after(argv: list[str]) -> list[str]:
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from aryl_gym.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main({argv!r})
            except SystemExit:
                pass
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_help_imports_no_heavy_stack():
    assert _heavy_after(["--help"]) == []


def test_simulate_tiny_imports_no_heavy_stack():
    assert _heavy_after(["simulate", "--scenario", "tiny", "--quiet"]) == []
