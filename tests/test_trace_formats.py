"""The trace-format registry (aryl_gym.workload.formats): discovery, detection,
registration of a format defined outside the package, and the CLI reading it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import aryl_gym.workload.formats as formats_pkg
from aryl_gym.cli import main
from aryl_gym.workload.formats import (
    Header,
    TraceFormat,
    formats,
    get_format,
    register,
    unregister,
)
from aryl_gym.workload.formats.mapping import REASONS, MappingReport
from aryl_gym.workload.real_traces import (
    FORMATS,
    HAS_CLOCK,
    detect_format,
    load_any,
)
from aryl_gym.workload.schema import JobTable
from aryl_gym.workload.trace_io import TraceFormatError, load_trace


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def assert_accounted(report: MappingReport) -> None:
    assert report.rows_read == report.rows_kept + report.dropped


def assert_names_row_and_field(path: Path, fmt: str | None, row, field, words: str) -> None:
    with pytest.raises(TraceFormatError) as info:
        load_any(path, fmt)
    err = info.value
    assert (err.row, err.field) == (row, field), str(err)
    assert words in err.reason, str(err)
    assert str(err).startswith(str(path))


# --------------------------------------------------------------------------- the registry


def test_every_module_of_the_package_is_registered():
    declared = []
    for info in pkgutil.iter_modules(formats_pkg.__path__):
        module = importlib.import_module(f"{formats_pkg.__name__}.{info.name}")
        declared += [f.name for f in getattr(module, "TRACE_FORMATS", ())]
    assert sorted(declared) == sorted(f.name for f in formats())
    assert {"aryl", "itp", "helios", "pai2023", "philly"} <= set(declared)
    assert list(FORMATS) == [f.name for f in formats()]
    assert all(FORMATS[f.name] == f.description for f in formats())
    assert HAS_CLOCK["helios"] is False and HAS_CLOCK["itp"] is True


def test_cli_parser_stays_light_and_format_is_free_text():
    code = textwrap.dedent(
        """
        import sys
        from aryl_gym.cli import build_parser
        args = build_parser().parse_args(["traces", "convert", "--format", "nope", "a", "b"])
        assert args.format == "nope"
        heavy = [m for m in ("pandas", "aryl_gym.workload.formats.registry") if m in sys.modules]
        print(",".join(heavy) or "light")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "light"


def test_unknown_format_name_lists_the_known_ones(tmp_path, capsys):
    src = write(tmp_path, "x.csv", "job_id,submit_time,gpus,duration\na,0,1,60\n")
    with pytest.raises(ValueError, match="unknown trace format 'slurm'; known: aryl, ") as info:
        load_any(src, "slurm")
    assert all(f.name in str(info.value) for f in formats())
    assert main(["traces", "convert", "--format", "slurm", str(src), str(tmp_path / "o")]) == 2
    assert "unknown trace format 'slurm'" in capsys.readouterr().err


def test_traces_formats_lists_every_format_with_its_source(capsys):
    assert main(["traces", "formats"]) == 0
    out = capsys.readouterr().out
    for f in formats():
        assert f"{f.name}  " in out and f.description in out and f"source: {f.source}" in out


TOY_MODULE = '''
"""A toy trace format, defined outside the package: ticket,at_min,cards,hours."""
import numpy as np

from aryl_gym.workload.formats import TraceFormat, register
from aryl_gym.workload.formats.common import OK, Rows, nonneg_column, open_with_ids
from aryl_gym.workload.formats.mapping import rows_loader

COLUMNS = ("ticket", "at_min", "cards", "hours")


def read_toy(path):
    c, ids = open_with_ids(path, "toy", COLUMNS, "ticket")
    submit = nonneg_column(c, "at_min") * 60.0
    gpus = nonneg_column(c, "cards", integer=True)
    duration = nonneg_column(c, "hours") * 3600.0
    n = len(ids)
    return Rows(ids, submit, gpus, np.zeros(n, bool), duration, np.full(n, OK, dtype=object))


TOY = register(
    TraceFormat(
        name="toy",
        description="toy format: ticket,at_min,cards,hours",
        source="tests/test_trace_formats.py",
        has_clock=False,
        load=rows_loader("toy", read_toy),
        columns=COLUMNS,
    )
)
'''


@pytest.fixture
def toy_format(tmp_path, monkeypatch):
    """Import a module written to tmp_path that registers format 'toy'; unregister after."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "toy_trace_format.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    monkeypatch.delitem(sys.modules, "toy_trace_format", raising=False)
    module = importlib.import_module("toy_trace_format")
    yield module.TOY
    unregister("toy")


def test_a_new_format_is_one_module(tmp_path, toy_format, capsys):
    # The acceptance test of the registry: the toy module touches nothing else, yet its
    # format is detected, loaded, listed and converted like the built-in ones.
    src = write(tmp_path, "tickets.csv", "ticket,at_min,cards,hours\nt2,5,2,1.5\nt1,3,0,1\n")
    assert get_format("toy") is toy_format
    assert detect_format(src) == "toy"
    assert FORMATS["toy"] == "toy format: ticket,at_min,cards,hours" and HAS_CLOCK["toy"] is False
    jobs, rep = load_any(src)
    assert rep.format == "toy" and rep.rows_read == 2 and rep.counts["cpu_only_dropped"] == 1
    assert list(jobs.job_id) == ["t2"] and jobs.duration.tolist() == [5400.0]
    assert main(["traces", "formats"]) == 0
    assert "toy  " in capsys.readouterr().out
    out = tmp_path / "converted.csv"
    assert main(["traces", "convert", str(src), str(out)]) == 0
    assert load_trace(out).gpus.tolist() == [2]
    bad = write(tmp_path, "bad.csv", "ticket,at_min,cards,hours\nt1,3,x,1\n")
    assert_names_row_and_field(bad, None, 2, "cards", "must be a number")


def test_unregistered_format_is_no_longer_detected(tmp_path, toy_format):
    src = write(tmp_path, "tickets.csv", "ticket,at_min,cards,hours\nt1,3,1,1\n")
    assert detect_format(src) == "toy"
    unregister("toy")
    try:
        with pytest.raises(TraceFormatError, match="cannot tell the trace format"):
            detect_format(src)
        with pytest.raises(ValueError, match="unknown trace format 'toy'"):
            load_any(src, "toy")
    finally:
        register(toy_format)  # the fixture unregisters it


def _toy(name: str, **kw) -> TraceFormat:
    base = dict(
        description="a test format",
        source="tests",
        has_clock=False,
        load=lambda path, options: None,
        columns=("alpha", "beta"),
    )
    return TraceFormat(name=name, **{**base, **kw})


def test_two_formats_claiming_a_header_is_an_error(tmp_path):
    register(_toy("twin-a"))
    register(_toy("twin-b"))
    try:
        src = write(tmp_path, "t.csv", "alpha,beta\n1,2\n")
        with pytest.raises(TraceFormatError, match=r"several trace formats \(twin-a, twin-b\)"):
            detect_format(src)
    finally:
        unregister("twin-a")
        unregister("twin-b")


def test_registration_is_checked():
    with pytest.raises(ValueError, match="already registered"):
        register(_toy("itp"))
    with pytest.raises(ValueError, match="lower-case"):
        _toy("Bad Name")
    with pytest.raises(ValueError, match="columns or a detect"):
        _toy("no-test", columns=())
    with pytest.raises(ValueError, match="one non-empty line"):
        _toy("two-lines", description="a\nb")
    with pytest.raises(TypeError, match="TraceFormat"):
        register("itp")  # type: ignore[arg-type]


def test_format_reasons_extend_the_report_counters():
    fmt = _toy("with-reason", reasons={"void_ticket_dropped": "ticket marked void"})
    register(fmt)
    try:
        assert REASONS["void_ticket_dropped"] == "ticket marked void"
        MappingReport(source="x", format="with-reason").add("void_ticket_dropped", 1)
        with pytest.raises(ValueError, match="already defined"):
            register(_toy("clash", reasons={"cpu_only_dropped": "something else"}))
    finally:
        unregister("with-reason")


def test_load_any_refuses_a_loader_that_loses_rows(tmp_path):
    def lossy(path, options):
        jobs = JobTable.from_columns(submit_time=[0.0], gpus=[1], duration=[1.0])
        return jobs, MappingReport(source=str(path), format="lossy", rows_read=3, rows_kept=1)

    register(_toy("lossy", load=lossy, columns=("gamma",)))
    try:
        with pytest.raises(RuntimeError, match="lost rows"):
            load_any(write(tmp_path, "l.csv", "gamma\n1\n"))
    finally:
        unregister("lossy")


def test_header_of_an_empty_file_is_an_error(tmp_path):
    with pytest.raises(TraceFormatError, match="file is empty"):
        Header.read(write(tmp_path, "e.csv", "\n\n"))
