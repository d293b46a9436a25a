"""Loaders for public GPU-cluster traces: each turns a real file into a :class:`JobTable`.

Formats (``FORMATS``; details, columns and mapping choices in ``traces/README.md``):

========== ================================================================ ==========
name       source                                                           tested on
========== ================================================================ ==========
aryl       the project's own CSV format (``trace_io.load_trace``)           repo files
itp        Microsoft ITP job list (microsoft/elasticflow-traces clusterNN)  full file
helios     SenseTime Helios excerpt reformatted by DIR-LAB (interval form)  full file
pai2023    Alibaba PAI 2023 pod list (clusterdata cluster-trace-gpu-v2023)  full file
philly     Microsoft Philly ``cluster_job_log`` (JSON list of jobs)         synthetic
helios-raw SenseTime HeliosData ``cluster_log.csv``                         synthetic
pai2020    Alibaba PAI 2020 ``pai_task_table`` (with or without header)     synthetic
========== ================================================================ ==========

The last three were written from the published schemas of those datasets (their
READMEs), not against the full files, which are external downloads: check the
:class:`MappingReport` the first time you load one.

Every loader checks its input and raises :class:`~aryl_gym.workload.trace_io.TraceFormatError`
naming the file, the row (a file line number: header = 1, first data row = 2; for the
Philly JSON list, the 1-based position of the job record) and the field. Well-formed rows
that the simulator cannot use (CPU-only, never started, too short, ...) are dropped and
counted in the :class:`MappingReport`, never silently. Jobs are sorted by submit time and
shifted so that the first one is submitted at 0. The traces carry no elastic flag and no
model, so :class:`MappingOptions` draws both (seeded).

:func:`size_cluster_for` sizes a training pool for a loaded trace at a target load.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from aryl_gym.workload.schema import COLUMNS, REQUIRED_COLUMNS, JobTable

# _read_cells / _Checker are trace_io's CSV reader and vectorised column checks; sharing
# them keeps row numbering and error wording identical to the project's own format.
from aryl_gym.workload.trace_io import TraceFormatError, _Checker, _read_cells

__all__ = [
    "FORMATS",
    "MappingOptions",
    "MappingReport",
    "detect_format",
    "load_any",
    "offered_gpu_demand",
    "size_cluster_for",
]

PathLike = str | os.PathLike[str]

#: Format name -> one-line description.
FORMATS: dict[str, str] = {
    "aryl": "the project's own trace format (traces/README.md)",
    "itp": "Microsoft ITP / ElasticFlow job list: job_id,submission_time,duration,num_gpu",
    "helios": "SenseTime Helios excerpt (DIR-LAB): u_id,user,gpu_num,...,interval,run_time,...,new_status",
    "pai2023": "Alibaba PAI 2023 pod list: name,...,num_gpu,gpu_milli,...,qos,pod_phase,creation_time,deletion_time,scheduled_time",
    "philly": "Microsoft Philly cluster_job_log (JSON list of jobs with attempts)",
    "helios-raw": "SenseTime HeliosData cluster_log.csv: job_id,user,gpu_num,...,state,submit_time,start_time,end_time,duration,queue",
    "pai2020": "Alibaba PAI 2020 pai_task_table: job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type",
}

#: Whether the format's times keep a wall clock (hour of day meaningful).
HAS_CLOCK: dict[str, bool] = {
    "aryl": True,
    "itp": True,
    "helios": False,  # DIR-LAB replaced timestamps by inter-arrival gaps
    "pai2023": True,
    "philly": True,
    "helios-raw": True,
    "pai2020": True,
}

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

# Columns a file must have to be loaded (others may be absent) and that identify it.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "itp": ITP_COLUMNS,
    "helios": ("u_id", "gpu_num", "interval", "run_time", "new_status"),
    "pai2023": ("name", "num_gpu", "gpu_milli", "pod_phase", "creation_time", "deletion_time", "scheduled_time"),
    "helios-raw": ("job_id", "gpu_num", "state", "submit_time", "start_time", "duration"),
    "pai2020": ("job_name", "inst_num", "status", "start_time", "end_time", "plan_gpu"),
}  # fmt: skip

# Job outcome classes every status is mapped to.
OK, FAILED, KILLED, CENSORED, NEVER = "ok", "failed", "killed", "censored", "never_started"

_HELIOS_STATUS = {"Pass": OK, "Failed": FAILED, "Killed": KILLED}
_PAI2023_PHASE = {"Succeeded": OK, "Failed": FAILED, "Running": CENSORED, "Pending": NEVER}
_PAI2020_STATUS = {"Terminated": OK, "Failed": FAILED, "Running": CENSORED, "Waiting": NEVER}
_PHILLY_STATUS = {"Pass": OK, "Failed": FAILED, "Killed": KILLED, "Running": CENSORED}
# Slurm job states (HeliosData ran Slurm). Compared upper-case; "CANCELLED by 123" counts
# as CANCELLED.
_SLURM_STATE = {
    "COMPLETED": OK,
    "CANCELLED": KILLED,
    "FAILED": FAILED,
    "TIMEOUT": FAILED,
    "NODE_FAIL": FAILED,
    "OUT_OF_MEMORY": FAILED,
    "BOOT_FAIL": FAILED,
    "DEADLINE": FAILED,
    "PREEMPTED": FAILED,
    "RUNNING": CENSORED,
    "PENDING": NEVER,
}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class MappingOptions:
    """Choices made when a real trace is mapped to the simulator's jobs.

    Attributes:
        elastic_share: probability that a job is made elastic (the traces record no
            elasticity); elastic jobs get the MODEL.md bounds ``[max(1, g // 2), 2 g]``.
        seed: seed of the elastic flags and of the profiles (drawn from
            ``profiles.DEFAULT_PROFILE_MIX``), one generator, elastic flags first.
        min_duration_s: rows with a run time below this (zero included) are dropped and
            counted (the simulator needs ``duration > 0``).
        keep_failed: keep failed and killed jobs with the run time they had (True), or
            drop them (counted).
        fractional_gpu: ``"ceil"``: a task asking for part of a GPU holds whole GPUs
            (``num_gpu`` of them; PAI 2020: ``ceil(plan_gpu / 100)`` per instance),
            counted as ``fractional_gpu_rounded``; ``"drop"``: drop it (counted).
        include_censored: keep rows still running when the trace ended (PAI ``Running``)
            with their observed duration, counted as ``censored_kept``; False drops them.
        qos: PAI 2023 only: keep only these ``qos`` classes (e.g. ``("BE",)``); None
            keeps all. 57 % of that file is LS (latency-sensitive, inference-like).
            A string is accepted: ``"BE"``, ``"BE,Burstable"`` or ``"BE-only"``.
        max_gpus: drop (and count) jobs asking for more GPUs than this; None keeps all.
    """

    elastic_share: float = 0.5
    seed: int = 0
    min_duration_s: float = 1.0
    keep_failed: bool = True
    fractional_gpu: str = "ceil"
    include_censored: bool = True
    qos: tuple[str, ...] | None = None
    max_gpus: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.elastic_share <= 1.0:
            raise ValueError(
                f"MappingOptions.elastic_share must be in [0, 1], got {self.elastic_share}"
            )
        if not (self.min_duration_s >= 0 and math.isfinite(self.min_duration_s)):
            raise ValueError(
                f"MappingOptions.min_duration_s must be >= 0, got {self.min_duration_s}"
            )
        if self.fractional_gpu not in ("ceil", "drop"):
            raise ValueError(
                f"MappingOptions.fractional_gpu must be 'ceil' or 'drop', got {self.fractional_gpu!r}"
            )
        if self.max_gpus is not None and self.max_gpus < 1:
            raise ValueError(f"MappingOptions.max_gpus must be >= 1, got {self.max_gpus}")
        if isinstance(self.qos, str):
            object.__setattr__(self, "qos", parse_qos(self.qos))
        elif self.qos is not None:
            object.__setattr__(self, "qos", tuple(self.qos))
            if not self.qos:
                raise ValueError("MappingOptions.qos must name at least one class (or be None)")


def parse_qos(spec: str) -> tuple[str, ...] | None:
    """``"BE"``, ``"BE-only"``, ``"BE,Burstable"`` -> a tuple of classes; ``"all"``/"" -> None."""
    spec = spec.strip()
    if spec.lower() in ("", "all"):
        return None
    names = []
    for part in spec.split(","):
        part = part.strip()
        if part.lower().endswith("-only"):
            part = part[: -len("-only")]
        if not part:
            raise ValueError(f"bad qos filter {spec!r}: empty class name")
        names.append(part)
    return tuple(names)


# --------------------------------------------------------------------------- report

#: Meaning of each report counter (the ones a loader uses appear in its report, zeros too).
REASONS: dict[str, str] = {
    "tasks_merged": "task rows folded into their job (PAI 2020: one job per job_name)",
    "never_started_dropped": "never ran (Pending / Waiting / no attempt / no start time)",
    "cpu_only_dropped": "asks for no GPU",
    "qos_dropped": "qos class not in the qos filter",
    "fractional_gpu_dropped": "asks for part of a GPU (fractional_gpu='drop')",
    "failed_dropped": "failed (keep_failed=False)",
    "killed_dropped": "killed / cancelled (keep_failed=False)",
    "censored_dropped": "still running at the end of the trace (include_censored=False)",
    "censored_no_end_dropped": "still running at the end of the trace with no end time",
    "zero_duration_dropped": "run time of 0 s",
    "short_duration_dropped": "run time > 0 but below min_duration_s",
    "over_max_gpus_dropped": "asks for more GPUs than max_gpus",
    "fractional_gpu_rounded": "kept: part of a GPU rounded up to whole GPUs",
    "failed_kept": "kept: failed, with the run time it had",
    "killed_kept": "kept: killed / cancelled, with the run time it had",
    "censored_kept": "kept: still running at the end, with its observed (censored) duration",
}


@dataclass
class MappingReport:
    """What a loader did to a file: rows read, kept, and each drop or mapping reason.

    ``counts`` maps reason names (see ``REASONS``) to row counts. Reasons ending in
    ``_dropped`` or ``_merged`` account for every row not kept, so
    ``rows_read == rows_kept + dropped`` always holds. ``status_counts`` counts the
    kept rows by the trace's own status word (empty when the format has none).
    ``time_shift_s`` was added to every submit time (minus the first submit).
    """

    source: str
    format: str
    rows_read: int = 0
    rows_kept: int = 0
    time_shift_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        """Rows not kept (sum of the ``*_dropped`` and ``*_merged`` counters)."""
        return sum(v for k, v in self.counts.items() if k.endswith(("_dropped", "_merged")))

    def add(self, reason: str, n: int = 0) -> None:
        if reason not in REASONS:
            raise KeyError(f"unknown report reason {reason!r}")
        self.counts[reason] = self.counts.get(reason, 0) + int(n)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            **self.counts,
            "rows_kept": self.rows_kept,
            "time_shift_s": self.time_shift_s,
            "status_counts": dict(self.status_counts),
        }

    def __str__(self) -> str:
        lines = [
            ("source", self.source),
            ("format", self.format),
            ("rows_read", f"{self.rows_read:,}"),
        ]
        lines += [(k, f"{v:,}") for k, v in self.counts.items()]
        lines += [
            ("rows_kept", f"{self.rows_kept:,}"),
            ("time_shift_s", f"{self.time_shift_s:,.1f}"),
        ]
        if self.status_counts:
            lines.append(
                ("status_kept", ", ".join(f"{k} {v:,}" for k, v in self.status_counts.items()))
            )
        width = max(len(k) for k, _ in lines)
        out = [f"{k:<{width}}  {v}" for k, v in lines]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)


# --------------------------------------------------------------------------- detection


def _first_line(path: PathLike) -> str:
    with open(path, encoding="utf-8-sig", newline="") as f:
        for line in f:
            if line.strip():
                return line
    raise TraceFormatError(path, "file is empty (expected a header line and rows)")


def detect_format(path: PathLike) -> str:
    """The format of ``path`` (a key of ``FORMATS``), told from its header columns.

    A file whose first character is ``[`` or ``{`` is a Philly JSON job log. A CSV with
    every required column of the project's format and no other column is ``"aryl"``; the
    others need their identifying columns (extra columns are allowed). A headerless PAI
    2020 task table (as published) is recognised by its 10 cells with a PAI status in the
    4th. Failing all that, the format sharing strictly the most of its required columns,
    at least half, is returned (its loader then names the missing column). Raises
    ``TraceFormatError`` (row 1) when nothing matches.
    """
    try:
        line = _first_line(path)
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    if line.lstrip()[:1] in ("[", "{"):
        return "philly"
    cells = [c.strip() for c in next(csv.reader(io.StringIO(line)))]
    names = set(cells)
    if set(REQUIRED_COLUMNS) <= names and names <= set(COLUMNS):
        return "aryl"
    for fmt in ("itp", "helios", "pai2023", "helios-raw", "pai2020"):
        if set(_REQUIRED[fmt]) <= names:
            return fmt
    if len(cells) == len(PAI2020_COLUMNS) and cells[3] in _PAI2020_STATUS:
        return "pai2020"
    # No complete match: take the format sharing most of its required columns (at least
    # half of them), so that its loader can name the missing column.
    required = {"aryl": REQUIRED_COLUMNS, **_REQUIRED}
    score = {fmt: len(names & set(cols)) / len(cols) for fmt, cols in required.items()}
    best = max(score, key=score.__getitem__)
    if score[best] >= 0.5 and sorted(score.values())[-2] < score[best]:
        return best
    raise TraceFormatError(
        path,
        f"cannot tell the trace format from the header {', '.join(cells[:12])!r}; "
        f"known formats: {', '.join(FORMATS)} (pass the format explicitly)",
        row=1,
    )


# --------------------------------------------------------------------------- CSV helpers


def _open_csv(path: PathLike, fmt: str, *, headerless: tuple[str, ...] | None = None) -> _Checker:
    """Read a CSV, check its required columns, return a checker over its cells."""
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
    missing = [c for c in _REQUIRED[fmt] if c not in header]
    if missing:
        raise TraceFormatError(
            path,
            f"missing column {missing[0]!r} for format {fmt!r} (needs: {', '.join(_REQUIRED[fmt])})",
            field=missing[0],
        )
    if len(body) == 0:
        raise TraceFormatError(path, "no data rows after the header")
    n = len(body)
    cells = {name: np.asarray(body[:, j], dtype=object) for j, name in enumerate(header)}
    for name in header:
        cells.setdefault(name, np.full(n, "", dtype=object))
    c = _Checker(path, cells, np.asarray(lines))
    return c


def _nonneg(c: _Checker, name: str, values: np.ndarray, what: str = "") -> None:
    c.fail_first(
        values < 0,
        name,
        lambda i: f"must be >= 0{what}, got {c.cells[name][i]!r}",
    )


def _status(c: _Checker, name: str, mapping: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(raw status words, outcome class per row); unknown words are an error."""
    raw = c.string(name)
    words = np.asarray([str(w).strip() for w in raw], dtype=object)
    known = np.isin(words.astype(str), list(mapping))
    c.fail_first(
        ~known,
        name,
        lambda i: f"unknown status {raw[i]!r}; known: {', '.join(mapping)}",
    )
    kind = pd.Series(words).map(mapping).to_numpy(dtype=object)
    return words, kind


def _unique_ids(c: _Checker, name: str, ids: np.ndarray) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        first = int(np.argmax(ids == ids[i]))
        c.fail(f"duplicate id {ids[i]!r} (first used on row {c.lines[first]})", index=i, field=name)


def _time_seconds(c: _Checker, name: str, *, allow_empty: bool) -> np.ndarray:
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


# --------------------------------------------------------------------------- mapping core


@dataclass
class _Rows:
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


def _map(
    path: PathLike, fmt: str, rows: _Rows, options: MappingOptions, report: MappingReport
) -> JobTable:
    """Apply drops in a fixed order (first reason wins), sort, shift, draw flags."""
    n = len(rows.submit)
    keep = np.ones(n, bool)

    def drop(reason: str, mask: np.ndarray) -> None:
        m = keep & mask
        report.add(reason, int(m.sum()))
        keep[m] = False

    kind = rows.kind
    has_status = rows.status is not None
    drop("never_started_dropped", kind == NEVER)
    drop("censored_no_end_dropped", (kind == CENSORED) & np.isnan(rows.duration))
    drop("cpu_only_dropped", rows.gpus <= 0)
    if rows.qos is not None:
        if options.qos is not None:
            drop("qos_dropped", ~np.isin(rows.qos.astype(str), list(options.qos)))
    elif options.qos is not None:
        report.notes.append(
            f"qos filter {','.join(options.qos)} ignored: format {fmt!r} has no qos"
        )
    has_fraction = bool(rows.fractional.any()) or fmt in ("pai2023", "pai2020")
    if has_fraction and options.fractional_gpu == "drop":
        drop("fractional_gpu_dropped", rows.fractional)
    if has_status and not options.keep_failed:
        drop("failed_dropped", kind == FAILED)
        drop("killed_dropped", kind == KILLED)
    if has_status and not options.include_censored:
        drop("censored_dropped", kind == CENSORED)
    dur = np.nan_to_num(rows.duration, nan=0.0)
    drop("zero_duration_dropped", dur <= 0)
    drop("short_duration_dropped", dur < options.min_duration_s)
    if options.max_gpus is not None:
        drop("over_max_gpus_dropped", rows.gpus > options.max_gpus)
    if has_fraction and options.fractional_gpu == "ceil":
        report.add("fractional_gpu_rounded", int((keep & rows.fractional).sum()))
    if has_status:
        report.add("failed_kept", int((keep & (kind == FAILED)).sum()))
        report.add("killed_kept", int((keep & (kind == KILLED)).sum()))
        report.add("censored_kept", int((keep & (kind == CENSORED)).sum()))

    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise TraceFormatError(path, f"no job left after mapping (all {n} rows dropped):\n{report}")
    submit = rows.submit[idx]
    order = np.argsort(submit, kind="stable")
    if not (order == np.arange(idx.size)).all():
        report.notes.append("rows were not in submit-time order; sorted (stable)")
    idx = idx[order]
    submit = rows.submit[idx]
    t0 = float(submit[0])
    report.time_shift_s = 0.0 - t0  # never -0.0
    report.rows_kept = int(idx.size)
    if has_status:
        words = pd.Series(rows.status[idx]).value_counts()
        report.status_counts = {str(k): int(v) for k, v in words.items()}

    from aryl_gym.workload.profiles import DEFAULT_PROFILE_MIX

    rng = np.random.default_rng(options.seed)
    m = idx.size
    elastic = rng.random(m) < options.elastic_share
    names = list(DEFAULT_PROFILE_MIX)
    p = np.asarray([DEFAULT_PROFILE_MIX[k] for k in names], float)
    profile = np.asarray(names, dtype=object)[rng.choice(len(names), size=m, p=p / p.sum())]
    user = None if rows.user is None else rows.user[idx]
    return JobTable.from_columns(
        job_id=rows.job_id[idx],
        submit_time=submit - t0,
        gpus=rows.gpus[idx],
        duration=rows.duration[idx],
        elastic=elastic,
        profile=profile,
        user=user,
        source=os.fspath(path),
    )


# --------------------------------------------------------------------------- per format


def _read_itp(path: PathLike) -> _Rows:
    c = _open_csv(path, "itp")
    job_id = c.string("job_id")
    _unique_ids(c, "job_id", job_id)
    submit = c.number("submission_time")
    _nonneg(c, "submission_time", submit)
    back = np.zeros(len(submit), bool)
    back[1:] = submit[1:] < submit[:-1]
    c.fail_first(
        back,
        "submission_time",
        lambda i: (
            f"must be non-decreasing (the ITP file is sorted), got {c.cells['submission_time'][i]!r} "
            f"after {c.cells['submission_time'][i - 1]!r} on row {c.lines[i - 1]}"
        ),
    )
    duration = c.number("duration")
    _nonneg(c, "duration", duration)
    gpus = c.integer("num_gpu")
    _nonneg(c, "num_gpu", gpus)
    n = len(submit)
    return _Rows(job_id, submit, gpus, np.zeros(n, bool), duration, np.full(n, OK, dtype=object))


def _read_helios(path: PathLike) -> _Rows:
    c = _open_csv(path, "helios")
    job_id = c.string("u_id")
    _unique_ids(c, "u_id", job_id)
    interval = c.number("interval")
    _nonneg(c, "interval", interval, " (seconds since the previous submission)")
    duration = c.number("run_time")
    _nonneg(c, "run_time", duration)
    gpus = c.integer("gpu_num")
    _nonneg(c, "gpu_num", gpus)
    status, kind = _status(c, "new_status", _HELIOS_STATUS)
    user = c.string("user", "")
    return _Rows(
        job_id, np.cumsum(interval), gpus, np.zeros(len(gpus), bool), duration, kind, status, user
    )


def _read_pai2023(path: PathLike) -> _Rows:
    c = _open_csv(path, "pai2023")
    job_id = c.string("name")
    _unique_ids(c, "name", job_id)
    num_gpu = c.integer("num_gpu")
    _nonneg(c, "num_gpu", num_gpu)
    milli = c.integer("gpu_milli")
    c.fail_first(
        (milli < 0) | (milli > 1000),
        "gpu_milli",
        lambda i: f"must be in [0, 1000] (milli-GPU per GPU), got {c.cells['gpu_milli'][i]!r}",
    )
    status, kind = _status(c, "pod_phase", _PAI2023_PHASE)
    created = c.number("creation_time")
    _nonneg(c, "creation_time", created)
    deleted = c.number("deletion_time")
    c.fail_first(
        deleted < created,
        "deletion_time",
        lambda i: (
            f"deletion before creation: {c.cells['deletion_time'][i]!r} < creation_time {c.cells['creation_time'][i]!r}"
        ),
    )
    sched = c.number("scheduled_time", np.nan)
    c.fail_first(
        np.isnan(sched) & (kind != NEVER),
        "scheduled_time",
        lambda i: f"missing value (only Pending pods may lack it; pod_phase is {status[i]!r})",
    )
    c.fail_first(
        sched < created,
        "scheduled_time",
        lambda i: (
            f"scheduled before creation: {c.cells['scheduled_time'][i]!r} < creation_time {c.cells['creation_time'][i]!r}"
        ),
    )
    c.fail_first(
        deleted < sched,
        "deletion_time",
        lambda i: (
            f"deletion before scheduling: {c.cells['deletion_time'][i]!r} < scheduled_time {c.cells['scheduled_time'][i]!r}"
        ),
    )
    qos = c.string("qos", "") if "qos" in c.cells else None
    demand = num_gpu * milli  # milli-GPUs in all
    gpus = np.where(demand > 0, num_gpu, 0)
    fractional = (demand > 0) & (milli < 1000)
    duration = deleted - sched  # run time: scheduled (started) to deleted
    return _Rows(job_id, created, gpus, fractional, duration, kind, status, None, qos)


def _read_helios_raw(path: PathLike) -> _Rows:
    c = _open_csv(path, "helios-raw")
    job_id = c.string("job_id")
    _unique_ids(c, "job_id", job_id)
    gpus = c.integer("gpu_num")
    _nonneg(c, "gpu_num", gpus)
    raw_state = c.string("state")
    words = np.asarray([str(s).strip().upper() for s in raw_state], dtype=object)
    words = np.asarray(
        ["CANCELLED" if w.startswith("CANCELLED") else w for w in words], dtype=object
    )
    c.cells["state"] = words
    status, kind = _status(c, "state", _SLURM_STATE)
    submit = _time_seconds(c, "submit_time", allow_empty=False)
    start = _time_seconds(c, "start_time", allow_empty=True)
    c.fail_first(
        start < submit,
        "start_time",
        lambda i: (
            f"start before submission: {c.cells['start_time'][i]!r} < submit_time {c.cells['submit_time'][i]!r}"
        ),
    )
    started = ~np.isnan(start)
    kind = np.where(~started, NEVER, kind)
    duration = c.number("duration", np.nan)
    c.fail_first(
        started & np.isnan(duration) & (kind != CENSORED),
        "duration",
        lambda i: "missing value (required for a job that started)",
    )
    c.fail_first(
        duration < 0, "duration", lambda i: f"must be >= 0, got {c.cells['duration'][i]!r}"
    )
    user = c.string("user", "") if "user" in c.cells else None
    n = len(gpus)
    return _Rows(job_id, submit, gpus, np.zeros(n, bool), duration, kind, status, user)


def _read_pai2020(path: PathLike) -> tuple[_Rows, int]:
    """Task rows grouped into jobs; returns the rows and the number of task rows."""
    c = _open_csv(path, "pai2020", headerless=PAI2020_COLUMNS)
    name = c.string("job_name")
    inst = c.number("inst_num")
    c.fail_first(inst < 1, "inst_num", lambda i: f"must be >= 1, got {c.cells['inst_num'][i]!r}")
    status, kind = _status(c, "status", _PAI2020_STATUS)
    start = c.number("start_time", np.nan)
    end = c.number("end_time", np.nan)
    _nonneg(c, "start_time", start)
    c.fail_first(
        end < start,
        "end_time",
        lambda i: (
            f"end before start: {c.cells['end_time'][i]!r} < start_time {c.cells['start_time'][i]!r}"
        ),
    )
    c.fail_first(
        np.isnan(end) & ~np.isnan(start) & (kind != CENSORED),
        "end_time",
        lambda i: f"missing value (only Running tasks may lack it; status is {status[i]!r})",
    )
    plan = c.number("plan_gpu", 0.0)
    _nonneg(c, "plan_gpu", plan, " (percent of one GPU)")
    frame = pd.DataFrame(
        {
            "job": name,
            "start": start,
            "end": end,
            "whole": inst * np.ceil(plan / 100.0),
            "frac": (plan > 0) & (plan % 100 != 0),
            "failed": kind == FAILED,
            "running": kind == CENSORED,
            "no_end": ~np.isnan(start) & np.isnan(end),
        }
    )
    g = frame.groupby("job", sort=False)
    jobs = g.agg(
        start=("start", "min"),
        end=("end", "max"),
        whole=("whole", "sum"),
        frac=("frac", "any"),
        failed=("failed", "any"),
        running=("running", "any"),
        no_end=("no_end", "any"),
    )
    jkind = np.where(
        jobs["failed"], FAILED, np.where(jobs["running"] | jobs["no_end"], CENSORED, OK)
    ).astype(object)
    jkind[np.isnan(jobs["start"].to_numpy())] = NEVER
    duration = np.array(jobs["end"] - jobs["start"], dtype=np.float64)  # a writable copy
    duration[jobs["no_end"].to_numpy()] = np.nan
    status_word = {OK: "Terminated", FAILED: "Failed", CENSORED: "Running", NEVER: "Waiting"}
    rows = _Rows(
        job_id=jobs.index.to_numpy(dtype=object),
        submit=np.nan_to_num(jobs["start"].to_numpy(dtype=np.float64), nan=0.0),
        gpus=jobs["whole"].to_numpy().astype(np.int64),
        fractional=jobs["frac"].to_numpy(dtype=bool),
        duration=duration,
        kind=jkind,
        status=np.asarray([status_word[k] for k in jkind], dtype=object),
    )
    return rows, len(name)


def _philly_fail(path: PathLike, reason: str, record: int, fld: str) -> TraceFormatError:
    return TraceFormatError(path, reason, row=record + 1, field=fld)


def _read_philly(path: PathLike) -> _Rows:
    """Philly cluster_job_log: a JSON list of jobs; row = 1-based position in the list."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise TraceFormatError(
            path, f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from e
    if isinstance(data, dict):  # tolerate {"jobs": [...]} wrappers
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise TraceFormatError(path, "expected a JSON list of job records")
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise TraceFormatError(path, "expected a non-empty JSON list of job records")
    n = len(data)
    ids, users, statuses, submitted = [], [], [], []
    gpus = np.zeros(n, np.int64)
    att_start, att_end, att_job, att_k = [], [], [], []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise _philly_fail(path, f"must be a JSON object, got {type(rec).__name__}", i, "job")
        for key in ("jobid", "status", "submitted_time", "attempts"):
            if key not in rec:
                raise _philly_fail(path, "missing key (required)", i, key)
        if rec["jobid"] in (None, ""):
            raise _philly_fail(path, "missing value", i, "jobid")
        ids.append(str(rec["jobid"]))
        users.append("" if rec.get("user") is None else str(rec["user"]))
        st = rec["status"]
        if st not in _PHILLY_STATUS:
            raise _philly_fail(
                path, f"unknown status {st!r}; known: {', '.join(_PHILLY_STATUS)}", i, "status"
            )
        statuses.append(st)
        if not isinstance(rec["submitted_time"], str) or rec["submitted_time"] in ("", "None"):
            raise _philly_fail(
                path, f"must be a date-time, got {rec['submitted_time']!r}", i, "submitted_time"
            )
        submitted.append(rec["submitted_time"])
        attempts = rec["attempts"]
        if not isinstance(attempts, list):
            raise _philly_fail(path, "must be a list", i, "attempts")
        for k, a in enumerate(attempts):
            if not isinstance(a, dict):
                raise _philly_fail(path, "must be a JSON object", i, f"attempts[{k}]")
            n_gpu = 0
            for d, det in enumerate(a.get("detail") or []):
                g = det.get("gpus") if isinstance(det, dict) else None
                if not isinstance(g, list):
                    raise _philly_fail(
                        path, "must be a list of GPU names", i, f"attempts[{k}].detail[{d}].gpus"
                    )
                n_gpu += len(g)
            gpus[i] = max(gpus[i], n_gpu)
            att_start.append(a.get("start_time"))
            att_end.append(a.get("end_time"))
            att_job.append(i)
            att_k.append(k)

    def parse(values: list, where) -> np.ndarray:
        # null, "" and the string "None" all mean "no time" (unfinished or never started)
        s = pd.Series([None if v in ("", "None", "null") else v for v in values], dtype=object)
        missing = s.isna().to_numpy()
        dt = pd.to_datetime(s, errors="coerce", format="ISO8601")
        bad = ~missing & dt.isna().to_numpy()
        if bad.any():
            j = int(np.argmax(bad))
            rec, fld = where(j)
            raise _philly_fail(
                path,
                f"must be a date-time such as '2017-10-03 14:05:31', got {values[j]!r}",
                rec,
                fld,
            )
        return (dt - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=np.float64)

    submit = parse(submitted, lambda j: (j, "submitted_time"))
    if np.isnan(submit).any():
        j = int(np.argmax(np.isnan(submit)))
        raise _philly_fail(path, "missing value", j, "submitted_time")
    a_job = np.asarray(att_job, np.int64)
    start = parse(att_start, lambda j: (att_job[j], f"attempts[{att_k[j]}].start_time"))
    end = parse(att_end, lambda j: (att_job[j], f"attempts[{att_k[j]}].end_time"))
    bad = end < start
    if bad.any():
        j = int(np.argmax(bad))
        raise _philly_fail(
            path,
            f"end before start ({att_end[j]!r} < {att_start[j]!r})",
            att_job[j],
            f"attempts[{att_k[j]}].end_time",
        )
    ran = ~np.isnan(start)
    finished = ran & ~np.isnan(end)
    duration = np.zeros(n)
    np.add.at(duration, a_job[finished], end[finished] - start[finished])
    any_ran = np.zeros(n, bool)
    any_ran[a_job[ran]] = True
    open_end = np.zeros(n, bool)
    open_end[a_job[ran & np.isnan(end)]] = True

    status = np.asarray(statuses, dtype=object)
    kind = pd.Series(status).map(_PHILLY_STATUS).to_numpy(dtype=object)
    kind = np.where(open_end, CENSORED, kind)
    kind = np.where(~any_ran, NEVER, kind)
    duration = np.where(open_end, np.nan, duration)
    return _Rows(
        np.asarray(ids, dtype=object), submit, gpus, np.zeros(n, bool), duration, kind, status,
        np.asarray(users, dtype=object),
    )  # fmt: skip


# --------------------------------------------------------------------------- entry point


def load_any(
    path: PathLike, fmt: str | None = None, *, options: MappingOptions | None = None
) -> tuple[JobTable, MappingReport]:
    """Load ``path`` in format ``fmt`` (detected from the header when None).

    Returns the jobs (sorted, first submit at 0 for real traces) and the report of what
    was dropped or changed. The project's own format (``"aryl"``) is loaded as is with
    :func:`~aryl_gym.workload.trace_io.load_trace` (profiles checked; no option applies).

    Raises:
        TraceFormatError: malformed input (names file, row and field), or nothing left.
        ValueError: an unknown format name.
    """
    options = MappingOptions() if options is None else options
    if fmt is None:
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}; known: {', '.join(FORMATS)}")
    report = MappingReport(source=os.fspath(path), format=fmt)
    if fmt == "aryl":
        from aryl_gym.workload.profiles import PROFILES
        from aryl_gym.workload.trace_io import load_trace

        jobs = load_trace(path, known_profiles=PROFILES)
        report.rows_read = report.rows_kept = len(jobs)
        report.notes.append("project format: loaded as is (mapping options do not apply)")
        return jobs, report
    if fmt == "pai2020":
        rows, n_tasks = _read_pai2020(path)
        report.rows_read = n_tasks
        report.add("tasks_merged", n_tasks - len(rows.submit))
    else:
        reader = {
            "itp": _read_itp,
            "helios": _read_helios,
            "pai2023": _read_pai2023,
            "helios-raw": _read_helios_raw,
            "philly": _read_philly,
        }[fmt]
        rows = reader(path)
        report.rows_read = len(rows.submit)
    jobs = _map(path, fmt, rows, options, report)
    assert report.rows_read == report.rows_kept + report.dropped, report
    return jobs, report


# --------------------------------------------------------------------------- sizing


def offered_gpu_demand(jobs: JobTable) -> float:
    """Mean GPUs busy if every job ran at its requested size: sum(gpus * duration) / span.

    The span runs from the first to the last submission (the whole makespan when all
    jobs arrive at once).
    """
    if len(jobs) == 0:
        return 0.0
    work = float(np.sum(jobs.gpus * jobs.duration))
    span = float(jobs.submit_time[-1] - jobs.submit_time[0])
    if span <= 0:
        span = float(np.max(jobs.submit_time + jobs.duration) - jobs.submit_time[0])
    return work / span


def size_cluster_for(jobs: JobTable, cluster_cfg, target_load: float):
    """``cluster_cfg`` with the training pool sized so the offered load is ``target_load``.

    Training servers: ``ceil(offered_gpu_demand / target_load / gpus_per_server)``, and
    at least enough for the largest job's requested GPUs. The inference pool keeps the
    scenario's inference/training ratio (rounded, >= 0). Returns a new ``ClusterConfig``.
    """
    if not target_load > 0:
        raise ValueError(f"target load must be > 0, got {target_load}")
    gps = cluster_cfg.gpus_per_server
    need = math.ceil(offered_gpu_demand(jobs) / target_load / gps)
    largest = math.ceil(int(np.max(jobs.gpus)) / gps) if len(jobs) else 1
    training = max(1, need, largest)
    ratio = cluster_cfg.inference_servers / cluster_cfg.training_servers
    inference = max(0, round(ratio * training))
    return replace(cluster_cfg, training_servers=training, inference_servers=inference)
