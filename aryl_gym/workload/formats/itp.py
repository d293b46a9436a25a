"""Microsoft ITP / ElasticFlow job list (microsoft/elasticflow-traces clusterNN)."""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import OK, PathLike, Rows, nonneg_column, open_with_ids


def read_itp(path: PathLike) -> Rows:
    c, job_id = open_with_ids(path, "itp", "job_id")
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
    n = len(submit)
    return Rows(job_id, submit, gpus, np.zeros(n, bool), duration, np.full(n, OK, dtype=object))
