"""The trace-format registry (aryl_gym.workload.formats) and the formats of peer
simulators: Pollux workloads, the Philly-derived job list, Gavel and Blox traces.

Each format is tested on a small file written here from the format's published
description (the real files are never copied), and on malformed files whose error must
name the file, the row and the field.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import aryl_gym.workload.formats as formats_pkg
from aryl_gym.cli import main
from aryl_gym.sim.profiles import DEFAULT_PROFILE_MIX, PROFILES
from aryl_gym.workload.formats import (
    Header,
    TraceFormat,
    formats,
    get_format,
    register,
    unregister,
)
from aryl_gym.workload.formats.gavel import V100_STEPS_PER_S
from aryl_gym.workload.formats.mapping import REASONS, MappingReport
from aryl_gym.workload.formats.pollux import RUNTIME_1GPU_S
from aryl_gym.workload.real_traces import (
    FORMATS,
    HAS_CLOCK,
    MappingOptions,
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
    assert {"aryl", "itp", "pollux", "philly-csv", "gavel", "blox"} <= set(declared)
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


# --------------------------------------------------------------------------- pollux

POLLUX = """name,time,application,num_replicas,batch_size
cifar10-0,53,cifar10,6,2048
deepspeech2-2,326,deepspeech2,8,320
bert-4,735,bert,8,384
ncf-6,1585,ncf,1,32768
imagenet-9,1600,imagenet,16,12800
yolov3-8,1500,yolov3,4,64
"""


def test_pollux_mapping(tmp_path):
    src = write(tmp_path, "workload-6.csv", POLLUX)
    assert detect_format(src) == "pollux"
    jobs, rep = load_any(src)
    order = ["cifar10-0", "deepspeech2-2", "bert-4", "yolov3-8", "ncf-6", "imagenet-9"]
    assert list(jobs.job_id) == order
    assert list(jobs.profile) == [j.split("-")[0] for j in jobs.job_id]  # from application
    np.testing.assert_array_equal(jobs.gpus, [6, 8, 8, 4, 1, 16])
    np.testing.assert_array_equal(jobs.submit_time, [0, 273, 682, 1447, 1532, 1547])
    # the work, duration * speedup(gpus), is the application's 1-GPU run time
    work = [
        d * PROFILES[p].speedup(g)
        for d, p, g in zip(jobs.duration, jobs.profile, jobs.gpus, strict=True)
    ]
    np.testing.assert_allclose(work, [RUNTIME_1GPU_S[p] for p in jobs.profile], rtol=1e-12)
    assert jobs.duration[4] == RUNTIME_1GPU_S["ncf"]  # 1 GPU: no rescaling
    assert max(jobs.duration) == jobs.duration[5]  # imagenet: the extra-large class
    assert rep.counts["profile_from_trace"] == 6 and rep.counts["duration_derived"] == 6
    assert rep.counts["profile_drawn_unmeasured_model"] == 0
    assert any("batch_size not used" in n for n in rep.notes)
    assert_accounted(rep)
    # name and batch_size are optional: ids are then the file lines
    short = write(tmp_path, "w.csv", "time,application,num_replicas\n0,cifar10,2\n5,ncf,1\n")
    jobs, _ = load_any(short, "pollux")
    assert list(jobs.job_id) == ["2", "3"]


@pytest.mark.parametrize(
    "content,row,field,words",
    [
        (POLLUX.replace("bert-4,735,bert", "bert-4,735,gpt3"), 4, "application", "unknown application 'gpt3'; known: bert"),
        (POLLUX.replace("ncf,1,32768", "ncf,0,32768"), 5, "num_replicas", "must be >= 1"),
        (POLLUX.replace("cifar10-0,53,", "cifar10-0,-53,"), 2, "time", ">= 0"),
        (POLLUX.replace("bert-4,", "cifar10-0,"), 4, "name", "duplicate id"),
        (POLLUX.replace("deepspeech2,8,320", "deepspeech2,8,big"), 3, "batch_size", "must be a number"),
        ("name,time,application,batch_size\na,0,cifar10,128\n", None, "num_replicas", "missing column"),
    ],
    ids=["application", "replicas", "time", "duplicate", "batch", "missing-column"],
)  # fmt: skip
def test_pollux_malformed(tmp_path, content, row, field, words):
    assert_names_row_and_field(write(tmp_path, "w.csv", content), None, row, field, words)


# --------------------------------------------------------------------------- philly-csv

PHILLY_CSV = """timestamp,duration,num_gpus,gpu_time,cluster
2017-10-09 07:01:55,66.0,1,66.0,11cb48
2017-10-09 06:13:03,2951.0,1,2951.0,6214e9
2017-10-03 12:00:00,7200.0,8,57600.0,6c71a0
2017-10-09 06:20:00,0.0,2,0.0,6214e9
2017-10-09 06:30:00,600.0,0,0.0,6214e9
"""


def test_philly_csv_mapping(tmp_path, capsys):
    src = write(tmp_path, "philly.csv", PHILLY_CSV)
    assert detect_format(src) == "philly-csv" and HAS_CLOCK["philly-csv"]
    jobs, rep = load_any(src)
    assert list(jobs.job_id) == ["4", "3", "2"]  # file lines, sorted by timestamp
    first = datetime(2017, 10, 3, 12, 0, 0)
    later = [datetime(2017, 10, 9, 6, 13, 3), datetime(2017, 10, 9, 7, 1, 55)]
    expected = [0.0] + [(t - first).total_seconds() for t in later]
    np.testing.assert_array_equal(jobs.submit_time, expected)
    np.testing.assert_array_equal(jobs.duration, [7200.0, 2951.0, 66.0])
    np.testing.assert_array_equal(jobs.gpus, [8, 1, 1])
    assert rep.counts["zero_duration_dropped"] == 1 and rep.counts["cpu_only_dropped"] == 1
    assert any("sorted" in n for n in rep.notes)
    assert_accounted(rep)
    assert main(["traces", "stats", str(src)]) == 0
    assert "peak hour" in capsys.readouterr().out  # the wall clock is kept


@pytest.mark.parametrize(
    "content,row,field,words",
    [
        (PHILLY_CSV.replace("2951.0,1,2951.0", "2951.0,1,2950.0"), 3, "gpu_time", "must equal duration * num_gpus"),
        (PHILLY_CSV.replace("2017-10-03 12:00:00", "last tuesday"), 4, "timestamp", "date-time"),
        (PHILLY_CSV.replace("600.0,0,0.0", "-600.0,0,0.0"), 6, "duration", ">= 0"),
        (PHILLY_CSV.replace("66.0,1,66.0", "66.0,1.5,99.0"), 2, "num_gpus", "integer"),
    ],
    ids=["gpu-time", "timestamp", "negative", "fraction"],
)  # fmt: skip
def test_philly_csv_malformed(tmp_path, content, row, field, words):
    assert_names_row_and_field(write(tmp_path, "philly.csv", content), None, row, field, words)


# --------------------------------------------------------------------------- gavel


def gavel_line(job_type, steps, scale=1, arrival=0, priority=1, slo="-1.000000", flag=1):
    command = "python3 main.py --data_dir=%s/data --batch_size 64"
    cells = [job_type, command, "image_classification/cifar10", "--num_steps", flag]
    return "\t".join(map(str, [*cells, steps, scale, priority, slo, arrival])) + "\n"


def gavel_steps(job_type, scale, hours):
    """total_steps as Gavel's generator writes it: int(run time * V100 throughput)."""
    return int(hours * 3600 * V100_STEPS_PER_S[job_type][scale])


GAVEL = (
    gavel_line("ResNet-18 (batch size 64)", gavel_steps("ResNet-18 (batch size 64)", 1, 1), 1, 0)
    + gavel_line("Transformer (batch size 128)", gavel_steps("Transformer (batch size 128)", 2, 2), 2, 120)
    + gavel_line("A3C", 0, 1, 300)
    + gavel_line("Recommendation (batch size 8192)", gavel_steps("Recommendation (batch size 8192)", 1, 4), 1, 60, 5, "1.200000")
    + gavel_line("LM (batch size 20)", gavel_steps("LM (batch size 20)", 4, 3), 4, 400)
)  # fmt: skip


def test_gavel_mapping(tmp_path):
    src = write(tmp_path, "sample.trace", GAVEL)
    assert detect_format(src) == "gavel"
    jobs, rep = load_any(src)
    assert list(jobs.job_id) == ["1", "4", "2", "5"]  # file lines, sorted by arrival
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 60.0, 120.0, 400.0])
    np.testing.assert_array_equal(jobs.gpus, [1, 1, 2, 4])
    # durations come back as the run times Gavel's generator started from (to a step)
    np.testing.assert_allclose(jobs.duration, [3600, 4 * 3600, 2 * 3600, 3 * 3600], atol=1.0)
    assert list(jobs.profile[:2]) == ["cifar10", "ncf"]
    assert set(jobs.profile[2:]) <= set(DEFAULT_PROFILE_MIX)  # Transformer, LM: drawn
    assert rep.counts["zero_duration_dropped"] == 1  # A3C with 0 steps
    assert rep.counts["profile_from_trace"] == 2
    assert rep.counts["profile_drawn_unmeasured_model"] == 2
    assert rep.counts["duration_derived"] == 4
    assert_accounted(rep)


@pytest.mark.parametrize(
    "content,row,field,words",
    [
        (GAVEL + "ResNet-18 (batch size 64)\tpython3 main.py\t1\n", 6, None, "has 3 tab-separated cells"),
        (GAVEL.replace("LM (batch size 20)", "GPT (batch size 20)"), 5, "job_type", "unknown job_type 'GPT (batch size 20)'"),
        (GAVEL + gavel_line("A3C", 100, 2, 500), 6, "scale_factor", "no V100 throughput for 'A3C' at scale_factor 2"),
        (GAVEL + gavel_line("A3C", 100, 0, 500), 6, "scale_factor", "must be >= 1"),
        (GAVEL + gavel_line("A3C", 100, 1, 500, flag=2), 6, "needs_data_dir", "0 or 1"),
        (GAVEL + gavel_line("A3C", -100, 1, 500), 6, "total_steps", ">= 0"),
        (GAVEL + gavel_line("A3C", 100, 1, "soon"), 6, "arrival_time", "must be a number"),
    ],
    ids=["cells", "job-type", "unmeasured-scale", "scale", "flag", "steps", "arrival"],
)  # fmt: skip
def test_gavel_malformed(tmp_path, content, row, field, words):
    assert_names_row_and_field(write(tmp_path, "t.trace", content), None, row, field, words)


# --------------------------------------------------------------------------- blox

BLOX_ROWS = """0,res50,0,1000,4
1,transformer,30.5,2000,1
2,lstm,60,0,2
3,deepspeech,90,500,0
4,res18,120,100,8
"""
BLOX_HEADER = "job_id,model_name,arrival_time,num_iters,gpu_demand\n"


@pytest.mark.parametrize("header", [False, True])
def test_blox_mapping(tmp_path, header):
    src = write(tmp_path, "trace.csv", (BLOX_HEADER if header else "") + BLOX_ROWS)
    assert detect_format(src) == "blox"
    jobs, rep = load_any(src)
    assert list(jobs.job_id) == ["0", "1", "4"]
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 30.5, 120.0])
    np.testing.assert_allclose(jobs.duration, [1000 * 0.78, 2000 * 0.67, 100 * 0.64])
    np.testing.assert_array_equal(jobs.gpus, [4, 1, 8])
    assert jobs.profile[0] == "imagenet" and jobs.profile[2] == "cifar10"
    assert rep.counts["zero_duration_dropped"] == 1 and rep.counts["cpu_only_dropped"] == 1
    assert rep.counts["profile_from_trace"] == 2
    assert rep.counts["profile_drawn_unmeasured_model"] == 1
    assert_accounted(rep)


@pytest.mark.parametrize(
    "content,row,field,words",
    [
        (BLOX_ROWS.replace("1,transformer", "1,bert"), 2, "model_name", "unknown model_name 'bert'; known: alexnet"),
        (BLOX_ROWS.replace("4,res18", "2,res18"), 5, "job_id", "duplicate id '2' (first used on row 3)"),
        (BLOX_ROWS.replace("500,0", "500.5,0"), 4, "num_iters", "integer"),
        (BLOX_ROWS.replace("30.5,2000,1", "30.5,2000,1,9"), 2, None, "has 6 cells"),
        (BLOX_HEADER + BLOX_ROWS.replace("120,100", "-120,100"), 6, "arrival_time", ">= 0"),
        (BLOX_HEADER.replace("model_name", "model") + BLOX_ROWS, None, "model_name", "missing column"),
    ],
    ids=["model", "duplicate", "iterations", "cells", "arrival", "header-typo"],
)  # fmt: skip
def test_blox_malformed(tmp_path, content, row, field, words):
    path = write(tmp_path, "trace.csv", content)
    assert detect_format(path) == "blox"  # even with a typo in the header (near miss)
    assert_names_row_and_field(path, None, row, field, words)


# --------------------------------------------------------------------------- all four


@pytest.mark.parametrize(
    "name,text,fmt",
    [
        ("w.csv", POLLUX, "pollux"),
        ("p.csv", PHILLY_CSV, "philly-csv"),
        ("g.trace", GAVEL, "gavel"),
        ("b.csv", BLOX_ROWS, "blox"),
    ],
)
def test_new_formats_convert_by_name_and_round_trip(tmp_path, capsys, name, text, fmt):
    src = write(tmp_path, name, text)
    out = tmp_path / "out.csv"
    argv = ["traces", "convert", "--format", fmt, "--elastic-share", "1", str(src), str(out)]
    assert main(argv) == 0
    assert re.search(rf"^format +{re.escape(fmt)}$", capsys.readouterr().out, re.MULTILINE)
    jobs, _ = load_any(src, fmt, options=MappingOptions(elastic_share=1.0))
    back = load_trace(out, known_profiles=PROFILES)
    assert back.job_id.tolist() == jobs.job_id.tolist() and back.elastic.all()
    np.testing.assert_array_equal(back.duration, jobs.duration)
