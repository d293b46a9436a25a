"""Gavel job traces (``gavel``): headerless, tab-separated, one job a line, the 10 fields
``job_type, command, working_directory, num_steps_arg, needs_data_dir, total_steps,
scale_factor, priority_weight, SLO, arrival_time``.

Source: Gavel (Narayanan et al., OSDI '20), GitHub ``stanford-futuredata/gavel`` (commit
c4fa40097339e9608ab71fd64c8bdea96a5e4a4c, MIT), ``scheduler/traces/*.trace``, read by
``parse_trace`` in ``scheduler/utils.py`` and written by
``scheduler/scripts/utils/generate_trace.py``. (The older ``scheduler/traces/msr/``
files have 7 fields and are not this format.)

The file gives work, not time: ``total_steps`` at ``scale_factor`` GPUs. Gavel's
generator sets ``total_steps = run_time * throughput`` with the V100 throughput
(steps/s) of ``scheduler/simulation_throughputs.json`` for ``(job_type, scale_factor)``
running alone; the loader inverts it: duration = ``total_steps / V100_STEPS_PER_S``
(counted ``duration_derived``). Job ids are the file line numbers; submit =
``arrival_time`` (s); GPUs = ``scale_factor``. The model family picks the profile where
a measured one matches (ResNet-18 on CIFAR-10 -> ``cifar10``, ResNet-50 on ImageNet ->
``imagenet``, Recommendation on MovieLens -> ``ncf``; counted ``profile_from_trace``);
Transformer, LM, A3C and CycleGAN get a drawn one
(``profile_drawn_unmeasured_model``). ``priority_weight`` and ``SLO`` are checked
numbers but not used.
"""

from __future__ import annotations

import numpy as np

from aryl_gym.workload.formats.common import (
    PathLike,
    Rows,
    completed_rows,
    is_number,
    known_words,
    line_ids,
    nonneg_column,
    open_tsv,
)
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import Header, TraceFormat

GAVEL_COLUMNS = (
    "job_type", "command", "working_directory", "num_steps_arg", "needs_data_dir",
    "total_steps", "scale_factor", "priority_weight", "SLO", "arrival_time",
)  # fmt: skip

#: Steps per second of each Gavel job type alone on V100 GPUs, by scale factor (GPUs):
#: the ``"null"`` entries of ``"v100"`` in ``scheduler/simulation_throughputs.json``
#: (stanford-futuredata/gavel, last changed in c2bc4b8, MIT), to 6 significant digits.
#: A job type is only measured at the scale factors listed.
V100_STEPS_PER_S: dict[str, dict[int, float]] = {
    "ResNet-18 (batch size 16)": {1: 32.3534, 2: 100.142, 4: 123.854, 8: 382.597},
    "ResNet-18 (batch size 32)": {1: 29.9472, 2: 94.2489, 4: 114.733, 8: 340.038},
    "ResNet-18 (batch size 64)": {1: 24.0932, 2: 74.1359, 4: 95.5881, 8: 255.829},
    "ResNet-18 (batch size 128)": {1: 17.9949, 2: 23.9854, 4: 69.9505, 8: 162.092},
    "ResNet-18 (batch size 256)": {1: 10.3003, 2: 15.8828, 4: 27.7821, 8: 81.5066},
    "ResNet-50 (batch size 16)": {1: 11.3961, 2: 13.8598, 4: 23.1956, 8: 27.7991},
    "ResNet-50 (batch size 32)": {1: 7.78726, 2: 10.8346, 4: 13.7632, 8: 24.0674},
    "ResNet-50 (batch size 64)": {1: 4.39477, 2: 7.92205, 4: 9.45195, 8: 17.3032},
    "ResNet-50 (batch size 128)": {1: 2.49677, 2: 4.22301, 4: 7.02929, 8: 10.2932},
    "Transformer (batch size 16)": {1: 11.0641, 2: 14.1538, 4: 20.085, 8: 71.6517},
    "Transformer (batch size 32)": {1: 10.6209, 2: 13.328, 4: 22.8225, 8: 63.9777},
    "Transformer (batch size 64)": {1: 8.61776, 2: 15.8765, 4: 19.6596, 8: 49.6507},
    "Transformer (batch size 128)": {1: 5.44611, 2: 10.0692, 4: 14.1745, 8: 30.8835},
    "Transformer (batch size 256)": {1: 1.59514, 2: 2.88524, 4: 4.76305, 8: 9.71702},
    "A3C": {1: 7.17577},
    "LM (batch size 5)": {1: 109.167, 2: 185.724, 4: 126.716, 8: 698.773},
    "LM (batch size 10)": {1: 81.6516, 2: 163.129, 4: 121.478, 8: 615.093},
    "LM (batch size 20)": {1: 64.7425, 2: 132.174, 4: 110.997, 8: 497.295},
    "LM (batch size 40)": {1: 45.2374, 2: 91.5927, 4: 96.0312, 8: 359.307},
    "LM (batch size 80)": {1: 28.24, 2: 58.0915, 4: 74.8073, 8: 231.176},
    "Recommendation (batch size 512)": {1: 23.3176},
    "Recommendation (batch size 1024)": {1: 13.2826},
    "Recommendation (batch size 2048)": {1: 7.46963},
    "Recommendation (batch size 4096)": {1: 3.90605},
    "Recommendation (batch size 8192)": {1: 2.84151},
    "CycleGAN": {1: 4.42609},
}

#: Model family (job type before " (batch size") -> measured profile of the same model
#: and dataset; the other families have none.
FAMILY_PROFILE = {"ResNet-18": "cifar10", "ResNet-50": "imagenet", "Recommendation": "ncf"}


def read_gavel(path: PathLike) -> Rows:
    """Parse and check a Gavel trace; durations from total_steps and V100 throughputs."""
    c = open_tsv(path, "gavel", GAVEL_COLUMNS)
    job_type = known_words(c, "job_type", V100_STEPS_PER_S, "job_type")
    flag = c.integer("needs_data_dir")
    c.fail_first(
        (flag != 0) & (flag != 1),
        "needs_data_dir",
        lambda i: f"must be 0 or 1, got {c.cells['needs_data_dir'][i]!r}",
    )
    steps = nonneg_column(c, "total_steps", integer=True)
    gpus = c.integer("scale_factor")
    c.fail_first(gpus < 1, "scale_factor", lambda i: f"must be >= 1, got {gpus[i]}")
    rate = np.asarray(
        [V100_STEPS_PER_S[t].get(int(g), np.nan) for t, g in zip(job_type, gpus, strict=True)]
    )
    c.fail_first(
        np.isnan(rate),
        "scale_factor",
        lambda i: (
            f"no V100 throughput for {job_type[i]!r} at scale_factor {gpus[i]} "
            f"(Gavel measured it at: {', '.join(map(str, V100_STEPS_PER_S[job_type[i]]))})"
        ),
    )
    c.number("priority_weight")
    c.number("SLO")
    submit = nonneg_column(c, "arrival_time")
    family = [t.split(" (batch size")[0] for t in job_type]
    profile = np.asarray([FAMILY_PROFILE.get(f, "") for f in family], dtype=object)
    return completed_rows(
        line_ids(c),
        submit,
        gpus,
        steps / rate,
        profile=profile,
        duration_derived=True,
        notes=[
            "duration = total_steps / Gavel's V100 throughput of (job_type, scale_factor)",
            "priority_weight and SLO not used",
        ],
    )


def _is_gavel(header: Header) -> bool:
    """A first line of 10 tab-separated cells, needs_data_dir 0/1, numbers where due."""
    cells = [c.strip() for c in header.line.split("\t")]
    return (
        len(cells) == len(GAVEL_COLUMNS)
        and cells[4] in ("0", "1")
        and all(is_number(cells[k]) for k in (5, 6, 7, 8, 9))
    )


TRACE_FORMATS = (
    TraceFormat(
        name="gavel",
        description="Gavel job trace (tab-separated, no header): job_type,command,...,total_steps,scale_factor,priority_weight,SLO,arrival_time",
        source="stanford-futuredata/gavel scheduler/traces/*.trace (parse_trace in scheduler/utils.py)",
        has_clock=False,  # arrival times from a synthetic Poisson process
        load=rows_loader("gavel", read_gavel),
        detect=_is_gavel,
    ),
)
