"""Files that ship inside the package, found by name from any folder.

The repository's ``agents/trained/<name>/`` (trained agents), ``agents/configs/*.yaml``
(training configs) and ``traces/example.csv`` install as package data of
``aryl_gym.agents`` and ``aryl_gym.traces``, in a wheel and in an editable install
alike. The resolvers here take what a user types: an existing path is used as it is;
otherwise the name of a packaged file; otherwise a ``FileNotFoundError`` that lists the
packaged names. Only the standard library is imported.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: Folders of the trained agents (each holds ``config.yaml`` and a model zip) and the
#: training configs, inside the package ``aryl_gym.agents``.
TRAINED, CONFIGS = "trained", "configs"


def _package_dir(package: str) -> Path | None:
    """The folder of ``package`` on disk, or None when it is not installed (an editable
    install made before the package was mapped: reinstall to get it)."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        return None
    return Path(os.fspath(root))  # installs are folders on disk, never zips


def trained_agents() -> dict[str, Path]:
    """The packaged trained agents: name -> folder (``allocate``, ``reclaim``, ...)."""
    root = _package_dir("aryl_gym.agents")
    base = root / TRAINED if root is not None else None
    if base is None or not base.is_dir():
        return {}
    return {p.name: p for p in sorted(base.iterdir()) if (p / "config.yaml").is_file()}


def training_configs() -> dict[str, Path]:
    """The packaged training configs: name (file name without ``.yaml``) -> file."""
    root = _package_dir("aryl_gym.agents")
    base = root / CONFIGS if root is not None else None
    if base is None or not base.is_dir():
        return {}
    return {p.stem: p for p in sorted(base.glob("*.yaml"))}


def packaged_traces() -> dict[str, Path]:
    """The packaged example traces: name (file name without ``.csv``) -> file."""
    root = _package_dir("aryl_gym.traces")
    if root is None:
        return {}
    return {p.stem: p for p in sorted(root.glob("*.csv"))}


def _resolve(what: str, value: str | os.PathLike, packaged: dict[str, Path], suffix: str) -> Path:
    path = Path(value)
    if path.exists():
        return path
    name = path.name[: -len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    if str(value) in (name, name + suffix) and name in packaged:
        return packaged[name]
    known = ", ".join(packaged) or "none (the package data is missing: reinstall aryl-gym)"
    raise FileNotFoundError(
        f"{what} {str(value)!r} is neither an existing path nor a packaged {what}; "
        f"packaged: {known}"
    )


def resolve_agent(value: str | os.PathLike) -> Path:
    """A trained agent's folder (or model zip): ``value`` when it exists, else the packaged
    agent of that name (``"allocate"``, ``"reclaim"``); ``FileNotFoundError`` listing the
    packaged agents otherwise."""
    return _resolve("agent", value, trained_agents(), "")


def resolve_config(value: str | os.PathLike) -> Path:
    """A training config: ``value`` when it exists, else the packaged config of that name
    (with or without ``.yaml``); ``FileNotFoundError`` listing the packaged configs."""
    return _resolve("config", value, training_configs(), ".yaml")


def resolve_trace(value: str | os.PathLike) -> Path:
    """A trace file: ``value`` when it exists, else the packaged trace of that name
    (``"example"`` or ``"example.csv"``); ``FileNotFoundError`` listing them otherwise."""
    return _resolve("trace", value, packaged_traces(), ".csv")


__all__ = [
    "packaged_traces",
    "resolve_agent",
    "resolve_config",
    "resolve_trace",
    "trained_agents",
    "training_configs",
]
