"""Output files that are checked before the work and written atomically after it.

* :func:`check_output_file` / :func:`check_output_dir` raise ``ValueError`` *before* a
  command starts when a result could not be written: the path is a folder (a file was
  asked for) or a file (a folder was asked for), a parent is a file, the nearest existing
  folder is not writable, or a previous result is there and ``force`` is not set.
* :func:`atomic_path` / :func:`write_text_atomic` write to a temporary file beside the
  target and ``os.replace`` it into place, so an interrupted command leaves either the
  old file or the new one, never half a file. The reports of ``benchmark`` / ``sweep``
  (CSV, JSON, markdown, PNG) and ``simulate --json/--jobs-csv`` all go through them.

Only the standard library is imported here (the command line imports it to check paths).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "write_csv_atomic",
    "write_text_atomic",
]


def _check_creatable(path: Path, option: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable folder."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:  # pragma: no cover - the root always exists
            break
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: {parent} is a file, not a folder")
    _check_writable(parent, option, path)


def _check_writable(folder: Path, option: str, path: Path) -> None:
    """Create and remove a probe file in ``folder`` (``os.access`` says yes to root even
    on read-only mounts and folders without write permission)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".aryl-gym-probe-")
    except OSError as exc:
        raise ValueError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: Path | str, option: str, *, force: bool = False) -> Path:
    """Check that ``path`` can receive a result file; returns it as a ``Path``.

    ``ValueError`` (naming ``option``, e.g. ``"--json"``, and the path) when ``path`` is a
    folder, when a parent is a file, when the folder it goes in is not writable (or cannot
    be created), or when a file is already there and ``force`` is false. Nothing is created.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give the path of a file")
    if path.exists() or path.is_symlink():
        if not force:
            raise ValueError(f"{option} {path}: the file exists; pass --force to replace it")
        _check_writable(path.parent, option, path)
        return path
    _check_creatable(path, option)
    return path


def check_output_dir(path: Path | str, option: str) -> Path:
    """Check that ``path`` is, or can be created as, a writable folder; returns it.

    ``ValueError`` (naming ``option`` and the path) when ``path`` or a parent is a file or
    the folder (or its nearest existing parent) is not writable. Nothing is created. What
    the folder may already hold is the caller's business (see
    :class:`aryl_gym.experiments.records.ResultFolder`).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file; give the path of a folder")
    if path.is_dir():
        _check_writable(path, option, path)
    else:
        _check_creatable(path, option)
    return path


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` (same folder, same suffix, hidden name) to write
    to; on leaving the block without an exception it replaces ``path`` (``os.replace``,
    atomic on POSIX and Windows), otherwise it is removed and ``path`` is left as it was.
    Missing parent folders are created.

        with atomic_path(out / "results.csv") as tmp:
            df.to_csv(tmp, index=False)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`); returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_csv_atomic(path: Path | str, frame) -> Path:
    """Write a pandas ``frame`` as CSV without its index to ``path`` atomically; returns
    ``path`` (pandas is not imported here: any object with ``to_csv`` works)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path
