"""Pollux / AdaptDL simulator workloads (``pollux``): one row per job,
``name,time,application,num_replicas,batch_size``.

Source: the Pollux artifact (Qiao et al., OSDI '21), GitHub ``petuum/adaptdl``, branch
``osdi21-artifact`` (commit c793c7089bd307462686339d29707925c461f9a9, Apache-2.0),
``simulator/workloads*/workload-N.csv``, written by ``simulator/workload.py``; Blox
(``msr-fiddle/blox``) replays the same files (``workload_pollux/workload-6.csv`` in
pull-request merge a377b28954b231366cc6c2b5a443b33f3f89e1ed).

The file gives no run time: Pollux runs each job until its model has trained for a set
number of epochs. The mapping (traces/README.md):

* ``application`` names the model, and the profile of the same name (they are the
  Pollux models the measured profiles were fitted to), counted ``profile_from_trace``;
* duration at the requested GPUs = ``RUNTIME_1GPU_S[application] / speedup(num_replicas)``
  with that profile (counted ``duration_derived``), so a job's work is the same
  whatever GPU count it asks for, and the simulator's rescaling is consistent with it;
* ``time`` is the submit time (s); ``name`` the job id (line numbers when absent);
  ``batch_size`` is checked but not used (the profiles model a fixed local batch).
"""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import (
    PathLike,
    Rows,
    completed_rows,
    known_words,
    line_ids,
    nonneg_column,
    open_csv,
    unique_ids,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import TraceFormat

POLLUX_COLUMNS = ("name", "time", "application", "num_replicas", "batch_size")
_REQUIRED = ("time", "application", "num_replicas")

#: Run time in seconds of each Pollux application alone on one GPU (T4), at the batch
#: size that finishes first: Pollux's own model of the job, ``Application`` of
#: ``simulator/applications.py`` (osdi21-artifact c793c70): ``get_configurations`` at
#: ``num_replicas = 1`` (iterations to the application's ``max_epochs`` from its
#: ``validation-<batch>.csv`` times the step time of placement ``1`` interpolated in
#: ``placements.csv``, gradient accumulation beyond ``max_local_bsz``), from the
#: measurements in ``simulator/traces/<application>/``. Computed once (0.1 s); these
#: are the only numbers taken from those files. In Pollux's size classes (paper Table 1,
#: GPU-hours): ncf, cifar10 small; bert, deepspeech2 medium; yolov3 large; imagenet XL.
RUNTIME_1GPU_S: dict[str, float] = {
    "bert": 13586.5,
    "cifar10": 3765.4,
    "deepspeech2": 16501.0,
    "imagenet": 532438.6,
    "ncf": 33.0,
    "yolov3": 33738.1,
}


def read_pollux(path: PathLike) -> Rows:
    """Parse and check a Pollux workload CSV; durations derived as the module says."""
    from aryl_gym.sim.profiles import PROFILES

    c = open_csv(path, "pollux", _REQUIRED)
    if "name" in c.cells:
        job_id = c.string("name")
        unique_ids(c, "name", job_id)
    else:
        job_id = line_ids(c)
    submit = nonneg_column(c, "time")
    application = known_words(c, "application", RUNTIME_1GPU_S, "application")
    gpus = c.integer("num_replicas")
    c.fail_first(gpus < 1, "num_replicas", lambda i: f"must be >= 1, got {gpus[i]}")
    notes = []
    if "batch_size" in c.cells:
        batch = c.integer("batch_size")
        c.fail_first(batch < 1, "batch_size", lambda i: f"must be >= 1, got {batch[i]}")
        notes.append("batch_size not used (the profiles model a fixed local batch)")
    duration = np.empty(len(gpus))
    for app, runtime in RUNTIME_1GPU_S.items():
        rows = application == app
        duration[rows] = runtime / PROFILES[app].speedup(gpus[rows])
    notes.append(
        "duration = the application's 1-GPU run time in Pollux's model / profile "
        "speedup(num_replicas); Pollux adapts every job (--elastic-share 1 to match)"
    )
    return completed_rows(
        job_id,
        submit,
        gpus,
        duration,
        profile=application,
        duration_derived=True,
        notes=notes,
    )


TRACE_FORMATS = (
    TraceFormat(
        name="pollux",
        description="Pollux/AdaptDL simulator workload: name,time,application,num_replicas,batch_size",
        source="petuum/adaptdl osdi21-artifact simulator/workloads/workload-N.csv",
        has_clock=False,  # time of day minus the generator's start hour, 8-hour window
        load=rows_loader("pollux", read_pollux),
        columns=_REQUIRED,
    ),
)
