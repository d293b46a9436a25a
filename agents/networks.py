"""A policy network for sets of jobs (or servers): one scorer shared across slots.

The observations of both envs are ``n_slots x slot_features`` slot rows followed by a
few global features, and the actions are per-slot (``Allocate-v0``: op-major
``op * n_slots + slot`` plus a last *commit* action; ``Reclaim-v0``: one pick per slot).
:class:`SetNet` reads that layout:

1. **encoder** ``phi``: the same MLP on every slot row, concatenated with the globals;
2. **context**: masked mean- and max-pooling of the encoded slots (empty slots, whose
   ``present`` feature is 0, are left out) plus the globals, through an MLP;
3. **scorer** ``psi``: the same MLP on every ``[phi(slot), context]``, giving one logit per
   op for that slot (so permuting the slots permutes the logits the same way: the
   network is permutation-equivariant in the slots);
4. **commit** logit (Allocate only), **extra** global logits (``n_extra``:
   ReclaimAhead-v0's ``follow`` and ``release``, after the slot logits) and **value** from
   the context alone (permutation invariant).

:class:`MaskableSetPolicy` (sb3-contrib's ``MaskableActorCriticPolicy``) and
:class:`SetPolicy` (plain SB3 ``ActorCriticPolicy``) plug it in as the
``mlp_extractor``: its actor "latent" already is the logit vector, so the action net is
the identity. ``set_layout(env)`` gives the ``policy_kwargs`` for an env.
"""

from __future__ import annotations

from typing import Any

import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn


def set_layout(env) -> dict[str, Any]:
    """``policy_kwargs`` describing the slot layout of an Allocate-v0 / Reclaim-v0 env."""
    u = env.unwrapped if hasattr(env, "unwrapped") else env
    n_actions = int(u.action_space.n)
    obs_dim = int(u.observation_space.shape[0])
    n_slots = int(u.round.n_slots)
    slot_f = len(u.slot_feature_names)
    n_global = obs_dim - n_slots * slot_f
    n_extra = int(getattr(u, "extra_actions", 0))  # global actions after the slot ones
    if n_extra:
        assert n_actions == n_slots + n_extra and n_global == len(u.global_feature_names)
        return dict(n_slots=n_slots, slot_features=slot_f, n_ops=1, commit=False, n_extra=n_extra)
    commit = n_actions % n_slots == 1
    n_ops = (n_actions - int(commit)) // n_slots
    assert n_ops * n_slots + int(commit) == n_actions and n_global == len(u.global_feature_names)
    return dict(n_slots=n_slots, slot_features=slot_f, n_ops=n_ops, commit=commit)


def _mlp(sizes: list[int], act=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


class SetNet(nn.Module):
    """Per-slot logits (op-major, + commit) and a pooled value latent; see the module doc."""

    def __init__(
        self,
        obs_dim: int,
        n_slots: int,
        slot_features: int,
        n_ops: int,
        commit: bool,
        hidden: int = 64,
        n_extra: int = 0,
    ) -> None:
        super().__init__()
        self.n_slots, self.slot_f, self.n_ops, self.commit = n_slots, slot_features, n_ops, commit
        self.n_global = obs_dim - n_slots * slot_features
        g, h = self.n_global, hidden
        self.phi = nn.Sequential(_mlp([slot_features + g, h, h]), nn.ReLU())
        self.context = nn.Sequential(_mlp([2 * h + g, h, h]), nn.ReLU())
        self.psi = _mlp([2 * h, h, n_ops])
        self.commit_head = _mlp([h, h, 1]) if commit else None
        self.extra_head = _mlp([h, h, n_extra]) if n_extra else None
        self.latent_dim_pi = n_ops * n_slots + int(commit) + n_extra
        self.latent_dim_vf = h
        self.value_trunk = nn.Sequential(_mlp([h, h]), nn.ReLU())

    def _encode(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        b = obs.shape[0]
        k = self.n_slots * self.slot_f
        slots = obs[:, :k].reshape(b, self.n_slots, self.slot_f)
        glob = obs[:, k:]
        present = (slots[:, :, :1] > 0).float()  # feature 0 of both envs: slot holds an item
        x = th.cat([slots, glob.unsqueeze(1).expand(b, self.n_slots, self.n_global)], dim=2)
        h = self.phi(x) * present
        n = present.sum(1).clamp(min=1.0)
        mean = h.sum(1) / n
        mx = (h - (1.0 - present) * 1e4).max(1).values * (present.sum(1) > 0).float()
        ctx = self.context(th.cat([mean, mx, glob], dim=1))
        return h, ctx

    def _logits(self, h: th.Tensor, ctx: th.Tensor) -> th.Tensor:
        b = h.shape[0]
        per_slot = self.psi(th.cat([h, ctx.unsqueeze(1).expand(b, self.n_slots, ctx.shape[1])], 2))
        logits = per_slot.transpose(1, 2).reshape(b, self.n_ops * self.n_slots)  # op-major
        if self.commit_head is not None:
            logits = th.cat([logits, self.commit_head(ctx)], dim=1)
        if self.extra_head is not None:
            logits = th.cat([logits, self.extra_head(ctx)], dim=1)
        return logits

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        h, ctx = self._encode(features)
        return self._logits(h, ctx), self.value_trunk(ctx)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        h, ctx = self._encode(features)
        return self._logits(h, ctx)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.value_trunk(self._encode(features)[1])


class _SetMixin:
    """Replaces the MLP extractor by :class:`SetNet` and the action net by the identity."""

    def __init__(
        self,
        *args,
        n_slots: int,
        slot_features: int,
        n_ops: int,
        commit: bool,
        hidden: int = 64,
        n_extra: int = 0,
        **kwargs,
    ) -> None:
        self.set_kwargs = dict(
            n_slots=n_slots, slot_features=slot_features, n_ops=n_ops, commit=commit, hidden=hidden
        )
        if n_extra:  # only when used: the saved kwargs of the older agents stay as they were
            self.set_kwargs["n_extra"] = n_extra
        kwargs.setdefault("net_arch", [])
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.set_kwargs)
        return data

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = SetNet(self.features_dim, **self.set_kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()
        m = self.mlp_extractor
        # small initial logits (near-uniform over the valid actions), as SB3 does for its
        # action net
        for head in (m.psi, m.commit_head, m.extra_head):
            if head is not None:
                nn.init.orthogonal_(head[-1].weight, gain=0.01)
                nn.init.zeros_(head[-1].bias)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


class MaskableSetPolicy(_SetMixin, MaskableActorCriticPolicy):
    """MaskablePPO policy with the permutation-equivariant :class:`SetNet`."""


class SetPolicy(_SetMixin, ActorCriticPolicy):
    """Plain PPO policy with :class:`SetNet` (no masks: invalid actions are env no-ops)."""


__all__ = ["MaskableSetPolicy", "SetNet", "SetPolicy", "set_layout"]
