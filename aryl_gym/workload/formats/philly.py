"""Microsoft Philly ``cluster_job_log``: a JSON list of jobs, each with its attempts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from aryl_gym.workload.formats.common import CENSORED, FAILED, KILLED, NEVER, OK, PathLike, Rows
from aryl_gym.workload.formats.mapping import rows_loader
from aryl_gym.workload.formats.registry import Header, TraceFormat
from aryl_gym.workload.trace_io import TraceFormatError

_PHILLY_STATUS = {"Pass": OK, "Failed": FAILED, "Killed": KILLED, "Running": CENSORED}


def _philly_fail(path: PathLike, reason: str, record: int, fld: str) -> TraceFormatError:
    return TraceFormatError(path, reason, row=record + 1, field=fld)


def read_philly(path: PathLike) -> Rows:
    """Philly cluster_job_log: a JSON list of jobs; row = 1-based position in the list."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise TraceFormatError(
            path, f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from e
    if isinstance(data, dict):  # tolerate {"jobs": [...]} wrappers
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise TraceFormatError(path, "expected a JSON list of job records")
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise TraceFormatError(path, "expected a non-empty JSON list of job records")
    n = len(data)
    ids, users, statuses, submitted = [], [], [], []
    gpus = np.zeros(n, np.int64)
    att_start, att_end, att_job, att_k = [], [], [], []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise _philly_fail(path, f"must be a JSON object, got {type(rec).__name__}", i, "job")
        for key in ("jobid", "status", "submitted_time", "attempts"):
            if key not in rec:
                raise _philly_fail(path, "missing key (required)", i, key)
        if rec["jobid"] in (None, ""):
            raise _philly_fail(path, "missing value", i, "jobid")
        ids.append(str(rec["jobid"]))
        users.append("" if rec.get("user") is None else str(rec["user"]))
        st = rec["status"]
        if st not in _PHILLY_STATUS:
            raise _philly_fail(
                path, f"unknown status {st!r}; known: {', '.join(_PHILLY_STATUS)}", i, "status"
            )
        statuses.append(st)
        if not isinstance(rec["submitted_time"], str) or rec["submitted_time"] in ("", "None"):
            raise _philly_fail(
                path, f"must be a date-time, got {rec['submitted_time']!r}", i, "submitted_time"
            )
        submitted.append(rec["submitted_time"])
        attempts = rec["attempts"]
        if not isinstance(attempts, list):
            raise _philly_fail(path, "must be a list", i, "attempts")
        for k, a in enumerate(attempts):
            if not isinstance(a, dict):
                raise _philly_fail(path, "must be a JSON object", i, f"attempts[{k}]")
            n_gpu = 0
            for d, det in enumerate(a.get("detail") or []):
                g = det.get("gpus") if isinstance(det, dict) else None
                if not isinstance(g, list):
                    raise _philly_fail(
                        path, "must be a list of GPU names", i, f"attempts[{k}].detail[{d}].gpus"
                    )
                n_gpu += len(g)
            gpus[i] = max(gpus[i], n_gpu)
            att_start.append(a.get("start_time"))
            att_end.append(a.get("end_time"))
            att_job.append(i)
            att_k.append(k)

    def parse(values: list, where) -> np.ndarray:
        # null, "" and the string "None" all mean "no time" (unfinished or never started)
        s = pd.Series([None if v in ("", "None", "null") else v for v in values], dtype=object)
        missing = s.isna().to_numpy()
        dt = pd.to_datetime(s, errors="coerce", format="ISO8601")
        bad = ~missing & dt.isna().to_numpy()
        if bad.any():
            j = int(np.argmax(bad))
            rec, fld = where(j)
            raise _philly_fail(
                path,
                f"must be a date-time such as '2017-10-03 14:05:31', got {values[j]!r}",
                rec,
                fld,
            )
        return (dt - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=np.float64)

    submit = parse(submitted, lambda j: (j, "submitted_time"))
    if np.isnan(submit).any():
        j = int(np.argmax(np.isnan(submit)))
        raise _philly_fail(path, "missing value", j, "submitted_time")
    a_job = np.asarray(att_job, np.int64)
    start = parse(att_start, lambda j: (att_job[j], f"attempts[{att_k[j]}].start_time"))
    end = parse(att_end, lambda j: (att_job[j], f"attempts[{att_k[j]}].end_time"))
    bad = end < start
    if bad.any():
        j = int(np.argmax(bad))
        raise _philly_fail(
            path,
            f"end before start ({att_end[j]!r} < {att_start[j]!r})",
            att_job[j],
            f"attempts[{att_k[j]}].end_time",
        )
    ran = ~np.isnan(start)
    finished = ran & ~np.isnan(end)
    duration = np.zeros(n)
    np.add.at(duration, a_job[finished], end[finished] - start[finished])
    any_ran = np.zeros(n, bool)
    any_ran[a_job[ran]] = True
    open_end = np.zeros(n, bool)
    open_end[a_job[ran & np.isnan(end)]] = True

    status = np.asarray(statuses, dtype=object)
    kind = pd.Series(status).map(_PHILLY_STATUS).to_numpy(dtype=object)
    kind = np.where(open_end, CENSORED, kind)
    kind = np.where(~any_ran, NEVER, kind)
    duration = np.where(open_end, np.nan, duration)
    return Rows(
        np.asarray(ids, dtype=object), submit, gpus, np.zeros(n, bool), duration, kind, status,
        np.asarray(users, dtype=object),
    )  # fmt: skip


def _is_json(header: Header) -> bool:
    """A JSON list or object: the first non-blank character is ``[`` or ``{``."""
    return header.line.lstrip()[:1] in ("[", "{")


TRACE_FORMATS = (
    TraceFormat(
        name="philly",
        description="Microsoft Philly cluster_job_log (JSON list of jobs with attempts)",
        source="msr-fiddle/philly-traces trace-data.tar.gz cluster_job_log (user-downloaded)",
        has_clock=True,
        load=rows_loader("philly", read_philly),
        detect=_is_json,
    ),
)
