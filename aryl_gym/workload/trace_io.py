"""Reading and writing the project's own CSV trace format (see ``traces/README.md``).

:func:`load_trace` turns a CSV file into a :class:`~aryl_gym.workload.schema.JobTable`,
checking every rule of the format and raising :class:`TraceFormatError` that names the
file, the row and the column of the first problem it finds. :func:`save_trace` writes a
table back; ``load_trace(save_trace(t))`` gives ``t`` back exactly (floats are written
with ``repr`` precision).

Row numbers are *file line numbers*: the header is line 1, so the first job is row 2.
Blank lines are skipped but still counted, so a reported row is the line an editor shows.
Cells must not contain line breaks (a quoted cell spanning lines would shift the
numbering): :func:`load_trace` rejects them, naming the row where the cell starts, and
:func:`save_trace` refuses to write them.

The checks are vectorised (one numpy pass per rule); only when a rule fails is the first
offending row looked up, so 50,000 rows load in a few tens of milliseconds.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
from collections.abc import Callable, Collection
from typing import NoReturn

import numpy as np
import pandas as pd

from aryl_gym.workload.schema import COLUMNS, EXTRA_TYPES, REQUIRED_COLUMNS, JobTable, extra_type

__all__ = ["TraceFormatError", "load_trace", "save_trace"]

#: Spellings accepted in the ``elastic`` column (compared case-insensitively, stripped).
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})

#: Value of an empty ``profile`` cell or a missing ``profile`` column.
DEFAULT_PROFILE = "linear"

PathLike = str | os.PathLike[str]

_INT_LIMIT = 2**31  # a GPU count beyond this is a typo (and 1e300 would not cast to int64)


class TraceFormatError(ValueError):
    """A trace file breaks the format.

    Attributes:
        path: the file, as given to :func:`load_trace`.
        row: file line number of the offending row (header = line 1, so the first data
            row is 2; blank lines count), or ``None`` when the problem is not one row's
            (a missing column, an empty file).
        field: the offending column name, or ``None``.
        reason: the bare explanation, without the location prefix.

    ``str(err)`` reads like ``traces/x.csv, row 17, field 'duration': must be > 0, got -3.0``.
    """

    def __init__(
        self, path: PathLike, reason: str, *, row: int | None = None, field: str | None = None
    ):
        self.path = os.fspath(path)
        self.row = row
        self.field = field
        self.reason = reason
        where = [self.path]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {reason}")


# --------------------------------------------------------------------------- loading


class _Checker:
    """Column conversion and rule checks for one file; raises on the first failure."""

    def __init__(self, path: PathLike, cells: dict[str, np.ndarray], lines: np.ndarray):
        self.path = path
        self.cells = cells  # column name -> object array of str, one per data row
        self.lines = lines  # file line number of each data row

    def fail(self, reason: str, *, index: int | None = None, field: str | None = None) -> NoReturn:
        row = None if index is None else int(self.lines[index])
        raise TraceFormatError(self.path, reason, row=row, field=field)

    def fail_first(self, bad: np.ndarray, field: str, reason: Callable[[int], str]) -> None:
        """Raise for the first true entry of ``bad``, if any; ``reason(i)`` builds the text."""
        if bad.any():
            i = int(np.argmax(bad))
            self.fail(reason(i), index=i, field=field)

    def empty(self, name: str) -> np.ndarray:
        return self.cells[name] == ""

    def number(
        self, name: str, default: np.ndarray | None = None, why: str = "the column is required"
    ) -> np.ndarray:
        """Column as float64; empty cells get ``default`` (an error saying ``why`` a value
        is needed when it is None)."""
        raw = self.cells[name]
        empty = self.empty(name)
        if default is None:
            self.fail_first(empty, name, lambda i: f"missing value ({why})")
        filled = raw if not empty.any() else np.where(empty, "0", raw)
        try:
            values = np.asarray(filled, dtype=np.float64)
        except (ValueError, TypeError):
            for i, cell in enumerate(filled):
                try:
                    float(cell)
                except ValueError:
                    self.fail(f"must be a number, got {cell!r}", index=i, field=name)
            raise  # pragma: no cover - numpy and float() disagree
        self.fail_first(~np.isfinite(values), name, lambda i: f"must be finite, got {raw[i]!r}")
        if default is not None and empty.any():
            values = np.where(empty, default, values)
        return values

    def integer(
        self, name: str, default: np.ndarray | None = None, why: str = "the column is required"
    ) -> np.ndarray:
        """Column as int64; integral floats such as ``4.0`` are accepted."""
        values = self.number(name, None if default is None else default.astype(np.float64), why)
        self.fail_first(
            values != np.floor(values),
            name,
            lambda i: f"must be an integer, got {self.cells[name][i]!r}",
        )
        self.fail_first(
            np.abs(values) > _INT_LIMIT,
            name,
            lambda i: f"out of range, got {self.cells[name][i]!r}",
        )
        return values.astype(np.int64)

    def string(self, name: str, default: str | None = None) -> np.ndarray:
        values = self.cells[name]
        empty = self.empty(name)
        if default is None:
            self.fail_first(empty, name, lambda i: "missing value (the column is required)")
            return values
        return np.where(empty, default, values).astype(object)

    def boolean(self, name: str) -> np.ndarray:
        words = np.char.lower(np.char.strip(self.cells[name].astype(str)))
        true = np.isin(words, list(TRUE_WORDS))
        ok = true | np.isin(words, list(FALSE_WORDS)) | (words == "")
        allowed = "/".join(sorted(TRUE_WORDS | FALSE_WORDS))
        self.fail_first(
            ~ok,
            name,
            lambda i: f"must be a boolean ({allowed}, any case), got {self.cells[name][i]!r}",
        )
        return true

    def extra(self, cell: str, kind: str) -> np.ndarray:
        """Extra column ``cell`` (its header cell) as type ``kind`` of ``EXTRA_TYPES``:
        text verbatim; a declared int, float or bool needs a value in every row."""
        if kind == "str":
            return self.cells[cell]
        why = f"a column declared {kind} needs a value in every row"
        if kind == "int":
            return self.integer(cell, why=why)
        if kind == "float":
            return self.number(cell, why=why)
        self.fail_first(self.empty(cell), cell, lambda i: f"missing value ({why})")
        return self.boolean(cell)


def _read_cells(path: PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Header names, a (rows, columns) object array of cell strings and the line numbers."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    if not text.strip():
        raise TraceFormatError(path, "file is empty (expected a header line and job rows)")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError as e:
        raise TraceFormatError(path, "no header on line 1", row=1) from e
    except pd.errors.ParserError as e:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
        if m is None:
            raise TraceFormatError(path, f"not valid CSV: {e}") from e
        expected, line, saw = (int(g) for g in m.groups())
        raise TraceFormatError(path, f"has {saw} cells, the header has {expected}", row=line) from e
    if '"' in text:  # only a quoted cell can hold a line break
        _reject_line_breaks(path, frame)
    cells = frame.to_numpy(dtype=object)
    header = [str(name).strip() for name in cells[0]]
    body = cells[1:]
    lines = np.arange(2, len(cells) + 1)
    blank = (body == "").all(axis=1)
    if blank.any():
        body, lines = body[~blank], lines[~blank]
    return header, body, lines


def _reject_line_breaks(path: PathLike, frame: pd.DataFrame) -> None:
    """Raise for the first quoted cell holding a line break (CR or LF).

    CSV quoting lets a cell span lines, but then a record no longer is a file line and
    every later row number would be wrong, so the format forbids it. Records before the
    first such cell each take one line, so record ``r`` (the header is record 0) starts
    on file line ``r + 1``: the row reported.
    """
    broken = np.column_stack(
        [frame[col].str.contains("[\r\n]", regex=True).to_numpy(dtype=bool) for col in frame]
    )
    if not broken.any():
        return
    rows = np.flatnonzero(broken.any(axis=1))
    r = int(rows[0])
    j = int(np.argmax(broken[r]))
    cell = str(frame.iat[r, j])
    reason = (
        f"quoted cell {cell!r} contains a line break; cells must fit on one line "
        "(a cell spanning lines would shift every later row number)"
    )
    if r == 0:
        raise TraceFormatError(path, f"header column {j + 1}: {reason}", row=1)
    field = str(frame.iat[0, j]).strip()
    raise TraceFormatError(path, reason, row=r + 1, field=field)


def _check_header(path: PathLike, header: list[str]) -> list[tuple[str, str, str]]:
    """Check the header; returns the extra columns as (header cell, name, type)."""
    seen: set[str] = set()
    extras = []
    for j, cell in enumerate(header):
        name, kind = cell, "str"
        if cell not in COLUMNS:
            name, kind = _extra_column(path, cell, j)
        if name in seen:
            raise TraceFormatError(
                path, f"column {name!r} appears twice in the header", row=1, field=cell
            )
        seen.add(name)
        if cell not in COLUMNS:
            extras.append((cell, name, kind))
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            raise TraceFormatError(
                path,
                f"missing required column {name!r} (required: {', '.join(REQUIRED_COLUMNS)})",
                field=name,
            )
    return extras


def _extra_column(path: PathLike, cell: str, j: int) -> tuple[str, str]:
    """(name, type) of header cell ``cell`` (column ``j``, from 0), a column outside the
    format: ``name`` or ``name:type``. ``TraceFormatError`` for an unknown type, a type
    on a format column and an undeclared name close to a format column's (a typo)."""
    name, colon, kind = cell.rpartition(":")
    if not colon:
        name, kind = cell, "str"
        near = difflib.get_close_matches(cell, COLUMNS, n=1, cutoff=0.8)
        if near:
            raise TraceFormatError(
                path,
                f"unknown column {cell!r}; did you mean {near[0]!r}? (to keep it as an extra "
                f"column, declare its type: '{cell}:str'; format columns: {', '.join(COLUMNS)})",
                row=1,
                field=cell,
            )
    if not name:
        raise TraceFormatError(path, f"header column {j + 1} has no name", row=1, field=cell)
    if kind not in EXTRA_TYPES:
        raise TraceFormatError(
            path,
            f"unknown type {kind!r} in column {cell!r}; extra columns are declared "
            f"name:type with a type of {', '.join(EXTRA_TYPES)}",
            row=1,
            field=cell,
        )
    if name in COLUMNS:
        raise TraceFormatError(
            path,
            f"{name!r} is a format column with a fixed type; write it without ':{kind}'",
            row=1,
            field=cell,
        )
    return name, kind


def load_trace(
    path: PathLike,
    *,
    max_gpus: int | None = None,
    known_profiles: Collection[str] | None = None,
) -> JobTable:
    """Read and validate a trace CSV file (format: ``traces/README.md``).

    Args:
        path: the CSV file.
        max_gpus: when given, a job asking for more GPUs than this (the cluster size) is
            an error.
        known_profiles: when given, the allowed ``profile`` names (pass the profile
            registry's names); otherwise any non-empty name is accepted.

    Returns:
        The jobs, in file order, with ``source`` set to ``path``.

    Raises:
        TraceFormatError: on the first rule the file breaks, naming row and column.
        OSError: when the file cannot be read.
    """
    header, body, lines = _read_cells(path)
    extra_columns = _check_header(path, header)
    if len(body) == 0:
        raise TraceFormatError(path, "no job rows after the header")
    n = len(body)
    cells = {name: body[:, j] for j, name in enumerate(header)}
    for name in COLUMNS:
        cells.setdefault(name, np.full(n, "", dtype=object))
    c = _Checker(path, cells, lines)

    job_id = c.string("job_id")
    dup = pd.Series(job_id).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        first = int(np.argmax(job_id == job_id[i]))
        c.fail(
            f"duplicate job_id {job_id[i]!r} (first used on row {lines[first]})",
            index=i,
            field="job_id",
        )

    submit = c.number("submit_time")
    c.fail_first(submit < 0, "submit_time", lambda i: f"must be >= 0, got {float(submit[i])!r}")
    back = np.zeros(n, bool)
    back[1:] = submit[1:] < submit[:-1]
    c.fail_first(
        back,
        "submit_time",
        lambda i: (
            f"must be non-decreasing (rows sorted by submit time), got {float(submit[i])!r} "
            f"after {float(submit[i - 1])!r} on row {lines[i - 1]}"
        ),
    )

    gpus = c.integer("gpus")
    c.fail_first(gpus < 1, "gpus", lambda i: f"must be >= 1, got {gpus[i]}")
    if max_gpus is not None:
        c.fail_first(
            gpus > max_gpus,
            "gpus",
            lambda i: f"must be <= {max_gpus} (the cluster's GPUs), got {gpus[i]}",
        )

    duration = c.number("duration")
    c.fail_first(duration <= 0, "duration", lambda i: f"must be > 0, got {float(duration[i])!r}")

    elastic = c.boolean("elastic")
    lo = c.integer("min_gpus", np.where(elastic, np.maximum(1, gpus // 2), gpus))
    hi = c.integer("max_gpus", np.where(elastic, 2 * gpus, gpus))
    c.fail_first(lo < 1, "min_gpus", lambda i: f"must be >= 1, got {lo[i]}")
    c.fail_first(lo > gpus, "min_gpus", lambda i: f"must be <= gpus ({gpus[i]}), got {lo[i]}")
    c.fail_first(hi < gpus, "max_gpus", lambda i: f"must be >= gpus ({gpus[i]}), got {hi[i]}")
    for name, bound in (("min_gpus", lo), ("max_gpus", hi)):
        c.fail_first(
            ~elastic & (bound != gpus),
            name,
            lambda i, b=bound: (
                f"must equal gpus ({gpus[i]}) or be empty for an inelastic job, got {b[i]}"
            ),
        )

    profile = c.string("profile", DEFAULT_PROFILE)
    if known_profiles is not None:
        known = sorted(set(known_profiles))
        c.fail_first(
            ~np.isin(profile.astype(str), known),
            "profile",
            lambda i: f"unknown profile {profile[i]!r}; known profiles: {', '.join(known)}",
        )
    user = c.string("user", "")
    extras = {name: c.extra(cell, kind) for cell, name, kind in extra_columns}

    return JobTable.from_columns(
        job_id=job_id,
        submit_time=submit,
        gpus=gpus,
        duration=duration,
        elastic=elastic,
        min_gpus=lo,
        max_gpus=hi,
        profile=profile,
        user=user,
        source=os.fspath(path),
        extras=extras,
    )


# --------------------------------------------------------------------------- saving


def save_trace(table: JobTable, path: PathLike) -> None:
    """Write ``table`` in the trace format, every column, floats at ``repr`` precision,
    then its extra columns, each declared with its type (``priority:int``, ``team:str``).

    The output loads back with :func:`load_trace` to an identical table (provided the
    table itself is valid). Raises ``ValueError`` if a text cell contains a line break,
    which would make the reported row numbers of later errors wrong.
    """
    text_columns = {
        name: [str(v) for v in getattr(table, name)] for name in ("job_id", "profile", "user")
    }
    extras = {f"{name}:{extra_type(v)}": v for name, v in table.extras.items()}
    text_columns.update(
        {cell: [str(x) for x in v] for cell, v in extras.items() if v.dtype == object}
    )
    for name, values in text_columns.items():
        for i, v in enumerate(values):
            if "\n" in v or "\r" in v:
                raise ValueError(
                    f"{table.source}: job {i} (file row {i + 2}), column {name!r} contains a "
                    f"line break: {v!r}"
                )
    columns = {
        "job_id": text_columns["job_id"],
        "submit_time": [repr(float(v)) for v in table.submit_time],
        "gpus": [str(int(v)) for v in table.gpus],
        "duration": [repr(float(v)) for v in table.duration],
        "elastic": ["true" if v else "false" for v in table.elastic],
        "min_gpus": [str(int(v)) for v in table.min_gpus],
        "max_gpus": [str(int(v)) for v in table.max_gpus],
        "profile": text_columns["profile"],
        "user": text_columns["user"],
    }
    for cell, v in extras.items():
        columns[cell] = text_columns[cell] if v.dtype == object else [_cell(x) for x in v]
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def _cell(value: np.generic) -> str:
    """A number or boolean of an extra column as the loader reads it back exactly."""
    if isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, np.floating):
        return repr(float(value))
    return str(int(value))
