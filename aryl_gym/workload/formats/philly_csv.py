"""The Philly-derived job list that Pollux and Blox ship (``philly-csv``):
``timestamp,duration,num_gpus,gpu_time,cluster``, one row per Philly job.

Source: the Pollux artifact, GitHub ``petuum/adaptdl``, branch ``osdi21-artifact``
(commit c793c7089bd307462686339d29707925c461f9a9), ``simulator/traces/philly.csv``
(82,247 jobs; ``simulator/workload.py`` samples Pollux workloads from it); the same file
is in Blox (``msr-fiddle/blox``, ``workload_pollux/traces/philly.csv``, pull-request merge
a377b28). Derived from the Microsoft Philly ``cluster_job_log`` (``philly`` format).

Mapping: one job per row, id = its file line number (the file has no id); submit =
``timestamp`` (a date-time: the wall clock is kept); duration = ``duration`` (s);
GPUs = ``num_gpus``; ``gpu_time`` must equal ``duration * num_gpus``; ``cluster`` (the
Philly virtual cluster, a hash) is not used. The rows are not in time order (sorted).
"""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import (
    PathLike,
    Rows,
    completed_rows,
    line_ids,
    nonneg_column,
    open_csv,
    time_seconds,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import TraceFormat

PHILLY_CSV_COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
_REQUIRED = ("timestamp", "duration", "num_gpus", "gpu_time")


def read_philly_csv(path: PathLike) -> Rows:
    """Parse and check the job list; ``gpu_time`` is checked against the other two."""
    c = open_csv(path, "philly-csv", _REQUIRED)
    submit = time_seconds(c, "timestamp", allow_empty=False)
    duration = nonneg_column(c, "duration")
    gpus = nonneg_column(c, "num_gpus", integer=True)
    gpu_time = nonneg_column(c, "gpu_time")
    expected = duration * gpus
    c.fail_first(
        ~np.isclose(gpu_time, expected, rtol=1e-6, atol=0.5),
        "gpu_time",
        lambda i: (
            f"must equal duration * num_gpus ({expected[i]!r}), got {c.cells['gpu_time'][i]!r}"
        ),
    )
    return completed_rows(line_ids(c), submit, gpus, duration)


TRACE_FORMATS = (
    TraceFormat(
        name="philly-csv",
        description="Philly-derived job list shipped with Pollux and Blox: timestamp,duration,num_gpus,gpu_time,cluster",
        source="petuum/adaptdl osdi21-artifact simulator/traces/philly.csv",
        has_clock=True,
        load=rows_loader("philly-csv", read_philly_csv),
        columns=_REQUIRED,
    ),
)
