"""Loaders of public traces (aryl_gym.workload.real_traces) and the `aryl-gym traces` CLI.

The real files are read from ../shared/traces (never copied into the repo); tests that
need them skip when that folder is absent. Malformed and small valid inputs of every
format are written to tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aryl_gym.cli import main
from aryl_gym.config import ClusterConfig
from aryl_gym.workload.real_traces import (
    MappingOptions,
    MappingReport,
    detect_format,
    load_any,
    offered_gpu_demand,
    size_cluster_for,
)
from aryl_gym.workload.schema import COLUMNS, JobTable
from aryl_gym.workload.trace_io import TraceFormatError, load_trace

SHARED_TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
ITP = "train_microsoft_itp_cluster04.csv"
HELIOS = "train_sensetime_helios_last15k.csv"
PAI = "train_alibaba_pai_openb2023_pods.csv"
REPO_EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "example.csv"


def shared_trace(name: str) -> Path:
    p = SHARED_TRACES / name
    if not p.exists():
        pytest.skip(
            f"{p} not present: the real traces live in ../shared/traces beside the checkout"
        )
    return p


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def assert_tables_equal(a: JobTable, b: JobTable) -> None:
    assert len(a) == len(b)
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        if x.dtype == object:
            assert [str(v) for v in x] == [str(v) for v in y], name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def assert_accounted(report: MappingReport) -> None:
    assert report.rows_read == report.rows_kept + report.dropped


def assert_valid_jobs(jobs: JobTable) -> None:
    assert len(jobs) > 0
    assert jobs.submit_time[0] == 0.0
    assert np.all(np.diff(jobs.submit_time) >= 0)
    assert np.all(jobs.duration > 0) and np.all(np.isfinite(jobs.duration))
    assert np.all(jobs.gpus >= 1)
    assert np.all(
        (jobs.min_gpus >= 1) & (jobs.min_gpus <= jobs.gpus) & (jobs.max_gpus >= jobs.gpus)
    )
    assert len(set(jobs.job_id)) == len(jobs)


# --------------------------------------------------------------------------- small valid files

PHILLY_JOBS = [
    {  # 2 GPUs on one machine, one attempt of 1 h
        "status": "Pass",
        "vc": "vc1",
        "jobid": "application_1",
        "submitted_time": "2017-10-03 00:00:00",
        "user": "u1",
        "attempts": [
            {
                "start_time": "2017-10-03 00:00:10",
                "end_time": "2017-10-03 01:00:10",
                "detail": [{"ip": "m1", "gpus": ["gpu0", "gpu1"]}],
            }
        ],
    },
    {  # killed after two attempts of 30 min on 2 x 2 GPUs
        "status": "Killed",
        "vc": "vc1",
        "jobid": "application_2",
        "submitted_time": "2017-10-03 00:10:00",
        "user": "u2",
        "attempts": [
            {
                "start_time": "2017-10-03 00:10:00",
                "end_time": "2017-10-03 00:40:00",
                "detail": [
                    {"ip": "m1", "gpus": ["gpu0", "gpu1"]},
                    {"ip": "m2", "gpus": ["gpu0", "gpu1"]},
                ],
            },
            {
                "start_time": "2017-10-03 01:00:00",
                "end_time": "2017-10-03 01:30:00",
                "detail": [
                    {"ip": "m3", "gpus": ["gpu2", "gpu3"]},
                    {"ip": "m4", "gpus": ["gpu0", "gpu1"]},
                ],
            },
        ],
    },
    {  # never started
        "status": "Failed",
        "vc": "vc2",
        "jobid": "application_3",
        "submitted_time": "2017-10-03 00:20:00",
        "user": "u1",
        "attempts": [],
    },
    {  # no GPU
        "status": "Pass",
        "vc": "vc2",
        "jobid": "application_4",
        "submitted_time": "2017-10-03 00:30:00",
        "user": "u3",
        "attempts": [
            {"start_time": "2017-10-03 00:30:00", "end_time": "2017-10-03 00:31:00", "detail": []}
        ],
    },
    {  # still running at the end of the log: no end time
        "status": "Running",
        "vc": "vc2",
        "jobid": "application_5",
        "submitted_time": "2017-10-03 00:40:00",
        "user": "u3",
        "attempts": [
            {
                "start_time": "2017-10-03 00:40:00",
                "end_time": None,
                "detail": [{"ip": "m1", "gpus": ["gpu3"]}],
            }
        ],
    },
]

HELIOS_RAW = """job_id,user,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue
j1,u1,8,16,1,COMPLETED,2020-04-01 08:00:00,2020-04-01 08:00:05,2020-04-01 09:00:05,3600,vc1
j2,u2,0,4,1,COMPLETED,2020-04-01 08:01:00,2020-04-01 08:01:00,2020-04-01 08:02:00,60,vc1
j3,u1,1,4,1,CANCELLED,2020-04-01 08:10:00,,,0,vc1
j4,u3,2,8,1,FAILED,2020-04-01 08:20:00,2020-04-01 08:20:00,2020-04-01 08:22:00,120,vc2
j5,u3,1,4,1,TIMEOUT,2020-04-01 08:30:00,2020-04-01 08:30:00,2020-04-01 08:30:00,0,vc2
j6,u2,4,8,1,CANCELLED by 17,2020-04-01 08:05:00,2020-04-01 08:05:00,2020-04-01 08:15:00,600,vc2
"""

PAI2020_ROWS = """jA,worker,2,Terminated,1000,4600,600,29.3,100,V100
jA,ps,1,Terminated,1000,4700,200,10,,
jB,tensorflow,1,Failed,2000,2500,600,29,50,T4
jC,worker,1,Waiting,,,600,29,100,MISC
jD,worker,1,Terminated,3000,3600,600,29,0,
jE,worker,1,Running,3500,,600,29,100,V100
"""
PAI2020_HEADER = (
    "job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type\n"
)

ITP_SMALL = """job_id,submission_time,duration,num_gpu
a,100,3600,1
b,160,7200,8
c,200,0,4
d,260,1800,2
"""

HELIOS_SMALL = """u_id,user,gpu_num,cpu_num,node_num,interval,run_time,wall_time,new_status
0,1,1,1,1,0,84,0,Pass
1,1,0,4,1,94,87,0,Pass
2,2,8,16,1,10,3600,0,Killed
3,3,2,2,1,5,600,0,Failed
"""

PAI2023_SMALL = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p0,12000,16384,1,1000,,LS,Running,0,5000,0
p1,6000,12288,1,460,,BE,Failed,100,400,110
p2,4000,8192,0,0,,BE,Succeeded,200,300,200
p3,8000,8192,2,1000,,LS,Pending,300,900,
p4,8000,8192,8,1000,,BE,Succeeded,400,4000,450
"""


def test_itp_small_mapping(tmp_path):
    jobs, rep = load_any(write(tmp_path, "itp.csv", ITP_SMALL), options=MappingOptions(seed=3))
    assert rep.format == "itp" and rep.rows_read == 4 and rep.rows_kept == 3
    assert rep.counts["zero_duration_dropped"] == 1
    assert rep.time_shift_s == -100.0
    assert list(jobs.job_id) == ["a", "b", "d"]
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 60.0, 160.0])
    np.testing.assert_array_equal(jobs.gpus, [1, 8, 2])
    assert_valid_jobs(jobs)
    assert_accounted(rep)


def test_helios_small_mapping(tmp_path):
    jobs, rep = load_any(write(tmp_path, "h.csv", HELIOS_SMALL))
    assert rep.format == "helios"
    assert rep.counts["cpu_only_dropped"] == 1
    assert rep.counts["killed_kept"] == 1 and rep.counts["failed_kept"] == 1
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 104.0, 109.0])  # cumsum(interval)
    assert list(jobs.user) == ["1", "2", "3"]
    assert rep.status_counts == {"Pass": 1, "Killed": 1, "Failed": 1}
    jobs, rep = load_any(
        write(tmp_path, "h.csv", HELIOS_SMALL), options=MappingOptions(keep_failed=False)
    )
    assert list(jobs.job_id) == ["0"]
    assert rep.counts["killed_dropped"] == 1 and rep.counts["failed_dropped"] == 1
    assert_accounted(rep)


def test_mapping_gives_elastic_jobs_the_options_range(tmp_path):
    path = write(tmp_path, "itp.csv", ITP_SMALL)
    options = MappingOptions(elastic_share=1.0, elastic_min_fraction=0.25, elastic_max_factor=3.0)
    jobs, _ = load_any(path, options=options)
    assert jobs.elastic.all()
    np.testing.assert_array_equal(jobs.min_gpus, [1, 2, 1])  # max(1, floor(g / 4)), g = 1, 8, 2
    np.testing.assert_array_equal(jobs.max_gpus, [3, 24, 6])
    default, _ = load_any(path, options=MappingOptions(elastic_share=1.0))
    np.testing.assert_array_equal(default.min_gpus, [1, 4, 1])  # docs/model.md: g // 2, 2 g
    np.testing.assert_array_equal(default.max_gpus, [2, 16, 4])
    for kw in ({"elastic_min_fraction": 0.0}, {"elastic_max_factor": 0.5}):
        with pytest.raises(ValueError, match=f"MappingOptions.{next(iter(kw))}"):
            MappingOptions(**kw)


def test_pai2023_small_mapping_and_options(tmp_path):
    path = write(tmp_path, "pai.csv", PAI2023_SMALL)
    jobs, rep = load_any(path)
    assert rep.format == "pai2023"
    assert list(jobs.job_id) == ["p0", "p1", "p4"]
    np.testing.assert_array_equal(jobs.duration, [5000.0, 290.0, 3550.0])  # deletion - scheduled
    np.testing.assert_array_equal(jobs.gpus, [1, 1, 8])
    assert rep.counts["never_started_dropped"] == 1
    assert rep.counts["cpu_only_dropped"] == 1
    assert rep.counts["fractional_gpu_rounded"] == 1
    assert rep.counts["censored_kept"] == 1
    assert_accounted(rep)

    cases = {
        MappingOptions(fractional_gpu="drop"): (["p0", "p4"], "fractional_gpu_dropped"),
        MappingOptions(include_censored=False): (["p1", "p4"], "censored_dropped"),
        MappingOptions(qos="BE-only"): (["p1", "p4"], "qos_dropped"),
        MappingOptions(max_gpus=4): (["p0", "p1"], "over_max_gpus_dropped"),
        MappingOptions(min_duration_s=1000.0): (["p0", "p4"], "short_duration_dropped"),
    }
    for opts, (ids, reason) in cases.items():
        jobs, rep = load_any(path, options=opts)
        assert list(jobs.job_id) == ids, opts
        assert rep.counts[reason] == 1, opts
        assert_accounted(rep)


def test_philly_mapping(tmp_path):
    path = write(tmp_path, "cluster_job_log", json.dumps(PHILLY_JOBS))
    assert detect_format(path) == "philly"
    jobs, rep = load_any(path)
    assert list(jobs.job_id) == ["application_1", "application_2"]
    np.testing.assert_array_equal(jobs.gpus, [2, 4])
    np.testing.assert_array_equal(jobs.duration, [3600.0, 3600.0])  # sum of attempts
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 600.0])
    assert rep.counts["never_started_dropped"] == 1
    assert rep.counts["cpu_only_dropped"] == 1
    assert rep.counts["censored_no_end_dropped"] == 1
    assert rep.counts["killed_kept"] == 1
    assert_accounted(rep)
    # the string "None" is read as a missing time, as null is
    edited = json.loads(json.dumps(PHILLY_JOBS))
    edited[4]["attempts"][0]["end_time"] = "None"
    _, rep = load_any(write(tmp_path, "log2.json", json.dumps(edited)))
    assert rep.counts["censored_no_end_dropped"] == 1


def test_helios_raw_mapping(tmp_path):
    path = write(tmp_path, "cluster_log.csv", HELIOS_RAW)
    assert detect_format(path) == "helios-raw"
    jobs, rep = load_any(path)
    assert list(jobs.job_id) == ["j1", "j6", "j4"]  # sorted by submit time
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 300.0, 1200.0])
    np.testing.assert_array_equal(jobs.duration, [3600.0, 600.0, 120.0])
    assert rep.counts["never_started_dropped"] == 1
    assert rep.counts["cpu_only_dropped"] == 1
    assert rep.counts["zero_duration_dropped"] == 1
    assert rep.status_counts == {"COMPLETED": 1, "CANCELLED": 1, "FAILED": 1}
    assert any("sorted" in n for n in rep.notes)
    assert_accounted(rep)


@pytest.mark.parametrize("header", [True, False])
def test_pai2020_mapping(tmp_path, header):
    text = (PAI2020_HEADER if header else "") + PAI2020_ROWS
    path = write(tmp_path, "pai_task_table.csv", text)
    assert detect_format(path) == "pai2020"
    jobs, rep = load_any(path)
    assert rep.rows_read == 6 and rep.counts["tasks_merged"] == 1
    assert list(jobs.job_id) == ["jA", "jB"]
    np.testing.assert_array_equal(jobs.gpus, [2, 1])
    np.testing.assert_array_equal(jobs.duration, [3700.0, 500.0])
    np.testing.assert_array_equal(jobs.submit_time, [0.0, 1000.0])
    assert rep.counts["never_started_dropped"] == 1
    assert rep.counts["cpu_only_dropped"] == 1
    assert rep.counts["censored_no_end_dropped"] == 1
    assert rep.counts["fractional_gpu_rounded"] == 1
    assert rep.counts["failed_kept"] == 1
    assert_accounted(rep)


def test_elastic_flags_and_profiles_are_seeded(tmp_path):
    from aryl_gym.sim.profiles import DEFAULT_PROFILE_MIX

    rows = "job_id,submission_time,duration,num_gpu\n" + "".join(
        f"j{i},{i},100,4\n" for i in range(400)
    )
    path = write(tmp_path, "itp.csv", rows)
    a, _ = load_any(path, options=MappingOptions(seed=1))
    b, _ = load_any(path, options=MappingOptions(seed=1))
    c, _ = load_any(path, options=MappingOptions(seed=2))
    assert_tables_equal(a, b)
    assert not np.array_equal(a.elastic, c.elastic)
    assert 0.4 < a.elastic.mean() < 0.6
    assert set(a.profile) <= set(DEFAULT_PROFILE_MIX)
    np.testing.assert_array_equal(a.min_gpus, np.where(a.elastic, 2, 4))
    np.testing.assert_array_equal(a.max_gpus, np.where(a.elastic, 8, 4))
    none, _ = load_any(path, options=MappingOptions(elastic_share=0.0))
    assert not none.elastic.any()


def test_report_str_lists_every_counter(tmp_path):
    _, rep = load_any(write(tmp_path, "pai.csv", PAI2023_SMALL))
    text = str(rep)
    for key in ("rows_read", "rows_kept", "time_shift_s", *rep.counts):
        assert key in text
    assert len(text.splitlines()) >= len(rep.counts) + 4


def test_project_format_loads_as_is():
    assert detect_format(REPO_EXAMPLE) == "aryl"
    jobs, rep = load_any(REPO_EXAMPLE)
    assert_tables_equal(jobs, load_trace(REPO_EXAMPLE))
    assert rep.rows_read == rep.rows_kept == len(jobs) and rep.time_shift_s == 0.0


def test_options_validation():
    with pytest.raises(ValueError, match="elastic_share"):
        MappingOptions(elastic_share=1.5)
    with pytest.raises(ValueError, match="fractional_gpu"):
        MappingOptions(fractional_gpu="floor")
    assert MappingOptions(qos="BE,Burstable").qos == ("BE", "Burstable")
    assert MappingOptions(qos="all").qos is None


# --------------------------------------------------------------------------- malformed input

MALFORMED = [
    # (id, file name, content, row, field, words in the message)
    ("itp-missing-column", "itp.csv", "job_id,submission_time,duration\na,0,10\n", None, "num_gpu", "missing column"),
    ("itp-not-number", "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,10,1\nb,5,ten,1\n", 3, "duration", "number"),
    ("itp-negative", "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,-3,1\n", 2, "duration", ">= 0"),
    ("itp-nan", "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,10,1\nb,1,nan,1\n", 3, "duration", "finite"),
    ("itp-unsorted", "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,10,1\nb,50,10,1\nc,20,10,1\n", 4, "submission_time", "non-decreasing"),
    ("itp-fraction-gpu", "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,10,1.5\n", 2, "num_gpu", "integer"),
    ("itp-duplicate-id", "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,10,1\na,1,10,1\n", 3, "job_id", "duplicate"),
    ("helios-negative-interval", "h.csv", HELIOS_SMALL.replace("2,2,8,16,1,10,", "2,2,8,16,1,-10,"), 4, "interval", ">= 0"),
    ("helios-status", "h.csv", HELIOS_SMALL.replace("0,84,0,Pass", "0,84,0,Done"), 2, "new_status", "unknown status"),
    ("helios-run-time", "h.csv", HELIOS_SMALL.replace(",600,0,Failed", ",x,0,Failed"), 5, "run_time", "number"),
    ("helios-missing-column", "h.csv", "u_id,user,gpu_num,interval,new_status\n0,1,1,0,Pass\n", None, "run_time", "missing column"),
    ("pai-deletion-before-creation", "pai.csv", PAI2023_SMALL.replace("100,400,110", "100,50,110"), 3, "deletion_time", "deletion before creation"),
    ("pai-gpu-milli", "pai.csv", PAI2023_SMALL.replace("1,460,", "1,1460,"), 3, "gpu_milli", "[0, 1000]"),
    ("pai-scheduled-missing", "pai.csv", PAI2023_SMALL.replace("0,5000,0", "0,5000,"), 2, "scheduled_time", "Pending"),
    ("pai-negative-creation", "pai.csv", PAI2023_SMALL.replace("200,300,200", "-200,300,200"), 4, "creation_time", ">= 0"),
    ("pai-phase", "pai.csv", PAI2023_SMALL.replace("Succeeded,400", "Done,400"), 6, "pod_phase", "unknown status"),
    ("helios-raw-date", "cl.csv", HELIOS_RAW.replace("2020-04-01 08:20:00,2020", "yesterday,2020"), 5, "submit_time", "date-time"),
    ("helios-raw-negative", "cl.csv", HELIOS_RAW.replace(",120,vc2", ",-120,vc2"), 5, "duration", ">= 0"),
    ("helios-raw-state", "cl.csv", HELIOS_RAW.replace("TIMEOUT", "EXPLODED"), 6, "state", "unknown status"),
    ("pai2020-end-before-start", "t.csv", PAI2020_HEADER + PAI2020_ROWS.replace("2000,2500", "2000,1500"), 4, "end_time", "end before start"),
    ("pai2020-inst", "t.csv", PAI2020_HEADER + PAI2020_ROWS.replace("jD,worker,1", "jD,worker,0"), 6, "inst_num", ">= 1"),
    ("pai2020-headerless-row", "t.csv", PAI2020_ROWS.replace("jB,tensorflow,1", "jB,tensorflow,x"), 3, "inst_num", "number"),
]  # fmt: skip


@pytest.mark.parametrize(
    "name,content,row,field,words", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_csv(tmp_path, name, content, row, field, words):
    path = write(tmp_path, name, content)
    with pytest.raises(TraceFormatError) as info:
        load_any(path)
    err = info.value
    assert (err.row, err.field) == (row, field), str(err)
    assert words in err.reason, str(err)
    assert str(err).startswith(str(path))
    if row is not None:
        assert f"row {row}, field '{field}'" in str(err)


def _philly(tmp_path, edit) -> Path:
    jobs = json.loads(json.dumps(PHILLY_JOBS))
    edit(jobs)
    return write(tmp_path, "log.json", json.dumps(jobs))


@pytest.mark.parametrize(
    "edit,row,field",
    [
        (lambda j: j[1].pop("submitted_time"), 2, "submitted_time"),
        (lambda j: j[0].update(submitted_time="someday"), 1, "submitted_time"),
        (
            lambda j: j[1]["attempts"][1].update(end_time="2017-10-03 00:59:00"),
            2,
            "attempts[1].end_time",
        ),
        (lambda j: j[3].update(status="Exploded"), 4, "status"),
        (
            lambda j: j[0]["attempts"][0]["detail"][0].update(gpus="gpu0"),
            1,
            "attempts[0].detail[0].gpus",
        ),
    ],
    ids=["missing-key", "bad-date", "end-before-start", "status", "gpus-not-list"],
)
def test_malformed_philly(tmp_path, edit, row, field):
    with pytest.raises(TraceFormatError) as info:
        load_any(_philly(tmp_path, edit), "philly")
    assert (info.value.row, info.value.field) == (row, field), str(info.value)


@pytest.mark.parametrize(
    "content,fmt,words",
    [
        ("[{", "philly", "not valid JSON"),
        ("", None, "empty"),
        ("job_id,submission_time,duration,num_gpu\n", "itp", "no data rows"),
        ("a,b,c\n1,2,3\n", None, "cannot tell the trace format"),
        ("job_id,submission_time,duration,num_gpu\na,0,0,1\n", "itp", "no job left"),
    ],
    ids=["bad-json", "empty", "header-only", "unknown-header", "all-dropped"],
)
def test_malformed_files(tmp_path, content, fmt, words):
    with pytest.raises(TraceFormatError, match=words):
        load_any(write(tmp_path, "x.csv", content), fmt)


def test_unknown_format_name(tmp_path):
    with pytest.raises(ValueError, match="unknown trace format"):
        load_any(write(tmp_path, "itp.csv", ITP_SMALL), "slurm")


# --------------------------------------------------------------------------- the shared real traces


@pytest.mark.shared
def test_detect_format_on_shared_traces():
    assert detect_format(shared_trace(ITP)) == "itp"
    assert detect_format(shared_trace(HELIOS)) == "helios"
    assert detect_format(shared_trace(PAI)) == "pai2023"
    for other in (
        "train_sensetime_venus_submissions_10min.csv",
        "infer_alibaba_genai_sd_requests.csv",
    ):
        with pytest.raises(TraceFormatError, match="cannot tell"):
            detect_format(shared_trace(other))


def _checked_load(name):
    # how fast is a benchmark (scripts/benchmark_sim.py --real-traces), not a test
    jobs, rep = load_any(shared_trace(name))
    assert_valid_jobs(jobs)
    assert_accounted(rep)
    return jobs, rep


@pytest.mark.shared
def test_itp_loads_whole():
    jobs, rep = _checked_load(ITP)
    assert rep.rows_read == rep.rows_kept == len(jobs) == 15_802  # SOURCES.md
    assert rep.time_shift_s == -5810.0  # first submission_time
    assert int(jobs.gpus.max()) == 64
    assert abs(jobs.submit_time[-1] / 86400 - 59.5) < 0.1
    assert abs(np.mean(jobs.gpus == 1) - 0.755) < 0.001


@pytest.mark.shared
def test_helios_loads_with_cpu_only_counted():
    jobs, rep = _checked_load(HELIOS)
    assert rep.rows_read == 15_000
    assert rep.counts["cpu_only_dropped"] == 4_204  # 28 % CPU-only (SOURCES.md)
    assert abs(rep.counts["cpu_only_dropped"] / rep.rows_read - 0.28) < 0.005
    assert len(jobs) == 15_000 - 4_204
    assert int(jobs.gpus.max()) == 160
    assert abs(jobs.submit_time[-1] / 86400 - 20.2) < 0.1
    assert set(rep.status_counts) == {"Pass", "Failed", "Killed"}


@pytest.mark.shared
def test_pai2023_loads_with_drops_counted():
    jobs, rep = _checked_load(PAI)
    assert rep.rows_read == 8_152
    assert rep.counts["never_started_dropped"] == 897  # the Pending pods
    assert rep.counts["cpu_only_dropped"] > 1_000  # 13.3 % ask for no GPU, less the Pending ones
    assert rep.counts["censored_kept"] == rep.status_counts["Running"]
    assert rep.counts["fractional_gpu_rounded"] > 2_000
    assert int(jobs.gpus.max()) == 8
    be, rep_be = load_any(shared_trace(PAI), options=MappingOptions(qos="BE"))
    assert rep_be.counts["qos_dropped"] > 0 and len(be) < len(jobs)


# --------------------------------------------------------------------------- CLI


def test_convert_cli_round_trip(tmp_path, capsys):
    src = write(tmp_path, "cluster_job_log", json.dumps(PHILLY_JOBS))
    out = tmp_path / "out" / "philly.csv"
    assert main(["traces", "convert", "--format", "philly", "--seed", "4", str(src), str(out)]) == 0
    text = capsys.readouterr().out
    assert "cpu_only_dropped" in text and "rows_kept" in text and f"wrote {out}" in text
    jobs, _ = load_any(src, "philly", options=MappingOptions(seed=4))
    assert_tables_equal(load_trace(out), jobs)


@pytest.mark.shared
@pytest.mark.parametrize("name", [ITP, HELIOS, PAI])
def test_convert_cli_round_trip_shared(tmp_path, capsys, name):
    out = tmp_path / "converted.csv"
    assert main(["traces", "convert", str(shared_trace(name)), str(out)]) == 0
    assert "rows_read" in capsys.readouterr().out
    jobs, _ = load_any(shared_trace(name))
    back = load_trace(out)
    assert_tables_equal(back, jobs)
    assert detect_format(out) == "aryl"


def test_stats_cli_writes_png(tmp_path, capsys):
    src = write(tmp_path, "pai.csv", PAI2023_SMALL)
    png = tmp_path / "stats.png"
    assert main(["traces", "stats", str(src), "--png", str(png)]) == 0
    text = capsys.readouterr().out
    for label in (
        "jobs",
        "arrivals per day",
        "peak/trough",
        "GPU demand",
        "duration median",
        ">= 8 GPUs",
        "status",
    ):
        assert label in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.shared
def test_stats_cli_on_shared_traces(tmp_path, capsys):
    for name in (ITP, HELIOS, PAI):
        png = tmp_path / f"{name}.png"
        assert main(["traces", "stats", str(shared_trace(name)), "--png", str(png)]) == 0
        assert png.stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "15,802" in text and "94.1 %" in text  # ITP jobs; GPU-hours of jobs >= 8 GPUs
    assert "n/a (the format keeps no wall clock)" in text  # Helios


def test_cli_errors_name_row_and_field(tmp_path, capsys):
    src = write(tmp_path, "itp.csv", "job_id,submission_time,duration,num_gpu\na,0,-3,1\n")
    assert main(["traces", "convert", str(src), str(tmp_path / "o.csv")]) == 2
    assert "row 2, field 'duration'" in capsys.readouterr().err


# --------------------------------------------------------------------------- sizing and simulate


def test_size_cluster_for():
    jobs = JobTable.from_columns(submit_time=[0.0, 1000.0], gpus=[8, 16], duration=[1000.0, 1000.0])
    assert offered_gpu_demand(jobs) == pytest.approx(24.0)
    cfg = ClusterConfig(training_servers=2, inference_servers=4, gpus_per_server=8)
    sized = size_cluster_for(jobs, cfg, 0.5)  # 48 GPUs -> 6 servers, inference keeps 2:1
    assert (sized.training_servers, sized.inference_servers) == (6, 12)
    big = JobTable.from_columns(submit_time=[0.0, 1e6], gpus=[64, 1], duration=[10.0, 10.0])
    assert size_cluster_for(big, cfg, 0.9).training_servers == 8  # the largest job must fit
    with pytest.raises(ValueError):
        size_cluster_for(jobs, cfg, 0.0)


def test_build_workload_reads_public_formats(tmp_path):
    from aryl_gym.scenarios import build_workload, get_scenario

    src = write(tmp_path, "h.csv", HELIOS_SMALL)
    opts = MappingOptions(elastic_share=1.0)
    sc = get_scenario("tiny", trace=str(src), trace_format="helios", trace_options=opts)
    jobs, _ = build_workload(sc, seed=0)
    assert len(jobs) == 3 and jobs.elastic.all()


def _simulate(tmp_path, trace: Path, *extra: str) -> dict:
    out = tmp_path / "summary.json"
    rc = main(
        [
            "simulate",
            "--trace",
            str(trace),
            "--policy",
            "sjf-noloan",
            "--json",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert rc == 0
    return json.loads(out.read_text())


@pytest.mark.shared
def test_simulate_on_itp_cut(tmp_path, capsys):
    lines = shared_trace(ITP).read_text().splitlines()
    cut = write(tmp_path, "itp_cut.csv", "\n".join(lines[:301]) + "\n")  # header + 300 jobs
    summary = _simulate(tmp_path, cut)
    text = capsys.readouterr().out
    assert "rows_kept                300" in text.replace(",", "")
    assert "sized training pool to" in text  # 64-GPU jobs do not fit the small scenario
    assert summary["jobs_finished"] == summary["jobs_total"] == 300


def test_simulate_target_load_on_synthetic(tmp_path, capsys):
    summary = _simulate(
        tmp_path,
        write(tmp_path, "itp.csv", ITP_SMALL),
        "--target-load",
        "0.5",
        "--scenario",
        "tiny",
    )
    text = capsys.readouterr().out
    jobs, _ = load_any(tmp_path / "itp.csv")
    n = size_cluster_for(
        jobs, ClusterConfig(training_servers=2, inference_servers=2), 0.5
    ).training_servers
    assert f"sized training pool to {n} servers for load 0.5; inference pool {n} servers" in text
    assert summary["jobs_finished"] == 3


@pytest.mark.shared
def test_simulate_whole_itp_trace(tmp_path):
    summary = _simulate(tmp_path, shared_trace(ITP))
    assert summary["jobs_total"] == summary["jobs_finished"] == 15_802
    assert summary["jobs_unfinished"] == 0


# --------------------------------------------------------------------------- curves and benchmark


def test_traces_curves_lists_every_curve_with_ratio(capsys):
    from aryl_gym.workload.inference import CURVES, InferenceConfig, peak_to_trough

    assert main(["traces", "curves"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, desc in CURVES.items():
        line = next(line for line in lines if line.split()[:1] == [name])
        ratio = peak_to_trough(InferenceConfig(curve=name))
        assert line.split()[1] == ("inf" if ratio == float("inf") else f"{ratio:.2f}")
        assert desc in line
    assert any(line.startswith("inf:") for line in lines)  # inf is explained


def test_simulate_inference_curve_option(tmp_path, capsys):
    rc = main(["simulate", "--scenario", "tiny", "--inference-curve", "nowhere", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown inference curve 'nowhere'" in err
    assert "diurnal" in err and "servegen-llm-small" in err and "sd-requests" in err
    out = tmp_path / "s.json"
    argv = ["simulate", "--scenario", "tiny", "--policy", "fifo-noloan", "--quiet"]
    assert main([*argv, "--inference-curve", "flat", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "inference curve: flat (average-day peak/trough 1.00, peak utilisation 1)" in text
    assert main(argv) == 0  # the scenario's own curve is named otherwise
    assert "inference curve: diurnal (average-day peak/trough 4.17" in capsys.readouterr().out


def test_benchmark_on_trace(tmp_path, capsys):
    out = tmp_path / "b"
    argv = ["benchmark", "--scenario", "tiny", "--trace", str(REPO_EXAMPLE)]
    argv += ["--policies", "fifo-noloan,sjf-noloan", "--seeds", "2", "--out", str(out)]
    assert main([*argv, "--workers", "1", "--quiet", "--inference-curve", "flat"]) == 0
    text = capsys.readouterr().out
    # same report and sizing message as simulate, from the same code path
    assert "rows_kept     20" in text and "sized training pool to 9 servers for load 0.9" in text
    assert "inference curve: flat" in text
    assert "| fifo-noloan | 2 |" in text and "| sjf-noloan | 2 |" in text
    doc = json.loads((out / "results.json").read_text())
    assert doc["trace"] == str(REPO_EXAMPLE) and doc["training_servers"] == 9
    assert doc["inference_curve"] == "flat"
    assert all(r["jobs_finished"] == r["jobs_total"] == 20 for r in doc["runs"])
    assert "Workload: trace" in (out / "table.md").read_text()
    assert main([*argv[:3], "--target-load", "0.5", *argv[5:]]) == 2  # needs --trace
    assert "--format and --target-load need --trace" in capsys.readouterr().err


def test_trace_seed_varies_elastic_flags(tmp_path):
    from aryl_gym.scenarios import build_workload, get_scenario

    src = write(tmp_path, "itp.csv", ITP_SMALL)
    sc = get_scenario("tiny", trace=str(src))
    base, _ = load_any(src)
    j0, _ = build_workload(sc, seed=0)
    assert_tables_equal(j0, base)  # seed 0: the jobs of `traces convert`
    j7, _ = build_workload(sc, seed=7)
    shifted, _ = load_any(src, options=MappingOptions(seed=7))
    assert_tables_equal(j7, shifted)
    np.testing.assert_array_equal(j7.gpus, base.gpus)
