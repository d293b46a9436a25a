"""Alibaba PAI: the 2023 pod list (``pai2023``, clusterdata cluster-trace-gpu-v2023) and
the 2020 task table (``pai2020``, ``pai_task_table``, one job per ``job_name``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aryl_gym.workload.formats.common import (
    CENSORED,
    FAILED,
    NEVER,
    OK,
    PAI2020_COLUMNS,
    PathLike,
    Rows,
    nonneg,
    nonneg_column,
    not_before,
    open_csv,
    open_with_ids,
    status_column,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import Header, TraceFormat

# Columns a file must have (the others of the published header may be absent).
_PAI2023_REQUIRED = (
    "name", "num_gpu", "gpu_milli", "pod_phase", "creation_time", "deletion_time", "scheduled_time",
)  # fmt: skip
_PAI2020_REQUIRED = ("job_name", "inst_num", "status", "start_time", "end_time", "plan_gpu")

_PAI2023_PHASE = {"Succeeded": OK, "Failed": FAILED, "Running": CENSORED, "Pending": NEVER}
_PAI2020_STATUS = {"Terminated": OK, "Failed": FAILED, "Running": CENSORED, "Waiting": NEVER}


def read_pai2023(path: PathLike) -> Rows:
    c, job_id = open_with_ids(path, "pai2023", _PAI2023_REQUIRED, "name")
    num_gpu = nonneg_column(c, "num_gpu", integer=True)
    milli = c.integer("gpu_milli")
    c.fail_first(
        (milli < 0) | (milli > 1000),
        "gpu_milli",
        lambda i: f"must be in [0, 1000] (milli-GPU per GPU), got {c.cells['gpu_milli'][i]!r}",
    )
    status, kind = status_column(c, "pod_phase", _PAI2023_PHASE)
    created = nonneg_column(c, "creation_time")
    deleted = c.number("deletion_time")
    not_before(c, "deletion_time", deleted, "creation_time", created, "deletion before creation")
    sched = c.number("scheduled_time", np.nan)
    c.fail_first(
        np.isnan(sched) & (kind != NEVER),
        "scheduled_time",
        lambda i: f"missing value (only Pending pods may lack it; pod_phase is {status[i]!r})",
    )
    not_before(c, "scheduled_time", sched, "creation_time", created, "scheduled before creation")
    not_before(c, "deletion_time", deleted, "scheduled_time", sched, "deletion before scheduling")
    qos = c.string("qos", "") if "qos" in c.cells else None
    demand = num_gpu * milli  # milli-GPUs in all
    gpus = np.where(demand > 0, num_gpu, 0)
    fractional = (demand > 0) & (milli < 1000)
    duration = deleted - sched  # run time: scheduled (started) to deleted
    return Rows(
        job_id, created, gpus, fractional, duration, kind, status, None, qos, may_be_fractional=True
    )


def read_pai2020(path: PathLike) -> Rows:
    """Task rows grouped into jobs (``merged``: the task rows folded into a job)."""
    c = open_csv(path, "pai2020", _PAI2020_REQUIRED, headerless=PAI2020_COLUMNS)
    name = c.string("job_name")
    inst = c.number("inst_num")
    c.fail_first(inst < 1, "inst_num", lambda i: f"must be >= 1, got {c.cells['inst_num'][i]!r}")
    status, kind = status_column(c, "status", _PAI2020_STATUS)
    start = c.number("start_time", np.nan)
    end = c.number("end_time", np.nan)
    nonneg(c, "start_time", start)
    not_before(c, "end_time", end, "start_time", start, "end before start")
    c.fail_first(
        np.isnan(end) & ~np.isnan(start) & (kind != CENSORED),
        "end_time",
        lambda i: f"missing value (only Running tasks may lack it; status is {status[i]!r})",
    )
    plan = nonneg_column(c, "plan_gpu", what=" (percent of one GPU)", default=0.0)
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
    return Rows(
        job_id=jobs.index.to_numpy(dtype=object),
        submit=np.nan_to_num(jobs["start"].to_numpy(dtype=np.float64), nan=0.0),
        gpus=jobs["whole"].to_numpy().astype(np.int64),
        fractional=jobs["frac"].to_numpy(dtype=bool),
        duration=duration,
        kind=jkind,
        status=np.asarray([status_word[k] for k in jkind], dtype=object),
        may_be_fractional=True,
        merged=len(name) - len(jobs),
    )


def _is_pai2020(header: Header) -> bool:
    """The header line, or (as published) a first task row: 10 cells, a status 4th."""
    if set(_PAI2020_REQUIRED) <= header.names:
        return True
    cells = header.cells
    return len(cells) == len(PAI2020_COLUMNS) and cells[3] in _PAI2020_STATUS


TRACE_FORMATS = (
    TraceFormat(
        name="pai2023",
        description="Alibaba PAI 2023 pod list: name,...,num_gpu,gpu_milli,...,qos,pod_phase,creation_time,deletion_time,scheduled_time",
        source="alibaba/clusterdata cluster-trace-gpu-v2023/csv/openb_pod_list_default.csv",
        has_clock=True,
        load=rows_loader("pai2023", read_pai2023),
        columns=_PAI2023_REQUIRED,
    ),
    TraceFormat(
        name="pai2020",
        description="Alibaba PAI 2020 pai_task_table: job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type",
        source="alibaba/clusterdata cluster-trace-gpu-v2020 pai_task_table (user-downloaded)",
        has_clock=True,
        load=rows_loader("pai2020", read_pai2020),
        columns=_PAI2020_REQUIRED,
        detect=_is_pai2020,
    ),
)
