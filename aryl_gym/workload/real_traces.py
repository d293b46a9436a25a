"""Loaders for public GPU-cluster traces: each turns a real file into a :class:`JobTable`.

Formats (the registry of :mod:`aryl_gym.workload.formats`, ``FORMATS``, ``aryl-gym
traces formats``; columns, sources and mapping choices in ``traces/README.md``):

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
pollux     Pollux/AdaptDL simulator workloads (petuum/adaptdl)              synthetic
philly-csv Philly-derived job list shipped with Pollux and Blox             synthetic
gavel      Gavel job traces (stanford-futuredata/gavel, tab-separated)      synthetic
blox       Blox replay traces (msr-fiddle/blox)                             synthetic
========== ================================================================ ==========

"synthetic": written from the published schema or reader code of those projects, and
tested on small files written in the tests, not on the full files (external
downloads): check the :class:`MappingReport` the first time you load one.

Every loader checks its input and raises :class:`~aryl_gym.workload.trace_io.TraceFormatError`
naming the file, the row (a file line number: header = 1, first data row = 2; for the
Philly JSON list, the 1-based position of the job record) and the field. Well-formed rows
that the simulator cannot use (CPU-only, never started, too short, ...) are dropped and
counted in the :class:`MappingReport`, never silently. Jobs are sorted by submit time and
shifted so that the first one is submitted at 0. The traces carry no elastic flag, and
most no model, so :class:`MappingOptions` draws both (seeded); where a trace names the
model (pollux, gavel, blox) its measured profile is used and counted.

A format is one module of :mod:`aryl_gym.workload.formats` declaring a
:class:`~aryl_gym.workload.formats.TraceFormat` (``TRACE_FORMATS``); detection,
:func:`load_any`, ``FORMATS``, ``HAS_CLOCK`` and the CLI read the registry, and
:func:`register` adds a format defined elsewhere.

:func:`size_cluster_for` sizes a training pool for a loaded trace at a target load.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from aryl_gym.workload.formats.common import (
    CENSORED,
    FAILED,
    HELIOS_COLUMNS,
    HELIOS_RAW_COLUMNS,
    ITP_COLUMNS,
    KILLED,
    NEVER,
    OK,
    PAI2020_COLUMNS,
    PAI2023_COLUMNS,
    PathLike,
)
from aryl_gym.workload.formats.mapping import (
    REASONS,
    MappingOptions,
    MappingReport,
    parse_qos,
)
from aryl_gym.workload.formats.registry import (
    FormatView,
    TraceFormat,
    detect_format,
    get_format,
    register,
)
from aryl_gym.workload.schema import JobTable
from aryl_gym.workload.trace_io import TraceFormatError

# The readers live in aryl_gym.workload.formats (one module per format family); the
# names below were defined here and stay importable from here.
__all__ = [
    "CENSORED",
    "FAILED",
    "FORMATS",
    "HAS_CLOCK",
    "HELIOS_COLUMNS",
    "HELIOS_RAW_COLUMNS",
    "ITP_COLUMNS",
    "KILLED",
    "NEVER",
    "OK",
    "PAI2020_COLUMNS",
    "PAI2023_COLUMNS",
    "REASONS",
    "MappingOptions",
    "MappingReport",
    "TraceFormat",
    "TraceFormatError",
    "detect_format",
    "get_format",
    "load_any",
    "offered_gpu_demand",
    "parse_qos",
    "register",
    "size_cluster_for",
]

#: Format name -> one-line description (a live view of the registry).
FORMATS: FormatView[str] = FormatView("description")

#: Format name -> whether its times keep a wall clock (hour of day meaningful).
HAS_CLOCK: FormatView[bool] = FormatView("has_clock")


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
        ValueError: an unknown format name (the message lists the known ones).
    """
    options = MappingOptions() if options is None else options
    trace_format = get_format(detect_format(path) if fmt is None else fmt)
    jobs, report = trace_format.load(path, options)
    if report.rows_read != report.rows_kept + report.dropped or report.rows_kept != len(jobs):
        raise RuntimeError(
            f"format {trace_format.name!r} lost rows loading {path}: read {report.rows_read}, "
            f"kept {report.rows_kept} ({len(jobs)} jobs), dropped {report.dropped}"
        )
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
