"""Performance benchmark of the simulator (not a test): how fast ``run_policy`` and
``load_trace`` are.

    .venv/bin/python scripts/benchmark_sim.py                        # aryl-15d / sjf-noloan
    .venv/bin/python scripts/benchmark_sim.py --scenario small --policy fifo-noloan --repeat 5
    .venv/bin/python scripts/benchmark_sim.py --profile              # + cProfile top 20

Prints, per timed run, the wall seconds, jobs, engine events, scheduling rounds and
events per second; then the time to generate the default 15-day workload (~50,000 jobs)
and to load a generated 50,000-row trace written with ``save_trace``; with
``--real-traces``, the time to load and map each public trace of ``../shared/traces``
(skipped with a note when that folder is absent). The workload is built before the clock
starts, so a run's timing is the simulation alone (``--include-build`` times the workload
generation too). Speed targets live here, not in the unit tests.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aryl_gym.baselines import make_policy, policy_specs  # noqa: E402

from aryl_gym.scenarios import SCENARIOS, build_workload, get_scenario  # noqa: E402
from aryl_gym.simulate import run_policy  # noqa: E402
from aryl_gym.workload.generator import WorkloadConfig, generate_jobs  # noqa: E402
from aryl_gym.workload.trace_io import load_trace, save_trace  # noqa: E402


def time_run(scenario, policy_name: str, seed: int, include_build: bool):
    """One run; returns (wall seconds, summary)."""
    t0 = time.perf_counter()
    jobs, demand = build_workload(scenario, seed)
    if not include_build:
        t0 = time.perf_counter()
    result = run_policy(scenario, make_policy(policy_name), seed, jobs=jobs, demand=demand)
    return time.perf_counter() - t0, result.summary


def report_run(label: str, wall: float, summary: dict) -> None:
    events = int(summary["sim_events"])
    print(
        f"{label:<10} wall {wall:8.3f} s  jobs {int(summary['jobs_total']):>7,}  "
        f"events {events:>9,}  rounds {int(summary['rounds']):>8,}  "
        f"events/s {events / wall if wall > 0 else float('nan'):>11,.0f}"
    )


def profile_run(scenario, policy_name: str, seed: int, top: int = 20) -> None:
    jobs, demand = build_workload(scenario, seed)
    policy = make_policy(policy_name)
    prof = cProfile.Profile()
    prof.enable()
    run_policy(scenario, policy, seed, jobs=jobs, demand=demand)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    print(f"\ncProfile, top {top} by cumulative time:")
    print(buf.getvalue())


def _median_s(fn, repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def time_generation(seed: int, repeat: int) -> None:
    cfg = WorkloadConfig()  # the default: 15 days, aryl-15d's rate
    generate_jobs(WorkloadConfig(days=1.0), seed)  # warm-up (imports, caches)
    n = len(generate_jobs(cfg, seed))
    best, median = _median_s(lambda: generate_jobs(cfg, seed), repeat)
    print(
        f"\ngenerate_jobs, default workload ({n:,} jobs): best {best:.3f} s, median {median:.3f} s"
    )


#: the public traces of ../shared/traces that ``load_any`` maps (docs/real-traces.md)
REAL_TRACES = (
    "train_microsoft_itp_cluster04.csv",
    "train_sensetime_helios_last15k.csv",
    "train_alibaba_pai_openb2023_pods.csv",
)


def time_real_traces(repeat: int) -> None:
    from aryl_gym.workload.real_traces import load_any

    folder = ROOT.parent / "shared" / "traces"
    if not folder.is_dir():
        print(f"\nreal traces: {folder} not present, skipped")
        return
    print(f"\nreal traces (load_any: read, map, validate), {repeat} loads each:")
    for name in REAL_TRACES:
        path = folder / name
        n = len(load_any(path)[0])
        best, median = _median_s(lambda p=path: load_any(p), repeat)
        print(f"  {name:<40} {n:>7,} jobs  best {best:.3f} s, median {median:.3f} s")


def time_trace_io(rows: int, seed: int, repeat: int) -> None:
    # a 15-day, ~3,400 jobs/day workload (aryl-15d's rate) cut to ``rows`` jobs
    cfg = WorkloadConfig(days=max(1.0, rows / 3000.0), jobs_per_day=3400.0)
    table = generate_jobs(cfg, seed=seed)
    if len(table) < rows:
        raise SystemExit(f"generated only {len(table)} jobs, wanted {rows}")
    table = table.select(slice(0, rows))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.csv"
        t0 = time.perf_counter()
        save_trace(table, path)
        t_save = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        assert len(load_trace(path)) == rows
        best, median = _median_s(lambda: load_trace(path), repeat)
    print(
        f"\ntrace I/O, {rows:,} rows ({size_mb:.1f} MB): save_trace {t_save:.3f} s, "
        f"load_trace best {best:.3f} s, median {median:.3f} s over {repeat} loads"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenario", default="aryl-15d", choices=list(SCENARIOS))
    ap.add_argument("--policy", default="sjf-noloan", choices=list(policy_specs()))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs (default 1)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run")
    ap.add_argument("--include-build", action="store_true", help="time workload generation too")
    ap.add_argument("--profile", action="store_true", help="cProfile one run, print top 20")
    ap.add_argument("--trace-rows", type=int, default=50_000, help="rows of the trace-I/O test")
    ap.add_argument("--trace-repeat", type=int, default=3, help="timed load_trace calls")
    ap.add_argument("--skip-trace", action="store_true", help="skip the trace-I/O timing")
    ap.add_argument(
        "--real-traces", action="store_true", help="time loading ../shared/traces' public traces"
    )
    args = ap.parse_args(argv)

    scenario = get_scenario(args.scenario)
    print(f"run_policy: scenario {scenario.name}, policy {args.policy}, seed {args.seed}")
    if not args.no_warmup:
        wall, summary = time_run(scenario, args.policy, args.seed, args.include_build)
        report_run("warm-up", wall, summary)
    walls = []
    for i in range(args.repeat):
        wall, summary = time_run(scenario, args.policy, args.seed, args.include_build)
        report_run(f"run {i + 1}", wall, summary)
        walls.append(wall)
    if len(walls) > 1:
        print(f"best {min(walls):.3f} s, median {statistics.median(walls):.3f} s")
    if args.profile:
        profile_run(scenario, args.policy, args.seed)
    if not args.skip_trace:
        time_generation(args.seed, args.trace_repeat)
        time_trace_io(args.trace_rows, args.seed, args.trace_repeat)
    if args.real_traces:
        time_real_traces(args.trace_repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
