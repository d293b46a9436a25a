"""The event log of a run: every allocation change, preemption, completion, lend and reclaim.

Recording is off by default. An engine made with ``event_log=EventLog()`` calls the log's
``record_*`` methods at each change; each call appends one tuple, and
:meth:`EventLog.to_frame` / :meth:`EventLog.to_csv` turn them into a table at the end
(pandas is imported only there). One row per event, in the order they happened:

=============  ==========================================================================
column         meaning
=============  ==========================================================================
``time_s``     simulated time of the event, seconds
``kind``       one of :data:`KINDS` (below)
``job_id``     the job's id; empty for ``lend`` and ``reclaim`` rows
``server``     ``lend`` / ``reclaim`` rows: the inference server lent or taken back; a job
               row a reclaim caused (a scale-in ``resize`` or a ``preempt``): the server
               whose reclaim caused it; empty otherwise
``gpus_before`` job rows: the job's GPUs before the event; ``lend`` / ``reclaim``: the
               server's GPUs usable by training before (0 / the server's GPUs)
``gpus_after`` the same after the event
``placement``  job rows: where the job's GPUs are after the event, ``server:gpus`` pairs
               separated by spaces in server order (``"0:8 9:4"``); empty when it holds none
=============  ==========================================================================

Kinds: ``start`` (a queued job gets GPUs: its first start or a restart after a
preemption), ``resize`` (a running job's placement changes: more or fewer GPUs, or the
same number moved; the engine's ``resizes`` counter counts exactly these), ``preempt`` (a
running job is stopped and requeued, by the policy or by a reclaim), ``finish``, ``lend``
and ``reclaim``.

The rows reconcile with the run's summary: ``preempt`` rows = ``preemptions``, ``resize``
rows = ``resizes``, ``reclaim`` rows = ``reclaimed_servers``, ``finish`` rows =
``jobs_finished`` (for a scenario without a steady-state window; with one, the summary
counts only the jobs submitted inside it), and the GPU-seconds the rows imply (each job's
``gpus_after`` until its next row or the end of the run) equal ``gpu_hours``.

This module imports nothing outside :mod:`aryl_gym.sim`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from aryl_gym.sim.cluster import Cluster
    from aryl_gym.sim.job import Job

START, RESIZE, PREEMPT, FINISH, LEND, RECLAIM = (
    "start",
    "resize",
    "preempt",
    "finish",
    "lend",
    "reclaim",
)
#: Every kind of row, in the order the module docstring describes them.
KINDS: tuple[str, ...] = (START, RESIZE, PREEMPT, FINISH, LEND, RECLAIM)
#: The columns of :meth:`EventLog.to_frame`, in order.
COLUMNS: tuple[str, ...] = (
    "time_s",
    "kind",
    "job_id",
    "server",
    "gpus_before",
    "gpus_after",
    "placement",
)

# one recorded row: (time, kind, job id, server or None, GPUs before, GPUs after, placement)
_Row = tuple[float, str, str, int | None, int, int, dict[int, int] | None]


class EventLog:
    """Rows of a run's events, appended by the engine (see the module docstring).

    ``reclaiming`` is the server whose reclaim the engine is applying (between
    :meth:`begin_reclaim` and :meth:`end_reclaim`; ``None`` otherwise): job rows recorded
    meanwhile name it in ``server``.
    """

    __slots__ = ("reclaiming", "rows")

    def __init__(self) -> None:
        self.rows: list[_Row] = []
        self.reclaiming: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    # -- called by the engine ---------------------------------------------------------
    def record_job(self, t: float, kind: str, job: Job, new: dict[int, int]) -> None:
        """``job`` goes from its current placement to ``new`` (``{}``: it stops) at ``t``;
        call before the engine applies the change."""
        self.rows.append(
            (t, kind, job.job_id, self.reclaiming, job.n_gpus, sum(new.values()), dict(new))
        )

    def record_lend(self, t: float, cluster: Cluster) -> None:
        """``cluster`` has just lent a server (its latest) at ``t``."""
        g = cluster.gpus_per_server
        self.rows.append((t, LEND, "", cluster.lent_order[-1], 0, g, None))

    def begin_reclaim(self, t: float, server: int, cluster: Cluster) -> None:
        """``server`` of ``cluster`` is taken back at ``t``: job rows recorded until
        :meth:`end_reclaim` were caused by it."""
        self.rows.append((t, RECLAIM, "", server, cluster.gpus_per_server, 0, None))
        self.reclaiming = server

    def end_reclaim(self) -> None:
        """The reclaim is applied: later job rows have no causing server."""
        self.reclaiming = None

    # -- outputs ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with :data:`COLUMNS` (``server`` as nullable Int64)."""
        import pandas as pd

        df = pd.DataFrame.from_records(
            [(*row[:6], _placement_text(row[6])) for row in self.rows], columns=list(COLUMNS)
        )
        return df.astype(
            {
                "time_s": "float64",
                "kind": "object",
                "job_id": "object",
                "server": "Int64",
                "gpus_before": "int64",
                "gpus_after": "int64",
                "placement": "object",
            }
        )

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_frame` to ``path`` (no index column; empty cells for no value)."""
        self.to_frame().to_csv(path, index=False)


def _placement_text(placement: dict[int, int] | None) -> str:
    """``{9: 4, 0: 8}`` -> ``"0:8 9:4"``; ``""`` for none or an empty placement."""
    if not placement:
        return ""
    return " ".join(f"{s}:{k}" for s, k in sorted(placement.items()))


def placement_from_text(text: object) -> dict[int, int]:
    """The inverse of the event log's placement text: ``"0:8 9:4"`` -> ``{0: 8, 9: 4}``;
    ``{}`` for an empty cell (also as read back from CSV: NaN)."""
    if not isinstance(text, str):
        return {}
    return {int(s): int(k) for s, k in (tok.split(":") for tok in text.split())}
