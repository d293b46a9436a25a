"""What the trace readers share: the published columns of each format, the outcome
classes of a job, the CSV checks and :class:`Rows`, a trace parsed but not yet mapped."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# _read_cells / _Checker are trace_io's CSV reader and vectorised column checks; sharing
# them keeps row numbering and error wording identical to the project's own format.
from aryl_gym.workload.trace_io import TraceFormatError, _Checker, _read_cells

PathLike = str | os.PathLike[str]

# Header columns of each CSV format, as published.
ITP_COLUMNS = ("job_id", "submission_time", "duration", "num_gpu")
HELIOS_COLUMNS = (
    "u_id", "user", "gpu_num", "cpu_num", "node_num", "interval", "run_time", "wall_time", "new_status",
)  # fmt: skip
PAI2023_COLUMNS = (
    "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
    "creation_time", "deletion_time", "scheduled_time",
)  # fmt: skip
HELIOS_RAW_COLUMNS = (
    "job_id", "user", "gpu_num", "cpu_num", "node_num", "state", "submit_time", "start_time",
    "end_time", "duration", "queue",
)  # fmt: skip
PAI2020_COLUMNS = (
    "job_name", "task_name", "inst_num", "status", "start_time", "end_time", "plan_cpu",
    "plan_mem", "plan_gpu", "gpu_type",
)  # fmt: skip

# Job outcome classes every status is mapped to.
OK, FAILED, KILLED, CENSORED, NEVER = "ok", "failed", "killed", "censored", "never_started"


@dataclass
class Rows:
    """Rows of a trace after parsing, before mapping (one per job)."""

    job_id: np.ndarray
    submit: np.ndarray  # s, any origin
    gpus: np.ndarray  # int64, whole GPUs after rounding up
    fractional: np.ndarray  # bool: asked for part of a GPU
    duration: np.ndarray  # s, may be NaN for never-started / no-end rows
    kind: np.ndarray  # outcome class (OK, FAILED, ...)
    status: np.ndarray | None = None  # raw status words
    user: np.ndarray | None = None
    qos: np.ndarray | None = None
    profile: np.ndarray | None = None  # profile named by the trace; "" where none (drawn)
    duration_derived: bool = False  # duration computed from work and a run rate
    may_be_fractional: bool = False  # the format can ask for part of a GPU
    merged: int | None = None  # file rows folded into these (tasks_merged); None: never
    notes: list[str] = field(default_factory=list)  # for the report: choices made


def completed_rows(
    job_id: np.ndarray, submit: np.ndarray, gpus: np.ndarray, duration: np.ndarray, **more
) -> Rows:
    """:class:`Rows` of a trace with no status (every job ran to completion) and whole
    GPUs; ``more`` are the other fields (``profile``, ``duration_derived``, ``notes``)."""
    n = len(gpus)
    return Rows(
        job_id, submit, gpus, np.zeros(n, bool), duration, np.full(n, OK, dtype=object), **more
    )


def open_csv(
    path: PathLike,
    fmt: str,
    required: tuple[str, ...],
    *,
    headerless: tuple[str, ...] | None = None,
) -> _Checker:
    """Read a CSV, check that it has the ``required`` columns, return a checker over it.

    With ``headerless`` (the published column order), a first line of exactly that many
    cells none of which is a column name is a data row (line 1) of a file without header.
    """
    header, body, lines = _read_cells(path)
    if (
        headerless is not None
        and len(header) == len(headerless)
        and not set(header) & set(headerless)
    ):
        # The published file has no header: the first line is a data row (line 1).
        first = np.asarray([header], dtype=object)
        body = np.concatenate([first, body]) if len(body) else first
        lines = np.concatenate([[1], lines])
        header = list(headerless)
    missing = [c for c in required if c not in header]
    if missing:
        raise TraceFormatError(
            path,
            f"missing column {missing[0]!r} for format {fmt!r} (needs: {', '.join(required)})",
            field=missing[0],
        )
    if len(body) == 0:
        raise TraceFormatError(path, "no data rows after the header")
    cells = {name: np.asarray(body[:, j], dtype=object) for j, name in enumerate(header)}
    return _Checker(path, cells, np.asarray(lines))


def open_with_ids(
    path: PathLike,
    fmt: str,
    required: tuple[str, ...],
    id_column: str,
    *,
    headerless: tuple[str, ...] | None = None,
) -> tuple[_Checker, np.ndarray]:
    """:func:`open_csv` and the job ids of column ``id_column`` (checked unique)."""
    c = open_csv(path, fmt, required, headerless=headerless)
    ids = c.string(id_column)
    unique_ids(c, id_column, ids)
    return c, ids


def open_tsv(path: PathLike, fmt: str, columns: tuple[str, ...]) -> _Checker:
    """Read a headerless tab-separated file with exactly ``columns``, one record a line
    (no quoting: a tab always separates cells), cells stripped; blank lines are skipped
    but counted, so rows are file line numbers."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    records, lines = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(columns):
            raise TraceFormatError(
                path,
                f"has {len(cells)} tab-separated cells, format {fmt!r} has {len(columns)} "
                f"({', '.join(columns)})",
                row=number,
            )
        records.append([cell.strip() for cell in cells])
        lines.append(number)
    if not records:
        raise TraceFormatError(path, "file is empty (expected job rows)")
    body = np.asarray(records, dtype=object)
    cells = {name: body[:, j] for j, name in enumerate(columns)}
    return _Checker(path, cells, np.asarray(lines))


def line_ids(c: _Checker) -> np.ndarray:
    """Job ids for a format that has none: each row's file line number, as text."""
    return np.asarray([str(int(n)) for n in c.lines], dtype=object)


def nonneg(c: _Checker, name: str, values: np.ndarray, what: str = "") -> None:
    c.fail_first(
        values < 0,
        name,
        lambda i: f"must be >= 0{what}, got {c.cells[name][i]!r}",
    )


def nonneg_column(
    c: _Checker,
    name: str,
    *,
    integer: bool = False,
    what: str = "",
    default: np.ndarray | float | None = None,
) -> np.ndarray:
    """Column ``name`` as numbers (integers with ``integer``), checked >= 0; ``what``
    follows ">= 0" in the error, ``default`` fills empty cells (None: they are an error)."""
    values = (c.integer if integer else c.number)(name, default)
    nonneg(c, name, values, what)
    return values


def not_before(
    c: _Checker, name: str, values: np.ndarray, other: str, others: np.ndarray, what: str
) -> None:
    """Fail on the first row where ``values`` (column ``name``) < ``others`` (``other``)."""
    c.fail_first(
        values < others,
        name,
        lambda i: f"{what}: {c.cells[name][i]!r} < {other} {c.cells[other][i]!r}",
    )


def known_words(c: _Checker, name: str, known: Collection[str], what: str) -> np.ndarray:
    """Column ``name`` stripped, each cell one of ``known``; else an error naming the
    row and listing them (``what`` names the kind of word, e.g. ``"status"``)."""
    raw = c.string(name)
    words = np.asarray([str(w).strip() for w in raw], dtype=object)
    c.fail_first(
        ~np.isin(words.astype(str), list(known)),
        name,
        lambda i: f"unknown {what} {raw[i]!r}; known: {', '.join(known)}",
    )
    return words


def status_column(
    c: _Checker, name: str, mapping: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """(raw status words, outcome class per row); unknown words are an error."""
    words = known_words(c, name, mapping, "status")
    kind = pd.Series(words).map(mapping).to_numpy(dtype=object)
    return words, kind


def is_number(text: str) -> bool:
    """Whether ``text`` parses as a finite float (for header tests of headerless files)."""
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def unique_ids(c: _Checker, name: str, ids: np.ndarray) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        first = int(np.argmax(ids == ids[i]))
        c.fail(f"duplicate id {ids[i]!r} (first used on row {c.lines[first]})", index=i, field=name)


def time_seconds(c: _Checker, name: str, *, allow_empty: bool) -> np.ndarray:
    """A time column in seconds: plain numbers, or date-times (as seconds since 1970).

    Empty cells give NaN when ``allow_empty``. A column is read as numbers when all its
    non-empty cells are numbers, else every non-empty cell must parse as a date-time.
    """
    raw = c.cells[name]
    empty = c.empty(name)
    if not allow_empty:
        c.fail_first(empty, name, lambda i: "missing value (the column is required)")
    s = pd.Series(raw, dtype=object).where(~empty, None)
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(num[~empty]).any():
        dt = pd.to_datetime(s, errors="coerce", format="ISO8601")
        secs = (dt - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=np.float64)
        c.fail_first(
            ~empty & np.isnan(secs),
            name,
            lambda i: (
                f"must be seconds or a date-time such as '2020-04-01 08:00:00', got {raw[i]!r}"
            ),
        )
        return secs
    c.fail_first(~empty & ~np.isfinite(num), name, lambda i: f"must be finite, got {raw[i]!r}")
    return num
