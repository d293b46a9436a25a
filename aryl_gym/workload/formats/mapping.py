"""How a parsed trace becomes the simulator's jobs: :class:`MappingOptions` (the
choices), :class:`MappingReport` (what was dropped or changed), :func:`map_rows` and
:func:`rows_loader`, the ``load`` of every format that parses into :class:`Rows`."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from aryl_gym.workload.formats.common import (
    CENSORED,
    FAILED,
    KILLED,
    NEVER,
    PathLike,
    Rows,
)
from aryl_gym.workload.schema import JobTable, check_elastic_range, elastic_range
from aryl_gym.workload.trace_io import TraceFormatError


@dataclass(frozen=True)
class MappingOptions:
    """Choices made when a real trace is mapped to the simulator's jobs.

    Attributes:
        elastic_share: probability that a job is made elastic (the traces record no
            elasticity); an elastic job of ``g`` GPUs runs on ``max(1, floor(g x
            elastic_min_fraction))`` to ``max(g, floor(g x elastic_max_factor))`` GPUs
            (defaults 0.5 and 2: docs/model.md's ``[max(1, g // 2), 2 g]``).
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
    elastic_min_fraction: float = 0.5
    elastic_max_factor: float = 2.0
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
        check_elastic_range("MappingOptions", self.elastic_min_fraction, self.elastic_max_factor)
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"MappingOptions.seed must be an integer, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"MappingOptions.seed must be >= 0, got {self.seed}")
        if not (self.min_duration_s >= 0 and math.isfinite(self.min_duration_s)):
            raise ValueError(
                f"MappingOptions.min_duration_s must be a finite number >= 0, "
                f"got {self.min_duration_s}"
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

    def changed(self) -> str:
        """The fields that differ from the defaults, e.g. ``"elastic_share=0.25,
        keep_failed=False"``; ``""`` when none does."""
        default = MappingOptions()
        return ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )


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
    "profile_from_trace": "kept: profile named by the trace's model (not drawn)",
    "profile_drawn_unmeasured_model": "kept: the trace's model has no measured profile; drawn",
    "duration_derived": "kept: duration computed from the job's work and its model's run rate",
}


def add_reasons(reasons: Mapping[str, str], *, owner: str) -> None:
    """Define new report counters (``REASONS``) for format ``owner``; a name already
    defined with another meaning is a ``ValueError``."""
    for name, meaning in reasons.items():
        if name in REASONS and REASONS[name] != meaning:
            raise ValueError(
                f"trace format {owner!r}: report reason {name!r} is already defined "
                f"as {REASONS[name]!r}"
            )
    REASONS.update(reasons)


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


def map_rows(
    path: PathLike, fmt: str, rows: Rows, options: MappingOptions, report: MappingReport
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
    has_fraction = rows.may_be_fractional or bool(rows.fractional.any())
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
    named = None if rows.profile is None else rows.profile.astype(str) != ""
    if named is not None:
        report.add("profile_from_trace", int((keep & named).sum()))
        report.add("profile_drawn_unmeasured_model", int((keep & ~named).sum()))
    if rows.duration_derived:
        report.add("duration_derived", int(keep.sum()))

    report.notes.extend(rows.notes)
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

    from aryl_gym.sim.profiles import DEFAULT_PROFILE_MIX

    rng = np.random.default_rng(options.seed)
    m = idx.size
    elastic = rng.random(m) < options.elastic_share
    names = list(DEFAULT_PROFILE_MIX)
    p = np.asarray([DEFAULT_PROFILE_MIX[k] for k in names], float)
    profile = np.asarray(names, dtype=object)[rng.choice(len(names), size=m, p=p / p.sum())]
    if named is not None:  # drawn for every job first, so the draws do not depend on it
        profile = np.where(named[idx], rows.profile[idx], profile).astype(object)
    user = None if rows.user is None else rows.user[idx]
    gpus = rows.gpus[idx]
    low, high = elastic_range(
        gpus, elastic, options.elastic_min_fraction, options.elastic_max_factor
    )
    return JobTable.from_columns(
        job_id=rows.job_id[idx],
        submit_time=submit - t0,
        gpus=gpus,
        duration=rows.duration[idx],
        elastic=elastic,
        min_gpus=low,
        max_gpus=high,
        profile=profile,
        user=user,
        source=os.fspath(path),
    )


def rows_loader(
    fmt: str, read: Callable[[PathLike], Rows]
) -> Callable[[PathLike, MappingOptions], tuple[JobTable, MappingReport]]:
    """The ``load`` of a format whose reader parses a file into :class:`Rows`.

    ``load(path, options)`` reads, counts the rows (plus ``rows.merged``, reported as
    ``tasks_merged``) and maps them with :func:`map_rows`.
    """

    def load(path: PathLike, options: MappingOptions) -> tuple[JobTable, MappingReport]:
        report = MappingReport(source=os.fspath(path), format=fmt)
        rows = read(path)
        report.rows_read = len(rows.submit) + (rows.merged or 0)
        if rows.merged is not None:
            report.add("tasks_merged", rows.merged)
        return map_rows(path, fmt, rows, options, report), report

    load.__doc__ = f"Load a {fmt!r} trace: read with {read.__module__}.{read.__name__}, map."
    return load
