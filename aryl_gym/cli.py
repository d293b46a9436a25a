"""The ``aryl-gym`` command line: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _fmt(v) -> str:
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
        print(f"  {k:<{width}}  {_fmt(v)}")


def add_scenario_arguments(p: argparse.ArgumentParser) -> None:
    """``--trace``, ``--format``, ``--target-load`` and ``--inference-curve``: the options that
    change the ``--scenario`` a command runs (shared by ``simulate`` and ``benchmark``; see
    :func:`scenario_from_args`)."""
    p.add_argument(
        "--trace",
        type=Path,
        help="a trace file, project or public format (replaces the generated workload)",
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


def inference_curve_line(cfg) -> str:
    """``inference curve: NAME (average-day peak/trough X.XX, peak utilisation Y)``."""
    from aryl_gym.workload.inference import peak_to_trough

    ratio = peak_to_trough(cfg)
    text = "inf" if math.isinf(ratio) else f"{ratio:.2f}"
    return (
        f"inference curve: {cfg.curve} (average-day peak/trough {text}, "
        f"peak utilisation {cfg.peak_utilisation:g})"
    )


def scenario_from_args(args: argparse.Namespace):
    """The scenario ``args.scenario`` with the :func:`add_scenario_arguments` options applied.

    ``--inference-curve`` replaces the scenario's inference curve (an unknown name raises
    ``KeyError`` listing the known ones). ``--trace`` replaces the generated workload: the
    mapping report is printed, and the training pool is sized with ``size_cluster_for``
    for ``--target-load``, or for a load of 0.9 when the trace does not fit the scenario's
    cluster (largest job or offered load), saying so. Prints the inference-curve line last.
    """
    from dataclasses import replace

    from aryl_gym.scenarios import get_scenario

    base = get_scenario(args.scenario)
    overrides: dict = {}
    if args.inference_curve is not None:
        overrides["inference"] = replace(base.inference, curve=args.inference_curve)
    if args.trace:
        from aryl_gym.workload.real_traces import load_any, offered_gpu_demand, size_cluster_for

        if args.target_load is not None and not args.target_load > 0:
            raise ValueError(f"--target-load must be > 0, got {args.target_load}")
        jobs, report = load_any(args.trace, args.format, options=base.trace_options)
        print(report)
        overrides.update(trace=str(args.trace), trace_format=report.format)
        cluster = base.cluster
        load = offered_gpu_demand(jobs) / cluster.training_gpus
        too_small = int(jobs.gpus.max()) > cluster.training_gpus or load > 1.0
        if args.target_load is not None or too_small:
            target = 0.9 if args.target_load is None else args.target_load
            if args.target_load is None:
                print(
                    f"the trace does not fit scenario {base.name!r} ({cluster.training_servers} training "
                    f"servers, offered load {load:.2f}, largest job {int(jobs.gpus.max())} GPUs)"
                )
            cluster = size_cluster_for(jobs, cluster, target)
            overrides["cluster"] = cluster
            print(
                f"sized training pool to {cluster.training_servers} servers for load {target:g}; "
                f"inference pool {cluster.inference_servers} servers"
            )
    elif args.format is not None or args.target_load is not None:
        raise ValueError("--format and --target-load need --trace")
    scenario = base.with_(**overrides) if overrides else base
    print(inference_curve_line(scenario.inference))
    return scenario


def cmd_simulate(args: argparse.Namespace) -> int:
    from aryl_gym.simulate import run_policy
    from baselines import make_policy

    scenario = scenario_from_args(args)
    policy = make_policy(args.policy)
    result = run_policy(scenario, policy, seed=args.seed, progress=not args.quiet)
    summary = {
        "scenario": scenario.name,
        "policy": policy.name,
        "seed": args.seed,
        **result.summary,
    }
    print_summary(summary, f"aryl-gym simulate: {scenario.name} / {policy.name} / seed {args.seed}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    if args.jobs_csv:
        result.job_records().to_csv(args.jobs_csv, index=False)
        print(f"wrote {args.jobs_csv}")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from aryl_gym.scenarios import SCENARIOS

    width = max(len(n) for n in SCENARIOS)
    for name, sc in SCENARIOS.items():
        print(f"{name:<{width}}  {sc.description}")
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from baselines import policy_specs

    specs = policy_specs()
    width = max(len(n) for n in specs)
    for name, spec in specs.items():
        print(f"{name:<{width}}  {spec.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aryl-gym", description="Shared GPU cluster simulator and Gymnasium envs (Aryl)."
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="run one policy on one scenario and print its summary")
    s.add_argument("--scenario", default="small", help="scenario name (see `aryl-gym scenarios`)")
    s.add_argument("--policy", default="sjf-noloan", help="policy name (see `aryl-gym policies`)")
    add_scenario_arguments(s)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", type=Path, help="write the summary as JSON here")
    s.add_argument("--jobs-csv", type=Path, help="write per-job records as CSV here")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_simulate)

    sub.add_parser("scenarios", help="list the named scenarios").set_defaults(func=cmd_scenarios)
    sub.add_parser("policies", help="list the policies with their rule").set_defaults(
        func=cmd_policies
    )

    from aryl_gym.traces_cli import register as register_traces

    register_traces(sub)

    from aryl_gym.benchmark import register as register_benchmark

    register_benchmark(sub)

    from aryl_gym.sweep import register as register_sweep

    register_sweep(sub)

    # RL agents (optional extra .[rl]): `train` and `evaluate`, or stubs explaining the install
    try:
        import sb3_contrib  # noqa: F401
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401

        from agents.cli import register as register_agents
    except ImportError as exc:
        from agents.cli import register_stubs

        register_stubs(sub, str(exc))
    else:
        register_agents(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"aryl-gym: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
