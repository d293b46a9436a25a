"""The grid of ``aryl-gym sweep``: the scenario parameters it can vary, parsing
``--grid NAME=V1,V2,...``, the cartesian product of the values and each point's scenario."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aryl_gym.config import ScenarioConfig

if TYPE_CHECKING:  # pandas only in annotations: the CLI imports this module for --help
    import pandas as pd


@dataclass(frozen=True)
class Parameter:
    """A grid parameter: how to parse a value, apply it, and read the scenario's own value."""

    parse: Callable[[str], Any]
    apply: Callable[[ScenarioConfig, Any], ScenarioConfig]
    default: Callable[[ScenarioConfig], Any]
    help: str


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {text!r}")
    return v


def _cluster(field: str) -> Callable[[ScenarioConfig, Any], ScenarioConfig]:
    return lambda sc, v: replace(sc, cluster=replace(sc.cluster, **{field: v}))


def _inference(field: str) -> Callable[[ScenarioConfig, Any], ScenarioConfig]:
    return lambda sc, v: replace(sc, inference=replace(sc.inference, **{field: v}))


def _trace_options(sc: ScenarioConfig):
    from aryl_gym.workload.real_traces import MappingOptions

    return sc.trace_options or MappingOptions()


def _elastic(field: str) -> tuple[Callable, Callable]:
    """(apply, read) of an elastic-job field: of the synthetic workload, or of the trace
    mapping (``MappingOptions``, which draws a trace's elastic flags) when a trace
    replaces the workload."""

    def apply(sc: ScenarioConfig, v: Any) -> ScenarioConfig:
        if sc.trace is None:
            return replace(sc, workload=replace(sc.workload, **{field: v}))
        from aryl_gym.workload.real_traces import detect_format

        if (sc.trace_format or detect_format(sc.trace)) == "aryl":
            raise ValueError(
                f"grid parameter {field!r}: the trace {sc.trace!r} is in the project's format, "
                "whose columns give each job's elasticity and range (no mapping applies)"
            )
        return replace(sc, trace_options=replace(_trace_options(sc), **{field: v}))

    def read(sc: ScenarioConfig) -> Any:
        return getattr(_trace_options(sc) if sc.trace is not None else sc.workload, field)

    return apply, read


def _synthetic_only(name: str, apply: Callable, instead: str) -> Callable:
    """``apply``, refused for a scenario whose workload is a trace (it would change
    nothing there, silently)."""

    def checked(sc: ScenarioConfig, v: Any) -> ScenarioConfig:
        if sc.trace is not None:
            raise ValueError(
                f"grid parameter {name!r} changes the synthetic workload, which the trace "
                f"{sc.trace!r} replaces; {instead}"
            )
        return apply(sc, v)

    return checked


#: The known grid parameters, in the order they are applied to the scenario.
PARAMETERS: dict[str, Parameter] = {
    "elastic_share": Parameter(
        _float,
        *_elastic("elastic_share"),
        "share of elastic jobs (workload.elastic_share; with a trace, its mapping's)",
    ),
    "elastic_min_fraction": Parameter(
        _float,
        *_elastic("elastic_min_fraction"),
        "an elastic job's minimum as a fraction of its request (workload.elastic_min_fraction; "
        "with a trace, its mapping's)",
    ),
    "elastic_max_factor": Parameter(
        _float,
        *_elastic("elastic_max_factor"),
        "an elastic job's maximum as a multiple of its request (workload.elastic_max_factor; "
        "with a trace, its mapping's)",
    ),
    "large_model_share": Parameter(
        _float,
        _synthetic_only(
            "large_model_share",
            lambda sc, v: replace(sc, workload=replace(sc.workload, large_model_share=v)),
            "a trace's jobs keep the profiles its mapping draws",
        ),
        lambda sc: sc.workload.large_model_share,
        "share of jobs whose model does not fit a lent GPU (workload.large_model_share; "
        "synthetic workload only)",
    ),
    "load": Parameter(
        _float,
        _synthetic_only(
            "load",
            lambda sc, v: replace(sc, workload=sc.workload.scaled(v)),
            "vary the training pool instead (training_servers; --target-load sizes it)",
        ),
        lambda sc: 1.0,
        "multiplier of the jobs per day (workload.scaled(load); synthetic workload only)",
    ),
    "training_servers": Parameter(
        _int,
        _cluster("training_servers"),
        lambda sc: sc.cluster.training_servers,
        "training pool servers (cluster.training_servers)",
    ),
    "inference_servers": Parameter(
        _int,
        _cluster("inference_servers"),
        lambda sc: sc.cluster.inference_servers,
        "inference pool servers (cluster.inference_servers)",
    ),
    "inference_gpu_speed": Parameter(
        _float,
        _cluster("inference_gpu_speed"),
        lambda sc: sc.cluster.inference_gpu_speed,
        "training speed of an inference GPU relative to a training GPU (cluster)",
    ),
    "inference_curve": Parameter(
        str,
        _inference("curve"),
        lambda sc: sc.inference.curve,
        "inference demand curve (inference.curve)",
    ),
    "peak_utilisation": Parameter(
        _float,
        _inference("peak_utilisation"),
        lambda sc: sc.inference.peak_utilisation,
        "inference pool utilisation at the curve's peak (inference.peak_utilisation)",
    ),
}


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown grid parameter {name!r}; known: {', '.join(PARAMETERS)}")


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["load=0.5,1", "inference_curve=diurnal"]`` -> ``{"load": [0.5, 1.0], ...}``.

    Raises ``ValueError`` for a malformed item, an unknown parameter (listing the known
    ones), a parameter given twice, no values or a repeated value."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--grid wants NAME=V1,V2,..., got {spec!r}")
        if name not in PARAMETERS:
            raise _unknown(name)
        if name in grid:
            raise ValueError(f"grid parameter {name!r} given more than once")
        try:
            parsed = [PARAMETERS[name].parse(v.strip()) for v in values.split(",") if v.strip()]
        except ValueError as exc:
            raise ValueError(f"grid parameter {name!r}: {exc}") from None
        grid[name] = parsed
    return normalise_grid(grid)


def normalise_grid(grid: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Check a grid given as a mapping (names known, values present and distinct)."""
    out: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if name not in PARAMETERS:
            raise _unknown(name)
        values = list(values)
        if not values:
            raise ValueError(f"grid parameter {name!r} has no values")
        if len(set(values)) != len(values):
            raise ValueError(f"grid parameter {name!r} has repeated values: {values}")
        out[name] = values
    return out


def fmt_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product, the first parameter varying slowest; ``[{}]`` for no grid."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_scenario(base: ScenarioConfig, point: dict[str, Any]) -> ScenarioConfig:
    """``base`` with the point's changes applied; its name says the point."""
    sc = base
    for name in PARAMETERS:  # a fixed order, whatever the grid's order
        if name in point:
            sc = PARAMETERS[name].apply(sc, point[name])
    if point:
        label = ",".join(f"{k}={fmt_value(v)}" for k, v in point.items())
        sc = replace(sc, name=f"{base.name}[{label}]")
    return sc


def anchors(base: ScenarioConfig, grid: dict[str, list[Any]]) -> dict[str, Any]:
    """Per parameter the value the others are held at in the sensitivity tables: the
    scenario's own value when the grid has it, else the first value of the grid."""
    out = {}
    for name, values in grid.items():
        d = PARAMETERS[name].default(base)
        out[name] = next((v for v in values if v == d), values[0])
    return out


def at_anchors(
    agg: pd.DataFrame, grid: dict[str, list[Any]], anchor: dict[str, Any], name: str
) -> pd.DataFrame:
    """The rows of ``agg`` where every parameter but ``name`` is at its anchor."""
    sub = agg
    for other in grid:
        if other != name:
            sub = sub[sub[other] == anchor[other]]
    return sub
