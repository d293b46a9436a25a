"""Microsoft ITP / ElasticFlow job list (microsoft/elasticflow-traces clusterNN)."""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import (
    ITP_COLUMNS,
    PathLike,
    Rows,
    completed_rows,
    nonneg_column,
    open_with_ids,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import TraceFormat


def read_itp(path: PathLike) -> Rows:
    c, job_id = open_with_ids(path, "itp", ITP_COLUMNS, "job_id")
    submit = nonneg_column(c, "submission_time")
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
    duration = nonneg_column(c, "duration")
    gpus = nonneg_column(c, "num_gpu", integer=True)
    return completed_rows(job_id, submit, gpus, duration)


TRACE_FORMATS = (
    TraceFormat(
        name="itp",
        description="Microsoft ITP / ElasticFlow job list: job_id,submission_time,duration,num_gpu",
        source="microsoft/elasticflow-traces data/raw-traces.tar.gz clusterNN.csv",
        has_clock=True,
        load=rows_loader("itp", read_itp),
        columns=ITP_COLUMNS,
    ),
)
