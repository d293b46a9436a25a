"""Round-v0 scorers: what turns an observation into one score per slot.

A scorer here is a factory ``make(seed) -> act`` with ``act(obs) -> action`` (``n_slots``
numbers in ``[-1, 1]``; Round-v0 weights the slot's knapsack values by ``4 ** a``). The
factory is called once per episode so that stochastic scorers are seeded per window.

* ``zero``: every score 0, which *is* Aryl (Round-v0's zero action);
* ``random``: uniform scores in ``[-1, 1]`` from ``numpy.random.default_rng(seed)``;
* :class:`LinearScorer`: ``a_i = clip(theta . phi_i, -1, 1)`` over a few features
  ``phi_i`` of slot ``i`` (:data:`LINEAR_FEATURES`), ``theta = 0`` being Aryl; the CEM
  oracle searches its ``theta`` per window and ``aryl-gym train-round-cem`` on training
  workloads (:mod:`aryl_gym.agents.cem`); saved as JSON (:func:`save_linear`);
* an SB3 model zip (PPO / SAC / ... trained on Round-v0): its deterministic ``predict``
  (needs the ``rl`` extra).

:func:`load_scorer` resolves any of these from a name or path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aryl_gym.envs.round import GLOBAL_FEATURES, HISTOGRAM_FEATURES, SLOT_FEATURES

Act = Callable[[np.ndarray], np.ndarray]
ScorerFactory = Callable[[int], Act]

_SLOT = {name: i for i, (name, _) in enumerate(SLOT_FEATURES)}
_GLOBAL = {name: i for i, (name, _) in enumerate(GLOBAL_FEATURES)}

#: The linear scorer's features of a slot: the slot's own observation (``valid`` is 1 for
#: every filled slot, i.e. the bias) and one interaction, the share on lent servers times
#: the inference demand's rise over the next 4 hours (lent GPUs about to be reclaimed).
LINEAR_FEATURES = (
    "valid",
    "gpus",
    "remaining",
    "gain_one",
    "gain_free",
    "servers",
    "lent_share",
    "lent_share_x_demand_rise",
)
#: The ``kind`` field of a saved linear scorer (a check that a JSON file is one).
LINEAR_KIND = "round-v0-linear-scorer"


def linear_features(obs: np.ndarray, n_slots: int) -> np.ndarray:
    """``(n_slots, len(LINEAR_FEATURES))`` features of a Round-v0 observation."""
    n_slot = len(SLOT_FEATURES)
    obs = np.asarray(obs, dtype=np.float64)
    size = n_slots * n_slot + len(GLOBAL_FEATURES)
    # with free_histograms, HISTOGRAM_FEATURES follow the globals (not read here)
    if obs.shape not in ((size,), (size + len(HISTOGRAM_FEATURES),)):
        raise ValueError(
            f"a Round-v0 observation of {n_slots} slots has {size} numbers "
            f"({size + len(HISTOGRAM_FEATURES)} with free_histograms), got shape {obs.shape}"
        )
    slots = obs[: n_slots * n_slot].reshape(n_slots, n_slot)
    glob = obs[n_slots * n_slot : size]
    rise = glob[_GLOBAL["demand_4h"]] - glob[_GLOBAL["demand_now"]]
    own = slots[:, [_SLOT[f] for f in LINEAR_FEATURES[:-1]]]
    return np.column_stack([own, slots[:, _SLOT["lent_share"]] * rise])


@dataclass(frozen=True)
class LinearScorer:
    """``a_i = clip(theta . phi_i, -1, 1)`` per slot; empty slots (all-zero features) get 0."""

    theta: np.ndarray
    n_slots: int = 16

    def __post_init__(self) -> None:
        theta = np.asarray(self.theta, dtype=np.float64).reshape(-1)
        if theta.shape != (len(LINEAR_FEATURES),) or not np.all(np.isfinite(theta)):
            raise ValueError(
                f"theta must be {len(LINEAR_FEATURES)} finite numbers "
                f"({', '.join(LINEAR_FEATURES)}), got {self.theta!r}"
            )
        object.__setattr__(self, "theta", theta)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = linear_features(obs, self.n_slots) @ self.theta
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def factory(self) -> ScorerFactory:
        """The scorer as a factory (deterministic: the seed is unused)."""
        return lambda _seed: self


def zero_scorer(n_slots: int = 16) -> ScorerFactory:
    """Every score 0: Aryl itself."""
    action = np.zeros(n_slots, np.float32)
    return lambda _seed: lambda _obs: action


def random_scorer(n_slots: int = 16) -> ScorerFactory:
    """Uniform scores in ``[-1, 1]``, seeded per episode."""

    def make(seed: int) -> Act:
        rng = np.random.default_rng(seed)
        return lambda _obs: rng.uniform(-1.0, 1.0, n_slots).astype(np.float32)

    return make


def save_linear(path: Path | str, theta: np.ndarray, meta: dict | None = None) -> None:
    """Write a linear scorer (``theta``, the feature names, ``meta``) as JSON, atomically."""
    from aryl_gym.outputs import write_text_atomic

    body = {
        "kind": LINEAR_KIND,
        "features": list(LINEAR_FEATURES),
        "theta": [float(x) for x in np.asarray(theta, dtype=float).reshape(-1)],
        "meta": meta or {},
    }
    write_text_atomic(Path(path), json.dumps(body, indent=2) + "\n")


def load_linear(path: Path | str, n_slots: int = 16) -> LinearScorer:
    """A linear scorer saved by :func:`save_linear`; ``ValueError`` naming the file and
    what is wrong with it."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("kind") != LINEAR_KIND:
        raise ValueError(f"{path}: not a Round-v0 linear scorer (no kind {LINEAR_KIND!r})")
    if body.get("features") != list(LINEAR_FEATURES):
        raise ValueError(
            f"{path}: features {body.get('features')} differ from this version's "
            f"{list(LINEAR_FEATURES)}"
        )
    try:
        return LinearScorer(np.asarray(body["theta"], dtype=float), n_slots)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad theta ({exc})") from None


def sb3_scorer(path: Path) -> ScorerFactory:
    """An SB3 model zip's deterministic ``predict`` (the algorithm is read from the zip)."""
    from importlib.util import find_spec

    if find_spec("stable_baselines3") is None:
        from aryl_gym._install import install_hint

        raise ValueError(f"{path}: loading an SB3 model needs the rl extra: {install_hint('rl')}")
    import stable_baselines3 as sb3

    model = None
    errors = []
    for algo in ("PPO", "SAC", "TD3", "A2C", "DDPG"):  # Box actions: one of these
        try:
            model = getattr(sb3, algo).load(str(path), device="cpu")
            break
        except Exception as exc:  # the wrong class fails in many ways: try the next
            errors.append(f"{algo}: {type(exc).__name__}")
    if model is None:
        raise ValueError(f"{path}: no SB3 algorithm loads it ({'; '.join(errors)})")

    def act(obs: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(obs, deterministic=True)[0], dtype=np.float32)

    return lambda _seed: act


#: The scorers known by name (plus ``oracle``, which :mod:`aryl_gym.agents.round_eval` runs).
NAMED = ("zero", "random")


def load_scorer(spec: str, n_slots: int = 16) -> ScorerFactory:
    """A scorer factory from a name (``zero``, ``random``) or a path: ``*.json`` a saved
    linear scorer, ``*.zip`` an SB3 model. ``ValueError`` for anything else."""
    if spec == "zero":
        return zero_scorer(n_slots)
    if spec == "random":
        return random_scorer(n_slots)
    path = Path(spec)
    if path.suffix not in (".json", ".zip"):
        raise ValueError(
            f"unknown Round-v0 policy {spec!r}: give zero, random, oracle, a linear scorer "
            ".json or an SB3 model .zip"
        )
    if not path.is_file():
        raise FileNotFoundError(f"Round-v0 policy {spec!r}: no such file")
    if path.suffix == ".json":
        return load_linear(path, n_slots).factory()
    return sb3_scorer(path)
