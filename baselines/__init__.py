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


def _aryl(name: str, description: str, **cfg) -> PolicySpec:
    from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

    def factory(**kwargs) -> Policy:
        return ArylPolicy(ArylConfig(**{**cfg, **kwargs}), name=name, description=description)

    return PolicySpec(name, factory, description)


def _registry() -> dict[str, PolicySpec]:
    from aryl_gym.baselines.deepboot import DeepBootKnapsackPolicy
    from aryl_gym.baselines.queue import FifoNoLoan, SjfNoLoan

    specs = [
        _aryl("aryl", "Aryl: loaning + elastic; SJF base demand, MCKP extra workers, greedy reclaim by preemption count"),
        _aryl("baseline", "the paper's reference point: Aryl's step 1 alone (SJF + backfill), no loaning, no elasticity",
              loaning=False, elastic=False),
        _aryl("aryl-loan-only", "ablation: loaning without elastic scaling (jobs at requested GPUs may run on lent servers)",
              elastic=False),
        _aryl("aryl-elastic-only", "ablation: elastic scaling (MCKP extras) on the training pool, no loaning", loaning=False),
        _aryl("aryl-reclaim-lost", "Aryl with reclaim cost = lost GPU-seconds instead of preemption count",
              reclaim="aryl-lost"),
        _aryl("aryl-reclaim-random", "Aryl's allocator with random reclaim", reclaim="random"),
        _aryl("aryl-reclaim-least-busy", "Aryl's allocator, reclaim fewest-busy-GPUs servers first (DeepBoot)",
              reclaim="least-busy"),
        _aryl("aryl-reclaim-last-lent", "Aryl's allocator, reclaim the most recently lent servers first",
              reclaim="last-lent"),
        _aryl("aryl-fifo", "Aryl with FIFO instead of SJF order for base demand", order="fifo"),
        _aryl("aryl-requested-base", "Aryl with elastic jobs' base demand at their requested GPUs (min only on reclaim)",
              elastic_base="requested"),
        _aryl("aryl-elastic-only-requested-base", "elastic-only ablation with base demand at requested GPUs",
              loaning=False, elastic_base="requested"),
        PolicySpec("deepboot-knapsack", DeepBootKnapsackPolicy,
                   "DeepBoot-style: all jobs (base included) in one knapsack valued by remaining time x w/(w+1), "
                   "re-planned every 60 s, no resize guard; Aryl reclaim"),
    ]  # fmt: skip
    specs += [PolicySpec(cls.name, cls, cls.description) for cls in (FifoNoLoan, SjfNoLoan)]
    from aryl_gym.baselines.classic import Afs, Tiresias

    specs += [PolicySpec(cls.name, cls, cls.description) for cls in (Tiresias, Afs)]
    return {s.name: s for s in specs}


def policy_specs() -> dict[str, PolicySpec]:
    """Every registered policy by name (built on call: no global state at import)."""
    return _registry()


def make_policy(name: str, **kwargs) -> Policy:
    specs = _registry()
    if name not in specs:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(specs)}")
    return specs[name].factory(**kwargs)
