"""``aryl-gym simulate``, ``scenarios`` and ``policies``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aryl_gym.cli.common import add_scenario_arguments, print_summary, scenario_from_args


def check_outputs(args: argparse.Namespace) -> None:
    """``--json`` and ``--jobs-csv`` checked before the simulation (see
    :func:`aryl_gym.outputs.check_output_file`): ``ValueError`` naming the option."""
    from aryl_gym.outputs import check_output_file

    both = args.json is not None and args.jobs_csv is not None
    if both and Path(args.json).resolve() == Path(args.jobs_csv).resolve():
        raise ValueError(f"--json and --jobs-csv name the same file: {args.json}")
    for option, path in (
        ("--json", args.json),
        ("--jobs-csv", args.jobs_csv),
        ("--timeseries-csv", args.timeseries_csv),
        ("--events-csv", args.events_csv),
    ):
        if path is not None:
            check_output_file(path, option, force=args.force)


def cmd_simulate(args: argparse.Namespace) -> int:
    from aryl_gym.baselines import make_policy
    from aryl_gym.outputs import write_csv_atomic, write_text_atomic
    from aryl_gym.simulate import run_policy

    check_outputs(args)
    scenario = scenario_from_args(args)
    policy = make_policy(args.policy)
    result = run_policy(
        scenario,
        policy,
        seed=args.seed,
        progress=not args.quiet,
        record_events=args.events_csv is not None,
    )
    summary = {
        "scenario": scenario.name,
        "policy": policy.name,
        "seed": args.seed,
        **result.summary,
    }
    print_summary(summary, f"aryl-gym simulate: {scenario.name} / {policy.name} / seed {args.seed}")
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    for kind, path in (
        ("jobs", args.jobs_csv),
        ("timeseries", args.timeseries_csv),
        ("events", args.events_csv),
    ):
        if path is not None:
            write_csv_atomic(path, result.records(kind))
            print(f"wrote {path}")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from aryl_gym.scenarios import SCENARIOS

    width = max(len(n) for n in SCENARIOS)
    for name, sc in SCENARIOS.items():
        print(f"{name:<{width}}  {sc.description}")
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from aryl_gym.baselines import policy_specs

    specs = policy_specs()
    width = max(len(n) for n in specs)
    for name, spec in specs.items():
        source = "" if spec.source == "built-in" else f"  [plug-in from {spec.source}]"
        print(f"{name:<{width}}  {spec.description}{source}")
    print(
        "\nAny Policy subclass also runs as package.module:Class; installed packages add "
        "policies through the 'aryl_gym.policies' entry-point group."
    )
    return 0


def register(sub) -> None:
    s = sub.add_parser("simulate", help="run one policy on one scenario and print its summary")
    add_scenario_arguments(s)
    s.add_argument(
        "--policy",
        default="sjf-noloan",
        help="policy name (see `aryl-gym policies`) or package.module:Class of a Policy subclass",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", type=Path, help="write the summary as JSON here")
    s.add_argument("--jobs-csv", type=Path, help="write per-job records as CSV here")
    s.add_argument(
        "--timeseries-csv",
        type=Path,
        help="write the sampled usage series as CSV here (every 600 s of simulated time: t, "
        "busy_training, busy_lent, lent_servers, needed, queued, running)",
    )
    s.add_argument(
        "--events-csv",
        type=Path,
        help="record every start, resize, preemption, finish, lend and reclaim and write them "
        "as CSV here (time_s, kind, job_id, server, gpus_before, gpus_after, placement; "
        "see aryl_gym/sim/events.py)",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files (without it they are refused "
        "before the simulation starts)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)

    sub.add_parser("scenarios", help="list the named scenarios").set_defaults(func=cmd_scenarios)
    sub.add_parser("policies", help="list the policies with their rule").set_defaults(
        func=cmd_policies
    )
