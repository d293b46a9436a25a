"""The project's own trace format (``traces/README.md``), read by
:func:`~aryl_gym.workload.trace_io.load_trace` as is: no mapping option applies."""

from __future__ import annotations

import os

from aryl_gym.workload.formats.common import PathLike
from aryl_gym.workload.formats.mapping import MappingOptions, MappingReport
from aryl_gym.workload.formats.registry import Header, TraceFormat
from aryl_gym.workload.schema import REQUIRED_COLUMNS, JobTable, extra_type


def load_aryl(path: PathLike, options: MappingOptions) -> tuple[JobTable, MappingReport]:
    """Load with ``load_trace`` (profile names checked); ``options`` are not used."""
    from aryl_gym.sim.profiles import PROFILES
    from aryl_gym.workload.trace_io import load_trace

    jobs = load_trace(path, known_profiles=PROFILES)
    report = MappingReport(source=os.fspath(path), format="aryl")
    report.rows_read = report.rows_kept = len(jobs)
    report.notes.append("project format: loaded as is (mapping options do not apply)")
    if jobs.extras:
        kept = ", ".join(f"{n} ({extra_type(v)})" for n, v in jobs.extras.items())
        report.notes.append(f"extra columns kept: {kept}")
    return jobs, report


def _is_aryl(header: Header) -> bool:
    """Every required column (columns outside the format are extra columns)."""
    return set(REQUIRED_COLUMNS) <= header.names


TRACE_FORMATS = (
    TraceFormat(
        name="aryl",
        description="the project's own trace format (traces/README.md)",
        source="this project: traces/README.md, aryl_gym/workload/trace_io.py",
        has_clock=True,
        load=load_aryl,
        columns=REQUIRED_COLUMNS,
        detect=_is_aryl,
    ),
)
