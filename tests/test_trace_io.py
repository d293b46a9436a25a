"""Tests of the CSV trace format: round trips, the bundled example, and every rejection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aryl_gym.workload.schema import COLUMNS, JobTable
from aryl_gym.workload.trace_io import TraceFormatError, load_trace, save_trace

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("linear", "bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")

HEADER = list(COLUMNS)
# Three valid jobs; in the file they are rows 2, 3 and 4 (the header is row 1).
BASE_ROWS = [
    ["a", "0.0", "1", "100.0", "false", "1", "1", "linear", "u1"],
    ["b", "10.0", "2", "200.0", "true", "1", "4", "bert", "u2"],
    ["c", "20.0", "4", "300.0", "false", "", "", "cifar10", ""],
]


def csv_text(header: list[str] = HEADER, rows: list[list[str]] = BASE_ROWS) -> str:
    return "".join(",".join(cells) + "\n" for cells in [header, *rows])


def with_cell(row: int, field: str, value: str) -> str:
    """The base file with one cell replaced; ``row`` is the file row (2, 3 or 4)."""
    rows = [list(r) for r in BASE_ROWS]
    rows[row - 2][HEADER.index(field)] = value
    return csv_text(rows=rows)


def without_column(field: str) -> str:
    keep = [j for j, name in enumerate(HEADER) if name != field]
    return csv_text([HEADER[j] for j in keep], [[r[j] for j in keep] for r in BASE_ROWS])


def with_extra_column(name: str, values: tuple[str, str, str] = ("x", "x", "x")) -> str:
    """The base file with one more column; ``values`` are its cells on rows 2, 3 and 4."""
    return csv_text([*HEADER, name], [[*r, v] for r, v in zip(BASE_ROWS, values, strict=True)])


def write(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_tables_equal(a: JobTable, b: JobTable) -> None:
    assert len(a) == len(b)
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert list(a.extras) == list(b.extras)
    for name, x in a.extras.items():
        assert x.dtype == b.extras[name].dtype, name
        np.testing.assert_array_equal(x, b.extras[name], err_msg=name)


# --------------------------------------------------------------------------- valid files


def test_base_file_loads_with_defaults(tmp_path: Path) -> None:
    table = load_trace(write(tmp_path, csv_text(), "ok.csv"), max_gpus=8, known_profiles=PROFILES)
    assert list(table.job_id) == ["a", "b", "c"]
    assert table.gpus.tolist() == [1, 2, 4]
    assert table.elastic.tolist() == [False, True, False]
    assert table.min_gpus.tolist() == [1, 1, 4]  # empty cells on an inelastic job -> gpus
    assert table.max_gpus.tolist() == [1, 4, 4]
    assert table.user.tolist() == ["u1", "u2", ""]
    assert table.source == str(tmp_path / "ok.csv")


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    text = "job_id,submit_time,gpus,duration\nx,0,4,60\ny,1.5,1,30\n"
    table = load_trace(write(tmp_path, text))
    expected = JobTable.from_columns(
        job_id=["x", "y"], submit_time=[0.0, 1.5], gpus=[4, 1], duration=[60.0, 30.0]
    )
    assert_tables_equal(table, expected)


def test_elastic_defaults_per_row(tmp_path: Path) -> None:
    text = "job_id,submit_time,gpus,duration,elastic,min_gpus,max_gpus\nx,0,8,60,yes,,\ny,0,1,60,TRUE,,3\n"
    table = load_trace(write(tmp_path, text))
    assert table.min_gpus.tolist() == [4, 1]  # max(1, gpus // 2)
    assert table.max_gpus.tolist() == [16, 3]  # 2 * gpus unless given


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("False", False),
        ("YES", True),
        ("no", False),
        ("1", True),
        ("0", False),
        (" True ", True),
        ("", False),
    ],
)
def test_elastic_spellings(tmp_path: Path, cell: str, expected: bool) -> None:
    text = f"job_id,submit_time,gpus,duration,elastic\nx,0,2,60,{cell}\n"
    assert load_trace(write(tmp_path, text)).elastic.tolist() == [expected]


def test_integral_float_gpus_accepted(tmp_path: Path) -> None:
    text = "job_id,submit_time,gpus,duration\nx,0,4.0,60\n"
    assert load_trace(write(tmp_path, text)).gpus.tolist() == [4]


def test_blank_lines_skipped_but_counted(tmp_path: Path) -> None:
    text = "job_id,submit_time,gpus,duration\n\nx,0,1,60\n\n\ny,1,0,60\n"
    with pytest.raises(TraceFormatError) as err:
        load_trace(write(tmp_path, text))
    assert (err.value.row, err.value.field) == (6, "gpus")


def test_example_trace_loads() -> None:
    table = load_trace(REPO / "traces" / "example.csv", max_gpus=64, known_profiles=PROFILES)
    assert 15 <= len(table) <= 30
    assert table.submit_time[-1] <= 2.5 * 3600
    assert table.elastic.any() and not table.elastic.all()
    assert {1, 2, 4, 8, 16} <= set(table.gpus.tolist())


# --------------------------------------------------------------------------- round trips


def test_example_round_trips(tmp_path: Path) -> None:
    table = load_trace(REPO / "traces" / "example.csv")
    save_trace(table, tmp_path / "copy.csv")
    assert_tables_equal(load_trace(tmp_path / "copy.csv"), table)


_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12
)


@st.composite
def job_tables(draw: st.DrawFn) -> JobTable:
    n = draw(st.integers(1, 25))
    submit = sorted(draw(st.lists(st.floats(0, 1e9, allow_nan=False), min_size=n, max_size=n)))
    duration = draw(
        st.lists(st.floats(0, 1e9, exclude_min=True, allow_nan=False), min_size=n, max_size=n)
    )
    gpus = draw(st.lists(st.integers(1, 64), min_size=n, max_size=n))
    elastic = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    lo = [draw(st.integers(1, g)) if e else g for g, e in zip(gpus, elastic, strict=True)]
    hi = [draw(st.integers(g, 4 * g)) if e else g for g, e in zip(gpus, elastic, strict=True)]
    ids = draw(st.lists(_text.filter(bool), min_size=n, max_size=n, unique=True))
    values = {
        "int": st.integers(-(2**31), 2**31),
        "float": st.floats(-1e300, 1e300, allow_nan=False),
        "bool": st.booleans(),
        "str": _text,
    }
    kinds = draw(st.lists(st.sampled_from(list(values)), max_size=3))
    extras = {
        f"x{j}_{kind}": draw(st.lists(values[kind], min_size=n, max_size=n))
        for j, kind in enumerate(kinds)
    }
    return JobTable.from_columns(
        job_id=ids,
        submit_time=submit,
        gpus=gpus,
        duration=duration,
        elastic=elastic,
        min_gpus=lo,
        max_gpus=hi,
        profile=draw(st.lists(st.sampled_from(PROFILES), min_size=n, max_size=n)),
        user=draw(st.lists(_text, min_size=n, max_size=n)),
        extras={
            k: np.asarray(v, dtype=object if k.endswith("str") else None) for k, v in extras.items()
        },
    )


@settings(max_examples=150, deadline=None)
@given(table=job_tables())
def test_round_trip(tmp_path_factory: pytest.TempPathFactory, table: JobTable) -> None:
    path = tmp_path_factory.mktemp("rt") / "t.csv"
    save_trace(table, path)
    assert_tables_equal(load_trace(path, known_profiles=PROFILES), table)


def test_save_refuses_line_breaks(tmp_path: Path) -> None:
    table = JobTable.from_columns(job_id=["a\nb"], submit_time=[0], gpus=[1], duration=[1])
    with pytest.raises(ValueError, match="line break"):
        save_trace(table, tmp_path / "t.csv")


def test_fifty_thousand_rows_round_trip(tmp_path: Path) -> None:
    # load speed is measured in scripts/benchmark.py, not asserted here
    rng = np.random.default_rng(0)
    n = 50_000
    gpus = rng.choice([1, 2, 4, 8, 16], n)
    table = JobTable.from_columns(
        submit_time=np.sort(rng.uniform(0, 1e6, n)),
        gpus=gpus,
        duration=rng.uniform(1, 1e5, n),
        elastic=rng.random(n) < 0.5,
        profile=rng.choice(PROFILES, n),
    )
    save_trace(table, tmp_path / "big.csv")
    loaded = load_trace(tmp_path / "big.csv", max_gpus=16, known_profiles=PROFILES)
    assert_tables_equal(loaded, table)


# --------------------------------------------------------------------------- rejections

# (id, file text, load_trace keyword arguments, row, field, fragment of the message)
# fmt: off
BAD: list[tuple[str, str, dict, int | None, str | None, str]] = [
    ("empty-file", "", {}, None, None, "file is empty"),
    ("header-only", csv_text(rows=[]), {}, None, None, "no job rows"),
    ("missing-required-column", without_column("duration"), {}, None, "duration", "missing required column"),
    ("unknown-column-typo", with_extra_column("min_gpu"), {}, 1, "min_gpu", "did you mean 'min_gpus'? (to keep it as an extra column, declare its type: 'min_gpu:str'"),
    ("extra-unknown-type", with_extra_column("priority:integer"), {}, 1, "priority:integer", "unknown type 'integer' in column 'priority:integer'; extra columns are declared name:type with a type of str, int, float, bool"),
    ("extra-no-name", with_extra_column(":int"), {}, 1, ":int", "header column 10 has no name"),
    ("extra-typed-format-column", with_extra_column("gpus:int"), {}, 1, "gpus:int", "'gpus' is a format column with a fixed type"),
    ("extra-twice", csv_text([*HEADER, "prio", "prio:int"], [[*r, "1", "1"] for r in BASE_ROWS]), {}, 1, "prio:int", "column 'prio' appears twice"),
    ("extra-int-not-number", with_extra_column("priority:int", ("1", "high", "2")), {}, 3, "priority:int", "must be a number, got 'high'"),
    ("extra-int-fractional", with_extra_column("priority:int", ("1", "2", "2.5")), {}, 4, "priority:int", "must be an integer, got '2.5'"),
    ("extra-int-empty", with_extra_column("priority:int", ("1", "", "2")), {}, 3, "priority:int", "missing value (a column declared int needs a value in every row)"),
    ("extra-float-inf", with_extra_column("weight:float", ("1", "0.5", "inf")), {}, 4, "weight:float", "must be finite"),
    ("extra-bool-word", with_extra_column("urgent:bool", ("true", "no", "maybe")), {}, 4, "urgent:bool", "must be a boolean"),
    ("extra-bool-empty", with_extra_column("urgent:bool", ("", "no", "yes")), {}, 2, "urgent:bool", "missing value (a column declared bool"),
    ("duplicate-column", with_extra_column("gpus"), {}, 1, "gpus", "appears twice"),
    ("ragged-row", csv_text(rows=[BASE_ROWS[0], [*BASE_ROWS[1], "extra"]]), {}, 3, None, "has 10 cells"),
    ("required-value-empty", with_cell(3, "gpus", ""), {}, 3, "gpus", "missing value"),
    ("non-numeric-duration", with_cell(3, "duration", "abc"), {}, 3, "duration", "must be a number, got 'abc'"),
    ("non-numeric-submit", with_cell(4, "submit_time", "soon"), {}, 4, "submit_time", "must be a number"),
    ("nan-submit", with_cell(3, "submit_time", "nan"), {}, 3, "submit_time", "must be finite"),
    ("inf-duration", with_cell(2, "duration", "inf"), {}, 2, "duration", "must be finite"),
    ("negative-submit", with_cell(2, "submit_time", "-1.0"), {}, 2, "submit_time", "must be >= 0, got -1.0"),
    ("unsorted-submit", with_cell(4, "submit_time", "5.0"), {}, 4, "submit_time", "non-decreasing"),
    ("zero-duration", with_cell(3, "duration", "0"), {}, 3, "duration", "must be > 0, got 0.0"),
    ("negative-duration", with_cell(4, "duration", "-3"), {}, 4, "duration", "must be > 0, got -3.0"),
    ("zero-gpus", with_cell(2, "gpus", "0"), {}, 2, "gpus", "must be >= 1"),
    ("fractional-gpus", with_cell(3, "gpus", "2.5"), {}, 3, "gpus", "must be an integer, got '2.5'"),
    ("huge-gpus", with_cell(3, "gpus", "1e300"), {}, 3, "gpus", "out of range"),
    ("gpus-over-cluster", csv_text(), {"max_gpus": 2}, 4, "gpus", "must be <= 2"),
    ("duplicate-job-id", with_cell(4, "job_id", "a"), {}, 4, "job_id", "duplicate job_id 'a' (first used on row 2)"),
    ("empty-job-id", with_cell(3, "job_id", ""), {}, 3, "job_id", "missing value"),
    ("bad-elastic", with_cell(3, "elastic", "maybe"), {}, 3, "elastic", "must be a boolean"),
    ("min-over-gpus", with_cell(3, "min_gpus", "3"), {}, 3, "min_gpus", "must be <= gpus (2), got 3"),
    ("min-below-one", with_cell(3, "min_gpus", "0"), {}, 3, "min_gpus", "must be >= 1"),
    ("max-below-gpus", with_cell(3, "max_gpus", "1"), {}, 3, "max_gpus", "must be >= gpus (2), got 1"),
    ("inelastic-min", with_cell(4, "min_gpus", "2"), {}, 4, "min_gpus", "inelastic"),
    ("inelastic-max", with_cell(4, "max_gpus", "8"), {}, 4, "max_gpus", "inelastic"),
    ("unknown-profile", with_cell(3, "profile", "resnet"), {"known_profiles": PROFILES}, 3, "profile", "unknown profile 'resnet'"),
]
# fmt: on


@pytest.mark.parametrize(
    ("text", "kwargs", "row", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD],
)
def test_rejects(
    tmp_path: Path, text: str, kwargs: dict, row: int | None, field: str | None, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceFormatError) as err:
        load_trace(path, **kwargs)
    e = err.value
    assert (e.row, e.field) == (row, field)
    assert e.path == str(path)
    assert fragment in str(e)
    assert "bad.csv" in str(e)


def test_unknown_profile_accepted_without_registry(tmp_path: Path) -> None:
    assert load_trace(write(tmp_path, with_cell(3, "profile", "resnet"))).profile[1] == "resnet"


def test_message_format() -> None:
    e = TraceFormatError("traces/x.csv", "must be > 0, got -3.0", row=17, field="duration")
    assert str(e) == "traces/x.csv, row 17, field 'duration': must be > 0, got -3.0"
    assert isinstance(e, ValueError)
    assert str(TraceFormatError("t.csv", "file is empty")) == "t.csv: file is empty"


# --------------------------------------------------------------------------- line breaks in cells


@pytest.mark.parametrize(
    ("text", "row", "field"),
    [
        pytest.param(
            'job_id,submit_time,gpus,duration,user\na,0,1,60,"al\nice"\nb,1,0,60,bob\n',
            2,
            "user",
            id="lf-in-user",
        ),
        pytest.param(
            'job_id,submit_time,gpus,duration\na,0,1,60\nb,1,1,60\n"c\r\nd",2,1,60\n',
            4,
            "job_id",
            id="crlf-in-id",
        ),
        pytest.param(
            'job_id,submit_time,"gp\nus",duration\na,0,1,60\n',
            1,
            None,
            id="in-header",
        ),
    ],
)
def test_quoted_line_break_rejected(tmp_path: Path, text: str, row: int, field: str | None) -> None:
    # A quoted cell spanning lines would shift every later row number: the format forbids it.
    path = write(tmp_path, text)
    with pytest.raises(TraceFormatError) as err:
        load_trace(path)
    e = err.value
    assert (e.row, e.field) == (row, field), str(e)
    assert "line break" in e.reason
    assert e.path == str(path)


def test_quoted_commas_and_quotes_still_accepted(tmp_path: Path) -> None:
    text = 'job_id,submit_time,gpus,duration,user\n"a,1",0,1,60,"say ""hi"""\n'
    table = load_trace(write(tmp_path, text))
    assert table.job_id.tolist() == ["a,1"] and table.user.tolist() == ['say "hi"']
