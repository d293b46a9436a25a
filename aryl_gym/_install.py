"""How this copy of aryl-gym was installed, for install hints of optional extras."""

from __future__ import annotations

from pathlib import Path


def source_checkout() -> Path | None:
    """The project folder when aryl_gym runs from a checkout (an editable install or the
    source tree itself), else None (installed from a wheel)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def install_hint(extra: str) -> str:
    """``pip install -e '<checkout>[extra]'`` from a checkout, else
    ``pip install 'aryl-gym[extra]'``."""
    src = source_checkout()
    if src is not None:
        here = Path.cwd().resolve()
        where = "." if src == here else str(src)
        return f"pip install -e '{where}[{extra}]'"
    return f"pip install 'aryl-gym[{extra}]'"
