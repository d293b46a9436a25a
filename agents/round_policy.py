"""A set policy for ``ArylGym/Round-v0`` that starts as a linear scorer (SB3 PPO).

Round-v0's action is one score ``a_i`` in ``[-1, 1]`` per slot (a job's knapsack values
are weighted by ``4 ** a_i``; ``a = 0`` is Aryl). :class:`RoundSetNet` gives the mean of
each slot's Gaussian as

    mean_i = valid_i * (theta . phi_i + r_i)

* ``phi_i``: the :class:`~aryl_gym.agents.round_scorers.LinearScorer`'s 8 features of
  slot ``i`` (:data:`~aryl_gym.agents.round_scorers.LINEAR_FEATURES`), computed here in
  torch; ``theta`` is loaded from a CEM JSON (``theta = 0``: Aryl) and the product is
  computed in float64 as the numpy scorer's, so the step-0 policy's actions are the
  scorer's to float32 rounding (a sum in another order can land one float32 step away)
  and its decisions the same;
* ``r_i``: a residual, the same MLP on every ``[e_i, pooled]`` where ``e_i`` encodes
  ``[phi_i, globals]`` and ``pooled`` is the mean of ``e`` over the filled slots; its last
  layer starts at zero, so **at step 0 the deterministic policy is the linear scorer**
  (tested);
* empty slots get 0 (Round-v0 ignores them anyway).

The value is permutation invariant (masked mean and max over a separate slot encoder,
plus the globals), the mean permutation equivariant. One learnable ``log_std`` is shared
by every slot (a slot has no identity: slots are ordered by remaining time), initialised
low (``log_std_init``, e.g. -1.5) so exploration starts close to the scorer.

:class:`RoundSetPolicy` plugs the network into SB3's ``ActorCriticPolicy`` as its
``mlp_extractor`` (the actor "latent" is the mean; the action net is the identity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th
from aryl_gym.agents.round_scorers import _GLOBAL, _SLOT, LINEAR_FEATURES
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from aryl_gym.envs.round import GLOBAL_FEATURES, HISTOGRAM_FEATURES, SLOT_FEATURES

_OWN = [_SLOT[f] for f in LINEAR_FEATURES[:-1]]  # the slot's own features, in scorer order


def round_features(obs: th.Tensor, n_slots: int) -> tuple[th.Tensor, th.Tensor]:
    """``(phi, globals)``: ``(B, n_slots, 8)`` linear-scorer features (float64, as
    :func:`~aryl_gym.agents.round_scorers.linear_features`) and ``(B, n_globals)``."""
    k = n_slots * len(SLOT_FEATURES)
    obs = obs.to(th.float64)
    slots = obs[:, :k].reshape(obs.shape[0], n_slots, len(SLOT_FEATURES))
    glob = obs[:, k:]
    rise = glob[:, _GLOBAL["demand_4h"]] - glob[:, _GLOBAL["demand_now"]]
    lent_x_rise = slots[:, :, _SLOT["lent_share"]] * rise[:, None]
    return th.cat([slots[:, :, _OWN], lent_x_rise[:, :, None]], dim=2), glob


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class RoundSetNet(nn.Module):
    """Per-slot action means (linear scorer + zero-initialised residual) and a pooled
    value latent; see the module doc."""

    def __init__(
        self, obs_dim: int, n_slots: int, theta: Sequence[float], hidden: int = 32,
        learn_theta: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        n_glob = obs_dim - n_slots * len(SLOT_FEATURES)  # with free_histograms: more
        if n_glob not in (len(GLOBAL_FEATURES), len(GLOBAL_FEATURES) + len(HISTOGRAM_FEATURES)):
            raise ValueError(f"obs_dim {obs_dim} is not a Round-v0 observation of {n_slots} slots")
        if len(theta) != len(LINEAR_FEATURES):
            raise ValueError(f"theta needs {len(LINEAR_FEATURES)} numbers, got {len(theta)}")
        self.n_slots = n_slots
        self.theta = nn.Parameter(
            th.tensor([float(x) for x in theta], dtype=th.float64), requires_grad=learn_theta
        )
        n_in, h = len(LINEAR_FEATURES) + n_glob, hidden
        self.enc = nn.Sequential(_mlp([n_in, h, h]), nn.ReLU())
        self.residual = _mlp([2 * h, h, 1])
        self.v_enc = nn.Sequential(_mlp([n_in, h, h]), nn.ReLU())
        self.v_trunk = nn.Sequential(_mlp([2 * h + n_glob, h]), nn.ReLU())
        self.latent_dim_pi = n_slots
        self.latent_dim_vf = h

    def zero_residual(self) -> None:
        """Make the residual output 0 (the policy's mean is then the linear scorer)."""
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def _inputs(self, obs: th.Tensor):
        phi, glob = round_features(obs, self.n_slots)
        valid = phi[:, :, :1].float()  # feature "valid": 1 for a filled slot
        b = obs.shape[0]
        x = th.cat([phi.float(), glob.float()[:, None, :].expand(b, self.n_slots, -1)], dim=2)
        return phi, glob.float(), valid, x

    def forward_actor(self, obs: th.Tensor) -> th.Tensor:
        phi, _, valid, x = self._inputs(obs)
        linear = (phi @ self.theta).float()  # float64 product, as the numpy scorer's
        e = self.enc(x) * valid
        pooled = e.sum(1) / valid.sum(1).clamp(min=1.0)
        r = self.residual(th.cat([e, pooled[:, None, :].expand_as(e)], dim=2))[:, :, 0]
        return valid[:, :, 0] * (linear + r)

    def forward_critic(self, obs: th.Tensor) -> th.Tensor:
        _, glob, valid, x = self._inputs(obs)
        e = self.v_enc(x) * valid
        mean = e.sum(1) / valid.sum(1).clamp(min=1.0)
        mx = (e - (1.0 - valid) * 1e4).max(1).values * (valid.sum(1) > 0).float()
        return self.v_trunk(th.cat([mean, mx, glob], dim=1))

    def forward(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(obs), self.forward_critic(obs)


class RoundSetPolicy(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` with :class:`RoundSetNet`; ``policy_kwargs``: ``n_slots``,
    ``theta`` (the linear scorer it starts from), ``hidden``, ``learn_theta`` and SB3's own
    (``log_std_init``, default -1.5)."""

    def __init__(
        self,
        *args,
        n_slots: int = 16,
        theta: Sequence[float] = (0.0,) * len(LINEAR_FEATURES),
        hidden: int = 32,
        learn_theta: bool = True,
        **kwargs,
    ) -> None:
        self.round_kwargs = dict(
            n_slots=int(n_slots),
            theta=[float(x) for x in theta],
            hidden=int(hidden),
            learn_theta=bool(learn_theta),
        )
        kwargs.setdefault("net_arch", [])
        kwargs.setdefault("log_std_init", -1.5)
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.round_kwargs)
        return data

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = RoundSetNet(self.features_dim, **self.round_kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)  # orthogonal init of every linear layer, then:
        self.action_net = nn.Identity()  # the latent already is the mean
        self.log_std = nn.Parameter(th.full((1,), float(self.log_std_init)))  # shared
        self.mlp_extractor.zero_residual()
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


__all__ = ["RoundSetNet", "RoundSetPolicy", "round_features"]
