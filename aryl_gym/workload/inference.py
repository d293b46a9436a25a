"""Inference-pool demand: how many inference servers are needed over time (numpy + stdlib).

A *curve* is a weekly rate shape at 10-minute resolution: an average-day profile of 144
bins times seven daily factors (Monday first; t = 0 is Monday 00:00), repeated over any
horizon. Utilisation is proportional to the rate, scaled so the curve's highest bin maps
to ``peak_utilisation`` (or, with ``trough_utilisation``, linearly so that its lowest bin
maps to that value); servers needed = ``ceil(n_servers * utilisation)``.

The real shapes come from ``aryl_gym/data/inference_curves.json``, written by
``scripts/derive_inference_curves.py`` from the Alibaba ServeGen and Stable-Diffusion
traces (sources per curve in that file and in ``docs/workload.md``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from aryl_gym.sim.limits import check_at_most

__all__ = ["CURVES", "InferenceConfig", "build_demand", "peak_to_trough", "utilisation_week"]

BIN_S = 600.0
BINS_PER_DAY = 144

#: Known curves: name -> one-line description.
CURVES: dict[str, str] = {
    "flat": "constant demand at peak_utilisation (no diurnal variation)",
    "diurnal": "synthetic: evening peak (20-21 h), night trough (04-06 h, ~24 % of peak), "
    "weekends at 0.83x weekdays",
    "servegen-llm-large": "real: Alibaba Bailian LLM serving, large model, total request rate "
    "(ServeGen, 14 days); mild diurnal swing, peak ~19 h",
    "servegen-llm-small": "real: Alibaba Bailian LLM serving, small model, total request rate "
    "(ServeGen, 14 days); peak 20-21 h, trough ~04 h",
    "sd-requests": "real: Alibaba Stable-Diffusion requests per 10 min (GenAI trace, 2 weeks, "
    "shifted clock); very peaky, near-zero hours every day",
}

# Synthetic "diurnal" shape: (hour, relative rate) key points, linear in between, periodic.
_DIURNAL_POINTS = (
    (0, 0.50),
    (2, 0.33),
    (4, 0.24),
    (6, 0.24),
    (8, 0.40),
    (10, 0.62),
    (12, 0.70),
    (14, 0.68),
    (16, 0.72),
    (18, 0.85),
    (20, 1.00),
    (21, 1.00),
    (22, 0.85),
    (24, 0.50),
)
_DIURNAL_WEEK = (1.05, 1.05, 1.05, 1.05, 1.05, 0.875, 0.875)


@dataclass(frozen=True)
class InferenceConfig:
    """Parameters of the inference demand series (see the module docstring)."""

    curve: str = "diurnal"
    peak_utilisation: float = 0.9
    trough_utilisation: float | None = None
    step_s: float = 600.0
    noise: float = 0.0
    reserve_servers: int = 0

    def __post_init__(self) -> None:
        if self.curve not in CURVES:
            raise KeyError(f"unknown inference curve {self.curve!r}; known: {', '.join(CURVES)}")
        if not 0.0 < self.peak_utilisation <= 1.0:
            raise ValueError(
                f"InferenceConfig.peak_utilisation must lie in (0, 1], got {self.peak_utilisation!r}"
            )
        if (
            self.trough_utilisation is not None
            and not 0.0 <= self.trough_utilisation <= self.peak_utilisation
        ):
            raise ValueError(
                "InferenceConfig.trough_utilisation must lie in [0, peak_utilisation], "
                f"got {self.trough_utilisation!r}"
            )
        if not (math.isfinite(self.step_s) and self.step_s > 0):
            raise ValueError(
                f"InferenceConfig.step_s must be a finite number > 0, got {self.step_s!r}"
            )
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"InferenceConfig.noise must be >= 0, got {self.noise!r}")
        if int(self.reserve_servers) != self.reserve_servers or self.reserve_servers < 0:
            raise ValueError(
                f"InferenceConfig.reserve_servers must be an integer >= 0, got {self.reserve_servers!r}"
            )


@lru_cache(maxsize=1)
def _real_curves() -> dict[str, dict]:
    text = resources.files("aryl_gym").joinpath("data/inference_curves.json").read_text()
    return json.loads(text)["curves"]


def _rate_week(name: str) -> np.ndarray:
    """Relative rate of the curve over one week, 7 * 144 bins from Monday 00:00."""
    if name not in CURVES:
        raise KeyError(f"unknown inference curve {name!r}; known: {', '.join(CURVES)}")
    if name == "flat":
        return np.ones(7 * BINS_PER_DAY)
    if name == "diurnal":
        hours, values = zip(*_DIURNAL_POINTS, strict=False)
        day = np.interp((np.arange(BINS_PER_DAY) + 0.5) * BIN_S / 3600.0, hours, values)
        week = np.asarray(_DIURNAL_WEEK)
    else:
        c = _real_curves()[name]
        day, week = np.asarray(c["day"], float), np.asarray(c["week"], float)
    return (week[:, None] * day[None, :]).ravel()


def utilisation_week(cfg: InferenceConfig) -> np.ndarray:
    """Share of inference servers needed in each 10-minute bin of the week (no noise)."""
    r = _rate_week(cfg.curve)
    lo, hi = float(r.min()), float(r.max())
    peak = cfg.peak_utilisation
    if hi - lo <= 1e-12 * hi:
        return np.full(r.shape, peak)
    if cfg.trough_utilisation is None:
        return peak * r / hi
    trough = cfg.trough_utilisation
    return trough + (peak - trough) * (r - lo) / (hi - lo)


def peak_to_trough(cfg: InferenceConfig) -> float:
    """Highest over lowest 10-minute bin of the curve's average day (``inf`` if it reaches 0)."""
    day = utilisation_week(cfg).reshape(7, BINS_PER_DAY).mean(axis=0)
    return math.inf if day.min() <= 0 else float(day.max() / day.min())


def build_demand(
    cfg: InferenceConfig, n_servers: int, horizon_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inference servers needed, one value per ``step_s`` from t = 0 over ``horizon_s``.

    Returns ``(times, needed)``: ``times`` float64, strictly increasing from 0.0;
    ``needed`` int64 in ``[0, n_servers - reserve_servers]``. A step's value covers
    ``[t, t + step_s)`` and is the highest 10-minute bin in it (so demand is met within
    the step). ``noise`` multiplies each step by ``exp(noise * z - noise**2 / 2)``,
    ``z ~ N(0, 1)`` from ``default_rng(seed)`` (mean-preserving), before rounding up.

    Memory is two arrays of ``horizon_s / step_s`` values: ``ValueError`` when that, or the
    number of 10-minute bins the horizon covers, exceeds ``aryl_gym.sim.limits.MAX_DEMAND_STEPS``.
    """
    if int(n_servers) != n_servers or n_servers < 0:
        raise ValueError(f"build_demand: n_servers must be an integer >= 0, got {n_servers!r}")
    if cfg.reserve_servers > n_servers:
        raise ValueError(
            f"build_demand: reserve_servers={cfg.reserve_servers} exceeds n_servers={n_servers}"
        )
    if not (math.isfinite(horizon_s) and horizon_s >= 0):
        raise ValueError(f"build_demand: horizon_s must be a finite number >= 0, got {horizon_s!r}")
    n_steps = max(1, math.ceil(horizon_s / cfg.step_s))
    n_bins = math.ceil(n_steps * cfg.step_s / BIN_S) + 1
    hint = f"horizon_s={horizon_s:.6g}, step_s={cfg.step_s:g}"
    check_at_most("build_demand: the number of demand steps", n_steps, "MAX_DEMAND_STEPS", hint)
    check_at_most("build_demand: the number of 10-minute bins", n_bins, "MAX_DEMAND_STEPS", hint)
    times = np.arange(n_steps, dtype=np.float64) * cfg.step_s
    first = np.floor(times / BIN_S).astype(np.int64)
    last = np.maximum(first + 1, np.ceil((times + cfg.step_s) / BIN_S).astype(np.int64))
    week = utilisation_week(cfg)
    bins = np.arange(int(last[-1]))
    u = np.maximum.reduceat(week[bins % week.size], first)
    if cfg.noise > 0:
        z = np.random.default_rng(seed).standard_normal(n_steps)
        u = u * np.exp(cfg.noise * z - cfg.noise**2 / 2.0)
    needed = np.ceil(n_servers * np.clip(u, 0.0, 1.0) - 1e-9).astype(np.int64)
    return times, np.clip(needed, 0, n_servers - cfg.reserve_servers)
