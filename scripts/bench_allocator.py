"""Micro-benchmark of Aryl's allocator alone (not a test): ms per ``ArylPolicy.allocate``.

    .venv/bin/python scripts/bench_allocator.py                     # 200 jobs, 2,000 free GPUs
    .venv/bin/python scripts/bench_allocator.py --jobs 400 --repeat 200
    .venv/bin/python scripts/bench_allocator.py --inference-speed 0.4   # slower lent GPUs: DP path

The state is built with a real Engine: ``--jobs`` elastic jobs (base 2 GPUs, maximum 8 to 32,
the measured scaling profiles) fill a training pool of exactly their base demand, started
by Aryl itself at t=0 (so its watch list is its own); at t=60 the inference side lends
``--free`` GPUs' worth of servers. That round is the one timed: every running job is a
candidate for extra workers and ``--free`` GPUs are free. Each timed call is a fresh
decision (the policy's idle-round cache is cleared; the engine's state does not move).
Prints ms per round for each solver (auto / greedy / dp), wall and CPU time of this
thread (steadier on a shared machine); the target of the default (auto) is <= 5 ms per
round at 200 jobs and 2,000 free GPUs, with both lent GPU speeds 1.0 and 0.4.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy  # noqa: E402

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig  # noqa: E402
from aryl_gym.sim.engine import Engine  # noqa: E402
from aryl_gym.workload.schema import JobTable  # noqa: E402

GPUS_PER_SERVER = 8
BASE = 2
TARGET_MS = 5.0  # median per round of solver auto at the default size


def build_state(n_jobs: int, free: int, solver: str, inference_speed: float, seed: int = 0):
    """An engine waiting at the timed round, and the policy that made its earlier decisions."""
    rng = np.random.default_rng(seed)
    n_train = -(-n_jobs * BASE // GPUS_PER_SERVER)
    n_inf = -(-free // GPUS_PER_SERVER)
    scenario = ScenarioConfig(
        name="bench-allocator",
        cluster=ClusterConfig(
            training_servers=n_train,
            inference_servers=n_inf,
            gpus_per_server=GPUS_PER_SERVER,
            inference_gpu_speed=inference_speed,
        ),
        dynamics=DynamicsConfig(),
    )
    profiles = ["bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3"]
    jobs = JobTable.from_columns(
        submit_time=[0.0] * n_jobs,
        gpus=[4] * n_jobs,
        duration=rng.uniform(2e4, 2e5, n_jobs).tolist(),
        elastic=[True] * n_jobs,
        min_gpus=[BASE] * n_jobs,
        max_gpus=rng.choice([8, 16, 24, 32], n_jobs).tolist(),
        profile=rng.choice(profiles, n_jobs).tolist(),
        job_id=[f"j{i}" for i in range(n_jobs)],
        source="<bench_allocator>",
    )
    demand = (np.array([0.0, 60.0]), np.array([n_inf, 0]))  # everything lent at t=60
    policy = ArylPolicy(ArylConfig(solver=solver))
    engine = Engine(
        scenario,
        jobs,
        demand,
        uses_loaning=True,
        periodic_rounds=True,
        elastic_scaling=True,
        rules=policy.rules,
    )
    policy.reset(engine.view, seed)
    point = engine.advance()
    assert point is not None and point.kind == "allocate" and engine.t == 0.0
    first = policy.allocate(point.view)  # every job at its base: the training pool is full
    assert len(first.gpus) == n_jobs and set(first.gpus.values()) == {BASE}, (
        "unexpected first round"
    )
    engine.decide_allocation(first)
    point = engine.advance()
    assert point is not None and point.kind == "allocate" and engine.t == 60.0
    v = point.view
    assert len(v.running) == n_jobs and v.free_training_gpus == 0 and v.free_lent_gpus >= free
    return engine, policy


def time_solver(args, solver: str) -> tuple[list[float], list[float], int]:
    engine, policy = build_state(args.jobs, args.free, solver, args.inference_speed)
    view = engine.view
    policy._sync(view)  # index the jobs once; each timed call starts from this index
    watch, holders, log_pos = policy._watch.copy(), policy._holders.copy(), policy._log_pos
    mixed = dict(policy._mixed)  # move_off_lent's index (empty unless that option is on)

    def restore() -> None:  # a fresh decision every time, from the same index
        policy._idle_key = None
        policy._watch, policy._holders, policy._log_pos = watch.copy(), holders.copy(), log_pos
        policy._mixed = dict(mixed)

    granted = 0
    for _ in range(args.warmup):
        restore()
        policy.allocate(view)
    times, cpu = [], []
    for _ in range(args.repeat):
        restore()
        t0, c0 = time.perf_counter(), time.thread_time()
        alloc = policy.allocate(view)
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
        granted = sum(n - view.job(i).n_gpus for i, n in alloc.gpus.items())
    return times, cpu, granted


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=int, default=200, help="running elastic jobs (default 200)")
    ap.add_argument(
        "--free", type=int, default=2000, help="free GPUs in the timed round (default 2000)"
    )
    ap.add_argument("--repeat", type=int, default=100, help="timed rounds per solver (default 100)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument(
        "--inference-speed", type=float, default=1.0, help="lent GPU speed (<1: non-concave values)"
    )
    ap.add_argument("--solvers", default="auto,greedy,dp")
    args = ap.parse_args(argv)
    print(
        f"Aryl allocator: {args.jobs} running elastic jobs, {args.free} free GPUs, "
        f"lent GPU speed {args.inference_speed}, {args.repeat} rounds per solver"
    )
    for solver in args.solvers.split(","):
        dp_repeat = args.repeat
        if solver == "dp":
            args.repeat = max(5, args.repeat // 10)  # the DP is slow: fewer rounds
        times, cpu, granted = time_solver(args, solver)
        args.repeat = dp_repeat
        median = statistics.median(times)
        print(
            f"  solver {solver:<6} min {min(times):8.3f}  p25 {np.percentile(times, 25):8.3f}  "
            f"median {median:8.3f}  mean {statistics.fmean(times):8.3f} ms  "
            f"CPU median {statistics.median(cpu):8.3f} ms  "
            f"({len(times)} rounds, {granted} extra GPUs granted)"
        )
        if solver == "auto" and (args.jobs, args.free) == (200, 2000):
            verdict = "met" if median <= TARGET_MS else "NOT met"
            print(f"  target: median <= {TARGET_MS:g} ms per round: {verdict}")


if __name__ == "__main__":
    main()
