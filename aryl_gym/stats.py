"""The statistics of every table: means with Student-t intervals, paired differences with a
paired t-test, and a bootstrap interval over groups (workloads).

All functions ignore non-finite values (NaN, +-inf): a run without finished jobs has a
NaN average JCT and does not count. A single value has a mean but no interval (its
half-width and p-value are NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _sp

#: The confidence level of every interval the reports print.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class MeanCI:
    """A mean with its confidence interval ``mean ± half_width``.

    Attributes:
        mean: the mean of the finite values (NaN when there are none).
        half_width: half the width of the interval (NaN with fewer than two values).
        n: how many finite values there were.
    """

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        """The lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """The upper end of the interval."""
        return self.mean + self.half_width


@dataclass(frozen=True)
class PairedDiff(MeanCI):
    """The mean of paired differences ``a - b`` with its t-interval and the two-sided
    p-value of the paired t-test (H0: the mean difference is 0)."""

    p_value: float = math.nan


@dataclass(frozen=True)
class Interval:
    """A point estimate with an interval ``[low, high]`` that need not be symmetric.

    Attributes:
        estimate: the statistic on the data.
        low: the interval's lower end (NaN when it cannot be computed).
        high: the interval's upper end.
        n: the number of resampled units (groups).
    """

    estimate: float
    low: float
    high: float
    n: int


def finite(values: Iterable[float]) -> np.ndarray:
    """The finite values of ``values`` as a float array."""
    a = np.fromiter(values, dtype=float)
    return a[np.isfinite(a)]


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided ``confidence`` quantile of Student's t for a sample of ``n`` values
    (``n - 1`` degrees of freedom)."""
    _check_confidence(confidence)
    if n < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {n}")
    return float(_sp.t.ppf(0.5 + confidence / 2, n - 1))


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> MeanCI:
    """The mean of the finite ``values`` and the half-width of its Student-t interval
    (``t * s / sqrt(n)``, ``s`` the sample standard deviation)."""
    a = finite(values)
    n = int(a.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, 0)
    m = float(a.mean())
    if n < 2:
        return MeanCI(m, math.nan, n)
    return MeanCI(m, t_quantile(n, confidence) * float(a.std(ddof=1)) / math.sqrt(n), n)


def paired_diff(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> PairedDiff:
    """The paired differences ``a[i] - b[i]`` (pairs with a non-finite side dropped): their
    mean, t-interval and the paired t-test's two-sided p-value.

    ``a`` and ``b`` must have the same length, pair ``i`` being the same workload (seed)
    under two policies. When every difference is the same the test is degenerate: the
    p-value is 1 for a zero difference and 0 for any other.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"paired values need two 1-d sequences of one length, got {x.shape} and {y.shape}"
        )
    d = (x - y)[np.isfinite(x) & np.isfinite(y)]
    ci = mean_ci(d, confidence)
    if ci.n < 2:
        p = math.nan
    elif np.all(d == d[0]):
        p = 1.0 if d[0] == 0 else 0.0
    else:
        p = float(_sp.ttest_1samp(d, 0.0).pvalue)
    return PairedDiff(ci.mean, ci.half_width, ci.n, p)


def bootstrap_groups(
    groups: Iterable[Iterable[float]],
    confidence: float = CONFIDENCE,
    *,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Interval:
    """A percentile bootstrap interval of the mean over groups, resampling whole groups.

    Each group (a workload, say, holding the per-seed paired differences of two policies
    on it) counts once, through the mean of its finite values; groups without any are
    dropped. The estimate is the mean of the group means; the interval comes from
    resampling the groups with replacement (``scipy.stats.bootstrap``, percentile method,
    seeded by ``seed`` so that a report is reproducible). With fewer than two groups the
    interval is NaN.
    """
    _check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    means = np.array([a.mean() for a in map(finite, groups) if a.size], dtype=float)
    k = int(means.size)
    if k == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    estimate = float(means.mean())
    if k < 2:
        return Interval(estimate, math.nan, math.nan, k)
    res = _sp.bootstrap(
        (means,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return Interval(estimate, float(ci.low), float(ci.high), k)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


__all__ = [
    "CONFIDENCE",
    "Interval",
    "MeanCI",
    "PairedDiff",
    "bootstrap_groups",
    "finite",
    "mean_ci",
    "paired_diff",
    "t_quantile",
]
