"""The multiple-choice knapsack solvers of Aryl's step 2 (baselines/mckp.py, docs/model.md).

With unit weights and concave values the marginal-gain greedy is exact: it must reach the
DP's total on random concave instances (choices may differ on ties, so totals are compared).
On non-concave instances the DP is the exact one: it matches a brute-force enumeration on
tiny instances and is never worse than the greedy.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from aryl_gym.baselines import mckp
from hypothesis import given, settings
from hypothesis import strategies as st

TOL = 1e-7


def total(values, picks) -> float:
    return float(sum(np.asarray(v, dtype=float)[k] for v, k in zip(values, picks, strict=True)))


def check_feasible(values, picks, capacity: int) -> None:
    assert len(picks) == len(values)
    assert all(0 <= k < len(v) for v, k in zip(values, picks, strict=True))
    assert sum(picks) <= max(capacity, 0)


def lazy(values, capacity: int) -> list[int]:
    vals = [np.asarray(v, dtype=float) for v in values]
    return mckp.solve_greedy_lazy(
        lambda i, k: vals[i][k] - vals[i][k - 1], [len(v) - 1 for v in vals], capacity
    )


def brute_force(values, capacity: int) -> float:
    best = 0.0
    for picks in itertools.product(*(range(len(v)) for v in values)):
        if sum(picks) <= capacity:
            best = max(best, total(values, picks))
    return best


# ---------------------------------------------------------------- instance strategies
@st.composite
def throughput_instance(draw):
    """v_i(k) = R_i / thr_i(b_i) - R_i / thr_i(b_i + k) with concave increasing thr_i."""
    n = draw(st.integers(0, 8))
    values = []
    for _ in range(n):
        size = draw(st.integers(1, 12))  # thr(1..size); thr(0) = 0 is not used
        incs = sorted(
            draw(st.lists(st.floats(0.0, 2.0), min_size=size, max_size=size)), reverse=True
        )
        incs[0] = max(incs[0], 0.1)  # thr(1) > 0
        thr = np.cumsum(incs)
        b = draw(st.integers(1, size))
        r = draw(st.floats(1.0, 1e5))
        values.append(r / thr[b - 1] - r / thr[b - 1 :])
    cap = draw(st.integers(0, 40))
    return values, cap


@st.composite
def concave_instance(draw):
    """Random concave sequences (non-increasing marginal gains, possibly negative)."""
    n = draw(st.integers(0, 8))
    values = []
    for _ in range(n):
        k = draw(st.integers(0, 10))
        gains = sorted(draw(st.lists(st.integers(-50, 100), min_size=k, max_size=k)), reverse=True)
        values.append(np.concatenate([[0.0], np.cumsum(gains, dtype=float)]))
    cap = draw(st.integers(0, 40))
    return values, cap


@st.composite
def any_instance(draw, max_items=8, max_size=10, max_cap=40):
    """Arbitrary (usually non-concave) values with v(0) = 0."""
    n = draw(st.integers(0, max_items))
    values = []
    for _ in range(n):
        k = draw(st.integers(0, max_size))
        rest = draw(st.lists(st.integers(-20, 100), min_size=k, max_size=k))
        values.append(np.array([0.0, *rest], dtype=float))
    cap = draw(st.integers(0, max_cap))
    return values, cap


# ---------------------------------------------------------------- concave: greedy is exact
@settings(max_examples=300, deadline=None)
@given(st.one_of(throughput_instance(), concave_instance()))
def test_greedy_lazy_and_dp_agree_on_concave_values(inst):
    values, cap = inst
    assert mckp.is_concave(values)
    g, gl, d = mckp.solve_greedy(values, cap), lazy(values, cap), mckp.solve_dp(values, cap)
    for picks in (g, gl, d):
        check_feasible(values, picks, cap)
    scale = max([1.0] + [float(np.abs(v).max()) for v in values])
    assert total(values, g) == pytest.approx(
        total(values, d), abs=TOL * scale * max(1, len(values))
    )
    assert total(values, gl) == pytest.approx(
        total(values, g), abs=TOL * scale * max(1, len(values))
    )
    assert mckp.solve(values, cap) == g  # solve() takes the greedy path on concave values


@settings(max_examples=200, deadline=None)
@given(concave_instance())
def test_greedy_and_lazy_pick_identically(inst):
    # the lazy form documents the same tie order (larger gain, then lower item index)
    values, cap = inst
    assert lazy(values, cap) == mckp.solve_greedy(values, cap)


# ---------------------------------------------------------------- non-concave: the DP is exact
@settings(max_examples=300, deadline=None)
@given(any_instance(max_items=4, max_size=4, max_cap=12))
def test_dp_equals_brute_force_on_tiny_instances(inst):
    values, cap = inst
    d = mckp.solve_dp(values, cap)
    check_feasible(values, d, cap)
    assert total(values, d) == pytest.approx(brute_force(values, cap), abs=1e-9)
    assert total(values, mckp.solve(values, cap)) == pytest.approx(
        brute_force(values, cap), abs=1e-9
    )


@settings(max_examples=300, deadline=None)
@given(any_instance())
def test_dp_never_worse_than_greedy(inst):
    values, cap = inst
    g, d = mckp.solve_greedy(values, cap), mckp.solve_dp(values, cap)
    check_feasible(values, g, cap)
    check_feasible(values, d, cap)
    assert total(values, d) >= total(values, g) - 1e-9


def test_greedy_is_not_exact_without_concavity():
    # one job gains nothing from 1 GPU but 10 from 2; another gains 1 per GPU. Greedy takes
    # the 1s; the optimum is the pair.
    values = [np.array([0.0, 0.0, 10.0]), np.array([0.0, 1.0, 2.0])]
    assert not mckp.is_concave(values)
    assert total(values, mckp.solve_greedy(values, 2)) < 10.0
    assert mckp.solve_dp(values, 2) == [2, 0]
    assert mckp.solve(values, 2) == [2, 0]


# ---------------------------------------------------------------- is_concave
def test_is_concave_detects_both():
    assert mckp.is_concave([])
    assert mckp.is_concave(
        [np.array([0.0]), np.array([0.0, 5.0]), np.array([0.0, -1.0])]
    )  # <= 2 options
    assert mckp.is_concave([np.array([0.0, 5.0, 9.0, 12.0, 12.0])])
    assert mckp.is_concave([np.array([0.0, 5.0, 9.0, 12.0, 10.0, 7.0])])  # falls after the peak
    assert mckp.is_concave([np.array([0.0, 3.0, 6.0, 9.0])])  # linear
    assert not mckp.is_concave([np.array([0.0, 1.0, 3.0])])
    assert not mckp.is_concave([np.array([0.0, 5.0, 9.0]), np.array([0.0, 5.0, 9.0, 14.0])])
    # round-off of a linear sequence is still concave; a real bump is not
    big = np.arange(6) * 1e6
    assert mckp.is_concave([big + np.array([0, 0, 1e-6, 0, 0, 0])])
    assert not mckp.is_concave([big + np.array([0, 0, 10.0, 0, 0, 0]) * -1])


@settings(max_examples=100, deadline=None)
@given(concave_instance(), st.integers(0, 7), st.integers(1, 50))
def test_is_concave_rejects_any_bump(inst, where, bump):
    values, _ = inst
    long = [v for v in values if len(v) >= 3]
    if not long:
        return
    v = long[0].copy()
    i = 1 + where % (len(v) - 2)
    gap = (v[i] - v[i - 1]) - (v[i + 1] - v[i])  # >= 0: how much the gain falls at i
    v[i] -= gap / 2 + bump  # a dip larger than that makes the next marginal gain rise
    assert not mckp.is_concave([*values, v])


# ---------------------------------------------------------------- edge cases
SOLVERS = [mckp.solve_greedy, mckp.solve_dp, mckp.solve, lazy]


@pytest.mark.parametrize("solver", SOLVERS, ids=["greedy", "dp", "solve", "lazy"])
def test_edge_cases(solver):
    assert solver([], 5) == []
    assert solver([], 0) == []
    values = [np.array([0.0, 4.0, 7.0]), np.array([0.0, 3.0])]
    assert solver(values, 0) == [0, 0]  # capacity 0
    assert solver([np.array([0.0]), np.array([0.0])], 3) == [0, 0]  # no options but k = 0
    assert solver([np.array([0.0, -1.0, -3.0]), np.array([0.0, -0.5])], 10) == [
        0,
        0,
    ]  # all gains negative
    assert solver([np.array([0.0, 0.0, 0.0])], 10) == [0]  # zero gains: take nothing
    assert solver(values, 100) == [2, 1]  # capacity to spare: everything positive
    assert solver(values, 1) == [1, 0]


def test_negative_capacity_is_nothing():
    values = [np.array([0.0, 4.0])]
    assert mckp.solve_greedy(values, -3) == [0]
    assert mckp.solve_dp(values, -3) == [0]


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_split_solver_matches_dp_when_some_items_are_not_concave(data):
    from aryl_gym.baselines.mckp import solve_dp, solve_split

    def concave_item():
        n = data.draw(st.integers(1, 6))
        gains = sorted((data.draw(st.floats(0.0, 10.0)) for _ in range(n)), reverse=True)
        return np.concatenate([[0.0], np.cumsum(gains)])

    def jump_item():  # concave after a (possibly negative) first step, as with a slower lent GPU
        v = concave_item()
        v[1:] -= data.draw(st.floats(0.0, 15.0))
        return v

    conc = [concave_item() for _ in range(data.draw(st.integers(0, 4)))]
    other = [jump_item() for _ in range(data.draw(st.integers(1, 3)))]
    cap = data.draw(st.integers(0, 12))
    a, b = solve_split(conc, other, cap)
    assert sum(a) + sum(b) <= cap
    got = sum(v[k] for v, k in zip(conc + other, a + b, strict=True))
    ref = solve_dp(conc + other, cap)
    want = sum(v[k] for v, k in zip(conc + other, ref, strict=True))
    assert got == pytest.approx(want, abs=1e-6)


# ---------------------------------------------------------------- solve's pruned split DP
def full_table_dp(values, capacity: int) -> list[int]:
    """The plain programme: a table over every count 0 .. capacity for every item, first
    maximum over the options, an option only when strictly better than staying (the tie
    rules :func:`mckp.solve_dp` and :func:`mckp.solve` keep)."""
    best = np.full(capacity + 1, -np.inf)
    best[0] = 0.0
    choice = np.zeros((len(values), capacity + 1), dtype=int)
    for i, v in enumerate(values):
        head = np.asarray(v, dtype=float)[: capacity + 1]
        prev = np.maximum.accumulate(head)
        ks = np.flatnonzero(head[1:] > prev[:-1] + 1e-12) + 1  # options beating cheaper ones
        new = best.copy()
        for c in range(capacity + 1):
            sums = [best[c - k] + head[k] if k <= c else -np.inf for k in ks]
            if sums and max(sums) > best[c] + 1e-12:
                new[c] = max(sums)
                choice[i, c] = ks[int(np.argmax(sums))]
        best = new
    c = int(np.argmax(best))
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = int(choice[i, c])
        c -= out[i]
    return out


def unpruned_solve(values, capacity: int) -> list[int]:
    """What :func:`mckp.solve` picks without pruning: its split programme over every
    option, as :func:`mckp.solve_split`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mckp, "PRUNE_CELLS", 10**18)
        return mckp.solve(values, capacity)


@st.composite
def mixed_instance(draw, max_items=12):
    """Concave items, items that dip before they rise (a grow that first splits a job or
    adds a slower GPU) and arbitrary ones; integer values (many ties) or floats; the
    capacity mostly binds."""
    ints = draw(st.booleans())
    gain = st.integers(0, 30) if ints else st.floats(0.0, 30.0)
    values = []
    for _ in range(draw(st.integers(1, max_items))):
        kind = draw(st.sampled_from(["concave", "dip", "any"]))
        n = draw(st.integers(1, 9))
        if kind == "any":
            v = np.array([0.0, *draw(st.lists(st.integers(-20, 60), min_size=n, max_size=n))])
        else:
            gains = sorted(draw(st.lists(gain, min_size=n, max_size=n)), reverse=True)
            v = np.concatenate([[0.0], np.cumsum(gains, dtype=float)])
            if kind == "dip":
                v[1:] -= draw(st.integers(1, 60) if ints else st.floats(0.5, 60.0))
        values.append(v)
    cap = draw(st.integers(1, max(1, sum(len(v) - 1 for v in values))))
    return values, cap


@settings(max_examples=150, deadline=None)
@given(mixed_instance())
def test_dp_picks_what_the_full_table_picks(inst):
    # the banded programme changes no pick, ties included
    values, cap = inst
    assert mckp.solve_dp(values, cap) == full_table_dp(values, cap)


@pytest.mark.parametrize(
    "first_gap, prune_cells",
    [(0.0, 0), (mckp.FIRST_GAP, 0), (np.inf, 0), (mckp.FIRST_GAP, mckp.PRUNE_CELLS)],
    ids=["second-try", "pruned", "first-gap", "default"],
)
@settings(max_examples=200, deadline=None)
@given(inst=mixed_instance())
def test_pruned_solve_picks_what_the_unpruned_one_picks(first_gap, prune_cells, inst):
    # first_gap 0 keeps only the options preferred at the price at first, so the second
    # try (kept options from the first one's value) runs often; prune_cells 0 prunes even
    # the small instances drawn here
    values, cap = inst
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mckp, "FIRST_GAP", first_gap)
        mp.setattr(mckp, "PRUNE_CELLS", prune_cells)
        got = mckp.solve(values, cap)
    check_feasible(values, got, cap)
    assert got == unpruned_solve(values, cap)
    assert total(values, got) == pytest.approx(total(values, mckp.solve_dp(values, cap)), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(mixed_instance())
def test_lagrangian_bound_holds_and_keeps_the_optimum(inst):
    values, cap = inst
    m, _ = mckp._matrix(values)
    price, bound, deficit, margin = mckp._lagrange(m, cap)
    best = mckp.solve_dp(values, cap)
    value = total(values, best)
    assert price >= 0 and (deficit >= -margin).all()
    assert value <= bound + margin
    # every option of an optimum is within bound - value: pruning keeps it
    assert all(deficit[i, k] <= bound - value + margin for i, k in enumerate(best))


def test_solve_prunes_a_large_round_and_falls_back_when_the_bound_keeps_nothing(monkeypatch):
    # the shape of the benchmark's round: many jobs whose first extra GPUs cost (a split)
    rng = np.random.default_rng(1)
    values = []
    for _ in range(120):
        gains = np.sort(rng.uniform(0.0, 100.0, int(rng.integers(6, 24))))[::-1]
        v = np.concatenate([[0.0], np.cumsum(gains)])
        v[1 : int(rng.integers(2, 6))] -= rng.uniform(50.0, 300.0)
        values.append(v)
    cap = 600
    kept = []
    dp = mckp._dp_tables

    def spy(m, options, capacity):
        kept.append(sum(len(o) for o in options))
        return dp(m, options, capacity)

    monkeypatch.setattr(mckp, "_dp_tables", spy)
    ref = unpruned_solve(values, cap)
    assert mckp.solve(values, cap) == ref
    assert max(kept[1:]) < kept[0] / 4  # the unpruned programme first, then solve's
    # a bound that kept no option at all: solve falls back to every option
    lagrange = mckp._lagrange

    def no_option_kept(m, capacity):
        price, bound, deficit, margin = lagrange(m, capacity)
        return price, bound, np.full_like(deficit, np.inf), margin

    monkeypatch.setattr(mckp, "_lagrange", no_option_kept)
    assert mckp.solve(values, cap) == ref
