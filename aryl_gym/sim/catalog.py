"""The metric catalog: the one description of every metric the project reports.

Each :class:`Metric` says how a value is stored (the engine summary, ``results.csv``,
JSON) and how it is shown (title, unit, scale, decimals), which direction is better and
what it means. The engine's summary (:meth:`aryl_gym.sim.metrics.MetricsRecorder.summary`)
returns exactly :data:`SUMMARY_KEYS`, in that order; the benchmark, sweep and
``aryl-gym evaluate`` tables, their plots and the TensorBoard scalars of the agents take
their keys, titles, units and decimals from here, through the selections at the end of
this module (:data:`TABLE_METRICS`, :data:`SWEEP_METRICS`, ...).

This module belongs to the simulator and imports nothing outside ``aryl_gym.sim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

#: Where a metric comes from: the engine summary of one run, a comparison of one run with
#: a reference policy's run on the same workload, or the evaluation of an RL agent.
Kind = Literal["summary", "comparison", "agent"]
#: Which way is better; ``None`` for a metric that is neither (a size, a count of means).
Direction = Literal["lower", "higher"] | None

_HOURS = 1 / 3600.0


@dataclass(frozen=True)
class Metric:
    """One reported metric.

    Attributes:
        key: its name in summaries, CSV columns, JSON and TensorBoard tags.
        title: the short column title, without unit (``"avg JCT"``).
        unit: the unit as shown (``"h"``; ``""`` for a plain count).
        scale: shown value = stored value x ``scale`` (1/3600 turns seconds into hours).
        decimals: decimals of a shown value and of its interval.
        direction: ``"lower"`` or ``"higher"`` is better, or ``None``.
        description: one sentence on what it measures, with the stored unit.
        kind: see :data:`Kind`.
        no_change: for comparisons, the value that means "same as the reference" (1 for a
            ratio, 0 for a difference); ``None`` otherwise.
    """

    key: str
    title: str
    unit: str
    scale: float
    decimals: int
    direction: Direction
    description: str
    kind: Kind = "summary"
    no_change: float | None = None

    def __post_init__(self) -> None:
        if self.decimals < 0:
            raise ValueError(f"metric {self.key!r}: decimals must be >= 0, got {self.decimals}")
        if self.direction not in ("lower", "higher", None):
            raise ValueError(f"metric {self.key!r}: unknown direction {self.direction!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"metric {self.key!r}: scale must be finite and > 0")

    @property
    def heading(self) -> str:
        """The column heading: the title and, if any, the unit in parentheses."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def shown(self, value: float) -> float:
        """``value`` (stored units) in the shown unit."""
        return float(value) * self.scale

    def format(self, value: float | None, half_width: float = math.nan, sign: bool = False) -> str:
        """``value`` in the shown unit with :attr:`decimals`, followed by `` ± half_width``
        when the half-width is finite; ``n/a`` for a missing (None or NaN) value and
        ``inf`` / ``-inf`` for an infinite one. ``sign`` always writes the sign (for
        differences)."""
        if value is None or math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        spec = f"{'+' if sign else ''},.{self.decimals}f"
        text = format(self.shown(value), spec)
        if half_width is not None and math.isfinite(half_width):
            text += f" ± {self.shown(half_width):,.{self.decimals}f}"
        return text


#: Every metric, summary keys first in the order the engine summary holds them.
CATALOG: tuple[Metric, ...] = (
    Metric("jobs_total", "jobs", "", 1.0, 1, None,
           "Jobs submitted (inside the scenario's window, if it has one)."),
    Metric("jobs_finished", "finished jobs", "", 1.0, 1, "higher",
           "Counted jobs that finished before the run ended."),
    Metric("jobs_unfinished", "unfinished jobs", "", 1.0, 1, "lower",
           "Counted jobs still queued or running when the run ended."),
    Metric("avg_jct_s", "avg JCT", "h", _HOURS, 2, "lower",
           "Mean job completion time (finish - submit) of the finished jobs, in seconds."),
    Metric("p50_jct_s", "p50 JCT", "h", _HOURS, 2, "lower",
           "Median job completion time of the finished jobs, in seconds."),
    Metric("p95_jct_s", "p95 JCT", "h", _HOURS, 2, "lower",
           "95th percentile of the job completion time of the finished jobs, in seconds."),
    Metric("p99_jct_s", "p99 JCT", "h", _HOURS, 2, "lower",
           "99th percentile of the job completion time of the finished jobs, in seconds."),
    Metric("avg_queue_s", "avg queue", "h", _HOURS, 2, "lower",
           "Mean queueing time (all waiting, after preemptions too) of the finished jobs, "
           "in seconds."),
    Metric("p50_queue_s", "p50 queue", "h", _HOURS, 2, "lower",
           "Median queueing time of the finished jobs, in seconds."),
    Metric("p95_queue_s", "p95 queue", "h", _HOURS, 2, "lower",
           "95th percentile of the queueing time of the finished jobs, in seconds."),
    Metric("p99_queue_s", "p99 queue", "h", _HOURS, 2, "lower",
           "99th percentile of the queueing time of the finished jobs, in seconds."),
    Metric("makespan_s", "makespan", "h", _HOURS, 2, "lower",
           "From the first submission to the last finish, in seconds."),
    Metric("preemptions", "preemptions", "", 1.0, 1, "lower",
           "Preemptions of counted jobs (a reclaim or a policy stopping a running job)."),
    Metric("resizes", "resizes", "", 1.0, 1, None,
           "Changes of the GPU count of running elastic jobs."),
    Metric("lost_gpu_hours", "lost GPU time", "GPU-h", 1.0, 1, "lower",
           "GPU-hours of work lost to preemptions (progress since the last checkpoint)."),
    Metric("gpu_hours", "GPU time used", "GPU-h", 1.0, 1, None,
           "GPU-hours that counted jobs held."),
    Metric("usage_training", "training usage", "%", 100.0, 1, "higher",
           "Busy training GPU-seconds / (training GPUs x span), a fraction."),
    Metric("usage_lent", "lent usage", "%", 100.0, 1, "higher",
           "Busy lent GPU-seconds / lent GPU-seconds, a fraction (0 when nothing was lent)."),
    Metric("usage_overall", "overall usage", "%", 100.0, 1, "higher",
           "(Busy training + busy lent + demanded inference GPU-seconds) / (all GPUs x span), "
           "a fraction."),
    Metric("avg_lent_servers", "avg lent servers", "", 1.0, 2, None,
           "Time average of the inference servers lent to training."),
    Metric("reclaim_events", "reclaims", "", 1.0, 1, None,
           "Times the inference cluster took lent servers back."),
    Metric("reclaimed_servers", "reclaimed servers", "", 1.0, 1, None,
           "Lent servers taken back, over all reclaims."),
    Metric("sim_events", "simulator events", "", 1.0, 0, None,
           "Events the simulator processed."),
    Metric("rounds", "scheduling rounds", "", 1.0, 0, None,
           "Scheduling rounds the policy was asked to decide."),
    Metric("grows_cut", "grows cut", "", 1.0, 1, None,
           "Grows the engine cut short because extra workers found no own or empty room "
           "left by the round's earlier changes (only under the extras_own_or_empty rule)."),
    Metric("sim_time_s", "simulated time", "h", _HOURS, 2, None,
           "Simulated clock at the end of the run, in seconds."),
    Metric("stalled", "stalled", "", 1.0, 2, "lower",
           "Whether the run ended with waiting jobs that nothing could start (a boolean; "
           "its mean over runs is the fraction stalled)."),
    Metric("wall_s", "wall time", "s", 1.0, 1, None,
           "Wall-clock seconds the run took (not deterministic)."),
    Metric("queue_ratio", "queueing vs ref", "x lower", 1.0, 2, "higher",
           "Reference policy's avg queue / this policy's avg queue on the same workload "
           "(per seed); above 1 is less queueing.", kind="comparison", no_change=1.0),
    Metric("jct_ratio", "JCT vs ref", "x lower", 1.0, 2, "higher",
           "Reference policy's avg JCT / this policy's avg JCT on the same workload "
           "(per seed); above 1 is faster.", kind="comparison", no_change=1.0),
    Metric("usage_gain_pp", "usage gain vs ref", "pp", 1.0, 1, "higher",
           "This policy's overall usage minus the reference policy's on the same workload "
           "(per seed), in percentage points.", kind="comparison", no_change=0.0),
    Metric("invalid_actions", "invalid actions", "", 1.0, 1, "lower",
           "Actions of an RL agent that the env's mask forbade, per episode.", kind="agent"),
)  # fmt: skip

#: The catalog by key.
METRICS: dict[str, Metric] = {m.key: m for m in CATALOG}
if len(METRICS) != len(CATALOG):  # pragma: no cover - a duplicated key is a coding error
    raise RuntimeError("metric catalog: duplicated keys")


def metric(key: str) -> Metric:
    """The catalog entry of ``key``; ``KeyError`` naming the known keys otherwise."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(METRICS)}") from None


def select(*keys: str) -> tuple[Metric, ...]:
    """The catalog entries of ``keys``, in that order."""
    return tuple(metric(k) for k in keys)


#: The keys of the engine summary, in its order (``aryl-gym simulate --json`` writes them).
SUMMARY_KEYS: tuple[str, ...] = tuple(m.key for m in CATALOG if m.kind == "summary")

# ---------------------------------------------------------------- the reports' selections

#: Columns of the benchmark table and of the ``aryl-gym evaluate`` table (both mean ± 95 %
#: CI over seeds, through :func:`aryl_gym.experiments.report.format_table`).
TABLE_METRICS: tuple[Metric, ...] = select(
    "avg_queue_s", "p95_queue_s", "avg_jct_s", "p95_jct_s", "usage_training", "usage_overall",
    "preemptions", "lost_gpu_hours", "resizes", "avg_lent_servers", "jobs_unfinished",
)  # fmt: skip
#: Per-policy columns of the sweep's per-grid-point table (means over seeds).
SWEEP_METRICS: tuple[Metric, ...] = select(
    "avg_queue_s", "avg_jct_s", "usage_overall", "preemptions"
)
#: The reference's columns in the sweep's sensitivity tables.
SENSITIVITY_METRICS: tuple[Metric, ...] = select("avg_queue_s", "avg_jct_s")
#: Comparisons with a reference policy (benchmark, sweep and evaluate tables; sweep plots).
RATIO_METRICS: tuple[Metric, ...] = tuple(m for m in CATALOG if m.kind == "comparison")
#: Paired differences to the reference and bar charts of ``aryl-gym evaluate``.
COMPARE_METRICS: tuple[Metric, ...] = select(
    "avg_jct_s", "avg_queue_s", "preemptions", "lost_gpu_hours"
)
#: TensorBoard scalars ``episode/<key>`` and ``eval/<key>`` of training, and the columns
#: of ``eval_log.csv`` (stored units; ``invalid_actions`` is logged besides them).
EPISODE_METRICS: tuple[Metric, ...] = select(
    "avg_jct_s", "avg_queue_s", "usage_overall", "preemptions", "lost_gpu_hours",
    "jobs_unfinished",
)  # fmt: skip
