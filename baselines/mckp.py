"""Multiple-choice knapsack over extra workers (docs/model.md).

Each item (an elastic job) offers options ``k = 0 .. K_i`` with weight ``k`` GPUs and value
``values[i][k]`` (``values[i][0] == 0``); pick one option per item to maximise the total
value within ``capacity`` GPUs.

* :func:`solve_dp` — exact dynamic programming over items x capacity, O(sum K_i x capacity).
* :func:`solve_greedy` — marginal-gain greedy: take the ``capacity`` largest positive
  marginal gains ``values[i][k] - values[i][k-1]``. With unit weights and concave values
  (non-increasing marginal gains) every item's selected units form a prefix, and the
  greedy is exact; ``tests/test_mckp.py`` checks it against the DP on random instances.
* :func:`solve` — what Aryl uses: the greedy where it is exact, else the greedy's value
  curve of the concave items combined by DP with the others (:func:`solve_split`), the
  DP over only the options a Lagrangian bound cannot rule out of an optimum. Same picks,
  bit for bit, as that DP over every option.
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


def _records(m: np.ndarray, lengths: np.ndarray, capacity: int) -> np.ndarray:
    """Per item, the options ``1 .. min(K_i, capacity)`` worth more than every cheaper one
    (by > 1e-12). Any other option is never needed: ties go to fewer GPUs anyway."""
    head = np.where(np.isfinite(m), m, -np.inf)
    prev_best = np.maximum.accumulate(head, axis=1)
    rec = np.zeros(m.shape, dtype=bool)
    rec[:, 1:] = m[:, 1:] > prev_best[:, :-1] + 1e-12
    rec &= np.arange(m.shape[1])[None, :] < np.minimum(lengths, capacity + 1)[:, None]
    return rec


def _option_lists(allowed: np.ndarray) -> list[list[int]]:
    """Each row's allowed options, ascending, as Python lists (0 when staying is allowed)."""
    rows, cols = np.nonzero(allowed)
    ends = np.cumsum(np.bincount(rows, minlength=len(allowed))).tolist()
    cols = cols.tolist()
    return [cols[a:b] for a, b in zip([0, *ends], ends, strict=False)]


def _dp_tables(m: np.ndarray, options: list[list[int]], capacity: int):
    """The MCKP dynamic programme over ``m`` (items' values, padded) with item ``i``'s
    options restricted to ``options[i]`` (ascending; 0 = it may stay at 0).

    Returns ``(lo, best, steps)``: ``best[c - lo]`` is the largest value using exactly ``c``
    GPUs (``-inf``: not reachable), and ``steps[i]`` item ``i``'s option on each such
    optimum: ``(lo_i, choices)`` over the counts its prefix reaches, ``(lo_i, k)`` when its
    only option is ``k``, None when it stays at 0. Only counts a prefix can reach are
    tabled. Each item is one vectorised max over its options; ties go to fewer GPUs.
    Dropping options never changes how a kept sum is formed (``best[c - k] + v[k]``, item by
    item, the same float additions), so no table entry grows. If the kept options include
    those of the full programme's pick S, every count on S's backtrack path keeps its value
    (S's sum is still there) and its first maximum: the programme picks S again, bit for
    bit, which is what lets :func:`solve` drop options. None when the options cannot fit in
    ``capacity``.
    """
    lo, best = 0, np.zeros(1)
    steps: list = []
    for i, opts in enumerate(options):
        if not opts:
            return None
        stay = opts[0] == 0
        ks = opts[1:] if stay else opts
        if not ks:
            steps.append(None)
            continue
        if not stay and len(ks) == 1:  # forced: shift the table by k
            k = ks[0]
            lo += k
            if lo > capacity:
                return None
            best = best[: capacity - lo + 1] + m[i, k]
            steps.append((lo, k))
            continue
        new_lo = lo if stay else lo + ks[0]
        new_hi = min(lo + best.size - 1 + ks[-1], capacity)
        if new_lo > new_hi:
            return None
        width, top_k = new_hi - new_lo + 1, ks[-1]
        # best padded with -inf: padded[at - k : at - k + width] holds best[c - k]
        padded = np.full(best.size + 2 * top_k, -np.inf)
        padded[top_k : top_k + best.size] = best
        at = new_lo - lo + top_k
        top, choice = _best_option(padded, at, width, m[i], ks)
        if stay:
            prev = padded[at : at + width]
            better = top > prev + 1e-12
            choice = np.where(better, choice, 0)
            top = np.where(better, top, prev)
        steps.append((new_lo, choice))
        lo, best = new_lo, top
    return lo, best, steps


def _best_option(padded: np.ndarray, at: int, width: int, v: np.ndarray, ks: list[int]):
    """Per count ``c``: the largest ``best[c - k] + v[k]`` over options ``ks`` and its first
    ``k`` (fewest GPUs among equal sums). A few options: one pass each (no 2-D copy)."""
    if len(ks) <= 4:
        k = ks[0]
        top = padded[at - k : at - k + width] + v[k]
        choice = np.full(width, k)
        for k in ks[1:]:
            cand = padded[at - k : at - k + width] + v[k]
            better = cand > top  # strictly: an equal sum keeps the cheaper option
            np.copyto(top, cand, where=better)
            np.copyto(choice, k, where=better)
        return top, choice
    karr = np.array(ks)
    win = np.lib.stride_tricks.sliding_window_view(padded, width)
    cand = win[at - karr] + v[karr][:, None]
    r = np.argmax(cand, axis=0)  # the first maximum
    return cand[r, np.arange(width)], karr[r]


def _backtrack(steps: list, c: int) -> list[int]:
    out = [0] * len(steps)
    for i in range(len(steps) - 1, -1, -1):
        if steps[i] is not None:
            lo, choice = steps[i]
            out[i] = k = choice if isinstance(choice, int) else int(choice[c - lo])
            c -= k
    return out


def _all_options(m: np.ndarray, lengths: np.ndarray, capacity: int) -> list[list[int]]:
    allowed = _records(m, lengths, capacity)
    allowed[:, 0] = True
    return _option_lists(allowed)


def solve_dp(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Exact MCKP by dynamic programming (ties broken towards fewer GPUs per item)."""
    if len(values) == 0 or capacity <= 0:
        return [0] * len(values)
    m, lengths = _matrix(values)
    lo, best, steps = _dp_tables(m, _all_options(m, lengths, capacity), capacity)
    return _backtrack(steps, lo + int(np.argmax(best)))


def solve_split(
    concave: Sequence[np.ndarray], other: Sequence[np.ndarray], capacity: int
) -> tuple[list[int], list[int]]:
    """Exact MCKP when most items are concave: the greedy's value curve of the concave
    items, ``G(c)`` for every capacity ``c`` (exact for each ``c``), combined by DP with
    the few ``other`` items: ``max over c of DP_other(c) + G(capacity - c)``. Costs
    O(len(other) x capacity x options) instead of a DP over every item."""
    if capacity <= 0:
        return [0] * len(concave), [0] * len(other)
    flat, owner = _ranked_gains(concave)
    m, lengths = _matrix(other)
    cap_other = min(capacity, int((lengths - 1).sum()))
    c, picks, _ = _split(_curve(flat, capacity), m, _all_options(m, lengths, cap_other), cap_other)
    return _greedy_picks(owner, capacity - c, len(concave)), picks


def _curve(flat: np.ndarray, capacity: int) -> np.ndarray:
    """``G(c)``, the greedy's value with ``c`` GPUs, from ranked gains (:func:`_ranked`)."""
    curve = np.zeros(capacity + 1)
    n = min(capacity, flat.size)
    curve[1 : n + 1] = np.cumsum(flat[:n])
    curve[n + 1 :] = curve[n]
    return curve


def _greedy_picks(owner: np.ndarray, capacity: int, n: int) -> list[int]:
    return np.bincount(owner[: min(capacity, owner.size)], minlength=n).tolist()


def _split(curve: np.ndarray, m: np.ndarray, options: list[list[int]], cap_other: int):
    """The DP of the other items (``m``, their ``options``, at most ``cap_other`` GPUs)
    combined with the concave items' ``curve``: ``(c, picks, value)``, the GPUs the other
    items take, their picks and the total value; None when the options do not fit."""
    tables = _dp_tables(m, options, cap_other)
    if tables is None:
        return None
    lo, best_band, steps = tables
    best = np.full(curve.size, -np.inf)  # counts the other items cannot reach: -inf
    best[lo : lo + best_band.size] = best_band
    total = best + curve[::-1]  # other items use c GPUs, concave ones the remaining capacity - c
    c = int(np.argmax(total))
    return c, _backtrack(steps, c), float(total[c])


#: bisection steps towards the Lagrangian price (each one pass over the value matrix)
PRICE_STEPS = 24
#: solve's first try keeps the options within this many GPUs' worth (at the price) of
#: the bound: usually enough to prove its own answer, else a second try keeps what the
#: first one's value proves is needed
FIRST_GAP = 0.05
#: solve prunes only a programme of more (option, GPU count) cells than this: a smaller
#: one costs less than the bound would save
PRUNE_CELLS = 128


def _lagrange(m: np.ndarray, capacity: int) -> tuple[float, float, np.ndarray, float]:
    """A Lagrangian bound of the MCKP, to drop options that are in no optimum.

    With a price ``lam >= 0`` per GPU, any solution within ``capacity`` is worth at most
    ``bound = lam * capacity + sum_i max_k (v_i[k] - lam * k)``, and one that puts item
    ``i`` at option ``k`` at most ``bound - deficit[i, k]`` with ``deficit[i, k] =
    max_k' (v_i[k'] - lam * k') - (v_i[k] - lam * k) >= 0``. So once some solution is worth
    ``V``, an option whose deficit exceeds ``bound - V`` is in no better one. Any price
    gives a valid bound; the tightest is where the items' preferred options just fill
    ``capacity`` (the LP relaxation's price), approached by bisection. Returns ``(lam,
    bound, deficit, margin)``, ``margin`` covering the rounding of these float sums.
    Padding (``-inf``) has an infinite deficit."""
    cols = np.arange(m.shape[1], dtype=float)
    with np.errstate(invalid="ignore"):
        lo, hi = 0.0, max(0.0, float(np.nanmax(m[:, 1:] / cols[1:])))  # at hi, 0 is best
    red = np.empty_like(m)
    for _ in range(PRICE_STEPS):
        mid = 0.5 * (lo + hi)
        np.subtract(m, mid * cols, out=red)
        demand = int(red.argmax(axis=1).sum())
        if demand > capacity:
            lo = mid
        else:
            hi = mid
            if demand == capacity:
                break  # the bound's minimum: a higher or lower price only raises it
    red = m - hi * cols
    top = red.max(axis=1)
    bound = float(top.sum()) + hi * capacity
    scale = float(np.abs(np.where(np.isfinite(m), m, 0.0)).max(axis=1).sum()) + hi * capacity
    return hi, bound, top[:, None] - red, 1e-9 * (1.0 + scale)


def solve(values: Sequence[np.ndarray], capacity: int) -> list[int]:
    """Exact, by the cheapest method that is: every item's best option (its first
    maximum, 0 when none is positive) when those all fit in ``capacity`` together, the
    greedy when values are concave, else the greedy's curve of the concave items combined
    by DP with the others (:func:`solve_split`), pruned by a Lagrangian bound
    (:func:`_lagrange`) to the options some optimum may use. Same picks as
    :func:`solve_split` over those items, bit for bit (and as :func:`solve_dp` up to ties
    of equal total value)."""
    if len(values) == 0 or capacity <= 0:
        return [0] * len(values)
    return solve_matrix(*_matrix(values), capacity)


def solve_matrix(m: np.ndarray, lengths: np.ndarray, capacity: int) -> list[int]:
    """:func:`solve` on the value tables as one matrix: row ``i`` holds item ``i``'s
    values in its first ``lengths[i]`` columns and ``-inf`` beyond (what :func:`_matrix`
    builds from a list; a caller that has its values as a matrix already skips that
    copy), at least one row, and no column that is padding in every row. Same picks."""
    if capacity <= 0:
        return [0] * len(m)
    rows = np.arange(len(m))
    k = np.argmax(m, axis=1)
    k = np.where(m[rows, k] > 0, k, 0)
    if int(k.sum()) <= capacity:
        return k.tolist()
    d, real = _gains(m, lengths)
    concave = _concave_rows(m, lengths, d)
    if concave.all():
        _, owner = _ranked(d, real)
        return np.bincount(owner[:capacity], minlength=len(m)).tolist()
    conc = np.flatnonzero(concave).tolist()
    other = np.flatnonzero(~concave).tolist()
    # the concave rows' ranked gains from the matrix already built (owners count in conc)
    flat, owner = _ranked(d[concave], real[concave])
    curve = _curve(flat, capacity)
    sub = m[other]
    cap_other = min(capacity, int((lengths[other] - 1).sum()))
    usable = _records(sub, lengths[other], cap_other)
    usable[:, 0] = True

    def attempt(keep: np.ndarray | bool):
        # rows left with option 0 alone add nothing to the programme (a None step): it
        # runs over the others, whose picks go back in their places
        allowed = usable & keep
        active = allowed[:, 1:].any(axis=1) | ~allowed[:, 0]
        res = _split(curve, sub[active], _option_lists(allowed[active]), cap_other)
        if res is None:
            return None
        picks = np.zeros(len(sub), dtype=np.int64)
        picks[active] = res[1]
        return res[0], picks.tolist(), res[2]

    small = int(usable.sum()) * cap_other <= PRUNE_CELLS
    c, b, _ = attempt(True) if small else _pruned(attempt, m, capacity, other)
    picks = [0] * len(m)
    for i, p in zip(conc + other, _greedy_picks(owner, capacity - c, len(conc)) + b, strict=True):
        picks[i] = p
    return picks


def _pruned(attempt, m: np.ndarray, capacity: int, other: list[int]):
    """:func:`solve`'s split programme over the options some optimum may use:
    ``attempt(keep)`` runs it over the ``other`` items' options in ``keep`` (:func:`_split`).

    The full programme's pick S is worth at least any solution V found with fewer options
    (each kept sum is formed the same way, so none is larger), and bound - V >= bound -
    value(S) >= each deficit on S (:func:`_lagrange`): keeping every option with deficit <=
    bound - V keeps S, and the programme over the kept options then picks S itself
    (:func:`_dp_tables`). A first try keeps a guessed few; when its own V proves that it
    kept enough, it is the answer, else a second try keeps what V proves is needed."""
    price, bound, deficit, margin = _lagrange(m, capacity)
    # the options preferred at the price (deficit 0) fit together: a first solution, whose
    # gap to the bound is enough to keep
    at_price = np.argmin(deficit, axis=1)
    first_gap = bound - float(m[np.arange(len(m)), at_price].sum())
    deficit = deficit[other]
    guess = min(FIRST_GAP * price, first_gap)
    res = attempt(deficit <= guess + margin)
    if res is not None and bound - res[2] > guess:
        res = attempt(deficit <= bound - res[2] + margin)
    return res if res is not None else attempt(True)  # None: not with exact sums
