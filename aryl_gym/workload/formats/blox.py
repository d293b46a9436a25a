"""Blox replay traces (``blox``): a CSV, one job a line, ``job_id, model_name,
arrival_time, num_iters, gpu_demand``, without header as Blox reads it (a header line
with those names is accepted too).

Source: Blox (Agarwal et al., EuroSys '24), GitHub ``msr-fiddle/blox`` (commit
c8851b2b217e9203039ca354795f90c9f835e659, MIT): ``Workload.populate_from_trace`` in
``jobs/workload.py`` (the comment there gives the fields; no such file is published).
Blox's simulator otherwise reads the Philly ``cluster_job_log`` (format ``philly``) or,
in its Pollux workload (pull-request merge a377b28), the Pollux CSVs (format ``pollux``).

The file gives work, not time: Blox runs ``num_iters`` iterations of the model, each of
its model's iteration time (``iter_time`` of ``models/<model>_1.py``, the same at every
GPU count). The loader: duration = ``num_iters * ITER_TIME_S[model_name]`` (counted
``duration_derived``); GPUs = ``gpu_demand``; submit = ``arrival_time`` (s). The
profile is the measured one of the same architecture (res18 -> ``cifar10``, res50 ->
``imagenet``, deepspeech -> ``deepspeech2``; datasets may differ), counted
``profile_from_trace``; the other models get a drawn one. Blox maps a model name it
does not know to alexnet silently: here it is an error naming the row.
"""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import (
    PathLike,
    Rows,
    completed_rows,
    is_number,
    known_words,
    nonneg_column,
    open_with_ids,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import Header, TraceFormat

BLOX_COLUMNS = ("job_id", "model_name", "arrival_time", "num_iters", "gpu_demand")

#: Seconds per iteration of each model of Blox's model zoo (``jobs/model_zoo.py``
#: ``create_default_models``): ``iter_time`` of ``models/<model>_1.py``, which
#: ``Model.use_scores_from_tput`` uses for every GPU count.
ITER_TIME_S: dict[str, float] = {
    "alexnet": 0.6,
    "res18": 0.64,
    "res50": 0.78,
    "mobilenet": 0.71,
    "shufflenet": 0.615,
    "gnmt": 0.12,
    "transformer": 0.67,
    "lstm": 0.011,
    "m5": 0.6,
    "deepspeech": 0.757,
}

#: Blox model -> measured profile of the same architecture.
MODEL_PROFILE = {"res18": "cifar10", "res50": "imagenet", "deepspeech": "deepspeech2"}


def read_blox(path: PathLike) -> Rows:
    """Parse and check a Blox replay trace; durations from iterations and iteration time."""
    c, job_id = open_with_ids(path, "blox", BLOX_COLUMNS, "job_id", headerless=BLOX_COLUMNS)
    model = known_words(c, "model_name", ITER_TIME_S, "model_name")
    submit = nonneg_column(c, "arrival_time")
    iters = nonneg_column(c, "num_iters", integer=True)
    gpus = nonneg_column(c, "gpu_demand", integer=True)
    duration = iters * np.asarray([ITER_TIME_S[m] for m in model])
    profile = np.asarray([MODEL_PROFILE.get(m, "") for m in model], dtype=object)
    return completed_rows(
        job_id,
        submit,
        gpus,
        duration,
        profile=profile,
        duration_derived=True,
        notes=["duration = num_iters * the model's iteration time in Blox's model zoo"],
    )


def _is_blox(header: Header) -> bool:
    """The header line, or a first job row: 5 cells, a Blox model 2nd, numbers after."""
    if set(BLOX_COLUMNS) <= header.names:
        return True
    cells = header.cells
    return (
        len(cells) == len(BLOX_COLUMNS)
        and cells[1] in ITER_TIME_S
        and all(is_number(cells[k]) for k in (2, 3, 4))
    )


TRACE_FORMATS = (
    TraceFormat(
        name="blox",
        description="Blox replay trace (CSV, no header): job_id,model_name,arrival_time,num_iters,gpu_demand",
        source="msr-fiddle/blox jobs/workload.py Workload.populate_from_trace",
        has_clock=False,  # arrival times of a replayed or synthetic workload
        load=rows_loader("blox", read_blox),
        columns=BLOX_COLUMNS,
        detect=_is_blox,
    ),
)
