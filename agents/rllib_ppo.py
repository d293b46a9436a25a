"""PPO with action masking on ``ArylGym/Allocate-v0``, with RLlib (new API stack).

    pip install -e '.[rl,rllib]'
    python -m aryl_gym.agents.rllib_ppo --iterations 3

Read top to bottom: arguments -> register the envs with Ray -> PPOConfig with RLlib's
masking RLModule -> train N iterations (printing the mean episode return) -> one greedy
episode with the trained module that checks that no masked action is ever chosen.

How masking works here: RLlib has no ``action_masks()`` hook (sb3-contrib's MaskablePPO
protocol). ``aryl_gym.envs.rllib.register_rllib_envs`` registers the envs so that their
observations are ``{"action_mask": Box(0, 1, (n_actions,)), "observations": <Box>}``, and
RLlib's ``ActionMaskingTorchRLModule`` (from RLlib's examples package; PPO only) adds
``log(mask)`` (clamped to a large negative number) to the action logits in its exploration,
inference and training passes. The value function sees only ``observations``.

The defaults are a smoke-sized run (``tiny`` scenario, 0.5 h episodes, 4 + 4 slots,
512-step batches, sampling in the driver process, 1 torch thread): they show the plumbing, not a good
scheduler. See ``docs/scale-out.md`` (section "RLlib").
"""

from __future__ import annotations

import argparse
import math
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=3, help="PPO training iterations")
    p.add_argument("--scenario", default="tiny")
    p.add_argument("--episode-hours", type=float, default=0.5)
    p.add_argument("--drain-hours", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=512, help="env steps per iteration")
    p.add_argument("--minibatch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2, help="SGD passes over each batch")
    p.add_argument("--num-env-runners", type=int, default=0,
                   help="0: sample in this process (no extra Ray workers)")  # fmt: skip
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch threads in this process (1 is ~4x faster for these tiny nets)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def count_invalid_actions(*, episode, metrics_logger, **kwargs) -> None:
    """Episode-end callback: the env's count of masked actions it was sent (must stay 0)."""
    invalid = episode.get_infos(-1).get("invalid_actions", 0)
    metrics_logger.log_value("invalid_actions_lifetime", invalid, reduce="lifetime_sum")


def main(argv=None) -> dict:
    args = parse_args(argv)

    # Imports inside main: `import aryl_gym.agents.rllib_ppo` works without RLlib installed.
    import ray
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.columns import Columns

    from aryl_gym.envs.rllib import action_masking_module_spec, make_masked_env, register_rllib_envs

    # Per-step inference on a 64-64 net: thread hand-offs cost more than they save (Ray's
    # remote env runners already run with 1 thread).
    torch.set_num_threads(args.torch_threads)

    # 1. The envs in Ray's registry (masked Dict observations by default).
    register_rllib_envs()
    env_id = "ArylGym/Allocate-v0"
    env_config = {
        "scenario": args.scenario,
        "episode_hours": args.episode_hours,
        "drain_hours": args.drain_hours,
        "queue_slots": 4,  # small action space: (2 * len(deltas) + 2) * 8 + 1 = 49 actions
        "running_slots": 4,
        "deltas": (1, 4),
    }

    # 2. A small local Ray instance (no dashboard); RLlib would start a default one anyway.
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=max(1, args.num_env_runners), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)  # fmt: skip

    # 3. PPO with the masking RLModule.
    config = (
        PPOConfig()
        .environment(env_id, env_config=env_config)
        .env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=1)
        .learners(num_learners=0)  # learn in this process, on the CPU
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=args.minibatch,
            num_epochs=args.epochs,
            lr=3e-4,
            gamma=0.99,
        )
        .rl_module(
            rl_module_spec=action_masking_module_spec(
                {"fcnet_hiddens": [64, 64], "head_fcnet_hiddens": [64]}
            )
        )
        .callbacks(on_episode_end=count_invalid_actions)
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()

    # 4. Train, printing the mean return of the episodes finished in each iteration.
    returns, times, invalid = [], [], 0
    for it in range(1, args.iterations + 1):
        t0 = time.perf_counter()
        result = algo.train()
        times.append(time.perf_counter() - t0)
        runners = result.get("env_runners", {})
        ret = runners.get("episode_return_mean", math.nan)
        returns.append(ret)
        invalid = int(runners.get("invalid_actions_lifetime", invalid))
        print(f"iteration {it}: episode_return_mean={ret:.3f} "
              f"episode_len_mean={runners.get('episode_len_mean', math.nan):.1f} "
              f"episodes={runners.get('num_episodes', 0)} "
              f"env_steps={runners.get('num_env_steps_sampled', 0)} "
              f"invalid_actions={invalid} "
              f"time={times[-1]:.1f}s", flush=True)  # fmt: skip

    # 5. One greedy episode with the trained module, outside RLlib: masking must hold.
    module = algo.get_module()
    env = make_masked_env(env_id, **env_config)
    obs, info = env.reset(seed=args.seed, options={"split": "val"})
    done, steps, ep_return, masked_picks = False, 0, 0.0, 0
    while not done:
        batch = {Columns.OBS: {k: torch.as_tensor(v)[None] for k, v in obs.items()}}
        with torch.no_grad():
            logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
        action = int(torch.argmax(logits))
        masked_picks += int(obs["action_mask"][action] == 0)
        obs, reward, terminated, truncated, info = env.step(action)
        ep_return += float(reward)
        steps += 1
        done = terminated or truncated
    print(f"greedy val episode: return={ep_return:.3f} steps={steps} "
          f"masked actions chosen={masked_picks} "
          f"avg_jct_s={info['summary'].get('avg_jct_s', float('nan')):.0f}")  # fmt: skip
    env.close()
    algo.stop()
    if started_ray:
        ray.shutdown()

    return {
        "episode_return_mean": returns,
        "iteration_s": times,
        "train_invalid_actions": invalid,
        "greedy_return": ep_return,
        "greedy_steps": steps,
        "masked_picks": masked_picks,
        "invalid_actions": int(info.get("invalid_actions", 0)),
        "n_actions": int(env.action_space.n),
    }


if __name__ == "__main__":
    main()
