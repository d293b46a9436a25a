"""Multiple-choice knapsack over extra workers (MODEL.md section 5, step 2).

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
    for v in values:
        if len(v) > 2 and np.any(np.diff(np.diff(v)) > tol * max(1.0, float(np.abs(v).max()))):
            return False
    return True


def solve_greedy(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Chosen option per item by the marginal-gain greedy (exact for concave values)."""
    n = len(values)
    if n == 0 or capacity <= 0:
        return [0] * n
    gains = [np.diff(np.asarray(v, dtype=float)) for v in values]
    lengths = np.fromiter((g.size for g in gains), dtype=np.int64, count=n)
    if lengths.sum() == 0:
        return [0] * n
    flat = np.concatenate(gains)
    owner = np.repeat(np.arange(n), lengths)
    positive = flat > 0
    flat, owner = flat[positive], owner[positive]
    if flat.size > capacity:
        # stable order: larger gain first, ties to the lower item index (deterministic)
        top = np.lexsort((owner, -flat))[:capacity]
        owner = owner[top]
    return np.bincount(owner, minlength=n).tolist()


def solve_greedy_lazy(marginal: Callable[[int, int], float], sizes: Sequence[int], capacity: int) -> list[int]:
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


def solve_dp(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Exact MCKP by dynamic programming (ties broken towards fewer GPUs per item)."""
    n = len(values)
    if n == 0 or capacity <= 0:
        return [0] * n
    neg = -np.inf
    best = np.full(capacity + 1, neg)
    best[0] = 0.0  # best[c]: max value using exactly c GPUs
    choice = np.zeros((n, capacity + 1), dtype=np.int64)
    for i, v in enumerate(values):
        v = np.asarray(v, dtype=float)
        new = best.copy()  # option k = 0
        pick = np.zeros(capacity + 1, dtype=np.int64)
        for k in range(1, min(len(v) - 1, capacity) + 1):
            cand = np.full(capacity + 1, neg)
            cand[k:] = best[:-k] + v[k]
            better = cand > new + 1e-12
            new = np.where(better, cand, new)
            pick = np.where(better, k, pick)
        best = new
        choice[i] = pick
    c = int(np.argmax(best))
    out = [0] * n
    for i in range(n - 1, -1, -1):
        k = int(choice[i, c])
        out[i] = k
        c -= k
    return out


def solve_split(
    concave: Sequence[np.ndarray], other: Sequence[np.ndarray], capacity: int
) -> tuple[list[int], list[int]]:
    """Exact MCKP when most items are concave: the greedy's value curve of the concave
    items, ``G(c)`` for every capacity ``c`` (exact for each ``c``), combined by DP with
    the few ``other`` items: ``max over c of DP_other(c) + G(capacity - c)``. Costs
    O(len(other) x capacity x options) instead of a DP over every item."""
    gains = [np.diff(np.asarray(v, dtype=float)) for v in concave]
    flat = np.concatenate(gains) if gains else np.zeros(0)
    owner = np.repeat(np.arange(len(concave)), [g.size for g in gains]) if gains else np.zeros(0, int)
    keep = flat > 0
    flat, owner = flat[keep], owner[keep]
    order = np.lexsort((owner, -flat))
    flat, owner = flat[order], owner[order]
    curve = np.zeros(capacity + 1)
    m = min(capacity, flat.size)
    curve[1 : m + 1] = np.cumsum(flat[:m])
    curve[m + 1 :] = curve[m]
    neg = -np.inf
    best = np.full(capacity + 1, neg)
    best[0] = 0.0
    choice = np.zeros((len(other), capacity + 1), dtype=np.int64)
    for i, v in enumerate(other):
        v = np.asarray(v, dtype=float)
        new, pick = best.copy(), np.zeros(capacity + 1, dtype=np.int64)
        for k in range(1, min(len(v) - 1, capacity) + 1):
            cand = np.full(capacity + 1, neg)
            cand[k:] = best[:-k] + v[k]
            better = cand > new + 1e-12
            new = np.where(better, cand, new)
            pick = np.where(better, k, pick)
        best, choice[i] = new, pick
    total = best + curve[::-1]  # other items use c GPUs, concave ones the remaining capacity - c
    c = int(np.argmax(total))
    other_picks = [0] * len(other)
    rest = c
    for i in range(len(other) - 1, -1, -1):
        other_picks[i] = int(choice[i, rest])
        rest -= other_picks[i]
    concave_picks = np.bincount(owner[: min(capacity - c, flat.size)], minlength=len(concave)).tolist()
    return concave_picks, other_picks


def solve(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Greedy where it is exact (concave values), the DP otherwise."""
    return solve_greedy(values, capacity) if is_concave(values) else solve_dp(values, capacity)
