"""``aryl-gym evaluate-round`` and ``aryl-gym train-round-cem`` (Round-v0 policies).

``evaluate-round`` is the honest table of a Round-v0 policy: held-out synthetic workloads
and real traces, paired against Aryl with bootstrap intervals over workloads, beside the
reference point, hand-written Aryl variants and, if asked, the CEM oracle bound
(:mod:`aryl_gym.agents.round_eval`). It needs no RL stack unless a policy is an SB3 zip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aryl_gym.cli.common import csv_list

#: Where ``--traces shared`` looks for the real traces: ``../shared/traces`` from the
#: working folder, then beside the repository of an editable install.
SHARED_TRACES = (
    Path("../shared/traces"),
    Path(__file__).resolve().parents[3] / "shared" / "traces",
)


def add_cem_arguments(p: argparse.ArgumentParser, prefix: str, pop: int, iters: int) -> None:
    """``--{prefix}population`` etc.: the CEM search's size."""
    p.add_argument(
        f"--{prefix}population",
        type=int,
        default=pop,
        help=f"CEM candidates per iteration (default {pop})",
    )
    p.add_argument(
        f"--{prefix}iterations", type=int, default=iters, help=f"CEM iterations (default {iters})"
    )
    p.add_argument(
        f"--{prefix}elite", type=float, default=0.25, help="CEM elite fraction (default 0.25)"
    )
    p.add_argument(
        f"--{prefix}sigma",
        type=float,
        default=0.5,
        help="CEM initial spread of theta (default 0.5)",
    )


def _cem_config(args: argparse.Namespace, prefix: str):
    from aryl_gym.agents.cem import CemConfig

    size = [getattr(args, prefix + k) for k in ("population", "iterations", "elite", "sigma")]
    return CemConfig(*size, seed=args.seed)


def _env_kwargs(args: argparse.Namespace) -> dict:
    """The Round-v0 keyword arguments of the window options (checked, naming the option)."""
    from aryl_gym.envs.workload_splits import check_window_hours

    check_window_hours(args.window_hours, "--window-hours")
    if getattr(args, "trace_window_hours", None) is not None:
        check_window_hours(args.trace_window_hours, "--trace-window-hours")
    if not args.drain_hours >= 0:
        raise ValueError(f"--drain-hours must be >= 0, got {args.drain_hours}")
    return {"episode_hours": args.window_hours, "drain_hours": args.drain_hours}


def _seed_list(text: str) -> list[int]:
    try:
        return [int(s) for s in csv_list(text)]
    except ValueError:
        raise ValueError(f"--workload-seeds {text!r}: give comma-separated integers") from None


def register(sub) -> None:
    e = sub.add_parser(
        "evaluate-round",
        help="a Round-v0 policy on held-out workloads and real traces, paired against Aryl",
        description="Round-v0 policies (zero = Aryl, random, oracle = the CEM bound, a linear "
        "scorer .json, an SB3 .zip) against Aryl, the reference point and Aryl variants on "
        "held-out workloads (never trained on) and real traces.",
    )
    e.add_argument("--scenario", default="small", help="scenario name (default small)")
    e.add_argument("--agents", default="zero", help="comma-separated Round-v0 policies: zero, random, oracle, PATH.json, PATH.zip (default zero)")  # fmt: skip
    e.add_argument("--split", default="test", choices=("test", "val"), help="held-out workload split (default test; val is for selection)")  # fmt: skip
    seeds = e.add_mutually_exclusive_group()
    seeds.add_argument("--workloads", type=int, default=5, help="the first N workload seeds of --split (default 5)")  # fmt: skip
    seeds.add_argument("--workload-seeds", help="comma-separated workload seeds (all of --split)")
    e.add_argument("--windows", type=int, default=1, help="non-overlapping windows per workload (default 1)")  # fmt: skip
    e.add_argument("--window-hours", type=float, default=12.0, help="window length (default 12)")
    e.add_argument("--drain-hours", type=float, default=48.0, help="run time after a window (default 48)")  # fmt: skip
    e.add_argument("--traces", default="shared", help="'shared' (the three real traces of ../shared/traces, skipped with a note when absent), 'none', or comma-separated FILE[@LOAD]")  # fmt: skip
    e.add_argument("--trace-windows", type=int, default=1, help="windows per trace (default 1)")
    e.add_argument("--trace-window-hours", type=float, help="window length on traces (default: --window-hours)")  # fmt: skip
    e.add_argument("--aryl", default="aryl", help="the Aryl policy (Round-v0's solver; default aryl)")  # fmt: skip
    e.add_argument("--reference", default="baseline", help="the reference point (default baseline)")  # fmt: skip
    e.add_argument("--variants", default=None, help="comma-separated hand-written Aryl variants (default aryl-requested-base; '' for none)")  # fmt: skip
    add_cem_arguments(e, "oracle-", 16, 8)
    e.add_argument("--seed", type=int, default=0, help="seed of engines, random scorer and oracle (default 0)")  # fmt: skip
    e.add_argument("--markdown", type=Path, help="write the tables here")
    e.add_argument("--json", type=Path, help="write every row (and the settings) here")
    e.add_argument("--force", action="store_true", help="replace existing --markdown / --json")
    e.add_argument("--quiet", action="store_true", help="no progress lines")
    e.set_defaults(func=_evaluate)

    t = sub.add_parser(
        "train-round-cem",
        help="CEM search of a linear Round-v0 scorer on training workloads (selection on val)",
    )
    t.add_argument("--scenario", default="small", help="scenario name (default small)")
    t.add_argument("--out", type=Path, required=True, help="the scorer's JSON (evaluate-round --agents PATH)")  # fmt: skip
    add_cem_arguments(t, "", 12, 6)
    t.add_argument("--windows", type=int, default=4, help="training windows per iteration (default 4)")  # fmt: skip
    t.add_argument("--val-workloads", type=int, default=5, help="validation workloads for selection (default 5)")  # fmt: skip
    t.add_argument("--window-hours", type=float, default=12.0, help="window length (default 12)")
    t.add_argument("--drain-hours", type=float, default=48.0, help="run time after a window (default 48)")  # fmt: skip
    t.add_argument("--seed", type=int, default=0, help="seed of the search and the windows (default 0)")  # fmt: skip
    t.add_argument("--force", action="store_true", help="replace an existing --out")
    t.set_defaults(func=_train)


def parse_traces(text: str) -> list[tuple[Path, float | None]]:
    """``--traces``: ``(file, target load)`` pairs; ``shared`` -> the default real traces
    when their folder exists (else none), ``none`` -> none."""
    from aryl_gym.agents.round_eval import DEFAULT_TRACES

    if text == "none":
        return []
    if text == "shared":
        folder = next((f for f in SHARED_TRACES if f.is_dir()), None)
        return [] if folder is None else [(folder / name, load) for name, load in DEFAULT_TRACES]
    out = []
    for item in csv_list(text):
        path, _, load = item.partition("@")
        try:
            out.append((Path(path), float(load) if load else None))
        except ValueError:
            raise ValueError(f"--traces {item!r}: the load after @ must be a number") from None
    return out


def _evaluate(args: argparse.Namespace) -> int:
    import json
    import sys
    import time

    from aryl_gym.agents import round_eval as rev
    from aryl_gym.agents.round_report import report
    from aryl_gym.envs.workload_splits import held_out_seeds
    from aryl_gym.outputs import check_output_file, write_text_atomic
    from aryl_gym.scenarios import get_scenario

    for opt in ("markdown", "json"):
        if getattr(args, opt) is not None:
            check_output_file(getattr(args, opt), f"--{opt}", force=args.force)
    variants = rev.DEFAULT_VARIANTS if args.variants is None else tuple(csv_list(args.variants))
    roles = rev.Roles(tuple(csv_list(args.agents)), args.aryl, args.reference, variants)
    if not roles.agents:
        raise ValueError("--agents: give at least one Round-v0 policy")
    oracle = _cem_config(args, "oracle_")
    seeds = (
        _seed_list(args.workload_seeds)
        if args.workload_seeds
        else held_out_seeds(args.split, args.workloads)
    )
    traces = parse_traces(args.traces)
    say = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if args.traces == "shared" and not traces:
        print("real traces skipped: no ../shared/traces folder (--traces none to silence)")
    scenario = get_scenario(args.scenario)
    kw = {**_env_kwargs(args), "policy": args.aryl}
    t0 = time.perf_counter()
    windows = rev.workload_windows(scenario, seeds, args.split, args.windows, kw, args.seed)
    if args.trace_window_hours is not None:
        kw = {**kw, "episode_hours": args.trace_window_hours}
    windows += rev.trace_windows(scenario, traces, args.trace_windows, kw, args.seed, log=say)
    rows = rev.evaluate_windows(windows, roles, oracle, seed=args.seed, log=say)
    wall = time.perf_counter() - t0
    header = _header(args, scenario, seeds, traces, oracle, wall)
    md = report(rows, roles, header, args.seed)
    print(md)
    if args.markdown is not None:
        write_text_atomic(args.markdown, md)
    if args.json is not None:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}  # fmt: skip
        body = {"settings": settings, "workload_seeds": seeds, "wall_s": wall, "rows": rows}
        write_text_atomic(args.json, json.dumps(body, indent=1, default=float) + "\n")
    return 0


def _header(args, scenario, seeds, traces, oracle, wall: float) -> list[str]:
    """What was run: the settings line and the command, date and wall time line."""
    import datetime
    import shlex
    import sys

    speed = scenario.cluster.inference_gpu_speed / scenario.cluster.training_gpu_speed
    where = (
        f"traces {', '.join(f'{p.name} (load {ld})' for p, ld in traces)}, "
        f"{args.trace_windows} window(s) of {args.trace_window_hours or args.window_hours:g} h each"
        if traces
        else "no traces"
    )
    argv = sys.argv[1:]  # the real command line when run as `aryl-gym evaluate-round ...`
    command = shlex.join(argv) if argv[:1] == ["evaluate-round"] else "evaluate-round ..."
    return [
        f"Scenario `{scenario.name}` (lent GPUs at {speed:g}x a training GPU); {args.split} "
        f"workloads {', '.join(f'{s:,}' for s in seeds)}, {args.windows} window(s) of "
        f"{args.window_hours:g} h each (+ up to {args.drain_hours:g} h to finish), placed at "
        f"job quantiles, never overlapping; {where}; oracle: CEM {oracle.population} x "
        f"{oracle.iterations} replays per window; seed {args.seed}.",
        f"Command: `aryl-gym {command}`; {datetime.date.today().isoformat()}; "
        f"wall time {wall:.0f} s.",
    ]


def _train(args: argparse.Namespace) -> int:
    import sys
    import time

    from aryl_gym.agents.cem_train import train_round_cem
    from aryl_gym.agents.round_scorers import save_linear
    from aryl_gym.outputs import check_output_file

    check_output_file(args.out, "--out", force=args.force)
    t0 = time.perf_counter()
    res = train_round_cem(
        args.scenario,
        _cem_config(args, ""),
        windows=args.windows,
        val_workloads=args.val_workloads,
        env_kwargs=_env_kwargs(args),
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}  # fmt: skip
    meta = {**res, "settings": settings, "wall_s": time.perf_counter() - t0}
    save_linear(args.out, res["theta"], meta)
    print(f"wrote {args.out} (theta {[round(x, 3) for x in res['theta']]}, "
          f"{res['val_gain_s'][res['selected']]:+.1f} s/job on val)")  # fmt: skip
    return 0
