"""Argument helpers shared by the sub-commands. Only argparse and the standard library
are imported here: building the parser must stay fast (``aryl-gym --help``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

BACKENDS = ("local", "ray")


def fmt_value(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_summary(summary: dict, title: str = "") -> None:
    if title:
        print(title)
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"  {k:<{width}}  {fmt_value(v)}")


def print_resumed(df) -> None:
    """With ``--resume``: how many runs came from the folder's records and how many ran."""
    reused = df.attrs.get("reused", [])
    if reused:
        print(f"resumed: {len(reused)} run(s) reused, {len(df.attrs.get('computed', []))} computed")


def csv_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [x.strip() for x in text.split(",") if x.strip()]


# --------------------------------------------------------------------------- scenario
def add_scenario_arguments(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--scenario`` plus ``--trace``, ``--format``, ``--target-load``,
    ``--inference-curve`` and the trace mapping flags (:func:`add_mapping_arguments`): the
    options that choose the scenario a command runs (see :func:`scenario_from_args`)."""
    p.add_argument(
        "--scenario",
        required=required,
        default=None if required else "small",
        help="scenario name (see `aryl-gym scenarios`)" + ("" if required else "; default small"),
    )
    p.add_argument(
        "--trace",
        type=Path,
        help="a trace file, project or public format (replaces the generated workload); "
        "'example' is the packaged example trace",
    )
    p.add_argument(
        "--format", help="format of --trace (default: detected; see `aryl-gym traces convert -h`)"
    )
    p.add_argument(
        "--target-load",
        type=float,
        help="size the training pool so the trace's offered GPU load is this (default: keep the "
        "scenario's cluster unless the trace does not fit it, then 0.9)",
    )
    p.add_argument(
        "--inference-curve",
        metavar="NAME",
        help="inference demand curve instead of the scenario's (see `aryl-gym traces curves`)",
    )
    add_mapping_arguments(
        p,
        "takes none (its columns give the jobs). They need --trace; a run's seed is "
        "added to the mapping's (0: the jobs of `traces convert`)",
    )


def check_scenario_arguments(args: argparse.Namespace):
    """The checks of :func:`add_scenario_arguments`' options that read no file:
    ``ValueError`` for ``--format`` / ``--target-load`` or a mapping flag without
    ``--trace`` (naming the flags given), for a bad mapping value (see
    :func:`mapping_options_from_args`) and for a ``--trace`` that is a folder. Returns
    the mapping options of the flags given (None when none was)."""
    if args.trace is None:
        if args.format is not None or args.target_load is not None:
            raise ValueError("--format and --target-load need --trace")
        given = given_mapping_flags(args)
        if given:
            need = "options need" if len(given) > 1 else "option needs"
            raise ValueError(
                f"{', '.join(given)}: trace mapping {need} --trace (they choose how a "
                "public trace's rows become jobs; the synthetic workload has its own settings)"
            )
    if args.trace is not None and args.trace.is_dir():
        raise ValueError(f"--trace {args.trace}: is a folder; give the path of a trace file")
    return mapping_options_from_args(args)


def scenario_from_args(args: argparse.Namespace):
    """The scenario of :func:`add_scenario_arguments`' options (see
    :func:`aryl_gym.scenarios.scenario_with_trace`); prints what it decided."""
    from aryl_gym.resources import resolve_trace
    from aryl_gym.scenarios import get_scenario, inference_curve_line, scenario_with_trace

    options = check_scenario_arguments(args)
    scenario = scenario_with_trace(
        get_scenario(args.scenario),
        trace=None if args.trace is None else resolve_trace(args.trace),
        trace_format=args.format,
        trace_options=options,
        target_load=args.target_load,
        inference_curve=args.inference_curve,
        log=print,
    )
    print(inference_curve_line(scenario.inference))
    return scenario


# --------------------------------------------------------------------------- trace mapping
#: The flags of :class:`~aryl_gym.workload.real_traces.MappingOptions` that ``traces
#: convert`` / ``stats`` and the scenario options (``simulate``, ``benchmark``, ``sweep``)
#: share: ``(dest, field, value of the field)``. ``traces`` adds the mapping's ``--seed``
#: (on the scenario commands ``--seed`` is the run seed, which shifts the mapping's).
MAPPING_FLAGS: tuple[tuple[str, str, Callable[[bool], bool] | None], ...] = (
    ("elastic_share", "elastic_share", None),
    ("elastic_min_fraction", "elastic_min_fraction", None),
    ("elastic_max_factor", "elastic_max_factor", None),
    ("min_duration", "min_duration_s", None),
    ("drop_failed", "keep_failed", lambda v: not v),
    ("fractional_gpu", "fractional_gpu", None),
    ("exclude_censored", "include_censored", lambda v: not v),
    ("qos", "qos", None),
    ("max_gpus", "max_gpus", None),
)


def add_mapping_arguments(
    p: argparse.ArgumentParser, aryl_format: str = "is loaded as it is"
) -> argparse._ArgumentGroup:
    """The ``MappingOptions`` flags of :data:`MAPPING_FLAGS`, in the group "trace mapping
    options" (returned; its description ends with what happens to a trace in the
    project's format, ``aryl_format``). Every default is None (absent), so that a command
    tells which were given; :func:`mapping_options_from_args` fills in the dataclass's
    defaults, which the help texts state."""
    g = p.add_argument_group(
        "trace mapping options",
        "how a public trace's rows become jobs (traces/README.md); a trace in the "
        f"project's own format {aryl_format}",
    )
    g.add_argument("--elastic-share", type=float, help="share of jobs made elastic (default 0.5)")
    g.add_argument(
        "--elastic-min-fraction",
        type=float,
        help="an elastic job of g GPUs may shrink to max(1, floor(g x this)) (default 0.5)",
    )
    g.add_argument(
        "--elastic-max-factor",
        type=float,
        help="... and grow to max(g, floor(g x this)) (default 2)",
    )
    g.add_argument(
        "--min-duration", type=float, help="drop rows shorter than this, in s (default 1)"
    )
    g.add_argument(
        "--drop-failed",
        action="store_true",
        default=None,
        help="drop failed and killed jobs (default: keep them)",
    )
    g.add_argument(
        "--fractional-gpu",
        choices=("ceil", "drop"),
        help="part-GPU tasks: round up (default) or drop",
    )
    g.add_argument(
        "--exclude-censored",
        action="store_true",
        default=None,
        help="drop jobs still running when the trace ended",
    )
    g.add_argument("--qos", help="PAI 2023: keep only these qos classes, e.g. BE or BE,Burstable")
    g.add_argument("--max-gpus", type=int, help="drop jobs asking for more GPUs than this")
    return g


def option_name(dest: str) -> str:
    """``"elastic_share"`` -> ``"--elastic-share"``."""
    return "--" + dest.replace("_", "-")


def given_mapping_flags(args: argparse.Namespace) -> list[str]:
    """The mapping flags given on the command line, e.g. ``["--elastic-share"]``."""
    return [option_name(dest) for dest, _, _ in MAPPING_FLAGS if getattr(args, dest) is not None]


def mapping_options_from_args(args: argparse.Namespace, flags=MAPPING_FLAGS):
    """The ``MappingOptions`` of the mapping flags given (``flags``, as
    :data:`MAPPING_FLAGS`), the dataclass's defaults for the others; None when none was.

    Each flag is checked alone first, so a bad value is a ``ValueError`` that names the
    flag and carries ``MappingOptions``' message, e.g. ``--elastic-share 1.5:
    MappingOptions.elastic_share must be in [0, 1], got 1.5``."""
    from aryl_gym.workload.real_traces import MappingOptions

    fields = {}
    for dest, field, convert in flags:
        value = getattr(args, dest)
        if value is None:
            continue
        fields[field] = value if convert is None else convert(value)
        try:
            MappingOptions(**{field: fields[field]})
        except ValueError as exc:
            shown = f" {value:g}" if isinstance(value, float) else f" {value}"
            shown = "" if isinstance(value, bool) else shown
            raise ValueError(f"{option_name(dest)}{shown}: {exc}") from None
    return MappingOptions(**fields) if fields else None


# --------------------------------------------------------------------------- runs
def add_run_arguments(
    parser: argparse.ArgumentParser, policies_help: str, policies_default: str | None = None
) -> None:
    """``--policies`` (required when there is no default), ``--seeds`` / ``--seed-list``."""
    parser.add_argument(
        "--policies",
        default=policies_default,
        required=policies_default is None,
        help=policies_help,
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=3, help="run seeds 0..N-1 (default 3)")
    seeds.add_argument("--seed-list", help="comma-separated seeds, e.g. 0,5,9 (instead of --seeds)")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out``, ``--force`` / ``--resume``, the backend options, ``--reference`` and
    ``--quiet``."""
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--force",
        action="store_true",
        help="replace the results already in --out (without it, or --resume, a folder "
        "holding results is refused)",
    )
    again.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted --out: the runs it already holds (runs/<hash>.json, the "
        "same policy, scenario, seed and code version) are not computed again",
    )
    add_backend_arguments(parser)
    parser.add_argument(
        "--reference", default="baseline", help="policy the ratios compare to (default baseline)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--address`` and ``--workers``."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where runs execute: local worker processes (default) or Ray tasks "
        "(needs the `ray` extra)",
    )
    parser.add_argument(
        "--address",
        help="Ray cluster address for --backend ray, e.g. auto or ray://head:10001 "
        "(default: $RAY_ADDRESS, else a new local Ray instance)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="local: worker processes (default: min(CPUs, runs); 1 = in-process); "
        "ray without --address: CPUs of the local Ray instance (default: all)",
    )


def policies_and_seeds(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """``--policies`` split at commas and :func:`seeds_from_args`."""
    return csv_list(args.policies), seeds_from_args(args)


def seeds_from_args(args: argparse.Namespace) -> list[int]:
    """``--seed-list`` parsed, else ``0..--seeds-1``; ``ValueError`` for bad values and
    for more seeds than ``aryl_gym.sim.limits.MAX_SEEDS`` (checked before the list is built)."""
    from aryl_gym.sim.limits import check_at_most

    if args.seed_list is not None:
        try:
            return [int(x) for x in csv_list(args.seed_list)]
        except ValueError:
            raise ValueError(
                f"--seed-list must be integers separated by commas, got {args.seed_list!r}"
            ) from None
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    check_at_most("--seeds", args.seeds, "MAX_SEEDS")
    return list(range(args.seeds))
