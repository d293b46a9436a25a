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

The readers are in :mod:`aryl_gym.workload.formats` (``itp``, ``helios``, ``pai``,
``philly``, their shared checks in ``common`` and the mapping to jobs in ``mapping``).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import replace

import numpy as np

from aryl_gym.workload.formats.common import (
    _REQUIRED,
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
from aryl_gym.workload.formats.helios import read_helios, read_helios_raw
from aryl_gym.workload.formats.itp import read_itp
from aryl_gym.workload.formats.mapping import (
    REASONS,
    MappingOptions,
    MappingReport,
    map_rows,
    parse_qos,
)
from aryl_gym.workload.formats.pai import _PAI2020_STATUS, read_pai2020, read_pai2023
from aryl_gym.workload.formats.philly import read_philly
from aryl_gym.workload.schema import COLUMNS, REQUIRED_COLUMNS, JobTable
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
    "detect_format",
    "load_any",
    "offered_gpu_demand",
    "parse_qos",
    "size_cluster_for",
]

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
        from aryl_gym.sim.profiles import PROFILES
        from aryl_gym.workload.trace_io import load_trace

        jobs = load_trace(path, known_profiles=PROFILES)
        report.rows_read = report.rows_kept = len(jobs)
        report.notes.append("project format: loaded as is (mapping options do not apply)")
        return jobs, report
    if fmt == "pai2020":
        rows, n_tasks = read_pai2020(path)
        report.rows_read = n_tasks
        report.add("tasks_merged", n_tasks - len(rows.submit))
    else:
        reader = {
            "itp": read_itp,
            "helios": read_helios,
            "pai2023": read_pai2023,
            "helios-raw": read_helios_raw,
            "philly": read_philly,
        }[fmt]
        rows = reader(path)
        report.rows_read = len(rows.submit)
    jobs = map_rows(path, fmt, rows, options, report)
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
