"""aryl_gym.stats against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from aryl_gym.stats import bootstrap_groups, mean_ci, paired_diff, t_quantile


def test_t_quantile_matches_tables_and_scipy():
    # two-sided 95 % quantiles of Student's t from printed tables, by degrees of freedom
    for df, printed in ((1, 12.706), (4, 2.776), (9, 2.262), (30, 2.042), (1000, 1.962)):
        assert t_quantile(df + 1) == pytest.approx(printed, abs=1e-3)
    assert t_quantile(5, 0.99) == pytest.approx(sp.t.ppf(0.995, 4))
    with pytest.raises(ValueError, match="at least 2 values"):
        t_quantile(1)
    with pytest.raises(ValueError, match="confidence"):
        t_quantile(5, 1.0)


def test_mean_ci_by_hand_and_against_scipy():
    m = mean_ci([1.0, 2.0, 3.0])
    # s = 1, n = 3: 4.303 / sqrt(3)
    assert (m.mean, m.n) == (2.0, 3) and m.half_width == pytest.approx(4.302653 / math.sqrt(3))
    assert (m.low, m.high) == pytest.approx((2.0 - m.half_width, 2.0 + m.half_width))
    x = np.array([3.1, 4.7, 2.2, 5.9, 4.4])
    lo, hi = sp.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sp.sem(x))
    got = mean_ci(x)
    assert (got.low, got.high) == pytest.approx((lo, hi))
    # at 5 seeds the t-interval is 2.776 / 1.96 = 1.42 times the normal approximation's
    normal = 1.959964 * x.std(ddof=1) / math.sqrt(len(x))
    assert got.half_width / normal == pytest.approx(1.4164, abs=1e-3)


def test_mean_ci_drops_non_finite_and_handles_small_samples():
    m = mean_ci(iter([1.0, math.nan, 3.0, math.inf]))
    assert (m.mean, m.n) == (2.0, 2) and m.half_width == pytest.approx(12.706205)  # s / sqrt(n) = 1
    one = mean_ci([5.0])
    assert one.mean == 5.0 and one.n == 1 and math.isnan(one.half_width)
    none = mean_ci([math.nan])
    assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.half_width)


def test_paired_diff_matches_ttest_rel():
    a = np.array([10.0, 12.5, 9.0, 14.0, 11.0])
    b = np.array([9.0, 12.0, 9.5, 12.0, 10.0])
    d = paired_diff(a, b)
    assert d.mean == pytest.approx((a - b).mean()) and d.n == 5
    assert d.p_value == pytest.approx(sp.ttest_rel(a, b).pvalue)
    lo, hi = sp.t.interval(0.95, 4, loc=(a - b).mean(), scale=sp.sem(a - b))
    assert (d.low, d.high) == pytest.approx((lo, hi))
    # the paired interval is not the difference of the two unpaired ones
    assert d.half_width < mean_ci(a).half_width


def test_paired_diff_edge_cases():
    d = paired_diff([1.0, math.nan, 3.0, 4.0], [0.0, 1.0, 1.0, math.inf])
    assert d.n == 2 and d.mean == pytest.approx(1.5)  # pairs 2 and 4 are dropped
    assert paired_diff([2.0, 3.0], [2.0, 3.0]).p_value == 1.0  # no difference at all
    assert paired_diff([2.0, 3.0], [1.0, 2.0]).p_value == 0.0  # the same nonzero difference
    assert math.isnan(paired_diff([2.0], [1.0]).p_value)
    with pytest.raises(ValueError, match="one length"):
        paired_diff([1.0, 2.0], [1.0])


def test_bootstrap_groups_by_hand():
    # two groups with means 1 and 3: a resample's mean is 1 (p 1/4), 2 (1/2) or 3 (1/4),
    # so the 95 % percentile interval is [1, 3]; groups count once whatever their size
    iv = bootstrap_groups([[0.0, 2.0, 1.0, 1.0], [3.0]])
    assert (iv.estimate, iv.low, iv.high, iv.n) == (2.0, 1.0, 3.0, 2)
    same = bootstrap_groups([[1.5, 1.5], [1.5], [1.5]])
    assert (same.estimate, same.low, same.high) == (1.5, 1.5, 1.5)
    assert bootstrap_groups([[1.0], [2.0], [4.0]], seed=3) == bootstrap_groups(
        [[1.0], [2.0], [4.0]], seed=3
    )
    single = bootstrap_groups([[1.0, 2.0], [math.nan]])
    assert single.n == 1 and single.estimate == 1.5 and math.isnan(single.low)
    assert bootstrap_groups([]).n == 0
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_groups([[1.0], [2.0]], n_resamples=0)


def test_bootstrap_groups_agrees_with_a_plain_resampling():
    rng = np.random.default_rng(1)
    groups = [rng.normal(loc, 1.0, size=5) for loc in (0.0, 0.5, 1.0, 2.0, 4.0, 1.5)]
    means = np.array([g.mean() for g in groups])
    picks = rng.integers(0, len(means), size=(40_000, len(means)))
    lo, hi = np.percentile(means[picks].mean(axis=1), [2.5, 97.5])
    iv = bootstrap_groups(groups, n_resamples=40_000)
    assert iv.estimate == pytest.approx(means.mean())
    assert (iv.low, iv.high) == pytest.approx((lo, hi), abs=0.05)
    assert iv.low < iv.estimate < iv.high
