"""One evaluation path for every policy, heuristic or learned.

::

    from aryl_gym.evaluation import evaluate, AgentPolicy
    evaluate("aryl", "small", "test", seeds=range(5))          # a registry name
    evaluate(ArylPolicy(), "small", "test")                     # a Policy instance
    agent = AgentPolicy.from_model(model, env)                  # an SB3 model trained on env
    evaluate(agent)                                             # on env's scenario and episodes

For ``env="allocate"`` (default) each seed gives exactly the episode that
``Allocate-v0.reset(seed=seed, options={"split": split})`` gives (same window, same
engine seed), and the policy runs on the engine directly with its own capabilities
(a no-loaning baseline runs without loaning on the same jobs). An :class:`AgentPolicy`
drives its ``act(obs, mask)`` through the env's own encoder, so a learned agent sees the
observations it was trained on. For ``env="reclaim"`` the episodes are
``Reclaim-v0``'s and the policy's ``reclaim`` decides every reclaim that reaches the
agent there (allocation by the env's allocation policy). ``env`` may also be an env
instance: the scenario, the episodes and the kind are then that env's (an agent built
with :meth:`AgentPolicy.from_env` carries its env's the same way).

Agents get a step guard (``max_steps`` env steps per episode, :class:`StepLimitExceeded`
naming the agent, the scenario, the episode and the step count) and every evaluation a
progress bar (``progress=False`` turns it off; it appears only after two seconds).

The package exposes the function as ``aryl_gym.evaluate(...)`` too.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from aryl_gym.config import ScenarioConfig
from aryl_gym.envs.allocate import AllocateEnv, episode_summary, resolve_policy
from aryl_gym.envs.episodes import HOUR, EpisodeSampler
from aryl_gym.envs.observation import AllocationRound, ReclaimRound
from aryl_gym.envs.protocol import AllocateProtocol, ReclaimProtocol
from aryl_gym.envs.reclaim_round import ReclaimPlanFollower
from aryl_gym.policy import Allocation, Policy
from aryl_gym.sim.view import ClusterView
from aryl_gym.simulate import run_policy

#: The env keywords that pick the episodes (the others shape what an agent observes and
#: does): what evaluate takes for Allocate-v0, and what an evaluation may change for a
#: trained agent.
EPISODE_KEYS = ("workload_seed", "episode_hours", "drain_hours", "split_fractions", "trace")

#: The step guard of :func:`evaluate`: env steps an agent may take in one episode. Far above
#: what a trained agent takes (the committed Allocate agent: 822 and 876 on ``small``'s test
#: windows of seeds 0 and 1; a 2,048-step one under the defaults: 1,666-2,455), reached in
#: well under a minute by one that never commits (it then runs every round to
#: ``max_actions_per_round``; before this guard such an evaluation ran for many minutes).
DEFAULT_MAX_STEPS = 100_000

Act = Callable[[np.ndarray, np.ndarray], Any]


class StepLimitExceeded(RuntimeError):
    """An agent took more than ``max_steps`` env steps in one episode of :func:`evaluate`."""


@dataclass(frozen=True)
class EnvSettings:
    """Where :func:`evaluate` runs a policy: the env ``kind`` (``"allocate"`` or
    ``"reclaim"``), the ``scenario`` and the env keywords that give the same episodes
    (``kwargs``; for Reclaim-v0 also its reclaim options)."""

    kind: str
    scenario: str | ScenarioConfig
    kwargs: dict[str, Any]

    @classmethod
    def of(cls, env: Any) -> EnvSettings:
        """The settings of an Allocate-v0 or Reclaim-v0 env (wrapped or not)."""
        from aryl_gym.envs.reclaim import ReclaimEnv

        u = env.unwrapped
        if not isinstance(u, AllocateEnv | ReclaimEnv):
            raise TypeError(
                f"evaluate runs Allocate-v0 and Reclaim-v0 episodes, got {type(u).__name__}"
            )
        s = u.sampler
        episodes = dict(
            workload_seed=s.workload_seed,
            episode_hours=s.episode_s / HOUR,
            drain_hours=s.drain_s / HOUR,
            split_fractions=s.split_fractions,
            trace=s.trace,
        )
        if isinstance(u, AllocateEnv):
            return cls("allocate", u.scenario, episodes)
        reclaim = dict(
            n_server_slots=u.round.n_slots,
            cost=u.cost,
            # a copy: the evaluation env resets it per episode, the training env's stays put
            allocation_policy=copy.deepcopy(u.allocation_policy),
            max_invalid_per_reclaim=u.max_invalid,
            max_redraws=u.max_redraws,
        )
        return cls("reclaim", u.scenario, {**episodes, **reclaim})


@dataclass
class EpisodeGuard:
    """The step guard and progress display of one episode of :func:`evaluate`: ``check``
    after every agent step raises :class:`StepLimitExceeded` past ``max_steps`` (None: no
    guard) and every ``every`` steps shows the steps and simulated time on ``bar``."""

    max_steps: int | None
    where: str  # "scenario 'tiny', test split, seed 0": the episode, for messages
    bar: Any = None
    every: int = 1000

    def check(self, name: str, steps: int, view: ClusterView, detail: str = "") -> None:
        if self.max_steps is not None and steps > self.max_steps:
            raise StepLimitExceeded(
                f"{name!r} took {steps} env steps on {self.where} without ending the episode "
                f"(step guard max_steps={self.max_steps}; simulated time {view.now / HOUR:.1f} h"
                f"{detail}). An agent that never commits runs every round up to "
                "max_actions_per_round: train it longer or under the env's default round "
                "rules (docs/agents.md, 'Defaults that learn'), or raise max_steps "
                "(None: no guard; aryl-gym evaluate --max-steps 0)."
            )
        if self.bar is not None and steps % self.every == 0:
            self.bar.set_postfix_str(f"{self.where}: {steps} steps, {view.now / HOUR:.1f} h")


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
    those of the env, with the env's defaults (or build it with :meth:`from_env` /
    :meth:`from_model`, which also make :func:`evaluate` default to that env's scenario
    and episodes); ``encoder`` takes the :class:`AllocationRound` options
    ``queue_slots``, ``running_slots``, ``deltas``, ``max_actions_per_round``,
    ``gpu_scale`` (default 32 here), ``monotone_rounds`` and ``allow_preemption``.
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
        periodic_rounds: bool = False,
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
        #: The env this agent was built for (from_env / from_model), else None: evaluate's
        #: default scenario and episodes.
        self.env_settings: EnvSettings | None = None
        #: Set by evaluate for each episode: the step guard and progress display.
        self.guard: EpisodeGuard | None = None
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

    @property
    def commits(self) -> int:
        """Allocate rounds of this episode the agent ended with the commit action (the
        others it decided ended at ``max_actions_per_round``)."""
        return self.allocate_protocol.commits

    @classmethod
    def from_env(cls, env, act: Act, **kwargs) -> AgentPolicy:
        """An AgentPolicy with the encoder configuration of ``env`` (Allocate-v0 or
        Reclaim-v0); :func:`evaluate` then defaults to ``env``'s scenario and episodes."""
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
        agent = cls(act, **cfg)
        agent.env_settings = EnvSettings.of(env)
        return agent

    @classmethod
    def from_model(cls, model: Any, env, *, deterministic: bool = True, **kwargs) -> AgentPolicy:
        """An AgentPolicy acting with a stable-baselines3 ``model`` trained on ``env``
        (deterministic by default), passing the action masks when its ``predict`` takes
        them (sb3-contrib's MaskablePPO); ``kwargs`` as :meth:`from_env`."""
        masked = "action_masks" in inspect.signature(model.predict).parameters
        if masked:

            def act(obs: np.ndarray, mask: np.ndarray) -> int:
                return int(model.predict(obs, action_masks=mask, deterministic=deterministic)[0])
        else:

            def act(obs: np.ndarray, mask: np.ndarray) -> int:
                return int(model.predict(obs, deterministic=deterministic)[0])

        return cls.from_env(env, act, **kwargs)

    # ------------------------------------------------------------------ Policy
    def set_episode(self, spec) -> None:
        """Time of day and demand trend need the episode's window (evaluate calls this)."""
        self.round.clock.start_episode(spec.time_offset_s, spec.demand)
        self.rround.clock.start_episode(spec.time_offset_s, spec.demand)

    def reset(self, view, seed: int | None = None) -> None:
        self.other.reset(view, seed)
        self._new_protocols()

    def _check(self, view: ClusterView) -> None:
        if self.guard is not None:
            p = self.allocate_protocol
            detail = (
                f"; {p.commits} rounds committed, {p.capped} ended at the round cap of "
                f"{self.round.max_actions} actions"
            )
            self.guard.check(self.name, self.steps, view, detail)

    def allocate(self, view) -> Allocation:
        if self.decision != "allocate":
            return self.other.allocate(view)
        proto = self.allocate_protocol
        if not proto.offer(view):
            return Allocation()  # a skipped round, as in the env
        rnd = self.round
        while True:
            alloc = proto.step(self.act(rnd.obs.copy(), rnd.mask.copy()))
            self._check(view)
            if alloc is not None:
                return alloc

    def reclaim(self, view, k: int):
        proto = self.reclaim_protocol
        if self.decision != "reclaim" or not proto.offer(view, k):
            return self.other.reclaim(view, k)
        rr = self.rround
        while not proto.done:
            proto.step(self.act(rr.obs.copy(), rr.mask.copy()))
            if self.guard is not None:
                self.guard.check(self.name, self.steps, view)
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


def _policy_label(policy) -> str:
    """A name for the progress bar before any policy is built."""
    if isinstance(policy, str):
        return policy
    return str(getattr(policy, "name", getattr(policy, "__name__", type(policy).__name__)))


def _settings(policy, scenario, env, env_kwargs: dict) -> EnvSettings:
    """Where :func:`evaluate` runs: an env instance's settings (``env``, else the agent's
    own env), overridden by an explicit ``scenario`` and ``env_kwargs``; else ``env``'s
    kind (default "allocate") on ``scenario`` (default "small")."""
    source = None
    if env is not None and not isinstance(env, str):
        source = EnvSettings.of(env)
    elif env is None:
        source = getattr(policy, "env_settings", None)
    if source is not None:
        return EnvSettings(
            source.kind,
            source.scenario if scenario is None else scenario,
            {**source.kwargs, **env_kwargs},
        )
    kind = env or "allocate"
    if kind not in ("allocate", "reclaim"):
        raise ValueError(f"env must be 'allocate', 'reclaim' or an env, got {kind!r}")
    return EnvSettings(kind, "small" if scenario is None else scenario, dict(env_kwargs))


def evaluate(
    policy: str | Policy | Callable[[], Policy],
    scenario: str | ScenarioConfig | None = None,
    split: str = "test",
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    *,
    env: Any = None,
    as_frame: bool = False,
    progress: bool = True,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    **env_kwargs,
):
    """Summary metrics of ``policy`` on the episodes that the env ``env`` draws for
    ``seeds`` in ``split``; one dict per seed (with ``seed``, ``policy``, ``split`` and
    ``start_s``; an agent's also with ``agent_steps``, ``invalid_actions`` and, on
    Allocate-v0, the rounds it ended with the commit action, ``agent_commits``, and those
    the round cap ended, ``agent_capped``), or a pandas DataFrame with ``as_frame``.

    ``policy`` is a registry name (a fresh policy per seed), a Policy instance (reset per
    seed) or a zero-argument factory. ``env`` is ``"allocate"`` or ``"reclaim"``, or an
    env instance whose kind, scenario and episodes are taken; left out, an agent built
    with :meth:`AgentPolicy.from_env` runs on its own env's, anything else on
    ``"allocate"``. ``scenario`` (default: the env's, else ``"small"``) and ``env_kwargs``
    (the env's keyword arguments: episode length, workload seed, ...) override them, so
    the episodes match the env built with them.

    ``progress`` shows a bar over the episodes (after two seconds; an agent's steps and
    simulated time on it). ``max_steps`` is the step guard: an agent that takes more env
    steps in one episode raises :class:`StepLimitExceeded` naming it, the scenario, the
    episode and the count (None: no guard).
    """
    from tqdm.auto import tqdm

    where = _settings(policy, scenario, env, env_kwargs)
    kwargs = dict(where.kwargs)
    seeds = [int(s) for s in seeds]
    if where.kind == "allocate":
        ep = {k: kwargs.pop(k) for k in list(kwargs) if k in EPISODE_KEYS}
        if kwargs:
            raise TypeError(f"unknown keyword(s) for env='allocate': {sorted(kwargs)}")
        sampler = EpisodeSampler(where.scenario, **ep)
        scenario_name = sampler.scenario.name
    else:
        from aryl_gym.envs.reclaim import ReclaimEnv

        renv = ReclaimEnv(where.scenario, split=split, **kwargs)
        scenario_name = renv.scenario.name
    bar = tqdm(
        total=len(seeds),
        desc=f"{_policy_label(policy)} on {scenario_name} ({split})",
        unit="episode",
        delay=2.0,
        leave=False,
        disable=not progress,
    )
    rows: list[dict[str, Any]] = []
    try:
        for seed in seeds:
            p = _policy_for_seed(policy)
            guard = EpisodeGuard(
                max_steps, f"scenario {scenario_name!r}, {split} split, seed {seed}", bar
            )
            if where.kind == "allocate":
                spec = sampler.sample(seeding.np_random(seed)[0], split)
                if hasattr(p, "set_episode"):
                    p.set_episode(spec)
                if isinstance(p, AgentPolicy):
                    p.guard = guard
                try:
                    res = run_policy(
                        spec.scenario, p, spec.engine_seed, jobs=spec.jobs, demand=spec.demand
                    )
                finally:
                    if isinstance(p, AgentPolicy):
                        p.guard = None
                s = episode_summary(res.engine, spec)
                if isinstance(p, AgentPolicy):
                    s.update(
                        agent_steps=p.steps,
                        agent_commits=p.commits,
                        agent_capped=p.allocate_protocol.capped,
                        invalid_actions=p.invalid_actions,
                    )
            else:
                s = _run_reclaim_episode(renv, p, seed, split, guard)
            rows.append({"policy": p.name, "seed": seed, **s})
            bar.update(1)
    finally:
        bar.close()
    if as_frame:
        import pandas as pd

        return pd.DataFrame(rows)
    return rows


def _run_reclaim_episode(
    renv, policy: Policy, seed: int, split: str, guard: EpisodeGuard | None = None
) -> dict[str, Any]:
    obs, info = renv.reset(seed=seed, options={"split": split})
    agent = isinstance(policy, AgentPolicy) and policy.decision == "reclaim"
    if not agent:
        policy.reset(renv.engine.view, renv.spec_.engine_seed)
    follower = ReclaimPlanFollower(policy)
    steps = 0
    while True:
        a = int(policy.act(obs, renv.action_masks())) if agent else follower.action(renv)
        obs, r, term, trunc, info = renv.step(a)
        steps += 1
        if guard is not None and not (term or trunc):
            guard.check(policy.name, steps, renv.engine.view)
        if term or trunc:
            s = dict(info["summary"])
            s["reward_preemptions"] = renv.preemptions
            s["untranslatable_picks"] = follower.untranslatable
            if agent:  # the agent acts through the env here: the env counted its steps
                s.update(agent_steps=steps, invalid_actions=renv.invalid_actions)
            return s


__all__ = [
    "DEFAULT_MAX_STEPS",
    "EPISODE_KEYS",
    "AgentPolicy",
    "EnvSettings",
    "EpisodeGuard",
    "StepLimitExceeded",
    "evaluate",
]
