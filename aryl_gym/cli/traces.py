"""``aryl-gym traces``: convert public cluster traces to the project's format, and describe them.

* ``aryl-gym traces convert [--format F] IN OUT`` loads ``IN`` with
  :func:`aryl_gym.workload.real_traces.load_any`, writes ``OUT`` with ``save_trace`` and
  prints the :class:`~aryl_gym.workload.real_traces.MappingReport`.
* ``aryl-gym traces stats FILE [--format F] [--png OUT]`` prints a table of the loaded
  jobs (arrivals, GPU demand, durations, statuses) and optionally plots them.
* ``aryl-gym traces curves`` lists the inference demand curves (``--inference-curve`` of
  ``simulate`` and ``benchmark``) with the peak-to-trough ratio of their average day.
* ``aryl-gym traces formats`` lists the trace formats of the registry
  (:mod:`aryl_gym.workload.formats`), which ``--format`` takes.

``convert`` and ``stats`` take the mapping options (``--elastic-share``,
``--elastic-min-fraction``, ``--elastic-max-factor``, ``--min-duration``, ``--drop-failed``,
``--fractional-gpu``, ``--exclude-censored``, ``--qos``, ``--max-gpus``, defined once in
:func:`aryl_gym.cli.common.add_mapping_arguments` and also taken by ``simulate``,
``benchmark`` and ``sweep`` with ``--trace``) and the mapping's own ``--seed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from aryl_gym.cli.common import MAPPING_FLAGS, mapping_options_from_args
from aryl_gym.cli.common import add_mapping_arguments as add_shared_mapping_arguments

DAY = 86400.0
HOUR = 3600.0


#: The mapping flags of ``convert`` and ``stats``: the shared ones plus the mapping's seed.
TRACES_MAPPING_FLAGS = (*MAPPING_FLAGS, ("seed", "seed", None))


def add_mapping_arguments(p: argparse.ArgumentParser) -> None:
    """``--format`` and the ``MappingOptions`` flags: those shared with the scenario
    options (:func:`aryl_gym.cli.common.add_mapping_arguments`) plus ``--seed``; the
    dataclass's defaults for those not given (:func:`options_from_args`)."""
    p.add_argument(
        "--format",
        help="trace format (default: detected from the header; `aryl-gym traces formats` lists them)",
    )
    g = add_shared_mapping_arguments(p)
    g.add_argument("--seed", type=int, help="seed of elastic flags and profiles (default 0)")


def options_from_args(args: argparse.Namespace):
    """The ``MappingOptions`` of the flags (the dataclass's defaults for those not given)."""
    from aryl_gym.workload.real_traces import MappingOptions

    return mapping_options_from_args(args, TRACES_MAPPING_FLAGS) or MappingOptions()


# --------------------------------------------------------------------------- statistics


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f} %"


def _clock(jobs, report) -> np.ndarray:
    """Submit times on the file's own clock (undoing the shift to 0)."""
    return np.asarray(jobs.submit_time, float) - report.time_shift_s


#: GPU-demand classes of the statistics: (label, test on the GPU count).
GPU_CLASSES = (
    ("1", lambda g: g == 1),
    ("2", lambda g: g == 2),
    ("4", lambda g: g == 4),
    ("8", lambda g: g == 8),
    (">8", lambda g: g > 8),
    ("other <8", lambda g: (g > 2) & (g < 8) & (g != 4)),
)


def trace_numbers(jobs, report) -> dict:
    """The numbers behind :func:`trace_stats`, unformatted (NaN where undefined).

    Keys: ``jobs``, ``span_days``, ``jobs_per_day`` (jobs over the span from first to last
    submission), ``median_day`` / ``min_day`` / ``max_day`` / ``calendar_days`` (arrivals per
    calendar day), ``window95_days`` / ``window95_jobs`` (shortest window holding 95 % of
    the jobs), ``has_clock``, ``peak_trough`` / ``peak_hour`` / ``trough_hour`` (hourly
    arrivals of the average day, t = 0 of the file taken as midnight; NaN without a wall
    clock), ``gpu_share`` (label of ``GPU_CLASSES`` -> share of jobs), ``max_gpus``,
    ``duration_median_h`` / ``duration_p90_h`` / ``duration_mean_h``,
    ``gpu_hours_share_ge8`` (share of GPU-hours in jobs of >= 8 GPUs), ``gpu_hours``,
    ``elastic_share``.
    """
    from aryl_gym.workload.real_traces import HAS_CLOCK

    nan = float("nan")
    n = len(jobs)
    t = np.asarray(jobs.submit_time, float)
    gpus = np.asarray(jobs.gpus)
    dur_h = np.asarray(jobs.duration, float) / HOUR
    has_clock = HAS_CLOCK.get(report.format, True)
    clock = _clock(jobs, report) if has_clock else t
    span_days = (t[-1] - t[0]) / DAY if n else 0.0
    day = np.floor(clock / DAY).astype(np.int64)
    per_day = np.bincount(day - day.min()) if n else np.zeros(1, int)
    out: dict = {
        "jobs": n,
        "span_days": span_days,
        "jobs_per_day": n / span_days if span_days > 0 else float(n),
        "median_day": float(np.median(per_day)),
        "min_day": int(per_day.min()),
        "max_day": int(per_day.max()),
        "calendar_days": int(per_day.size),
        "window95_days": nan,
        "window95_jobs": 0,
        "has_clock": has_clock,
        "peak_trough": nan,
        "peak_hour": nan,
        "trough_hour": nan,
    }
    if n >= 2:
        k = max(2, int(np.ceil(0.95 * n)))
        out["window95_days"] = (t[k - 1 :] - t[: n - k + 1]).min() / DAY
        out["window95_jobs"] = k
    if has_clock and n:
        hours = np.floor((clock % DAY) / HOUR).astype(np.int64)
        prof = np.bincount(hours, minlength=24) / per_day.size
        peak, trough = int(np.argmax(prof)), int(np.argmin(prof))
        out["peak_trough"] = prof[peak] / prof[trough] if prof[trough] > 0 else float("inf")
        out["peak_hour"], out["trough_hour"] = peak, trough
    out["gpu_share"] = {
        label: float(test(gpus).mean()) if n else nan for label, test in GPU_CLASSES
    }
    out["max_gpus"] = int(gpus.max()) if n else 0
    out["duration_median_h"] = float(np.median(dur_h)) if n else nan
    out["duration_p90_h"] = float(np.quantile(dur_h, 0.9)) if n else nan
    out["duration_mean_h"] = float(dur_h.mean()) if n else nan
    gh = gpus * dur_h
    out["gpu_hours_share_ge8"] = float(gh[gpus >= 8].sum() / gh.sum()) if n else nan
    out["gpu_hours"] = float(gh.sum())
    out["elastic_share"] = float(np.mean(jobs.elastic)) if n else nan
    return out


def trace_stats(jobs, report) -> dict[str, str]:
    """The ``traces stats`` table: label -> formatted value (numbers of :func:`trace_numbers`)."""
    v = trace_numbers(jobs, report)
    n = v["jobs"]
    out: dict[str, str] = {}
    out["file"] = report.source
    out["format"] = report.format
    dropped = {
        k[: -len("_dropped")]: c for k, c in report.counts.items() if k.endswith("_dropped") and c
    }
    detail = ", ".join(f"{k} {c:,}" for k, c in dropped.items())
    out["rows read / jobs kept"] = f"{report.rows_read:,} / {n:,}" + (
        f" (dropped: {detail})" if detail else ""
    )
    out["jobs"] = f"{n:,}"
    out["span"] = f"{v['span_days']:.1f} days"
    out["arrivals per day"] = (
        f"{v['jobs_per_day']:,.0f} (median day {v['median_day']:,.0f}, "
        f"range {v['min_day']:,}-{v['max_day']:,} over {v['calendar_days']} calendar days)"
    )
    if n >= 2:
        width, k = v["window95_days"], v["window95_jobs"]
        out["shortest window with 95 % of jobs"] = (
            f"{width:.1f} days ({k / width:,.0f} jobs/day in it)" if width > 0 else "0 days"
        )
    if v["has_clock"] and n:
        out["average-day peak/trough"] = (
            f"{v['peak_trough']:.1f} (peak hour {v['peak_hour']:02d} h, trough "
            f"{v['trough_hour']:02d} h; t = 0 of the file taken as midnight)"
        )
    else:
        out["average-day peak/trough"] = "n/a (the format keeps no wall clock)"
    shares = [
        f"{label}: {_pct(share) if n else '-'}"
        for label, share in v["gpu_share"].items()
        if label != "other <8" or share > 0
    ]
    out["GPU demand (share of jobs)"] = ", ".join(shares) + f"; max {v['max_gpus']}"
    out["duration median / p90 / mean"] = (
        f"{v['duration_median_h']:.2f} h / {v['duration_p90_h']:.2f} h / "
        f"{v['duration_mean_h']:.2f} h"
    )
    out["GPU-hours of jobs >= 8 GPUs"] = _pct(v["gpu_hours_share_ge8"]) if n else "-"
    out["GPU-hours in all"] = f"{v['gpu_hours']:,.0f}"
    if report.status_counts:
        total = sum(report.status_counts.values())
        out["status (kept jobs)"] = ", ".join(
            f"{k} {_pct(c / total)}" for k, c in report.status_counts.items()
        )
    out["elastic (assigned)"] = _pct(v["elastic_share"]) if n else "-"
    return out


def plot_stats(jobs, report, path: Path) -> None:
    """Four panels: arrivals per day, average-day shape, GPU-demand histogram, duration CDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aryl_gym.workload.real_traces import HAS_CLOCK

    has_clock = HAS_CLOCK.get(report.format, True)
    clock = _clock(jobs, report) if has_clock else np.asarray(jobs.submit_time, float)
    day = np.floor(clock / DAY).astype(np.int64)
    per_day = np.bincount(day - day.min())
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    a = ax[0, 0]
    a.bar(np.arange(per_day.size), per_day, width=1.0, color="tab:blue")
    a.set(title="arrivals per day", xlabel="day of the trace", ylabel="jobs submitted")
    a = ax[0, 1]
    if has_clock:
        hours = np.floor((clock % DAY) / HOUR).astype(np.int64)
        prof = np.bincount(hours, minlength=24) / per_day.size
        a.plot(np.arange(24), prof / prof.mean(), marker="o")
        a.axhline(1.0, color="grey", lw=0.8)
        a.set(
            title="average day (t = 0 taken as midnight)",
            xlabel="hour",
            ylabel="arrivals / mean",
            xticks=range(0, 24, 3),
        )
    else:
        a.text(
            0.5,
            0.5,
            "no wall clock in this format",
            ha="center",
            va="center",
            transform=a.transAxes,
        )
        a.set(title="average day")
    a = ax[1, 0]
    values, counts = np.unique(jobs.gpus, return_counts=True)
    a.bar([str(v) for v in values], counts / counts.sum(), color="tab:green")
    a.set(title="GPU demand", xlabel="GPUs requested", ylabel="share of jobs")
    a.tick_params(axis="x", labelrotation=90 if values.size > 12 else 0)
    a = ax[1, 1]
    d = np.sort(np.asarray(jobs.duration, float)) / HOUR
    a.plot(d, np.arange(1, d.size + 1) / d.size)
    a.set(xscale="log", title="duration CDF", xlabel="duration (h, log)", ylabel="share of jobs")
    a.grid(alpha=0.3)
    fig.suptitle(f"{Path(report.source).name} ({report.format}): {len(jobs):,} jobs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- commands


def cmd_convert(args: argparse.Namespace) -> int:
    from aryl_gym.workload.real_traces import load_any
    from aryl_gym.workload.trace_io import save_trace

    jobs, report = load_any(args.input, args.format, options=options_from_args(args))
    print(report)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_trace(jobs, args.output)
    print(f"wrote {args.output} ({len(jobs):,} jobs, format aryl)")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from aryl_gym.workload.real_traces import load_any

    jobs, report = load_any(args.file, args.format, options=options_from_args(args))
    table = trace_stats(jobs, report)
    width = max(len(k) for k in table)
    print(f"aryl-gym traces stats: {Path(args.file).name}")
    for k, v in table.items():
        print(f"  {k:<{width}}  {v}")
    if args.png:
        plot_stats(jobs, report, Path(args.png))
        print(f"wrote {args.png}")
    return 0


def curve_rows() -> list[tuple[str, float, str]]:
    """``(name, average-day peak/trough, description)`` of every curve in ``CURVES``, the
    ratio at the default :class:`~aryl_gym.workload.inference.InferenceConfig`."""
    from aryl_gym.workload.inference import CURVES, InferenceConfig, peak_to_trough

    return [(name, peak_to_trough(InferenceConfig(curve=name)), d) for name, d in CURVES.items()]


def cmd_curves(args: argparse.Namespace) -> int:
    from aryl_gym.workload.inference import InferenceConfig

    rows = curve_rows()
    head = ("curve", "avg-day peak/trough", "description")
    w0 = max(len(head[0]), *(len(r[0]) for r in rows))
    w1 = len(head[1])
    print(f"{head[0]:<{w0}}  {head[1]:>{w1}}  {head[2]}")
    for name, ratio, desc in rows:
        text = "inf" if ratio == float("inf") else f"{ratio:.2f}"
        print(f"{name:<{w0}}  {text:>{w1}}  {desc}")
    cfg = InferenceConfig()
    print(
        "\navg-day peak/trough: highest over lowest 10-minute bin of the curve's average day of\n"
        f"utilisation, at the default InferenceConfig (peak_utilisation {cfg.peak_utilisation:g}, "
        "no trough_utilisation).\n"
        "inf: some bins of the average day have no demand at all (the trough is 0).\n"
        "Pick a curve with `aryl-gym simulate --inference-curve NAME` (or `benchmark`)."
    )
    return 0


def cmd_formats(args: argparse.Namespace) -> int:
    """List the registered trace formats: name, description, source, wall clock."""
    from aryl_gym.workload.formats import formats

    known = formats()
    width = max(len(f.name) for f in known)
    pad = " " * (width + 2)
    for f in known:
        print(f"{f.name:<{width}}  {f.description}")
        clock = "wall clock" if f.has_clock else "no wall clock"
        print(f"{pad}source: {f.source}; {clock}")
    print(
        "\n--format NAME picks one; without it the format is told from the file's first line.\n"
        "Columns and mapping of each: traces/README.md."
    )
    return 0


def register(subparsers) -> None:
    """Add ``traces convert``, ``traces stats``, ``traces curves`` and ``traces formats``
    to the ``aryl-gym`` sub-commands."""
    t = subparsers.add_parser("traces", help="convert and describe public cluster traces")
    tsub = t.add_subparsers(dest="traces_command", required=True)

    c = tsub.add_parser("convert", help="convert a public trace to the project's trace format")
    c.add_argument("input", type=Path, help="the trace file")
    c.add_argument("output", type=Path, help="the CSV to write (project format)")
    add_mapping_arguments(c)
    c.set_defaults(func=cmd_convert)

    s = tsub.add_parser(
        "stats", help="print arrival, GPU-demand and duration statistics of a trace"
    )
    s.add_argument("file", type=Path, help="the trace file")
    s.add_argument("--png", type=Path, help="also plot the statistics to this PNG")
    add_mapping_arguments(s)
    s.set_defaults(func=cmd_stats)

    k = tsub.add_parser(
        "curves", help="list the inference demand curves with their average-day peak/trough"
    )
    k.set_defaults(func=cmd_curves)

    f = tsub.add_parser("formats", help="list the trace formats --format accepts")
    f.set_defaults(func=cmd_formats)
