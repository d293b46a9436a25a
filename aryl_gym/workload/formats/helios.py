"""SenseTime Helios: the DIR-LAB excerpt (``helios``, inter-arrival form) and the
HeliosData ``cluster_log.csv`` (``helios-raw``, Slurm states)."""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import (
    CENSORED,
    FAILED,
    KILLED,
    NEVER,
    OK,
    PathLike,
    Rows,
    nonneg,
    nonneg_column,
    not_before,
    open_with_ids,
    status_column,
    time_seconds,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import TraceFormat

# Columns a file must have (the others of the published header may be absent).
_HELIOS_REQUIRED = ("u_id", "gpu_num", "interval", "run_time", "new_status")
_HELIOS_RAW_REQUIRED = ("job_id", "gpu_num", "state", "submit_time", "start_time", "duration")

_HELIOS_STATUS = {"Pass": OK, "Failed": FAILED, "Killed": KILLED}
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


def read_helios(path: PathLike) -> Rows:
    c, job_id = open_with_ids(path, "helios", _HELIOS_REQUIRED, "u_id")
    interval = nonneg_column(c, "interval", what=" (seconds since the previous submission)")
    duration = nonneg_column(c, "run_time")
    gpus = nonneg_column(c, "gpu_num", integer=True)
    status, kind = status_column(c, "new_status", _HELIOS_STATUS)
    user = c.string("user", "")
    return Rows(
        job_id, np.cumsum(interval), gpus, np.zeros(len(gpus), bool), duration, kind, status, user
    )


def read_helios_raw(path: PathLike) -> Rows:
    c, job_id = open_with_ids(path, "helios-raw", _HELIOS_RAW_REQUIRED, "job_id")
    gpus = nonneg_column(c, "gpu_num", integer=True)
    raw_state = c.string("state")
    words = np.asarray([str(s).strip().upper() for s in raw_state], dtype=object)
    words = np.asarray(
        ["CANCELLED" if w.startswith("CANCELLED") else w for w in words], dtype=object
    )
    c.cells["state"] = words
    status, kind = status_column(c, "state", _SLURM_STATE)
    submit = time_seconds(c, "submit_time", allow_empty=False)
    start = time_seconds(c, "start_time", allow_empty=True)
    not_before(c, "start_time", start, "submit_time", submit, "start before submission")
    started = ~np.isnan(start)
    kind = np.where(~started, NEVER, kind)
    duration = c.number("duration", np.nan)
    c.fail_first(
        started & np.isnan(duration) & (kind != CENSORED),
        "duration",
        lambda i: "missing value (required for a job that started)",
    )
    nonneg(c, "duration", duration)
    user = c.string("user", "") if "user" in c.cells else None
    n = len(gpus)
    return Rows(job_id, submit, gpus, np.zeros(n, bool), duration, kind, status, user)


TRACE_FORMATS = (
    TraceFormat(
        name="helios",
        description="SenseTime Helios excerpt (DIR-LAB): u_id,user,gpu_num,...,interval,run_time,...,new_status",
        source="DIR-LAB/Gen-Parallel-Workloads Helios/training_data/helios_data_training.csv",
        has_clock=False,  # DIR-LAB replaced timestamps by inter-arrival gaps
        load=rows_loader("helios", read_helios),
        columns=_HELIOS_REQUIRED,
    ),
    TraceFormat(
        name="helios-raw",
        description="SenseTime HeliosData cluster_log.csv: job_id,user,gpu_num,...,state,submit_time,start_time,end_time,duration,queue",
        source="S-Lab-System-Group/HeliosData cluster_log.csv (user-downloaded)",
        has_clock=True,
        load=rows_loader("helios-raw", read_helios_raw),
        columns=_HELIOS_RAW_REQUIRED,
    ),
)
