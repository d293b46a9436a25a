"""Which Allocate-v0 settings let the shortest training script learn: for each variant of
the env's settings, the script of docs/agents.md (MaskablePPO with stable-baselines3's
defaults, ``learn(N)``, deterministic masked evaluation on the test split) per training
seed, and what its evaluation does.

    python scripts/measure_defaults.py [--scenario tiny] [--seeds 0 1 2 3 4] [--learn 2048]
        [--eval-seeds 1] [--max-steps 100000] [--variants defaults old ...] [--json OUT]

Per run: the agent's steps, the rounds it committed with the commit action (the others
end at the round cap), jobs finished of the window's, average JCT, training and
evaluation wall time; a run stopped by the step guard (``--max-steps``) is marked. Prints
a Markdown table of the means over the training seeds (docs/agents.md, "Defaults that
learn", records the figures, the machine and the command). Every random source is
seeded: the model (``seed=``), the episodes (evaluation seeds) and torch (one thread).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import gymnasium as gym
import numpy as np

import aryl_gym  # noqa: F401  (registers the envs)

#: Allocate-v0's round settings before the defaults that learn.
OLD = dict(periodic_rounds=True, monotone_rounds=False, allow_preemption=True)

#: name -> (env keywords, MaskablePPO keywords, per-step cost in job-seconds). The cost is
#: a wrapper subtracting ``cost / 3600`` from every step's reward: a per-action cost the
#: env does not have, measured to see whether one would be needed.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {
    "old": (OLD, {}, 0.0),
    "old, gamma 1": (OLD, {"gamma": 1.0}, 0.0),
    "old, cap 16": ({**OLD, "max_actions_per_round": 16}, {}, 0.0),
    "old, action cost 300 s": (OLD, {}, 300.0),
    "old, action cost 300 s, gamma 1": (OLD, {"gamma": 1.0}, 300.0),
    "monotone": ({**OLD, "monotone_rounds": True}, {}, 0.0),
    "monotone, no preemption": (
        {**OLD, "monotone_rounds": True, "allow_preemption": False},
        {},
        0.0,
    ),
    "event rounds": ({**OLD, "periodic_rounds": False}, {}, 0.0),
    "event rounds, monotone": (
        {**OLD, "periodic_rounds": False, "monotone_rounds": True},
        {},
        0.0,
    ),
    "event rounds, no preemption": (
        {**OLD, "periodic_rounds": False, "allow_preemption": False},
        {},
        0.0,
    ),
    "defaults": ({}, {}, 0.0),
    "defaults, gamma 1": ({}, {"gamma": 1.0}, 0.0),
}


def _nanmean(values: list[float]) -> float:
    """The mean of the finite values (NaN when none is: no job finished in any run)."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


class StepCost(gym.Wrapper):
    """Every step costs ``cost_s`` job-seconds (``cost_s / 3600`` reward units)."""

    def __init__(self, env: gym.Env, cost_s: float) -> None:
        super().__init__(env)
        self.cost = cost_s / 3600.0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward - self.cost, terminated, truncated, info


def run(
    scenario: str,
    env_kwargs: dict[str, Any],
    algo_kwargs: dict[str, Any],
    cost_s: float,
    seed: int,
    learn: int,
    eval_seeds: int,
    max_steps: int,
) -> dict[str, Any]:
    """The shortest script under one setting and training seed."""
    import torch
    from sb3_contrib import MaskablePPO

    from aryl_gym.evaluation import AgentPolicy, StepLimitExceeded, evaluate

    torch.set_num_threads(1)
    env = gym.make("ArylGym/Allocate-v0", scenario=scenario, **env_kwargs)
    train_env = StepCost(env, cost_s) if cost_s else env
    t0 = time.perf_counter()
    model = MaskablePPO("MlpPolicy", train_env, seed=seed, **algo_kwargs)
    model.learn(learn)
    learn_s = time.perf_counter() - t0
    agent = AgentPolicy.from_model(model, env)
    t1 = time.perf_counter()
    out: dict[str, Any] = dict(seed=seed, learn_s=round(learn_s, 1))
    try:
        rows = evaluate(agent, seeds=range(eval_seeds), max_steps=max_steps, progress=False)
        out.update(
            guard=False,
            steps=float(np.mean([r["agent_steps"] for r in rows])),
            commits=float(np.mean([r["agent_commits"] for r in rows])),
            finished=float(np.mean([r["jobs_finished"] for r in rows])),
            jobs=float(np.mean([r["jobs_total"] for r in rows])),
            avg_jct_h=_nanmean([r["avg_jct_s"] for r in rows]) / 3600.0,
        )
    except StepLimitExceeded:
        out.update(guard=True, steps=float(agent.steps), commits=float(agent.commits))
    out["eval_s"] = round(time.perf_counter() - t1, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="tiny")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--learn", type=int, default=2048)
    ap.add_argument("--eval-seeds", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=100_000)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--json", help="write every run as JSON here")
    a = ap.parse_args(argv)
    results: dict[str, list[dict[str, Any]]] = {}
    print(
        f"{a.scenario}, learn({a.learn}), training seeds {a.seeds}, {a.eval_seeds} test "
        f"episode(s), step guard {a.max_steps}; {platform.processor() or platform.machine()}"
    )
    print(
        "| variant | runs stopped by the guard | agent steps / episode | rounds committed "
        "by the agent | jobs finished | avg JCT (h) | learn (s) | evaluate (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in a.variants:
        env_kwargs, algo_kwargs, cost = VARIANTS[name]
        runs = [
            run(a.scenario, env_kwargs, algo_kwargs, cost, s, a.learn, a.eval_seeds, a.max_steps)
            for s in a.seeds
        ]
        results[name] = runs
        done = [r for r in runs if not r["guard"]]

        def mean(key: str, rows: list[dict[str, Any]] = done, fmt: str = ",.0f") -> str:
            return format(_nanmean([r[key] for r in rows]), fmt) if rows else "-"

        fin = f"{mean('finished', fmt='.1f')} of {mean('jobs')}" if done else "-"
        print(
            f"| {name} | {len(runs) - len(done)} of {len(runs)} | {mean('steps', runs)} | "
            f"{mean('commits', runs)} | {fin} | {mean('avg_jct_h', fmt='.2f')} | "
            f"{mean('learn_s', runs, '.1f')} | {mean('eval_s', runs, '.1f')} |",
            flush=True,
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
