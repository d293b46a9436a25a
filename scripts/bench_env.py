"""Steps per second of ``ArylGym/Allocate-v0`` with random valid actions, single process.

    python scripts/bench_env.py [--scenario small] [--steps 200000] [--seed 0] [--raw]

Each step draws an action uniformly among the valid ones (``env.action_masks()``);
resets are included in the timing. ``--raw`` times the unwrapped env (no gymnasium
wrappers). The figure is recorded in docs/envs.md; no test asserts on speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import gymnasium as gym
import numpy as np

import aryl_gym  # noqa: F401  (registers the envs)


def bench(
    scenario: str = "small", steps: int = 200_000, seed: int = 0, raw: bool = False, **env_kwargs
) -> dict:
    env = gym.make("ArylGym/Allocate-v0", scenario=scenario, **env_kwargs)
    if raw:
        env = env.unwrapped
    masks = env.unwrapped.action_masks
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    episodes = rounds = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        valid = np.flatnonzero(masks())
        a = valid[int(rng.random() * len(valid))]
        _, _, term, trunc, info = env.step(a)
        if term or trunc:
            episodes += 1
            rounds += info["rounds"]
            env.reset()
    wall = time.perf_counter() - t0
    return {
        "scenario": scenario,
        "steps": steps,
        "wall_s": round(wall, 3),
        "steps_per_s": round(steps / wall),
        "episodes_finished": episodes,
        "wrappers": not raw,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scenario", default="small")
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--raw", action="store_true", help="time the unwrapped env")
    args = ap.parse_args()
    print(json.dumps(bench(args.scenario, args.steps, args.seed, args.raw)))


if __name__ == "__main__":
    main()
