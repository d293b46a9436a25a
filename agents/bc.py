"""Behaviour cloning of Aryl's decisions (the warm start before RL).

:func:`collect` runs Aryl through the env and records ``(obs, mask, action, reward,
done)`` at every step the agent would take:

* ``Allocate-v0``: each round a fresh ``ArylPolicy`` computes its allocation on the env's
  view, which is translated into env actions exactly as the consistency test of
  ``tests/test_envs.py`` does (per job: start, then the largest deltas first; shrinks
  before grows; then commit). Decisions on jobs without a slot are skipped.
* ``Reclaim-v0``: the reclaim picks of a rule of ``baselines.reclaim.RECLAIM_RULES``
  (``teacher``; default ``"aryl"``, Aryl's greedy by preemption count; ``"aryl-lost"`` is
  the same greedy with the lost-GPU-seconds cost), server by server, mapped to slots.

:func:`pretrain` then minimises the cross-entropy of the policy's *masked* logits on
those actions (plus a small value regression on the discounted returns, so the critic
does not start from zero when RL takes over).

:func:`dagger` (``bc.dagger_iters`` > 0, Allocate-v0 only) then repeats: roll the learner
out (deterministic, masked) on fresh train windows, label every state it visits with
Aryl's next action there (:func:`expert_action`: Aryl's allocation for the round, computed
on the learner's own engine state, minus what the round's pending allocation already
does), add those rows to the demonstrations and retrain.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch as th


@dataclass
class Demos:
    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    episodes: int
    skipped: int  # Aryl decisions that had no slot / could not be expressed

    def __len__(self) -> int:
        return len(self.actions)

    @classmethod
    def from_lists(cls, obs, masks, actions, returns, episodes: int, skipped: int = 0) -> Demos:
        """Demonstrations from per-step lists, in the dtypes training reads."""
        return cls(
            np.asarray(obs, np.float32),
            np.asarray(masks, bool),
            np.asarray(actions, np.int64),
            np.asarray(returns, np.float32),
            episodes,
            skipped,
        )


def _allocate_episode(env, seed: int, split: str):
    from aryl_gym.baselines.aryl import ArylPolicy

    u = env.unwrapped
    obs, info = env.reset(seed=seed, options={"split": split})
    aryl = ArylPolicy()
    aryl.reset(u.engine.view, u.spec_.engine_seed)
    rows, skipped = [], 0
    while True:
        rnd, view = u.round, u.engine.view
        acts, missing = rnd.actions_for(aryl.allocate(view), view)
        skipped += missing
        for a in [*acts, rnd.commit_action]:
            mask = u.action_masks()
            if not mask[a]:
                skipped += 1
                continue
            nobs, r, term, trunc, info = env.step(a)
            rows.append((obs, mask, a, r))
            obs = nobs
            if term or trunc:
                return rows, skipped


def _reclaim_episode(env, seed: int, split: str, teacher: str = "aryl"):
    from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

    from aryl_gym.envs.reclaim_round import ReclaimPlanFollower

    u = env.unwrapped
    obs, info = env.reset(seed=seed, options={"split": split})
    aryl = ArylPolicy(ArylConfig(reclaim=teacher))
    aryl.reset(u.engine.view, u.spec_.engine_seed)
    follower = ReclaimPlanFollower(aryl)  # picks without a slot count as skipped
    rows = []
    while True:
        slot = follower.action(u)
        mask = u.action_masks()
        nobs, r, term, trunc, info = env.step(slot)
        rows.append((obs, mask, slot, r))
        obs = nobs
        if term or trunc:
            return rows, follower.untranslatable


def collect(
    env,
    episodes: int,
    gamma: float = 0.99,
    split: str = "train",
    seed0: int = 10_000,
    teacher: str = "aryl",
) -> Demos:
    """Aryl's decisions on ``episodes`` windows of ``split`` (seeds ``seed0 ..``).

    ``teacher`` (Reclaim-v0 only): the name in ``baselines.reclaim.RECLAIM_RULES`` whose
    picks are imitated (``ArylPolicy(ArylConfig(reclaim=teacher))``); Allocate-v0 accepts
    only ``"aryl"``."""
    from aryl_gym.baselines.reclaim import RECLAIM_RULES

    from aryl_gym.envs.allocate import AllocateEnv

    if teacher not in RECLAIM_RULES:
        raise ValueError(f"bc teacher {teacher!r} unknown; known: {', '.join(RECLAIM_RULES)}")
    if isinstance(env.unwrapped, AllocateEnv):
        if teacher != "aryl":
            raise ValueError(
                f"bc teacher {teacher!r} applies to Reclaim-v0 only (Allocate-v0: 'aryl')"
            )
        run = _allocate_episode
    else:
        run = functools.partial(_reclaim_episode, teacher=teacher)
    all_obs, all_masks, all_acts, all_rets = [], [], [], []
    skipped = 0
    for ep in range(episodes):
        rows, sk = run(env, seed0 + ep, split)
        skipped += sk
        rets = discounted_returns([r for *_, r in rows], gamma)
        for (o, m, a, _), ret in zip(rows, rets, strict=True):
            all_obs.append(o)
            all_masks.append(m)
            all_acts.append(a)
            all_rets.append(ret)
    return Demos.from_lists(all_obs, all_masks, all_acts, all_rets, episodes, skipped)


def expert_action(rnd, alloc, view) -> int:
    """Aryl's next action in the current (possibly learner-modified) pending state of the
    round ``rnd``, given Aryl's allocation ``alloc`` for the round.

    Aryl's target for each slotted job is ``alloc``'s (or its current GPUs when ``alloc``
    leaves it alone); jobs whose pending target differs are moved there with
    :meth:`AllocationRound.ops_to_target` in :meth:`AllocationRound.actions_for`'s order
    (decreases of the pending target first, then increases, in ``alloc``'s order; jobs the
    learner touched but Aryl leaves alone last). The first valid action is returned, commit
    when none is. On Aryl's own trajectory this reproduces ``actions_for`` + commit."""
    job = view.job
    want = dict(alloc.gpus)
    for idx in rnd.pending:
        want.setdefault(idx, job(idx).n_gpus)
    items = []
    for idx, n in want.items():
        slot = rnd.slot_of(idx)
        if slot is None or int(rnd.tgt[slot]) == n:
            continue
        items.append((n > int(rnd.tgt[slot]), idx, n))
    items.sort(key=lambda t: t[0])  # stable: decreases first, alloc's order kept
    mask = rnd.mask
    for _, idx, n in items:
        ops = rnd.ops_to_target(idx, n)
        if ops and mask[ops[0]]:
            return int(ops[0])
    return int(rnd.commit_action)


def _dagger_episode(env, policy, seed: int, split: str, masked: bool = True):
    """One learner episode (deterministic, masked); rows labelled with Aryl's action."""
    from aryl_gym.baselines.aryl import ArylPolicy

    u = env.unwrapped
    obs, info = env.reset(seed=seed, options={"split": split})
    aryl = ArylPolicy()
    aryl.reset(u.engine.view, u.spec_.engine_seed)
    rows, agree, seen = [], 0, -1
    alloc = None
    while True:
        rnd, view = u.round, u.engine.view
        if rnd.rounds != seen or alloc is None:  # a new round: Aryl decides on this state
            seen = rnd.rounds
            alloc = aryl.allocate(view)
        label = expert_action(rnd, alloc, view)
        mask = u.action_masks()
        if masked:
            act = int(policy.predict(obs, action_masks=mask, deterministic=True)[0])
        else:
            act = int(policy.predict(obs, deterministic=True)[0])
        agree += act == label
        nobs, r, term, trunc, info = env.step(act)
        rows.append((obs, mask, label, r))
        obs = nobs
        if term or trunc:
            return rows, agree


def discounted_returns(rewards: list[float], gamma: float) -> list[float]:
    """Each step's discounted return ``r_t + gamma r_{t+1} + ...`` of one episode."""
    g, rets = 0.0, []
    for r in reversed(rewards):
        g = r + gamma * g
        rets.append(g)
    rets.reverse()
    return rets


def collect_learner(
    env,
    policy,
    episodes: int,
    gamma: float = 0.99,
    split: str = "train",
    seed0: int = 20_000,
    masked: bool = True,
) -> tuple[Demos, float]:
    """States the learner ``policy`` visits on ``episodes`` windows, labelled with Aryl's
    action (DAgger, pure learner roll-out); also the learner's agreement with the labels."""
    from aryl_gym.envs.allocate import AllocateEnv

    if not isinstance(env.unwrapped, AllocateEnv):
        raise ValueError("DAgger (bc.dagger_iters) is implemented for Allocate-v0 only")
    policy.set_training_mode(False)
    o, m, a, ret = [], [], [], []
    agree = 0
    for ep in range(episodes):
        rows, ag = _dagger_episode(env, policy, seed0 + ep, split, masked)
        agree += ag
        for (ob, mk, ac, _), g in zip(
            rows, discounted_returns([r for *_, r in rows], gamma), strict=True
        ):
            o.append(ob)
            m.append(mk)
            a.append(ac)
            ret.append(g)
    d = Demos.from_lists(o, m, a, ret, episodes)
    return d, agree / max(len(d), 1)


def merge(a: Demos, b: Demos) -> Demos:
    return Demos(
        np.concatenate([a.obs, b.obs]),
        np.concatenate([a.masks, b.masks]),
        np.concatenate([a.actions, b.actions]),
        np.concatenate([a.returns, b.returns]),
        a.episodes + b.episodes,
        a.skipped + b.skipped,
    )


def dagger(
    env,
    policy,
    demos: Demos,
    iters: int,
    episodes: int,
    gamma: float = 0.99,
    epochs: int = 3,
    masked: bool = True,
    seed0: int = 20_000,
    log=None,
    **train_kw,
) -> tuple[Demos, list[dict]]:
    """``iters`` DAgger rounds after a first BC pass: roll the learner out on ``episodes``
    fresh train windows (seeds ``seed0 + 1000 * it ..``), label with Aryl, aggregate,
    retrain ``epochs`` epochs on everything. Returns the aggregate and one dict per round."""
    out = []
    for it in range(iters):
        t0 = time.perf_counter()
        new, agree = collect_learner(
            env, policy, episodes, gamma, seed0=seed0 + 1000 * it, masked=masked
        )
        t1 = time.perf_counter()
        demos = merge(demos, new)
        hist = pretrain(policy, demos, epochs=epochs, masked=masked, **train_kw)
        row = dict(
            iter=it + 1,
            new_samples=len(new),
            samples=len(demos),
            learner_agreement=agree,
            collect_s=round(t1 - t0, 1),
            train_s=round(hist[-1]["seconds"], 1),
            accuracy=hist[-1]["accuracy"],
        )
        out.append(row)
        if log is not None:
            log(row)
    return demos, out


def bc_loss(policy, obs, masks, actions, returns, value_coef: float = 0.5):
    """(total loss, cross-entropy, accuracy) of ``policy`` on a batch of demonstrations."""
    dist = policy.get_distribution(obs, action_masks=masks) if masks is not None else None
    if dist is None:
        dist = policy.get_distribution(obs)
    logp = dist.log_prob(actions)
    ce = -logp.mean()
    values = policy.predict_values(obs).flatten()
    vloss = th.nn.functional.mse_loss(values, returns)
    with th.no_grad():
        acc = (dist.distribution.probs.argmax(-1) == actions).float().mean()
    return ce + value_coef * vloss, ce, acc


def pretrain_from_config(
    policy, demos: Demos, bc: dict, seed: int, masked: bool = True
) -> list[dict]:
    """:func:`pretrain` with a config's ``bc`` section (``epochs``, ``lr``, ``batch_size``,
    ``value_coef``; the defaults below), printing one line per epoch."""
    return pretrain(
        policy,
        demos,
        epochs=int(bc.get("epochs", 10)),
        lr=float(bc.get("lr", 1e-3)),
        batch_size=int(bc.get("batch_size", 256)),
        value_coef=float(bc.get("value_coef", 0.5)),
        masked=masked,
        seed=seed,
        log=lambda r: print(
            f"bc epoch {r['epoch']}: ce {r['cross_entropy']:.4f} acc {r['accuracy']:.3f}"
        ),
    )


def pretrain(
    policy,
    demos: Demos,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 256,
    value_coef: float = 0.5,
    masked: bool = True,
    seed: int = 0,
    log=None,
) -> list[dict]:
    """Supervised training of ``policy`` (an SB3 / sb3-contrib ActorCriticPolicy) on the
    demonstrations; returns one dict per epoch (loss, cross-entropy, accuracy, seconds).
    ``masked=False`` for plain PPO policies (no mask in the distribution)."""
    rng = np.random.default_rng(seed)
    dev = policy.device
    obs = th.as_tensor(demos.obs, device=dev)
    masks = th.as_tensor(demos.masks, device=dev)
    acts = th.as_tensor(demos.actions, device=dev)
    rets = th.as_tensor(demos.returns, device=dev)
    # value targets are in the policy's reward units; scale the loss, not the targets
    opt = th.optim.Adam(policy.parameters(), lr=lr)
    policy.set_training_mode(True)
    history = []
    t0 = time.perf_counter()
    for ep in range(epochs):
        idx = rng.permutation(len(acts))
        tot = ce_sum = acc_sum = 0.0
        nb = 0
        for s in range(0, len(idx), batch_size):
            b = th.as_tensor(idx[s : s + batch_size], device=dev)
            m = masks[b].cpu().numpy() if masked else None
            loss, ce, acc = bc_loss(policy, obs[b], m, acts[b], rets[b], value_coef)
            opt.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            opt.step()
            tot += float(loss.detach())
            ce_sum += float(ce.detach())
            acc_sum += float(acc)
            nb += 1
        row = dict(
            epoch=ep + 1,
            loss=tot / nb,
            cross_entropy=ce_sum / nb,
            accuracy=acc_sum / nb,
            seconds=time.perf_counter() - t0,
        )
        history.append(row)
        if log is not None:
            log(row)
    policy.set_training_mode(False)
    return history


__all__ = [
    "Demos",
    "bc_loss",
    "collect",
    "collect_learner",
    "dagger",
    "expert_action",
    "merge",
    "pretrain",
]
