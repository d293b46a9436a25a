"""Shortcuts in Aryl's hot paths give the answers of the paths they skip: the plain-Python
value rows of a few running candidates and of starts equal the numpy rows float for float,
and the
reclaim's servers-without-workers answer is the full greedy's at every reclaim."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from aryl_gym.baselines import aryl, make_policy, value_rows
from aryl_gym.baselines import reclaim as reclaim_rules
from hypothesis import given, settings
from hypothesis import strategies as st

from aryl_gym.scenarios import get_scenario
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import RECLAIM
from aryl_gym.simulate import make_engine

rates = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


def _numpy_rows(remaining: list[float], curves: list[list[float]], guard: float):
    """The numpy path of ArylPolicy._extras, row by row (the oracle)."""
    rows = []
    for i, (r, curve) in enumerate(zip(remaining, curves, strict=True)):
        values = r / np.asarray(curve[:1]) - r / np.asarray(curve)
        best = values.max()
        if len(curve) > 1 and best > guard:
            k = int(np.flatnonzero(values == best)[0]) if best > 0 else 0
            rows.append((i, values.tolist(), k))
    return rows


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=1e7, allow_nan=False),
            st.lists(rates, min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=aryl._FEW_ROWS,
    ),
    st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
)
def test_few_rows_equal_the_numpy_rows(candidates, guard):
    remaining = [r for r, _ in candidates]
    curves = [c for _, c in candidates]
    grow = [(None, r, None, None) for r in remaining]
    assert value_rows.few_rows(grow, curves, guard) == _numpy_rows(remaining, curves, guard)


def test_few_rows_leave_zero_rates_to_numpy():
    assert value_rows.few_rows([(None, 10.0, None, None)], [[1.0, 0.0]], 0.0) is None


def _numpy_start_row(r: float, curve: list[float]):
    """The numpy expression a start's row was computed with (the oracle)."""
    values = r / curve[0] - r / np.asarray(curve)
    return (values.tolist(), int(values.argmax())) if values.max() > 0 else None


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=1.0, max_value=1e7, allow_nan=False),
    rates,
    st.lists(st.one_of(rates, st.just(0.0)), min_size=1, max_size=12),
)
def test_start_rows_equal_the_numpy_rows(remaining, first, rest):
    curve = [first, *rest]  # a start's rate at its base is never 0 (step 2 checks it)
    with np.errstate(divide="ignore"):  # a rate of 0 later in the row: numpy's infinities
        got = value_rows.start_row(remaining, curve)
        want = _numpy_start_row(remaining, curve)
    if got is not None:
        got = (list(map(float, got[0])), got[1])
    assert got == want


def test_reclaim_of_servers_without_workers_is_the_greedys_pick(monkeypatch):
    """At every reclaim of a run, the answer with the shortcut equals the full greedy's
    on the same cluster (the shortcut switched off for the second call)."""
    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    policy = make_policy("aryl")
    engine = make_engine(sc, policy, 1)
    policy.reset(engine.view, 1)
    driver = Driver(engine, policy)
    real = reclaim_rules._empty_first
    answered = compared = 0
    while (point := driver.run_until(lambda p: p.kind == RECLAIM)) is not None:
        view, k = point.view, point.k
        answered += real(view, k) is not None
        fast = reclaim_rules.aryl_reclaim(view, k)
        monkeypatch.setattr(reclaim_rules, "_empty_first", lambda view, k: None)
        assert fast == reclaim_rules.aryl_reclaim(view, k)
        monkeypatch.setattr(reclaim_rules, "_empty_first", real)
        compared += 1
        driver.decide(point)
    assert answered > 5 and answered < compared  # both paths were exercised
