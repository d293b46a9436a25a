"""The registry of policies: a name -> factory and one-line rule.

``aryl-gym policies`` lists it; ``make_policy(name)`` builds one. Three kinds of names
resolve, in this order:

* the built-in heuristics below;
* plug-ins: entry points of the group ``aryl_gym.policies`` (:data:`ENTRY_POINT_GROUP`)
  that installed packages declare, each naming a :class:`~aryl_gym.policy.Policy`
  subclass or a :class:`PolicySpec`::

      [project.entry-points."aryl_gym.policies"]
      my-policy = "my_package.policies:MyPolicy"

* an import path ``package.module:Class`` of a Policy subclass (the module must be
  importable: installed, or on ``sys.path`` / ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from aryl_gym.policy import Policy

#: The entry-point group through which installed packages add policies.
ENTRY_POINT_GROUP = "aryl_gym.policies"


class PolicyLoadError(ValueError):
    """A plug-in or ``module:Class`` policy that cannot be loaded (the message says why)."""


@dataclass(frozen=True)
class PolicySpec:
    """A named policy: ``factory(**kwargs)`` builds it; ``source`` says where it comes
    from (``"built-in"``, the distribution of an entry point, or the import path)."""

    name: str
    factory: Callable[..., Policy]
    description: str
    source: str = "built-in"


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
        _aryl("aryl-hold-training-starts", "Aryl where a start judged not worth lent GPUs that needs donors' "
              "training GPUs waits one round for them instead of landing on lent GPUs (elastic bases kept on "
              "training servers, as when this workaround was built)", hold_training_starts=True,
              elastic_base_on_training=True),
        _aryl("aryl-split-starts", "Aryl whose step 1 takes extra workers back wherever they cost least, "
              "even when the start then spans servers (before compact_starts)", compact_starts=False),
        _aryl("aryl-move-off-lent", "Aryl that moves a job's workers on slow lent GPUs to training servers "
              "once these have room (Allocation.to_training)", move_off_lent=True),
        _aryl("aryl-extras-anywhere", "Aryl with extra workers also in the free GPUs of other jobs' servers "
              "(best fit; the placement before the extras_own_or_empty rule)", extras_own_or_empty=False),
        _aryl("aryl-elastic-only-extras-anywhere", "elastic-only ablation with extra workers also in other jobs' servers",
              loaning=False, extras_own_or_empty=False),
        PolicySpec("deepboot-knapsack", DeepBootKnapsackPolicy,
                   "DeepBoot-style: all jobs (base included) in one knapsack valued by remaining time x w/(w+1), "
                   "re-planned every 60 s, no resize guard; Aryl reclaim"),
    ]  # fmt: skip
    specs += [PolicySpec(cls.name, cls, cls.description) for cls in (FifoNoLoan, SjfNoLoan)]
    from aryl_gym.baselines.classic import Afs, Tiresias

    specs += [PolicySpec(cls.name, cls, cls.description) for cls in (Tiresias, Afs)]
    return {s.name: s for s in specs}


def policy_specs() -> dict[str, PolicySpec]:
    """Every policy by name: the built-in ones, then the plug-ins of the entry-point group
    :data:`ENTRY_POINT_GROUP` (built on call: no global state at import). A plug-in that
    cannot be loaded is listed with the reason in its description; one whose name a
    built-in policy has is ignored with a warning."""
    specs = _registry()
    for ep in _entry_points():
        if ep.name in specs:
            warnings.warn(
                f"policy entry point {ep.name!r} ({ep.value}) of {_dist_name(ep)} is ignored: "
                "a built-in policy has that name",
                stacklevel=2,
            )
            continue
        try:
            specs[ep.name] = _entry_point_spec(ep)
        except PolicyLoadError as exc:
            specs[ep.name] = PolicySpec(
                ep.name, _unloadable(exc), f"(cannot load: {exc})", _dist_name(ep)
            )
    return specs


def make_policy(name: str, **kwargs) -> Policy:
    """A new policy of ``name`` (a registry name, a plug-in name or ``module:Class``);
    ``kwargs`` go to its factory. ``KeyError`` for an unknown name, :class:`PolicyLoadError`
    for a plug-in or import path that cannot be loaded."""
    return resolve_policy_spec(name).factory(**kwargs)


def resolve_policy_spec(name: str) -> PolicySpec:
    """The :class:`PolicySpec` of ``name``, looked up as :func:`make_policy` does (only the
    plug-in of that name is loaded)."""
    specs = _registry()
    if name in specs:
        return specs[name]
    for ep in _entry_points():
        if ep.name == name:
            return _entry_point_spec(ep)
    if is_import_path(name):
        cls = load_policy_class(name)
        return PolicySpec(name, cls, cls.description, name)
    known = list(specs) + [ep.name for ep in _entry_points() if ep.name not in specs]
    raise KeyError(
        f"unknown policy {name!r}; known: {', '.join(known)} "
        "(or give a Policy subclass as package.module:Class)"
    )


def is_import_path(name: str) -> bool:
    """Whether ``name`` looks like ``package.module:Class`` rather than a registry name."""
    return ":" in name


def load_policy_class(path: str) -> type[Policy]:
    """The Policy subclass at ``path`` = ``package.module:Class`` (``Class`` may be dotted,
    ``Outer.Inner``). :class:`PolicyLoadError` naming the module and the class when the
    path is malformed, the module does not import, the class is missing or is not a
    :class:`~aryl_gym.policy.Policy` subclass."""
    module, _, qualname = path.partition(":")
    if not module or not qualname or ":" in qualname:
        raise PolicyLoadError(f"policy {path!r} must look like package.module:Class")
    try:
        obj = importlib.import_module(module)
    except Exception as exc:  # ImportError, or any error the module raises on import
        raise PolicyLoadError(
            f"policy {path!r}: cannot import module {module!r} "
            f"({type(exc).__name__}: {exc}); is it installed or on PYTHONPATH?"
        ) from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PolicyLoadError(
                f"policy {path!r}: module {module!r} has no class {qualname!r}"
            ) from None
    if not (isinstance(obj, type) and issubclass(obj, Policy)):
        raise PolicyLoadError(
            f"policy {path!r}: {qualname!r} in module {module!r} is not a subclass of "
            "aryl_gym.policy.Policy"
        )
    return obj


def _entry_points() -> list[metadata.EntryPoint]:
    """The entry points of :data:`ENTRY_POINT_GROUP`, one per name (the first found)."""
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return list(seen.values())


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"package {dist.name}" if dist is not None else "an unknown package"


def _entry_point_spec(ep: metadata.EntryPoint) -> PolicySpec:
    """The PolicySpec of a plug-in entry point: its target is a Policy subclass (named by
    the entry point) or a PolicySpec (used as it is, under the entry point's name)."""
    where = f"policy entry point {ep.name!r} = {ep.value!r} of {_dist_name(ep)}"
    try:
        obj = ep.load()
    except Exception as exc:
        raise PolicyLoadError(f"{where}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, PolicySpec):
        return PolicySpec(ep.name, obj.factory, obj.description, _dist_name(ep))
    if isinstance(obj, type) and issubclass(obj, Policy):
        return PolicySpec(ep.name, obj, obj.description, _dist_name(ep))
    raise PolicyLoadError(f"{where}: not a Policy subclass or a PolicySpec")


def _unloadable(exc: PolicyLoadError) -> Callable[..., Policy]:
    """A factory that raises ``exc`` (a listed plug-in that cannot be built)."""

    def factory(**_kwargs) -> Policy:
        raise exc

    return factory
