"""The registry of heuristic policies: a name -> factory and one-line rule.

``aryl-gym policies`` lists it; ``make_policy(name)`` builds one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aryl_gym.policy import Policy


@dataclass(frozen=True)
class PolicySpec:
    name: str
    factory: Callable[..., Policy]
    description: str


def _registry() -> dict[str, PolicySpec]:
    from baselines.queue import FifoNoLoan, SjfNoLoan

    specs = [PolicySpec(cls.name, cls, cls.description) for cls in (FifoNoLoan, SjfNoLoan)]
    return {s.name: s for s in specs}


def policy_specs() -> dict[str, PolicySpec]:
    """Every registered policy by name (built on call: no global state at import)."""
    return _registry()


def make_policy(name: str, **kwargs) -> Policy:
    specs = _registry()
    if name not in specs:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(specs)}")
    return specs[name].factory(**kwargs)
