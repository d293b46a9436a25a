"""``aryl-gym benchmark``: the command-line face of :mod:`aryl_gym.experiments.benchmark`."""

from __future__ import annotations

import argparse

from aryl_gym.cli.common import (
    add_output_arguments,
    add_run_arguments,
    add_scenario_arguments,
    check_scenario_arguments,
    csv_list,
    policies_and_seeds,
    print_resumed,
    scenario_from_args,
)

DEFAULT_POLICIES = "aryl,baseline,aryl-loan-only,aryl-elastic-only"


def cmd_benchmark(args: argparse.Namespace) -> int:
    from aryl_gym.experiments.benchmark import benchmark_folder, run_benchmark
    from aryl_gym.experiments.report import format_table
    from aryl_gym.experiments.runner import (
        check_backend,
        check_workers,
        validate_policies,
        validate_seeds,
    )

    policies, seeds = policies_and_seeds(args)
    # validate everything before any run starts (the scenario last: it may load a trace)
    validate_policies(policies)
    validate_seeds(seeds)
    check_backend(args.backend)
    check_workers(args.workers)
    check_scenario_arguments(args)
    benchmark_folder(args.out).check(force=args.force, resume=args.resume)
    scenario = scenario_from_args(args)
    df = run_benchmark(
        scenario,
        policies,
        seeds,
        args.out,
        workers=args.workers,
        progress=not args.quiet,
        reference=args.reference,
        backend=args.backend,
        address=args.address,
        keep=csv_list(args.keep or ""),
        force=args.force,
        resume=args.resume,
    )
    print(format_table(df, args.reference))
    print_resumed(df)
    for p in df.attrs.get("paths", []):
        print(f"wrote {p}")
    if df.attrs.get("records"):
        print(f"wrote {len(df.attrs['records'])} run records to {args.out / 'runs'}")
    return 1 if df.attrs.get("failures") else 0


def register(sub) -> None:
    b = sub.add_parser(
        "benchmark",
        help="run several policies over several seeds and write the paper-style table and plots",
    )
    add_scenario_arguments(b, required=True)
    add_run_arguments(
        b,
        "comma-separated policy names (see `aryl-gym policies`) or package.module:Class "
        "paths of Policy subclasses (default: Aryl, the reference point and both ablations)",
        DEFAULT_POLICIES,
    )
    add_output_arguments(b)
    b.add_argument(
        "--keep",
        metavar="KINDS",
        help="also write whole run records per run, comma-separated from jobs,timeseries,events: "
        "OUT/runs/<policy>_seed<k>_<kind>.csv (per-job rows, the sampled usage series, the "
        "event log of every start, resize, preemption, finish, lend and reclaim)",
    )
    b.set_defaults(func=cmd_benchmark)
