"""The project's training-job table: the one in-memory form every workload source produces.

A workload is a :class:`JobTable`: one numpy array per column, all of the same length,
sorted by ``submit_time``, plus any *extra* columns a trace carries beyond the format's
(``JobTable.extras``; policies read them with ``view.job_extra(job, name)``). Trace files, the synthetic generator and the real-trace
loaders all produce one; the engine consumes one. See ``traces/README.md`` for the
on-disk CSV form of the same columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Columns of the trace format, in file order, with their meaning.
COLUMNS: dict[str, str] = {
    "job_id": "unique job identifier (string)",
    "submit_time": "submission time in seconds from the start of the trace (float, >= 0, non-decreasing)",
    "gpus": "requested GPUs (int >= 1)",
    "duration": "run time in seconds at the requested GPUs on training GPUs, compact placement (float > 0)",
    "elastic": "whether the job can run on any GPU count in [min_gpus, max_gpus] (bool)",
    "min_gpus": "smallest GPU count of an elastic job (int, 1 <= min_gpus <= gpus)",
    "max_gpus": "largest GPU count of an elastic job (int, >= gpus)",
    "profile": "name of the scaling profile (see aryl_gym.sim.profiles)",
    "user": "submitting user (string, optional; empty when unknown)",
}
REQUIRED_COLUMNS = ("job_id", "submit_time", "gpus", "duration")

#: Types an extra column may hold, by the name a trace header declares them with
#: (``priority:int``), and the numpy dtype of each; an undeclared extra column is ``str``.
EXTRA_TYPES: dict[str, np.dtype] = {
    "str": np.dtype(object),
    "int": np.dtype(np.int64),
    "float": np.dtype(np.float64),
    "bool": np.dtype(bool),
}


def extra_type(values: np.ndarray) -> str:
    """The :data:`EXTRA_TYPES` name of an extra column's array (by its dtype)."""
    for name, dtype in EXTRA_TYPES.items():
        if values.dtype == dtype:
            return name
    raise ValueError(f"dtype {values.dtype} is not an extra column type ({', '.join(EXTRA_TYPES)})")


@dataclass
class JobTable:
    """Column arrays of a training workload, sorted by ``submit_time``.

    Build one with :meth:`from_columns` (which fills defaults and checks shapes) rather
    than by hand. ``source`` names where it came from, for error messages and reports.
    """

    job_id: np.ndarray  # str (object)
    submit_time: np.ndarray  # float64
    gpus: np.ndarray  # int64
    duration: np.ndarray  # float64
    elastic: np.ndarray  # bool
    min_gpus: np.ndarray  # int64
    max_gpus: np.ndarray  # int64
    profile: np.ndarray  # str (object)
    user: np.ndarray  # str (object)
    source: str = field(default="<memory>")
    #: Columns beyond the format's, by name: one array per column, of a dtype of
    #: :data:`EXTRA_TYPES` (str as object, int64, float64, bool).
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.submit_time.shape[0])

    @classmethod
    def from_columns(
        cls,
        *,
        submit_time,
        gpus,
        duration,
        job_id=None,
        elastic=None,
        min_gpus=None,
        max_gpus=None,
        profile=None,
        user=None,
        source: str = "<memory>",
        extras: dict | None = None,
    ) -> JobTable:
        """Assemble a table; missing optional columns get their defaults.

        Defaults: ``job_id`` = row index, ``elastic`` = False, ``min_gpus`` =
        ``max_gpus`` = ``gpus`` for inelastic jobs, ``max(1, gpus // 2)`` and
        ``2 * gpus`` for elastic ones (docs/model.md), ``profile`` = "linear",
        ``user`` = "". ``extras``: name -> values of the extra columns; text values
        become str (object) arrays, numbers and booleans keep int64 / float64 / bool.
        """
        submit_time = np.asarray(submit_time, dtype=np.float64)
        n = submit_time.shape[0]
        gpus = np.asarray(gpus, dtype=np.int64)
        duration = np.asarray(duration, dtype=np.float64)
        elastic = np.zeros(n, bool) if elastic is None else np.asarray(elastic, dtype=bool)
        if min_gpus is None or max_gpus is None:
            low, high = elastic_range(gpus, elastic)
            min_gpus = low if min_gpus is None else min_gpus
            max_gpus = high if max_gpus is None else max_gpus
        table = cls(
            job_id=np.asarray(
                [str(i) for i in range(n)] if job_id is None else [str(j) for j in job_id],
                dtype=object,
            ),
            submit_time=submit_time,
            gpus=gpus,
            duration=duration,
            elastic=elastic,
            min_gpus=np.asarray(min_gpus, dtype=np.int64),
            max_gpus=np.asarray(max_gpus, dtype=np.int64),
            profile=np.asarray(["linear"] * n if profile is None else list(profile), dtype=object),
            user=np.asarray([""] * n if user is None else [str(u) for u in user], dtype=object),
            source=source,
            extras={name: _extra_array(source, name, v) for name, v in (extras or {}).items()},
        )
        for name, values in [*((c, getattr(table, c)) for c in COLUMNS), *table.extras.items()]:
            if values.shape != (n,):
                raise ValueError(
                    f"{source}: column {name!r} has {values.shape[0]} rows, expected {n}"
                )
        return table

    def to_frame(self):
        """The table as a pandas DataFrame with the trace-format columns, then the extras."""
        import pandas as pd

        return pd.DataFrame({**{name: getattr(self, name) for name in COLUMNS}, **self.extras})

    def select(self, mask: np.ndarray) -> JobTable:
        """Rows where ``mask`` is true (or the given indices), same source and extras."""
        return JobTable(
            **{name: getattr(self, name)[mask] for name in COLUMNS},
            source=self.source,
            extras={name: values[mask] for name, values in self.extras.items()},
        )


def _extra_array(source: str, name: str, values) -> np.ndarray:
    """Extra column ``name`` as an array of an :data:`EXTRA_TYPES` dtype."""
    if name in COLUMNS:
        raise ValueError(f"{source}: extra column {name!r} is a format column")
    a = np.asarray(values)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype.kind in "fb":
        return a.astype(np.float64 if a.dtype.kind == "f" else bool)
    if a.dtype.kind in "OUS":
        return np.asarray([str(v) for v in a.ravel()], dtype=object).reshape(a.shape)
    raise ValueError(
        f"{source}: extra column {name!r} has values of dtype {a.dtype}; "
        f"extra columns hold {', '.join(EXTRA_TYPES)}"
    )


def elastic_range(
    gpus: np.ndarray, elastic: np.ndarray, min_fraction: float = 0.5, max_factor: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(min_gpus, max_gpus)`` of jobs asking for ``gpus``: for elastic ones
    ``max(1, floor(g x min_fraction))`` and ``max(g, floor(g x max_factor))``, for the
    others ``g`` both. The defaults are docs/model.md's ``max(1, g // 2)`` and ``2 g``
    (``g x 0.5`` and ``g x 2.0`` are exact floats)."""
    gpus = np.asarray(gpus, dtype=np.int64)
    low = np.clip(np.floor(gpus * min_fraction).astype(np.int64), 1, gpus)
    high = np.maximum(gpus, np.floor(gpus * max_factor).astype(np.int64))
    return np.where(elastic, low, gpus), np.where(elastic, high, gpus)


def check_elastic_range(owner: str, min_fraction: float, max_factor: float) -> None:
    """``ValueError`` naming ``owner``'s field unless ``0 < min_fraction <= 1`` and
    ``1 <= max_factor`` (both finite)."""
    if not (math.isfinite(min_fraction) and 0.0 < min_fraction <= 1.0):
        raise ValueError(f"{owner}.elastic_min_fraction: must lie in (0, 1], got {min_fraction!r}")
    if not (math.isfinite(max_factor) and max_factor >= 1.0):
        raise ValueError(
            f"{owner}.elastic_max_factor: must be a finite number >= 1, got {max_factor!r}"
        )
