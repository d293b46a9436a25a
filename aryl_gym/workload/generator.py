"""Synthetic training workload, calibrated to public traces (numpy + stdlib only).

Model (defaults and their sources in ``docs/workload.md``; ``scripts/calibrate_workload.py
--fit`` re-derives every calibrated default from ``../shared/traces``):

- **Arrivals**: non-homogeneous Poisson process. The rate in hour ``h`` after t = 0
  (Monday 00:00) is ``jobs_per_day / 24 * diurnal[h % 24] * weekly[(h // 24) % 7]``
  (both shapes are normalised to mean 1, so ``jobs_per_day`` is the mean daily count).
  Per-hour Poisson counts, times uniform within the hour, sorted.
- **GPU demand**: i.i.d. draws from ``gpu_values`` with ``gpu_probs``.
- **Duration** (seconds, at the requested GPUs): a lognormal mixture. With probability
  ``short_share[g]`` a job is *short* (one lognormal, ``duration_short``, shared by all
  sizes: failed and debugging runs); otherwise it draws from the *main* lognormal of its
  GPU count (``median_s[g]``, ``sigma[g]``), whose median grows with the GPU count.
  Clipped to ``[duration_min_s, duration_max_s]``.
- **Elastic**: each job elastic with probability ``elastic_share``; an elastic job of ``g``
  GPUs runs on ``min_gpus = max(1, floor(g x elastic_min_fraction))`` to ``max_gpus =
  max(g, floor(g x elastic_max_factor))`` GPUs (defaults 0.5 and 2: docs/model.md's
  ``max(1, g // 2)`` and ``2 g``).
- **Profile**: i.i.d. from ``profile_mix`` (default ``profiles.DEFAULT_PROFILE_MIX``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from aryl_gym.workload.schema import JobTable, check_elastic_range, elastic_range

__all__ = ["WorkloadConfig", "generate_jobs", "mean_gpu_hours_per_job", "offered_gpus"]

#: SenseTime Venus (S-Lab-System-Group/Lucid, simulation/data/Venus/cluster_throughput.csv):
#: GPU-job submissions per hour of the average day, 2020-04-01..09-28, divided by the mean.
VENUS_DIURNAL: tuple[float, ...] = (
    0.897,
    0.658,
    0.6,
    0.384,
    0.268,
    0.205,
    0.187,
    0.224,
    0.374,
    0.796,
    1.295,
    1.474,
    1.164,
    1.299,
    1.559,
    1.656,
    1.734,
    1.733,
    1.282,
    1.313,
    1.345,
    1.364,
    1.149,
    1.038,
)
#: Same trace: mean GPU-job submissions per weekday Mon..Sun, divided by the mean.
VENUS_WEEKLY: tuple[float, ...] = (1.022, 1.104, 1.274, 1.201, 0.947, 0.68, 0.771)
#: Microsoft ITP cluster04 (microsoft/elasticflow-traces): share of jobs per GPU count.
ITP_GPU_PROBS: tuple[float, ...] = (0.7545, 0.0079, 0.0337, 0.1759, 0.0115, 0.0161, 0.0004)
#: ITP cluster04 EM fit: short component (median_s, sigma).
ITP_DURATION_SHORT: tuple[float, float] = (1070.0, 0.243)
#: ITP cluster04 EM fit, one row per GPU value 1..64: (short_share, main median_s, main sigma).
ITP_DURATION_BY_GPUS: tuple[tuple[float, float, float], ...] = (
    (0.137, 9300.0, 0.582),  # 1 GPU
    (0.864, 21970.0, 0.864),  # 2 GPUs (125 jobs, mostly ~12-minute runs)
    (0.0, 6400.0, 0.917),  # 4
    (0.04, 22210.0, 1.243),  # 8
    (0.233, 65330.0, 1.411),  # 16
    (0.06, 60570.0, 1.403),  # 32
    (0.0, 207010.0, 0.909),  # 64 (6 jobs)
)

_PROFILE_NAMES = ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")
_TOL = 1e-6


@dataclass(frozen=True)
class WorkloadConfig:
    """Parameters of the synthetic training workload (see the module docstring)."""

    days: float = 15.0
    jobs_per_day: float = 3400.0
    diurnal: tuple[float, ...] = VENUS_DIURNAL
    weekly: tuple[float, ...] = VENUS_WEEKLY
    gpu_values: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    gpu_probs: tuple[float, ...] = ITP_GPU_PROBS
    duration_short: tuple[float, float] = ITP_DURATION_SHORT
    duration_by_gpus: tuple[tuple[float, float, float], ...] = ITP_DURATION_BY_GPUS
    duration_min_s: float = 60.0
    duration_max_s: float = 7 * 86400.0
    elastic_share: float = 0.5
    #: an elastic job of ``g`` GPUs may shrink to ``max(1, floor(g x elastic_min_fraction))``
    elastic_min_fraction: float = 0.5
    #: ... and grow to ``max(g, floor(g x elastic_max_factor))``
    elastic_max_factor: float = 2.0
    profile_mix: tuple[tuple[str, float], ...] | None = None
    #: share of jobs whose model does not fit a lent (T4-class, 16 GB) GPU: they get the
    #: ``-big`` variant of their profile (same scaling, ``fits_lent_gpu=False``)
    large_model_share: float = 0.0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"WorkloadConfig.{name}: {why}")

        if not (math.isfinite(self.days) and self.days > 0):
            raise bad("days", f"must be a finite number > 0, got {self.days!r}")
        if not (math.isfinite(self.jobs_per_day) and self.jobs_per_day >= 0):
            raise bad("jobs_per_day", f"must be a finite rate >= 0, got {self.jobs_per_day!r}")
        for name, n in (("diurnal", 24), ("weekly", 7)):
            v = getattr(self, name)
            if len(v) != n:
                raise bad(name, f"needs {n} values, got {len(v)}")
            if any(not math.isfinite(x) or x < 0 for x in v) or sum(v) <= 0:
                raise bad(name, "values must be finite, >= 0 and not all zero")
        if len(self.gpu_values) == 0 or any(int(g) != g or g < 1 for g in self.gpu_values):
            raise bad("gpu_values", f"must be integers >= 1, got {self.gpu_values!r}")
        if len(set(self.gpu_values)) != len(self.gpu_values):
            raise bad("gpu_values", "values must be distinct")
        _check_probs(bad, "gpu_probs", self.gpu_probs, len(self.gpu_values), "gpu_values")
        med, sig = self.duration_short
        if not (med > 0 and sig >= 0):
            raise bad(
                "duration_short",
                f"(median_s > 0, sigma >= 0) expected, got {self.duration_short!r}",
            )
        if len(self.duration_by_gpus) != len(self.gpu_values):
            raise bad(
                "duration_by_gpus",
                f"needs one row per gpu_values entry ({len(self.gpu_values)}), "
                f"got {len(self.duration_by_gpus)}",
            )
        for row in self.duration_by_gpus:
            share, med, sig = row
            if not (0.0 <= share <= 1.0 and med > 0 and sig >= 0):
                raise bad(
                    "duration_by_gpus",
                    f"row {row!r}: want (share in [0,1], median_s > 0, sigma >= 0)",
                )
        if not (0 < self.duration_min_s <= self.duration_max_s):
            raise bad("duration_min_s", "need 0 < duration_min_s <= duration_max_s")
        if not 0.0 <= self.elastic_share <= 1.0:
            raise bad("elastic_share", f"must lie in [0, 1], got {self.elastic_share!r}")
        check_elastic_range("WorkloadConfig", self.elastic_min_fraction, self.elastic_max_factor)
        if not 0.0 <= self.large_model_share <= 1.0:
            raise bad("large_model_share", f"must lie in [0, 1], got {self.large_model_share!r}")
        if self.profile_mix is not None:
            if len(self.profile_mix) == 0:
                raise bad("profile_mix", "must name at least one profile (or be None)")
            _check_probs(bad, "profile_mix", [s for _, s in self.profile_mix], None, None)

    def scaled(self, load: float) -> WorkloadConfig:
        """The same workload shape with ``jobs_per_day`` multiplied by ``load``."""
        if not (math.isfinite(load) and load >= 0):
            raise ValueError(
                f"WorkloadConfig.scaled: load must be a finite number >= 0, got {load!r}"
            )
        return replace(self, jobs_per_day=self.jobs_per_day * load)


def _check_probs(bad, name: str, probs, n: int | None, other: str | None) -> None:
    if n is not None and len(probs) != n:
        raise bad(name, f"has {len(probs)} entries but {other} has {n}")
    if any(not math.isfinite(p) or p < 0 or p > 1 for p in probs):
        raise bad(name, f"shares must lie in [0, 1], got {tuple(probs)!r}")
    if abs(sum(probs) - 1.0) > _TOL:
        raise bad(name, f"shares must sum to 1, got {sum(probs):.6f}")


def _profile_mix(cfg: WorkloadConfig) -> tuple[list[str], np.ndarray]:
    if cfg.profile_mix is not None:
        names = [n for n, _ in cfg.profile_mix]
        p = np.array([s for _, s in cfg.profile_mix], dtype=float)
    else:
        try:
            from aryl_gym.sim.profiles import DEFAULT_PROFILE_MIX

            mix = dict(DEFAULT_PROFILE_MIX)
        except ImportError:
            mix = {n: 1.0 for n in _PROFILE_NAMES}
        names = list(mix)
        p = np.array([mix[n] for n in names], dtype=float)
    return names, p / p.sum()


def _hourly_rates(cfg: WorkloadConfig) -> tuple[np.ndarray, np.ndarray]:
    """(start of each hour in s, expected arrivals in it), truncated at the horizon."""
    horizon = cfg.days * 86400.0
    n_hours = int(math.ceil(horizon / 3600.0))
    hours = np.arange(n_hours)
    diurnal = np.asarray(cfg.diurnal, float)
    weekly = np.asarray(cfg.weekly, float)
    shape = (diurnal / diurnal.mean())[hours % 24] * (weekly / weekly.mean())[(hours // 24) % 7]
    starts = hours * 3600.0
    frac = np.clip((horizon - starts) / 3600.0, 0.0, 1.0)
    return starts, cfg.jobs_per_day / 24.0 * shape * frac


def generate_jobs(cfg: WorkloadConfig, seed: int) -> JobTable:
    """Draw a synthetic workload; the same ``(cfg, seed)`` always gives the same table."""
    # one stream per column: a new column (the 6th) never shifts the others' numbers
    r_arr, r_gpu, r_dur, r_el, r_prof, r_big = np.random.default_rng(seed).spawn(6)
    starts, rates = _hourly_rates(cfg)
    counts = r_arr.poisson(rates)
    hour_len = np.minimum(3600.0, cfg.days * 86400.0 - starts)
    submit = np.repeat(starts, counts) + r_arr.random(int(counts.sum())) * np.repeat(
        hour_len, counts
    )
    submit.sort()
    n = submit.size

    values = np.asarray(cfg.gpu_values, dtype=np.int64)
    probs = np.asarray(cfg.gpu_probs, float)
    cls = r_gpu.choice(values.size, size=n, p=probs / probs.sum())
    gpus = values[cls]

    table = np.asarray(cfg.duration_by_gpus, float)
    short = r_dur.random(n) < table[cls, 0]
    z = r_dur.standard_normal(n)
    s_med, s_sig = cfg.duration_short
    log_d = np.where(short, math.log(s_med) + s_sig * z, np.log(table[cls, 1]) + table[cls, 2] * z)
    duration = np.clip(np.exp(log_d), cfg.duration_min_s, cfg.duration_max_s)

    elastic = r_el.random(n) < cfg.elastic_share
    names, p = _profile_mix(cfg)
    profile = np.asarray(names, dtype=object)[r_prof.choice(len(names), size=n, p=p)]
    if cfg.large_model_share > 0:
        from aryl_gym.sim.profiles import BIG_SUFFIX

        big = r_big.random(n) < cfg.large_model_share
        profile[big] = [f"{name}{BIG_SUFFIX}" for name in profile[big]]
    low, high = elastic_range(gpus, elastic, cfg.elastic_min_fraction, cfg.elastic_max_factor)
    return JobTable.from_columns(
        submit_time=submit,
        gpus=gpus,
        duration=duration,
        elastic=elastic,
        min_gpus=low,
        max_gpus=high,
        profile=profile,
        source=f"synthetic(seed={seed})",
    )


def _clipped_lognormal_mean(median: float, sigma: float, lo: float, hi: float) -> float:
    """E[clip(X, lo, hi)] for X lognormal with the given median and log-sigma."""
    mu = math.log(median)
    if sigma == 0:
        return min(max(median, lo), hi)

    def phi(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    a, b = (math.log(lo) - mu) / sigma, (math.log(hi) - mu) / sigma
    middle = math.exp(mu + sigma**2 / 2) * (phi(b - sigma) - phi(a - sigma))
    return lo * phi(a) + middle + hi * (1.0 - phi(b))


def mean_gpu_hours_per_job(cfg: WorkloadConfig) -> float:
    """Expected requested GPUs x duration of one job, in GPU-hours (exact, clipping included)."""
    s_med, s_sig = cfg.duration_short
    lo, hi = cfg.duration_min_s, cfg.duration_max_s
    short_mean = _clipped_lognormal_mean(s_med, s_sig, lo, hi)
    total = 0.0
    for g, p, (share, med, sig) in zip(
        cfg.gpu_values, cfg.gpu_probs, cfg.duration_by_gpus, strict=False
    ):
        mean_d = share * short_mean + (1 - share) * _clipped_lognormal_mean(med, sig, lo, hi)
        total += p * g * mean_d
    return total / 3600.0


def offered_gpus(cfg: WorkloadConfig) -> float:
    """Mean number of GPUs the workload asks for (arrival rate x GPU-hours per job).

    A training pool of this many GPUs would be fully busy on average with every job at
    its requested size; size pools relative to it (e.g. ``offered_gpus(cfg) / 0.8``).
    """
    return cfg.jobs_per_day / 24.0 * mean_gpu_hours_per_job(cfg)
