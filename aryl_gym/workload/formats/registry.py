"""The trace-format registry: every format the loaders know, and detection from a header.

A format is one :class:`TraceFormat` object: its name, a one-line description, where the
format comes from, whether its times keep a wall clock, a header test (``detect``) and a
loader (``load``). A module of this package (:mod:`aryl_gym.workload.formats`) declares
its formats in a module-level tuple ``TRACE_FORMATS``; the first time the registry is
read (:func:`formats`, :func:`get_format`, :func:`detect_format`, :func:`register`) every
module of the package is imported, in name order, and its ``TRACE_FORMATS`` registered.
So adding a format is adding one module here. A format defined elsewhere (a plug-in, a
test) is added with :func:`register`.

This module imports only the standard library (the readers import pandas); the formats
themselves are imported on the first read of the registry.
"""

from __future__ import annotations

import csv
import importlib
import io
import os
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # only for annotations: importing them would pull in numpy and pandas
    from aryl_gym.workload.formats.mapping import MappingOptions, MappingReport
    from aryl_gym.workload.schema import JobTable

PathLike = str | os.PathLike[str]

__all__ = [
    "FormatView",
    "Header",
    "TraceFormat",
    "detect_format",
    "formats",
    "get_format",
    "register",
    "unregister",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _trace_error(path: PathLike, reason: str, *, row: int | None = None) -> Exception:
    # trace_io imports numpy and pandas: imported here, when an error is raised.
    from aryl_gym.workload.trace_io import TraceFormatError

    return TraceFormatError(path, reason, row=row)


@dataclass(frozen=True)
class Header:
    """The first non-blank line of a file, as the ``detect`` tests see it.

    Attributes:
        line: the line, without its line ending.
        cells: the line split as one CSV record (commas, standard quoting), each cell
            stripped of surrounding spaces.
    """

    line: str
    cells: tuple[str, ...]

    @property
    def names(self) -> frozenset[str]:
        """The cells as a set: the column names when the line is a header."""
        return frozenset(self.cells)

    @classmethod
    def from_line(cls, line: str) -> Header:
        line = line.rstrip("\r\n")
        try:
            cells = next(csv.reader(io.StringIO(line)), [])
        except csv.Error:  # e.g. a NUL byte: not a CSV header
            cells = []
        return cls(line, tuple(c.strip() for c in cells))

    @classmethod
    def read(cls, path: PathLike) -> Header:
        """The header of ``path``; ``TraceFormatError`` for an empty or non-UTF-8 file."""
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                for line in f:
                    if line.strip():
                        return cls.from_line(line)
        except UnicodeDecodeError as e:
            raise _trace_error(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
        raise _trace_error(path, "file is empty (expected a header line and rows)")


Loader = Callable[[PathLike, "MappingOptions"], "tuple[JobTable, MappingReport]"]


@dataclass(frozen=True)
class TraceFormat:
    """One trace format: what :func:`detect_format` and ``load_any`` need to know.

    Attributes:
        name: the name ``--format`` and ``load_any`` take (lower case, digits, ``-``,
            ``_``, ``.``).
        description: one line: what the file is and its identifying columns.
        source: one line: where the format comes from (repository, path).
        has_clock: whether the times keep a wall clock (hour of day meaningful), which
            ``traces stats`` needs for the average-day shape.
        load: ``load(path, options) -> (jobs, report)``: read the file, check it
            (``TraceFormatError`` naming file, row and field) and map it to jobs, with
            ``report.rows_read == report.rows_kept + report.dropped``.
        columns: the columns a file of this format must have, if it has a header. By
            default a header holding all of them is this format's; and when no format
            claims a header, the one sharing the most of its ``columns`` (at least half)
            is chosen, so that its loader names the missing column.
        detect: ``detect(header) -> bool``, replacing the default test on ``columns``
            (for headerless files, JSON, ...). Must be cheap and must not raise.
        reasons: report counters this format adds to ``mapping.REASONS`` (name ->
            meaning): drops or mapping choices no other format makes.
    """

    name: str
    description: str
    source: str
    has_clock: bool
    load: Loader
    columns: tuple[str, ...] = ()
    detect: Callable[[Header], bool] | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"trace format name {self.name!r}: use lower-case letters, digits, '-', '_', '.'"
            )
        for attr in ("description", "source"):
            text = getattr(self, attr)
            if not text.strip() or "\n" in text:
                raise ValueError(f"trace format {self.name!r}: {attr} must be one non-empty line")
        if not callable(self.load):
            raise TypeError(f"trace format {self.name!r}: load must be callable")
        if self.detect is None and not self.columns:
            raise ValueError(f"trace format {self.name!r}: give columns or a detect function")
        if self.detect is not None and not callable(self.detect):
            raise TypeError(f"trace format {self.name!r}: detect must be callable")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "reasons", MappingProxyType(dict(self.reasons)))

    def claims(self, header: Header) -> bool:
        """Whether a file starting with ``header`` is of this format."""
        if self.detect is not None:
            return bool(self.detect(header))
        return set(self.columns) <= header.names


_FORMATS: dict[str, TraceFormat] = {}
_state = {"discovered": False, "discovering": False}


def _discover() -> None:
    """Once: import every module of this package and register its ``TRACE_FORMATS``."""
    if _state["discovered"] or _state["discovering"]:
        return
    _state["discovering"] = True
    try:
        package = importlib.import_module(__package__)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__package__}.{info.name}")
            for fmt in getattr(module, "TRACE_FORMATS", ()):
                if not isinstance(fmt, TraceFormat):
                    raise TypeError(f"{module.__name__}.TRACE_FORMATS holds {fmt!r}")
                _add(fmt, replace=False)
        _state["discovered"] = True
    except BaseException:
        _FORMATS.clear()  # all or nothing: the next read tries again
        raise
    finally:
        _state["discovering"] = False


def _add(fmt: TraceFormat, *, replace: bool) -> None:
    if fmt.name in _FORMATS and not replace:
        raise ValueError(f"trace format {fmt.name!r} is already registered")
    if fmt.reasons:
        from aryl_gym.workload.formats.mapping import add_reasons

        add_reasons(fmt.reasons, owner=fmt.name)
    _FORMATS[fmt.name] = fmt


def register(fmt: TraceFormat, *, replace: bool = False) -> TraceFormat:
    """Add ``fmt`` to the registry and return it.

    Its ``reasons`` are added to ``mapping.REASONS``. Raises ``ValueError`` when the name
    is taken (unless ``replace``) or a reason is already defined with another meaning.
    """
    if not isinstance(fmt, TraceFormat):
        raise TypeError(f"register() takes a TraceFormat, got {type(fmt).__name__}")
    _discover()
    _add(fmt, replace=replace)
    return fmt


def unregister(name: str) -> TraceFormat:
    """Remove and return the format called ``name`` (``KeyError`` when absent).

    The report counters it added stay defined (another format may use them).
    """
    _discover()
    return _FORMATS.pop(name)


def formats() -> tuple[TraceFormat, ...]:
    """Every registered format, the package's in module-name order, then later ones."""
    _discover()
    return tuple(_FORMATS.values())


def get_format(name: str) -> TraceFormat:
    """The format called ``name``; ``ValueError`` listing the known names otherwise."""
    _discover()
    try:
        return _FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown trace format {name!r}; known: {', '.join(_FORMATS)} "
            "(`aryl-gym traces formats` describes them)"
        ) from None


def detect_format(path: PathLike) -> str:
    """The name of the format of ``path``, told from its first non-blank line.

    Every format is asked whether it claims the :class:`Header`; exactly one must. When
    none does, the format sharing strictly the most of its ``columns`` with the header,
    at least half of them, is returned (its loader then names the missing column).
    Raises ``TraceFormatError`` (row 1) when nothing or more than one format matches.
    """
    header = Header.read(path)
    claims = [f.name for f in formats() if f.claims(header)]
    if len(claims) == 1:
        return claims[0]
    if claims:
        raise _trace_error(
            path,
            f"the header matches several trace formats ({', '.join(claims)}); "
            "pass the format explicitly",
            row=1,
        )
    score = {
        f.name: len(header.names & set(f.columns)) / len(set(f.columns))
        for f in formats()
        if f.columns
    }
    ranked = sorted(score.values(), reverse=True)
    if ranked and ranked[0] >= 0.5 and (len(ranked) == 1 or ranked[1] < ranked[0]):
        return max(score, key=score.__getitem__)
    shown = ", ".join(header.cells[:12]) if header.cells else header.line[:120]
    raise _trace_error(
        path,
        f"cannot tell the trace format from the header {shown!r}; "
        f"known formats: {', '.join(f.name for f in formats())} (pass the format explicitly)",
        row=1,
    )


V = TypeVar("V")


class FormatView(Mapping[str, V], Generic[V]):
    """A read-only ``name -> attribute`` mapping over the registry, always current
    (``real_traces.FORMATS`` is the descriptions, ``HAS_CLOCK`` the clocks)."""

    def __init__(self, attribute: str):
        self._attribute = attribute

    def __getitem__(self, name: str) -> V:
        _discover()
        return getattr(_FORMATS[name], self._attribute)

    def __iter__(self) -> Iterator[str]:
        return iter([f.name for f in formats()])

    def __len__(self) -> int:
        return len(formats())

    def __repr__(self) -> str:
        return f"FormatView({self._attribute!r}, {dict(self)!r})"
