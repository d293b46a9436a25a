"""Playing one episode of an env with a heuristic policy or any ``act(obs, mask)``, for
``aryl-gym watch`` and for anyone who wants to look at a policy's decisions.

A heuristic acts *through* the env, as a learned agent does: in ``Allocate-v0`` its
allocation of each round is translated into the env's actions
(:class:`AllocationPlanFollower`), in ``Reclaim-v0`` its reclaim picks
(:class:`~aryl_gym.envs.reclaim_round.ReclaimPlanFollower`); the other decision is made
by the same policy (the env's ``reclaim_policy`` / ``allocation_policy``). So a heuristic
and an agent are watched on the same episodes, with the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aryl_gym.envs.reclaim_round import ReclaimPlanFollower
from aryl_gym.policy import Policy

#: ``act(obs, mask) -> action``: what plays an episode.
Act = Callable[[np.ndarray, np.ndarray], int]

ENV_KINDS = {"allocate": "ArylGym/Allocate-v0", "reclaim": "ArylGym/Reclaim-v0"}


class AllocationPlanFollower:
    """Turns an allocation Policy's decisions into ``Allocate-v0`` actions, one per step.

    At each new round the policy allocates once; its allocation becomes the actions of
    :meth:`~aryl_gym.envs.allocation_round.AllocationRound.actions_for` and a commit. An
    action the mask no longer allows is skipped. ``untranslatable`` counts the jobs
    without a slot and the skipped actions (0 for Aryl on small scenarios).
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.plan: list[int] = []
        self._round: tuple[Any, int] | None = None
        self.untranslatable = 0

    def action(self, env: Any) -> int:
        """The next action in ``env`` (the unwrapped ``AllocateEnv``)."""
        rnd = env.round
        key = (env.engine, rnd.rounds)
        if self._round is None or key[0] is not self._round[0] or key[1] != self._round[1]:
            self._round = key
            view = env.engine.view
            actions, missing = rnd.actions_for(self.policy.allocate(view), view)
            self.untranslatable += missing
            self.plan = [*actions, rnd.commit_action]
        while len(self.plan) > 1 and not rnd.mask[self.plan[0]]:
            self.plan.pop(0)
            self.untranslatable += 1
        return self.plan.pop(0) if self.plan else int(rnd.commit_action)


def policy_env(kind: str, policy: Policy, **env_kwargs: Any) -> tuple[Any, Act]:
    """``(env, act)``: the env of ``kind`` (``"allocate"`` or ``"reclaim"``) made with
    ``env_kwargs``, whose other decision ``policy`` makes, and the ``act`` that makes
    ``policy``'s decisions of ``kind`` through the env's actions."""
    from aryl_gym.envs import make_env

    if kind not in ENV_KINDS:
        raise ValueError(f"env must be one of {', '.join(ENV_KINDS)}, got {kind!r}")
    other = "reclaim_policy" if kind == "allocate" else "allocation_policy"
    if kind == "allocate":
        # the heuristic decides in its own world: its rounds, and stops when it preempts
        # (Allocate-v0's defaults are those an RL agent learns under, not the policy's)
        env_kwargs = {
            "periodic_rounds": policy.periodic_rounds,
            "allow_preemption": True,
            **env_kwargs,
        }
    env = make_env(ENV_KINDS[kind], **{**env_kwargs, other: policy})
    u = env.unwrapped
    follower = AllocationPlanFollower(policy) if kind == "allocate" else ReclaimPlanFollower(policy)

    def act(obs: np.ndarray, mask: np.ndarray) -> int:
        return int(follower.action(u))

    return env, act


@dataclass
class Playback:
    """What :func:`play` did: ``steps``, ``done`` (the episode ended), the return, and the
    last step's ``info`` (its ``summary`` when ``done``)."""

    steps: int = 0
    done: bool = False
    episode_return: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def play(
    env: Any,
    act: Act,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    max_steps: int | None = None,
    on_frame: Callable[[Any], None] | None = None,
) -> Playback:
    """Reset ``env`` and step it with ``act`` until the episode ends or ``max_steps``;
    ``on_frame(env.render())`` after the reset and after every step when given."""
    obs, info = env.reset(seed=seed, options=options)
    out = Playback(info=info)
    if on_frame is not None:
        on_frame(env.render())
    while max_steps is None or out.steps < max_steps:
        action = act(obs, env.unwrapped.action_masks())
        obs, reward, terminated, truncated, out.info = env.step(action)
        out.steps += 1
        out.episode_return += float(reward)
        if on_frame is not None:
            on_frame(env.render())
        if terminated or truncated:
            out.done = True
            break
    return out
