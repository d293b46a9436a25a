"""Metrics of a run (docs/model.md): per-job records, time integrals and the summary.

Usage figures are integrals over time, accumulated at each clock advance in O(1) from
the engine's counters; the same integrals feed the RL rewards, so rewards and summaries
agree by construction.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aryl_gym.sim.engine import Engine

from aryl_gym.sim.catalog import SUMMARY_KEYS
from aryl_gym.sim.cluster import LENT, TRAINING

# SUMMARY_KEYS (the catalog's summary metrics, in order) is re-exported from here.
__all__ = ["SUMMARY_KEYS", "MetricsRecorder"]


class MetricsRecorder:
    """Time integrals (optionally clipped to a steady-state window) and a sampled time series."""

    def __init__(self, engine: Engine, sample_interval_s: float) -> None:
        self.e = engine
        w = engine.scenario.window
        self.w0, self.w1 = w if w is not None else (0.0, math.inf)
        if not self.w0 < self.w1:
            raise ValueError(f"scenario {engine.scenario.name!r}: window {w} must have start < end")
        self.busy_training_gpu_s = 0.0
        self.busy_lent_gpu_s = 0.0
        self.lent_server_s = 0.0
        self.needed_server_s = 0.0
        self.jobs_in_system_s = 0.0  # integral of (queued + running) jobs, the JCT reward's base
        self.span_s = 0.0
        self.sample_interval = sample_interval_s
        self._next_sample = 0.0
        self.series: dict[str, list[float]] = {
            k: []
            for k in (
                "t",
                "busy_training",
                "busy_lent",
                "lent_servers",
                "needed",
                "queued",
                "running",
            )
        }

    def advance_to(self, t: float) -> None:
        e = self.e
        t0 = e.t
        if t <= t0:
            return
        w0, w1 = self.w0, self.w1
        a = t0 if t0 >= w0 else w0  # max(t0, w0)
        b = w1 if w1 < t else t  # min(t, w1)
        if b > a:
            dt = b - a
            cl = e.cluster
            busy = cl.busy
            self.busy_training_gpu_s += busy[TRAINING] * dt
            self.busy_lent_gpu_s += busy[LENT] * dt
            self.lent_server_s += len(cl.lent_order) * dt
            self.needed_server_s += e.needed * dt
            self.jobs_in_system_s += (len(e.queue) + len(e.running)) * dt
            self.span_s += dt
        if self._next_sample <= t:
            cl = e.cluster
            s = self.series
            while self._next_sample <= t:
                s["t"].append(self._next_sample)
                s["busy_training"].append(cl.busy[TRAINING])
                s["busy_lent"].append(cl.busy[LENT])
                s["lent_servers"].append(cl.n_lent)
                s["needed"].append(e.needed)
                s["queued"].append(len(e.queue))
                s["running"].append(len(e.running))
                self._next_sample += self.sample_interval

    # ------------------------------------------------------------------ outputs
    def _counted(self) -> list:
        """Arrived jobs whose submit time lies in the window."""
        return [j for j in self.e.jobs if j is not None and self.w0 <= j.submit < self.w1]

    def summary(self, wall_s: float = 0.0) -> dict[str, float | int | bool]:
        """The run's summary metrics: exactly :data:`SUMMARY_KEYS`, in the catalog's order
        (:mod:`aryl_gym.sim.catalog` describes each)."""
        e = self.e
        cfg = e.scenario.cluster
        sub = e.table.submit_time
        total = int(np.count_nonzero((sub >= self.w0) & (sub < self.w1)))
        jobs = self._counted()
        done = [j for j in jobs if j.finish == j.finish]
        jct = np.array([j.finish - j.submit for j in done])
        queue = np.array([j.queue_time for j in done])

        def stat(a: np.ndarray, q: float | None) -> float:
            if a.size == 0:
                return math.nan
            return float(a.mean()) if q is None else float(np.percentile(a, q))

        span = self.span_s
        g = cfg.gpus_per_server
        first = float(sub.min()) if len(sub) else 0.0
        last = max((j.finish for j in done), default=first)
        out: dict[str, float | int | bool] = {
            "jobs_total": total,
            "jobs_finished": len(done),
            "jobs_unfinished": total - len(done),
            "avg_jct_s": stat(jct, None),
            "p50_jct_s": stat(jct, 50),
            "p95_jct_s": stat(jct, 95),
            "p99_jct_s": stat(jct, 99),
            "avg_queue_s": stat(queue, None),
            "p50_queue_s": stat(queue, 50),
            "p95_queue_s": stat(queue, 95),
            "p99_queue_s": stat(queue, 99),
            "makespan_s": last - first,
            "preemptions": sum(j.preemptions for j in jobs),
            "resizes": sum(j.resizes for j in jobs),
            "lost_gpu_hours": sum(j.lost_gpu_seconds for j in jobs) / 3600.0,
            "gpu_hours": sum(j.gpu_seconds for j in jobs) / 3600.0,
            "usage_training": self.busy_training_gpu_s / (cfg.training_gpus * span)
            if span
            else 0.0,
            "usage_lent": self.busy_lent_gpu_s / (self.lent_server_s * g)
            if self.lent_server_s
            else 0.0,
            "usage_overall": (
                self.busy_training_gpu_s + self.busy_lent_gpu_s + self.needed_server_s * g
            )
            / ((cfg.training_gpus + cfg.inference_gpus) * span)
            if span
            else 0.0,
            "avg_lent_servers": self.lent_server_s / span if span else 0.0,
            "reclaim_events": e.reclaim_events,
            "reclaimed_servers": e.reclaimed_servers,
            "sim_events": e.events,
            "rounds": e.rounds,
            "grows_cut": e.grows_cut,
            "sim_time_s": e.t,
            "stalled": e.stalled,
            "wall_s": wall_s,
        }
        if set(out) != set(SUMMARY_KEYS):
            raise RuntimeError(
                "summary keys differ from the metric catalog: "
                f"not in the catalog {sorted(set(out) - set(SUMMARY_KEYS))}, "
                f"missing {sorted(set(SUMMARY_KEYS) - set(out))}"
            )
        return {k: out[k] for k in SUMMARY_KEYS}

    def job_records(self):
        """One row per arrived job (pandas DataFrame): docs/model.md's per-job metrics."""
        import pandas as pd

        rows = [
            (j.job_id, j.submit, j.gpus, j.elastic, j.min_gpus, j.max_gpus, j.profile.name, j.duration,
             j.first_start, j.finish, j.finish - j.submit, j.queue_time, j.preemptions, j.resizes,
             j.gpu_seconds, j.lost_gpu_seconds)
            for j in self.e.jobs if j is not None
        ]  # fmt: skip
        cols = ["job_id", "submit", "gpus", "elastic", "min_gpus", "max_gpus", "profile", "duration",
                "first_start", "finish", "jct", "queue_time", "preemptions", "resizes",
                "gpu_seconds", "lost_gpu_seconds"]  # fmt: skip
        return pd.DataFrame.from_records(rows, columns=cols)

    def timeseries(self):
        import pandas as pd

        return pd.DataFrame(self.series)
