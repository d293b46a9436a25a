"""One evaluation path for every policy, heuristic or learned.

::

    from aryl_gym.evaluation import evaluate, AgentPolicy
    evaluate("aryl", "small", "test", seeds=range(5))          # a registry name
    evaluate(ArylPolicy(), "small", "test")                     # a Policy instance
    agent = AgentPolicy(lambda obs, mask: model.predict(obs, action_masks=mask, deterministic=True)[0])
    evaluate(agent, "small", "test")                            # a learned Allocate-v0 agent

For ``env="allocate"`` (default) each seed gives exactly the episode that
``Allocate-v0.reset(seed=seed, options={"split": split})`` gives (same window, same
engine seed), and the policy runs on the engine directly with its own capabilities
(a no-loaning baseline runs without loaning on the same jobs). An :class:`AgentPolicy`
drives its ``act(obs, mask)`` through the env's own encoder, so a learned agent sees the
observations it was trained on. For ``env="reclaim"`` the episodes are
``Reclaim-v0``'s and the policy's ``reclaim`` decides every reclaim that reaches the
agent there (allocation by the env's allocation policy).

The package exposes the function as ``aryl_gym.evaluate(...)`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from aryl_gym.envs.allocate import AllocateEnv, episode_summary, resolve_policy
from aryl_gym.envs.episodes import EpisodeSampler
from aryl_gym.envs.observation import AllocationRound, ReclaimRound
from aryl_gym.envs.protocol import AllocateProtocol, ReclaimProtocol
from aryl_gym.envs.reclaim_round import ReclaimPlanFollower
from aryl_gym.policy import Allocation, Policy
from aryl_gym.simulate import run_policy

_EPISODE_KEYS = ("workload_seed", "episode_hours", "drain_hours", "split_fractions", "trace")

Act = Callable[[np.ndarray, np.ndarray], Any]


class AgentPolicy(Policy):
    """A :class:`Policy` around any ``act(obs, mask) -> action`` callable (an SB3 model's
    ``predict`` with ``action_masks``, a scripted rule, ...).

    ``decision="allocate"`` runs each allocate round through the env's own
    :class:`~aryl_gym.envs.protocol.AllocateProtocol` (same slots, mask, action cap and
    trivial-round skipping) and asks ``act`` for actions until it commits; reclaims go to
    ``other`` (default ``"aryl"``). ``decision="reclaim"`` asks ``act`` for the picks of
    every reclaim that is a real choice through Reclaim-v0's
    :class:`~aryl_gym.envs.protocol.ReclaimProtocol` (``cost`` ranks its fallback picks)
    and leaves allocation and the other reclaims to ``other``. Keyword arguments are
    those of the env (or build it with :meth:`from_env`); ``encoder`` takes the
    :class:`AllocationRound` options ``queue_slots``, ``running_slots``, ``deltas``,
    ``max_actions_per_round`` and ``gpu_scale`` (their defaults are the env's, but for
    ``gpu_scale``: 32).
    """

    name = "agent"
    uses_loaning = True
    elastic_scaling = True

    def __init__(
        self,
        act: Act,
        *,
        decision: str = "allocate",
        other: str | Policy = "aryl",
        name: str = "agent",
        periodic_rounds: bool = True,
        inelastic_on_lent: bool = True,
        skip_trivial_rounds: bool = True,
        n_server_slots: int = 8,
        max_invalid_per_reclaim: int | None = None,
        cost: str = "count",
        **encoder: Any,
    ) -> None:
        if decision not in ("allocate", "reclaim"):
            raise ValueError(f"decision must be 'allocate' or 'reclaim', got {decision!r}")
        self.act = act
        self.decision = decision
        self.name = name
        self.other = resolve_policy(other)
        if decision == "allocate":
            self.periodic_rounds = bool(periodic_rounds)
            # the same world as Allocate-v0: the other policy's rules (Aryl's readings)
            self.rules = replace(self.other.rules, inelastic_on_lent=inelastic_on_lent)
        else:
            self.periodic_rounds = self.other.periodic_rounds
            self.rules = self.other.rules
            self.elastic_scaling = self.other.elastic_scaling
        self.round = AllocationRound(rules=self.rules, **encoder)
        self.skip_trivial = bool(skip_trivial_rounds)
        self.rround = ReclaimRound(n_server_slots)
        self.max_invalid = int(max_invalid_per_reclaim or 2 * n_server_slots)
        self.cost = cost
        self._new_protocols()

    def _new_protocols(self) -> None:
        """The step protocols of a new episode (they count its steps and invalid actions)."""
        self.allocate_protocol = AllocateProtocol(self.round, self.skip_trivial)
        self.reclaim_protocol = ReclaimProtocol(self.rround, self.cost, self.max_invalid)

    @property
    def steps(self) -> int:
        """The agent's steps in this episode."""
        return self.allocate_protocol.steps + self.reclaim_protocol.steps

    @property
    def invalid_actions(self) -> int:
        """The agent's invalid actions in this episode."""
        return self.allocate_protocol.invalid_actions + self.reclaim_protocol.invalid_actions

    @classmethod
    def from_env(cls, env, act: Act, **kwargs) -> AgentPolicy:
        """An AgentPolicy with the encoder configuration of ``env`` (Allocate-v0 or Reclaim-v0)."""
        env = env.unwrapped
        if isinstance(env, AllocateEnv):
            cfg = dict(
                decision="allocate",
                other=env.reclaim_policy,
                **env.round.options(),
                periodic_rounds=env.periodic_rounds,
                inelastic_on_lent=env.rules.inelastic_on_lent,
                skip_trivial_rounds=env.skip_trivial,
            )
        else:
            cfg = dict(
                decision="reclaim",
                other=env.allocation_policy,
                n_server_slots=env.round.n_slots,
                max_invalid_per_reclaim=env.max_invalid,
                cost=env.cost,
            )
        cfg.update(kwargs)
        return cls(act, **cfg)

    # ------------------------------------------------------------------ Policy
    def set_episode(self, spec) -> None:
        """Time of day and demand trend need the episode's window (evaluate calls this)."""
        self.round.clock.start_episode(spec.time_offset_s, spec.demand)
        self.rround.clock.start_episode(spec.time_offset_s, spec.demand)

    def reset(self, view, seed: int | None = None) -> None:
        self.other.reset(view, seed)
        self._new_protocols()

    def allocate(self, view) -> Allocation:
        if self.decision != "allocate":
            return self.other.allocate(view)
        proto = self.allocate_protocol
        if not proto.offer(view):
            return Allocation()  # a skipped round, as in the env
        rnd = self.round
        while True:
            alloc = proto.step(self.act(rnd.obs.copy(), rnd.mask.copy()))
            if alloc is not None:
                return alloc

    def reclaim(self, view, k: int):
        proto = self.reclaim_protocol
        if self.decision != "reclaim" or not proto.offer(view, k):
            return self.other.reclaim(view, k)
        rr = self.rround
        while not proto.done:
            proto.step(self.act(rr.obs.copy(), rr.mask.copy()))
        return proto.picked


# ---------------------------------------------------------------------- evaluation
def _policy_for_seed(policy) -> Policy:
    if isinstance(policy, str):
        return resolve_policy(policy)
    if isinstance(policy, Policy):
        return policy
    if callable(policy):
        p = policy()
        if not isinstance(p, Policy):
            raise TypeError(f"policy factory returned {type(p).__name__}, not a Policy")
        return p
    raise TypeError(
        f"policy must be a registry name, a Policy or a factory, got {type(policy).__name__}"
    )


def evaluate(
    policy: str | Policy | Callable[[], Policy],
    scenario: str = "small",
    split: str = "test",
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    *,
    env: str = "allocate",
    as_frame: bool = False,
    **env_kwargs,
):
    """Summary metrics of ``policy`` on the episodes that the env ``env`` ("allocate" or
    "reclaim") draws for ``seeds`` in ``split``; one dict per seed (with ``seed``,
    ``policy``, ``split`` and ``start_s``), or a pandas DataFrame with ``as_frame``.

    ``policy`` is a registry name (a fresh policy per seed), a Policy instance (reset per
    seed) or a zero-argument factory. ``env_kwargs`` are the env's keyword arguments
    (episode length, workload seed, ...), so the episodes match the env built with them.
    """
    if env not in ("allocate", "reclaim"):
        raise ValueError(f"env must be 'allocate' or 'reclaim', got {env!r}")
    rows: list[dict[str, Any]] = []
    if env == "allocate":
        ep = {k: env_kwargs.pop(k) for k in list(env_kwargs) if k in _EPISODE_KEYS}
        if env_kwargs:
            raise TypeError(f"unknown keyword(s) for env='allocate': {sorted(env_kwargs)}")
        sampler = EpisodeSampler(scenario, **ep)
        for seed in seeds:
            spec = sampler.sample(seeding.np_random(int(seed))[0], split)
            p = _policy_for_seed(policy)
            if hasattr(p, "set_episode"):
                p.set_episode(spec)
            res = run_policy(spec.scenario, p, spec.engine_seed, jobs=spec.jobs, demand=spec.demand)
            s = episode_summary(res.engine, spec)
            rows.append({"policy": p.name, "seed": int(seed), **s})
    else:
        from aryl_gym.envs.reclaim import ReclaimEnv

        renv = ReclaimEnv(scenario, split=split, **env_kwargs)
        for seed in seeds:
            p = _policy_for_seed(policy)
            s = _run_reclaim_episode(renv, p, int(seed), split)
            rows.append({"policy": p.name, "seed": int(seed), **s})
    if as_frame:
        import pandas as pd

        return pd.DataFrame(rows)
    return rows


def _run_reclaim_episode(renv, policy: Policy, seed: int, split: str) -> dict[str, Any]:
    obs, info = renv.reset(seed=seed, options={"split": split})
    agent = isinstance(policy, AgentPolicy) and policy.decision == "reclaim"
    if not agent:
        policy.reset(renv.engine.view, renv.spec_.engine_seed)
    follower = ReclaimPlanFollower(policy)
    while True:
        a = int(policy.act(obs, renv.action_masks())) if agent else follower.action(renv)
        obs, r, term, trunc, info = renv.step(a)
        if term or trunc:
            s = dict(info["summary"])
            s["reward_preemptions"] = renv.preemptions
            s["untranslatable_picks"] = follower.untranslatable
            return s


__all__ = ["AgentPolicy", "evaluate"]
