"""``aryl-gym sweep``: the command-line face of :mod:`aryl_gym.experiments.sweep`."""

from __future__ import annotations

import argparse

from aryl_gym.cli.common import (
    MAPPING_FLAGS,
    add_output_arguments,
    add_run_arguments,
    add_scenario_arguments,
    check_scenario_arguments,
    option_name,
    policies_and_seeds,
    print_resumed,
    scenario_from_args,
)


def check_grid_against_flags(grid: dict, args: argparse.Namespace) -> None:
    """A ``--grid`` parameter that sets the same ``MappingOptions`` field as a mapping flag
    (``elastic_share``, ``elastic_min_fraction``, ``elastic_max_factor``): the grid sets
    the field at every point, on top of the mapping the flags give; the flag's value is
    the scenario's own, the value the sensitivity tables of the other parameters hold the
    field at. So the flag's value must be one of the grid's, else it would change nothing:
    ``ValueError`` naming both."""
    from aryl_gym.experiments.grid import fmt_value

    for dest, field, _ in MAPPING_FLAGS:
        value = getattr(args, dest)
        if value is None or field not in grid or value in grid[field]:
            continue
        flag = option_name(dest)
        values = ",".join(fmt_value(v) for v in grid[field])
        raise ValueError(
            f"{flag} {fmt_value(value)} and --grid {field}={values} both set the trace "
            f"mapping's {field}: the grid sets it at every point, so the flag would change "
            f"nothing; give {fmt_value(value)} among the grid's values (the value the other "
            "parameters' sensitivity tables then hold it at) or leave the flag out"
        )


def cmd_sweep(args: argparse.Namespace) -> int:
    from aryl_gym.experiments import runner
    from aryl_gym.experiments.grid import grid_points, parse_grid
    from aryl_gym.experiments.sweep import run_sweep, sweep_folder

    policies, seeds = policies_and_seeds(args)
    # validate everything before any run starts (the scenario last: it may load a trace)
    runner.validate_policies(policies)
    runner.validate_seeds(seeds)
    grid = parse_grid(args.grid or [])
    runner.check_backend(args.backend)
    runner.check_workers(args.workers)
    check_scenario_arguments(args)
    check_grid_against_flags(grid, args)
    sweep_folder(args.out, grid, policies, args.reference).check(
        force=args.force, resume=args.resume
    )
    scenario = scenario_from_args(args)
    df = run_sweep(
        scenario,
        policies,
        seeds,
        grid,
        args.out,
        backend=args.backend,
        workers=args.workers,
        address=args.address,
        progress=not args.quiet,
        reference=args.reference,
        force=args.force,
        resume=args.resume,
    )
    print_resumed(df)
    n_points = len(grid_points(grid))
    print(
        f"sweep {scenario.name}: {n_points} point(s) x {len(policies)} policies x "
        f"{len(seeds)} seeds = {n_points * len(policies) * len(seeds)} runs, "
        f"{len(df)} succeeded"
    )
    for p in df.attrs.get("paths", []):
        print(f"wrote {p}")
    return 1 if df.attrs.get("failures") else 0


def register(sub) -> None:
    from aryl_gym.experiments.grid import PARAMETERS

    known = "; ".join(f"{k}: {p.help}" for k, p in PARAMETERS.items())
    s = sub.add_parser(
        "sweep",
        help="run several policies over a grid of scenario changes x seeds; sensitivity tables",
    )
    add_scenario_arguments(s, required=True)
    add_run_arguments(
        s,
        "comma-separated policy names (see `aryl-gym policies`) or package.module:Class "
        "paths of Policy subclasses",
    )
    s.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2,...",
        help="a swept parameter and its values; repeat for a cartesian product "
        f"(none: the scenario alone). Known: {known}. With --trace, the elastic_* "
        "parameters change the trace mapping the mapping flags give; a flag that sets the "
        "same field must name one of the grid's values (the others' tables hold it there)",
    )
    add_output_arguments(s)
    s.set_defaults(func=cmd_sweep)
