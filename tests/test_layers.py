"""The package's layers (README, Layout): the simulator imports nothing outside itself and
no library module imports the command line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def _py(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_simulator_imports_nothing_outside_it():
    bad = [
        (p.relative_to(ROOT).as_posix(), m)
        for p in _py("aryl_gym/sim")
        for m in _imports(p)
        if m.startswith("aryl_gym") and not m.startswith("aryl_gym.sim")
    ]
    assert not bad, bad
    assert len(_py("aryl_gym/sim")) > 10  # the walk found the package


def test_no_library_module_imports_the_command_line():
    files = [p for folder in ("aryl_gym", "agents", "baselines") for p in _py(folder)]
    files = [p for p in files if "aryl_gym/cli" not in p.as_posix()]
    bad = [
        (p.relative_to(ROOT).as_posix(), m)
        for p in files
        for m in _imports(p)
        if m == "aryl_gym.cli" or m.startswith("aryl_gym.cli.")
    ]
    assert not bad, bad
