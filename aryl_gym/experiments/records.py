"""The output folder of ``benchmark`` / ``sweep``: run records, resuming, the marker of an
unfinished folder.

* Every finished run is kept as ``runs/<key>.json`` (its summary; per-job columns and the
  time series, when kept, in ``runs/<key>.npz``), written atomically in this process as
  the run ends. ``<key>`` (:func:`run_key`) is a hash of the policy (and the factory
  that builds it), the whole scenario configuration (with the content of its trace
  file), the seed and the code version (:func:`code_version`): a record is reused only
  for exactly the same run.
* With ``resume`` the runs that have a record are not computed again
  (:func:`execute_in_folder`); a run that failed has no record and runs again.
* While a folder is unfinished it holds ``INCOMPLETE.json`` (:data:`MARKER`): the runs
  and report files that are missing and how to finish (``--resume``). It is written when
  the runs start, rewritten when they are interrupted (Ctrl-C, SIGTERM) or when writing
  the reports is, and removed once every report is written. A folder killed with SIGKILL
  keeps the marker written at the start: it lists every run of the command as missing
  (``runs/`` says which ones did finish).
* A folder that already holds results is refused unless ``force`` (replace them: the old
  reports, records and marker are deleted first) or ``resume`` (reuse the records).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aryl_gym.experiments.runner import RunOutput, RunSpec, execute_runs
from aryl_gym.interrupts import signals_deferred
from aryl_gym.outputs import atomic_path, check_output_dir, write_text_atomic

#: Sub-folder of the run records.
RUNS_DIR = "runs"
#: The marker file of an unfinished folder.
MARKER = "INCOMPLETE.json"
#: Version of the record layout (part of every key).
RECORD_FORMAT = 1
_RECORD_NAME = re.compile(r"^[0-9a-f]{24}\.(json|npz)$")


# --------------------------------------------------------------------------- keys


def _package_dirs() -> list[Path]:
    """Folders of the code a run executes: ``aryl_gym`` and its installed sub-packages
    ``aryl_gym.baselines`` / ``aryl_gym.agents``, which may live elsewhere (package-dir)."""
    import importlib.util

    import aryl_gym

    dirs = [Path(aryl_gym.__file__).parent]
    for name in ("aryl_gym.baselines", "aryl_gym.agents"):
        spec = importlib.util.find_spec(name)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            if Path(loc) not in dirs:
                dirs.append(Path(loc))
    return dirs


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<package version>+<hash>``: the hash covers every ``.py`` and data file of the
    packages runs execute, so any change of the code gives new run keys."""
    from aryl_gym import __version__

    h = hashlib.sha256()
    for root in _package_dirs():
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".csv")
        )
        for p in files:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _trace_digest(trace: str | None) -> str | None:
    """SHA-256 of the trace file's content (``"missing"`` when it cannot be read)."""
    if trace is None:
        return None
    try:
        st = Path(trace).stat()
        return _file_digest(str(Path(trace).resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return "missing"


def run_key(spec: RunSpec) -> str:
    """24 hex digits identifying ``spec``'s result: a hash of the policy name and factory,
    the scenario configuration (every field, and the trace file's content), the seed,
    the code version and the record format."""
    factory = spec.factory
    payload = {
        "format": RECORD_FORMAT,
        "policy": spec.policy,
        "factory": None
        if factory is None
        else f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', repr(factory))}",
        "scenario": dataclasses.asdict(spec.scenario),
        "trace_sha256": _trace_digest(spec.scenario.trace),
        "seed": int(spec.seed),
        "code": code_version(),
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _plain(v: Any) -> Any:
    """numpy scalars as Python numbers (for ``json.dumps``)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


# --------------------------------------------------------------------------- folder


class ResultFolder:
    """The ``--out`` folder of one command: its report files, run records and marker.

    Args:
        path: the folder.
        command: ``"benchmark"`` or ``"sweep"`` (for messages and the marker).
        report_files: the files the command writes once every run is done.
        patterns: globs of more report files (e.g. ``sweep_*.png``): existing ones count
            as results and are deleted before a new report is written.
    """

    def __init__(
        self,
        path: Path | str,
        command: str,
        report_files: Sequence[str],
        patterns: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.command = command
        self.report_files = list(report_files)
        self.patterns = list(patterns)
        self.runs_dir = self.path / RUNS_DIR
        self.marker = self.path / MARKER
        self._keys: dict[RunSpec, str] = {}

    # -- checks (no side effects)
    def _old_reports(self) -> list[Path]:
        found = [self.path / f for f in self.report_files if (self.path / f).exists()]
        for pattern in self.patterns:
            found += [p for p in sorted(self.path.glob(pattern)) if p not in found]
        return found

    def _records(self) -> list[Path]:
        if not self.runs_dir.is_dir():
            return []
        return [p for p in self.runs_dir.iterdir() if _RECORD_NAME.match(p.name)]

    def existing_results(self) -> list[str]:
        """Names of what a previous command left: report files, ``runs/`` (when it holds
        records), the marker."""
        if not self.path.is_dir():
            return []
        names = [p.name for p in self._old_reports()]
        if self._records():
            names.append(f"{RUNS_DIR}/")
        if self.marker.exists():
            names.append(MARKER)
        return names

    def check(self, *, force: bool = False, resume: bool = False) -> None:
        """``ValueError`` before any work when the folder cannot be written (see
        :func:`aryl_gym.outputs.check_output_dir`) or when it already holds results and
        neither ``force`` nor ``resume`` is given (or both are)."""
        if force and resume:
            raise ValueError("--force and --resume exclude each other: choose one")
        check_output_dir(self.path, "--out")
        existing = self.existing_results()
        if existing and not (force or resume):
            raise ValueError(
                f"--out {self.path} already holds the results of a {self.command} "
                f"({', '.join(existing)}); pass --resume to reuse its finished runs or "
                "--force to replace them"
            )

    # -- preparing, marking, completing
    def open(self, *, force: bool) -> None:
        """Create the folder and delete the old reports and marker (they are rewritten);
        with ``force`` the old run records too."""
        self.path.mkdir(parents=True, exist_ok=True)
        stale = self._old_reports() + [self.marker]
        if force:
            stale += self._records()
        for p in stale:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def record_path(self, spec: RunSpec) -> Path:
        """``runs/<run_key(spec)>.json`` in the folder (keys cached per folder)."""
        key = self._keys.get(spec)
        if key is None:
            key = self._keys[spec] = run_key(spec)
        return self.runs_dir / f"{key}.json"

    def mark_incomplete(self, state: str, specs: Sequence[RunSpec], missing: Sequence[int]) -> None:
        """Write the marker: ``state`` (``running``, ``writing reports`` or
        ``interrupted``), the runs of ``specs`` at the indices ``missing`` and the report
        files not written yet."""
        missing_files = [f for f in self.report_files if not (self.path / f).exists()]
        doc = {
            "command": self.command,
            "state": state,
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "runs_total": len(specs),
            "runs_done": len(specs) - len(missing),
            "missing_runs": [
                {
                    "policy": specs[i].policy,
                    "scenario": specs[i].scenario.name,
                    "seed": specs[i].seed,
                    "record": self.record_path(specs[i]).relative_to(self.path).as_posix(),
                }
                for i in missing
            ],
            "missing_files": missing_files,
            "how_to_finish": f"rerun the same `aryl-gym {self.command}` command with --resume: "
            f"the finished runs (records in {RUNS_DIR}/) are kept and only the missing ones run",
        }
        write_text_atomic(self.marker, json.dumps(doc, indent=2) + "\n")

    def complete(self) -> None:
        """Remove the marker: every report is written."""
        with contextlib.suppress(FileNotFoundError):
            self.marker.unlink()

    @contextlib.contextmanager
    def writing_reports(self, specs: Sequence[RunSpec]) -> Iterator[None]:
        """Around writing the reports: when the block raises (an interruption), the
        marker is rewritten with the report files still missing; when it ends, the marker
        is removed."""
        try:
            yield
        except BaseException:
            with signals_deferred():
                self.mark_incomplete("interrupted", specs, [])
            raise
        self.complete()

    # -- records
    def save(self, spec: RunSpec, output: RunOutput) -> None:
        """Keep a finished run's record (arrays first, the JSON last: a JSON record is
        always complete)."""
        path = self.record_path(spec)
        arrays: dict[str, np.ndarray] = {}
        for prefix, frame in (("jobs", output.jobs), ("series", output.series)):
            if frame is not None:
                arrays |= {f"{prefix}:{c}": frame[c].to_numpy() for c in frame.columns}
        if arrays:
            with atomic_path(path.with_suffix(".npz")) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        doc = {
            "key": path.stem,
            "policy": output.policy,
            "scenario": spec.scenario.name,
            "seed": output.seed,
            "code_version": code_version(),
            "jobs": output.jobs is not None,
            "series": output.series is not None,
            "summary": output.summary,
        }
        write_text_atomic(path, json.dumps(doc, indent=1, default=_plain) + "\n")

    def load(self, spec: RunSpec) -> RunOutput | None:
        """The output kept for ``spec``, or ``None`` when there is no usable record (none,
        unreadable, or without the per-job columns / series ``spec`` asks for)."""
        path = self.record_path(spec)
        try:
            doc = json.loads(path.read_text())
            if doc["key"] != path.stem or (spec.keep_jobs and not doc["jobs"]):
                return None
            if spec.keep_series and not doc["series"]:
                return None
            frames: dict[str, pd.DataFrame | None] = {"jobs": None, "series": None}
            if doc["jobs"] or doc["series"]:
                with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
                    for prefix in frames:
                        cols = {k.split(":", 1)[1]: z[k] for k in z.files if k.startswith(prefix)}
                        frames[prefix] = pd.DataFrame(cols) if doc[prefix] else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return RunOutput(
            spec.policy,
            spec.seed,
            summary=doc["summary"],
            jobs=frames["jobs"] if spec.keep_jobs else None,
            series=frames["series"] if spec.keep_series else None,
        )


def execute_in_folder(
    specs: Sequence[RunSpec],
    folder: ResultFolder,
    *,
    force: bool = False,
    resume: bool = False,
    **execute_kwargs: Any,
) -> tuple[list[RunOutput], list[int]]:
    """Run ``specs`` keeping a record of each in ``folder``; returns the outputs (in
    order) and the indices of the runs computed now (the others came from records).

    The folder is opened (:meth:`ResultFolder.open`), the marker lists the runs to
    compute, each run's record is written as it ends, and on an interruption the marker
    is rewritten with the runs still missing before the exception propagates.
    ``execute_kwargs`` go to :func:`~aryl_gym.experiments.runner.execute_runs`.
    """
    specs = list(specs)
    outputs: list[RunOutput | None] = [None] * len(specs)
    todo = list(range(len(specs)))

    def done(j: int, output: RunOutput) -> None:
        i = todo[j]
        # a run counts as done exactly when its record is written (signals wait until
        # both agree; whatever ends the save, the record file decides)
        with signals_deferred():
            try:
                if output.error is None:
                    folder.save(specs[i], output)
            finally:
                if output.error is not None or folder.record_path(specs[i]).exists():
                    outputs[i] = output

    try:
        folder.open(force=force)
        if resume:
            outputs = [folder.load(s) for s in specs]
            todo = [i for i, o in enumerate(outputs) if o is None]
        folder.mark_incomplete("running", specs, todo)
        execute_runs([specs[i] for i in todo], on_done=done, **execute_kwargs)
        folder.mark_incomplete("writing reports", specs, [])
    except BaseException:
        missing = [i for i, o in enumerate(outputs) if o is None]
        with signals_deferred(), contextlib.suppress(OSError):
            if folder.path.is_dir():
                folder.mark_incomplete("interrupted", specs, missing)
        print(
            f"{folder.command} stopped early: {len(specs) - len(missing)} of {len(specs)} runs "
            f"done (records in {folder.runs_dir}); {folder.marker} lists what is missing; "
            "rerun with --resume to finish",
            file=sys.stderr,
        )
        raise
    return outputs, todo  # type: ignore[return-value]


__all__ = [
    "MARKER",
    "RUNS_DIR",
    "ResultFolder",
    "code_version",
    "execute_in_folder",
    "run_key",
]
