"""Step 2's value rows (:meth:`baselines.aryl.ArylPolicy.value_rows`): option ``k`` of an
elastic job at ``n`` GPUs is worth ``R / rate(n) - R / rate(n + k)`` at the simulator's
rates. The rows in plain Python floats for a few short rows (the same IEEE operations as
the numpy expression, which decides zero rates and NaN), and :class:`ValueRows`, what the
knapsack solver gets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aryl_gym.sim.job import Job


@dataclass
class ValueRows:
    """Step 2's value rows (:meth:`ArylPolicy.value_rows`): per candidate, starts first,
    its job, the GPUs it grows from (its base, or what it runs on), its row's length
    (options ``k = 0 ..``) and its best option (first maximum; 0 when none is worth more
    than 0). The values: the starts' rows, then the running candidates' as one flat
    sequence (row after row)."""

    jobs: list[Job]
    bases: list[int]
    lengths: list[int]
    tops: list[int]
    start_rows: list  # lists of floats or arrays
    flat: list[float] | np.ndarray

    @property
    def n_start(self) -> int:
        return len(self.start_rows)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """The values as one matrix padded with -inf (what :func:`mckp.solve_matrix`
        takes), and the mask of its real entries."""
        lens = np.array(self.lengths, dtype=np.int64)
        m = np.full((len(self.jobs), int(lens.max())), -np.inf)
        filled = np.arange(m.shape[1])[None, :] < lens[:, None]
        n_start = self.n_start
        for i, row in enumerate(self.start_rows):
            m[i, : self.lengths[i]] = row
        m[n_start:][filled[n_start:]] = self.flat  # row-major: row after row, as flat is
        return m, filled

    def row(self, i: int) -> list[float]:
        """Row ``i``'s values as floats."""
        n_start = self.n_start
        if i < n_start:
            return [float(v) for v in self.start_rows[i]]
        at = sum(self.lengths[n_start:i])
        return [float(v) for v in self.flat[at : at + self.lengths[i]]]


def value_row(r: float, curve: list[float]) -> list[float] | None:
    """``r / curve[0] - r / curve[k]`` for every ``k``, in plain Python floats: the same
    IEEE divisions and subtractions as numpy's ``r / curve[0] - r / np.asarray(curve)``,
    cheaper on a few short rows. None when a rate is 0 or a value NaN (a sum of opposite
    infinities is one too): the numpy expression decides those, with its infinity and NaN
    rules (and NaN, which ``max()`` may skip and numpy's maximum does not)."""
    try:
        now = r / curve[0]
        values = [now - r / x for x in curve]
    except ZeroDivisionError:
        return None
    total = sum(values)
    return None if total != total else values


def start_row(r: float, curve: list[float]) -> tuple[list[float] | np.ndarray, int] | None:
    """A start's values ``r / curve[0] - r / curve[k]`` (at least two; ``curve[0]`` not
    0) and their first maximum, or None when none is worth more than 0. In plain Python
    (:func:`value_row`), else as the numpy expression."""
    values = value_row(r, curve)
    if values is None:
        v = r / curve[0] - r / np.asarray(curve)
        return (v, int(v.argmax())) if v.max() > 0 else None
    best = max(values)
    return (values, values.index(best)) if best > 0 else None


def few_rows(grow: list, curves: list[list[float]], guard: float) -> list | None:
    """The running candidates' value rows that pass the guard, as the numpy path of
    :meth:`ArylPolicy.value_rows` computes them, float for float (IEEE division and
    subtraction): ``(i, values, first maximum or 0 when the best is not > 0)`` per kept
    row ``i``. None when a rate is 0 or a value NaN: left to the numpy path, whose
    infinities and NaN rules the rows then follow."""
    rows = []
    for i, curve in enumerate(curves):
        if len(curve) < 2:
            continue
        values = value_row(grow[i][1], curve)
        if values is None:
            return None
        best = max(values)
        if best > guard:
            rows.append((i, values, values.index(best) if best > 0 else 0))
    return rows
