"""Scaling profiles: training throughput as a function of GPU count and placement.

A :class:`ScalingProfile` answers two questions for the engine:

* ``speedup(n)``: throughput on ``n`` GPUs relative to one GPU, with the GPUs on the
  fewest servers possible: a power law ``n ** gamma`` with ``0 < gamma <= 1``. It is 0
  at 0, 1 at 1, increasing and concave, so on integers its marginal gains are
  non-increasing: the property the greedy multiple-choice-knapsack allocator relies
  on. (A Universal-Scalability-Law curve was tried first and fitted the measurements
  worse: anchored at the measured 1-GPU point it saturates far below the measured
  64-GPU throughput; see docs/scaling-profiles.md.)
* ``placement_factor(extra_servers)``: multiplier on throughput when the job spans
  ``extra_servers`` more servers than ``ceil(n / gpus_per_server)``.

The measured profiles are fitted by ``scripts/fit_scaling_profiles.py`` to real
measurements published with Pollux (Qiao et al., OSDI '21): GitHub petuum/adaptdl,
branch osdi21-artifact, commit c793c7089bd307462686339d29707925c461f9a9, folder
``simulator/traces/<model>/`` (Apache-2.0), measured on NVIDIA T4 GPUs, 4 GPUs per
node. Only fitted numbers are kept here; method, errors and the 4-vs-8-GPU-server
question are in ``docs/scaling-profiles.md``.

Placement model (fitted, see the doc): in those measurements, spreading a job that fits
on one node over two or more nodes costs a large, roughly constant share of its
throughput (the step from intra-node to network all-reduce), while spreading a job
that already spans nodes over *more* nodes costs little or nothing. Hence::

    placement_factor(0)                      = 1
    placement_factor(k), job fits 1 server   = split_factor * extra_server_factor ** (k - 1)
    placement_factor(k), job needs m >= 2    = extra_server_factor ** k

``min_servers`` (the ``m`` above, ``ceil(n / gpus_per_server)``) defaults to 1, the
common case; pass it for jobs larger than one server.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

__all__ = [
    "DEFAULT_PROFILE_MIX",
    "PROFILES",
    "ScalingProfile",
    "get_profile",
]


@dataclass(frozen=True)
class ScalingProfile:
    """Throughput model of one kind of training job (see the module docstring).

    ``gamma`` is the scaling exponent (1.0: linear); ``split_factor`` and
    ``extra_server_factor`` the placement model.
    The remaining fields are documentation and take no part in equality.
    """

    name: str
    gamma: float = 1.0
    split_factor: float = 1.0
    extra_server_factor: float = 1.0
    #: whether the model and its optimiser state fit a lent (T4-class, 16 GB) GPU's memory
    fits_lent_gpu: bool = True
    local_bsz: int | None = field(default=None, compare=False)
    fit_rms_log_error: float | None = field(default=None, compare=False)
    placement_rms_log_error: float | None = field(default=None, compare=False)
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"profile {self.name!r}: gamma must be in (0, 1], got {self.gamma}")
        for f in ("split_factor", "extra_server_factor"):
            v = getattr(self, f)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"profile {self.name!r}: {f} must be in (0, 1], got {v}")

    def speedup(self, n_gpus: int | np.ndarray) -> float | np.ndarray:
        """Throughput on ``n_gpus`` GPUs relative to 1 GPU, compact placement.

        ``speedup(0) == 0``, ``speedup(1) == 1``; non-decreasing and concave on integers.
        Accepts an int or an array of non-negative ints (returns float / float64 array).
        """
        n = np.asarray(n_gpus, dtype=np.float64)
        if np.any(n < 0):
            raise ValueError(f"profile {self.name!r}: negative GPU count in {n_gpus!r}")
        out = n if self.gamma == 1.0 else np.power(n, self.gamma)
        return float(out) if out.ndim == 0 else out

    def placement_factor(self, extra_servers: int, min_servers: int = 1) -> float:
        """Throughput multiplier in (0, 1] for a job on ``extra_servers`` more servers than
        the minimum ``min_servers = ceil(n / gpus_per_server)``; 1.0 at 0, non-increasing.
        """
        k = int(extra_servers)
        if k < 0:
            raise ValueError(f"extra_servers must be >= 0, got {extra_servers}")
        if k == 0:
            return 1.0
        if min_servers <= 1:
            return self.split_factor * self.extra_server_factor ** (k - 1)
        return self.extra_server_factor**k

    def speedup_table(self, max_gpus: int) -> np.ndarray:
        """``speedup(n)`` for ``n = 0..max_gpus`` as a read-only float64 array (cached)."""
        return _table(self, int(max_gpus))


@lru_cache(maxsize=256)
def _table(profile: ScalingProfile, max_gpus: int) -> np.ndarray:
    if max_gpus < 0:
        raise ValueError(f"max_gpus must be >= 0, got {max_gpus}")
    t = np.asarray(profile.speedup(np.arange(max_gpus + 1)), dtype=np.float64)
    t.setflags(write=False)
    return t


_SRC = (
    "fitted by scripts/fit_scaling_profiles.py to petuum/adaptdl osdi21-artifact "
    "c793c70 simulator/traces/{m}/ (Apache-2.0; T4 GPUs, 4 per node), local batch {b}"
)


def _measured(
    name: str, gamma: float, split: float, extra: float, bsz: int, rms: float, pl_rms: float
) -> ScalingProfile:
    return ScalingProfile(
        name=name,
        gamma=gamma,
        split_factor=split,
        extra_server_factor=extra,
        local_bsz=bsz,
        fit_rms_log_error=rms,
        placement_rms_log_error=pl_rms,
        description=_SRC.format(m=name, b=bsz),
    )


# Numbers printed by `python scripts/fit_scaling_profiles.py` (4 significant digits).
# Source data: petuum/adaptdl, branch osdi21-artifact, commit
# c793c7089bd307462686339d29707925c461f9a9, simulator/traces/<model>/ (Apache-2.0),
# measured on T4 GPUs, 4 GPUs per node. rms: RMS of log(measured / fitted speedup) over
# the 20 compact GPU counts; placement rms: RMS of log(measured / fitted placement
# factor) over the 102 spread placements (see docs/scaling-profiles.md).
PROFILES: dict[str, ScalingProfile] = {
    "linear": ScalingProfile(name="linear", description="ideal: speedup(n) = n, no placement cost"),
    #          name           gamma   split   extra  local_bsz  rms   placement rms
    "bert": _measured("bert", 0.7406, 0.5775, 1.0, 12, 0.248, 0.264),
    "cifar10": _measured("cifar10", 0.833, 0.8698, 1.0, 182, 0.131, 0.134),
    "deepspeech2": _measured("deepspeech2", 0.7361, 0.8131, 1.0, 14, 0.158, 0.192),
    "imagenet": _measured("imagenet", 0.9554, 1.0, 1.0, 200, 0.023, 0.038),
    "ncf": _measured("ncf", 0.4799, 0.4869, 1.0, 513, 0.281, 0.226),
    "yolov3": _measured("yolov3", 0.5106, 0.4882, 1.0, 8, 0.345, 0.291),
}

#: Suffix of a profile's large-model variant: the same fitted scaling, but the model does
#: not fit a lent T4-class GPU's 16 GB (``fits_lent_gpu=False``). The six measured models
#: all fit (Pollux measured them on T4s); the variants stand for larger models of the
#: same family (e.g. BERT-large, GPT-2-class language models), whose share of a workload
#: is ``WorkloadConfig.large_model_share`` (swept in docs/reproducing-aryl.md).
BIG_SUFFIX = "-big"
PROFILES.update(
    {
        f"{name}{BIG_SUFFIX}": replace(
            prof,
            name=f"{name}{BIG_SUFFIX}",
            fits_lent_gpu=False,
            description=f"{name}'s scaling; model too large for a 16 GB lent GPU",
        )
        for name, prof in list(PROFILES.items())
        if name != "linear"
    }
)

#: Share of jobs per measured model, from the Pollux paper's workload (Table 1, "fraction
#: of jobs"): small 72 % (cifar10, ncf), medium 20 % (bert, deepspeech2), large 6 %
#: (yolov3), extra-large 2 % (imagenet). See docs/scaling-profiles.md.
DEFAULT_PROFILE_MIX: dict[str, float] = {
    "bert": 0.10,
    "cifar10": 0.36,
    "deepspeech2": 0.10,
    "imagenet": 0.02,
    "ncf": 0.36,
    "yolov3": 0.06,
}


def get_profile(name: str) -> ScalingProfile:
    """The profile called ``name``; KeyError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(
            f"unknown scaling profile {name!r}; known profiles: {', '.join(sorted(PROFILES))}"
        ) from None
