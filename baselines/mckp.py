"""Multiple-choice knapsack over extra workers (docs/model.md).

Each item (an elastic job) offers options ``k = 0 .. K_i`` with weight ``k`` GPUs and value
``values[i][k]`` (``values[i][0] == 0``); pick one option per item to maximise the total
value within ``capacity`` GPUs.

* :func:`solve_dp` — exact dynamic programming over items x capacity, O(sum K_i x capacity).
* :func:`solve_greedy` — marginal-gain greedy: take the ``capacity`` largest positive
  marginal gains ``values[i][k] - values[i][k-1]``. With unit weights and concave values
  (non-increasing marginal gains) every item's selected units form a prefix, and the
  greedy is exact; ``tests/test_mckp.py`` checks it against the DP on random instances.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np


def is_concave(values: Sequence[np.ndarray], tol: float = 1e-9) -> bool:
    """True when every item's marginal gains are non-increasing."""
    if not len(values):
        return True
    m, lengths = _matrix(values)
    d, _ = _gains(m, lengths)
    return bool(_concave_rows(m, lengths, d, tol).all())


def _matrix(values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The items' value tables as one matrix padded with ``-inf``, and their lengths."""
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    width = int(lengths.max()) if len(values) else 1
    m = np.full((len(values), width), -np.inf)
    for i, v in enumerate(values):
        m[i, : lengths[i]] = v
    return m, lengths


def _gains(m: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marginal gains ``m[:, k] - m[:, k-1]`` (NaN beyond an item's options) and the mask
    of real ones."""
    with np.errstate(invalid="ignore"):
        d = m[:, 1:] - m[:, :-1]
    real = np.arange(d.shape[1])[None, :] < (lengths[:, None] - 1)
    return d, real


def _ranked_gains(values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every positive marginal gain and its item, largest first (ties: lower item index)."""
    if not len(values):
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    m, lengths = _matrix(values)
    return _ranked(*_gains(m, lengths))


def _ranked(d: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = real & (d > 0)
    owner = np.nonzero(keep)[0]  # row-major: item by item, options in order
    flat = d[keep]
    order = np.lexsort((owner, -flat))
    return flat[order], owner[order]


def _concave_rows(m: np.ndarray, lengths: np.ndarray, d: np.ndarray, tol: float = 1e-9):
    """Per row: its marginal gains are non-increasing (within ``tol`` x the row's largest
    absolute value, at least 1)."""
    if d.shape[1] < 2:
        return np.ones(len(m), dtype=bool)
    with np.errstate(invalid="ignore"):
        d2 = d[:, 1:] - d[:, :-1]
    real2 = np.arange(d2.shape[1])[None, :] < (lengths[:, None] - 2)
    scale = np.maximum(1.0, np.max(np.where(np.isfinite(m), np.abs(m), 0.0), axis=1))
    bad = real2 & (d2 > tol * scale[:, None])
    return ~bad.any(axis=1)


def solve_greedy(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Chosen option per item by the marginal-gain greedy (exact for concave values)."""
    if len(values) == 0 or capacity <= 0:
        return [0] * len(values)
    _, owner = _ranked_gains(values)
    return np.bincount(owner[:capacity], minlength=len(values)).tolist()


def solve_greedy_lazy(
    marginal: Callable[[int, int], float], sizes: Sequence[int], capacity: int
) -> list[int]:
    """The marginal-gain greedy without materialising the value tables.

    ``marginal(i, k)`` is the gain of item ``i``'s ``k``-th unit (``k >= 1``), ``sizes[i]``
    its largest option. Costs O((items + capacity) log items) calls instead of
    O(sum of sizes): the form the simulator's hot loop uses. Same result as
    :func:`solve_greedy` (same tie order: larger gain, then lower item index).
    """
    picks = [0] * len(sizes)
    heap = [(-marginal(i, 1), i) for i, m in enumerate(sizes) if m > 0]
    heapq.heapify(heap)
    while capacity > 0 and heap:
        neg, i = heapq.heappop(heap)
        if neg >= 0:
            break
        picks[i] += 1
        capacity -= 1
        if picks[i] < sizes[i]:
            heapq.heappush(heap, (-marginal(i, picks[i] + 1), i))
    return picks


def _dp_tables(values: Sequence[np.ndarray], capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """The MCKP dynamic programme: ``best[c]``, the largest value using exactly ``c`` GPUs,
    and ``choice[i, c]``, item ``i``'s option on that optimum. Each item is one vectorised
    max over its options (``-inf`` marks an option that is not allowed); ties go to fewer
    GPUs."""
    best = np.full(capacity + 1, -np.inf)
    best[0] = 0.0
    choice = np.zeros((len(values), capacity + 1), dtype=np.int64)
    padded = np.full(2 * capacity + 1, -np.inf)
    cols = np.arange(capacity + 1)
    for i, v in enumerate(values):
        v = np.asarray(v, dtype=float)
        kmax = min(len(v) - 1, capacity)
        head = v[: kmax + 1]
        # an option worth no more than a cheaper one is never needed (ties go to fewer
        # GPUs anyway): only options that beat every cheaper one enter the programme
        prev_best = np.maximum.accumulate(np.where(np.isfinite(head), head, -np.inf))
        ks = np.flatnonzero(head[1:] > prev_best[:-1] + 1e-12) + 1
        if ks.size == 0:
            continue
        padded[capacity:] = best
        cand = padded[capacity + cols[None, :] - ks[:, None]] + v[ks][:, None]  # best[c - k] + v[k]
        r = np.argmax(cand, axis=0)  # first maximum = fewest GPUs among equal options
        top = cand[r, cols]
        better = top > best + 1e-12
        choice[i] = np.where(better, ks[r], 0)
        best = np.where(better, top, best)
    return best, choice


def _backtrack(choice: np.ndarray, c: int) -> list[int]:
    out = [0] * choice.shape[0]
    for i in range(choice.shape[0] - 1, -1, -1):
        out[i] = int(choice[i, c])
        c -= out[i]
    return out


def solve_dp(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Exact MCKP by dynamic programming (ties broken towards fewer GPUs per item)."""
    if len(values) == 0 or capacity <= 0:
        return [0] * len(values)
    best, choice = _dp_tables(values, capacity)
    return _backtrack(choice, int(np.argmax(best)))


def solve_split(
    concave: Sequence[np.ndarray], other: Sequence[np.ndarray], capacity: int
) -> tuple[list[int], list[int]]:
    """Exact MCKP when most items are concave: the greedy's value curve of the concave
    items, ``G(c)`` for every capacity ``c`` (exact for each ``c``), combined by DP with
    the few ``other`` items: ``max over c of DP_other(c) + G(capacity - c)``. Costs
    O(len(other) x capacity x options) instead of a DP over every item."""
    flat, owner = _ranked_gains(concave)
    return _split(flat, owner, len(concave), other, capacity)


def _split(
    flat: np.ndarray, owner: np.ndarray, n_concave: int, other: Sequence[np.ndarray], capacity: int
) -> tuple[list[int], list[int]]:
    """:func:`solve_split` from the concave items' ranked gains (:func:`_ranked`)."""
    curve = np.zeros(capacity + 1)
    m = min(capacity, flat.size)
    curve[1 : m + 1] = np.cumsum(flat[:m])
    curve[m + 1 :] = curve[m]
    # the other items can use at most the sum of their largest options: a shorter table
    cap_other = min(capacity, sum(len(v) - 1 for v in other))
    best_short, choice = _dp_tables(other, cap_other)
    best = np.full(capacity + 1, -np.inf)
    best[: cap_other + 1] = best_short  # using more GPUs than that is impossible
    total = best + curve[::-1]  # other items use c GPUs, concave ones the remaining capacity - c
    c = int(np.argmax(total))
    other_picks = _backtrack(choice, c)
    concave_picks = np.bincount(owner[: min(capacity - c, flat.size)], minlength=n_concave).tolist()
    return concave_picks, other_picks


def solve(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Exact, by the cheapest method that is: every item's best option (its first
    maximum, 0 when none is positive) when those all fit in ``capacity`` together, the
    greedy when values are concave, else the greedy's curve of the concave items combined
    by DP with the others (:func:`solve_split`). Same picks as :func:`solve_dp` (up to
    ties of equal total value)."""
    if len(values) == 0 or capacity <= 0:
        return [0] * len(values)
    m, lengths = _matrix(values)
    rows = np.arange(len(values))
    k = np.argmax(m, axis=1)
    k = np.where(m[rows, k] > 0, k, 0)
    if int(k.sum()) <= capacity:
        return k.tolist()
    d, real = _gains(m, lengths)
    concave = _concave_rows(m, lengths, d)
    if concave.all():
        _, owner = _ranked(d, real)
        return np.bincount(owner[:capacity], minlength=len(values)).tolist()
    conc = np.flatnonzero(concave).tolist()
    other = np.flatnonzero(~concave).tolist()
    # the concave rows' ranked gains from the matrix already built (owners count in conc)
    flat, owner = _ranked(d[concave], real[concave])
    a, b = _split(flat, owner, len(conc), [values[i] for i in other], capacity)
    picks = [0] * len(values)
    for i, p in zip(conc + other, a + b, strict=True):
        picks[i] = p
    return picks
