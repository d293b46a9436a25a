"""``aryl-gym traces``: convert public cluster traces to the project's format, and describe them.

* ``aryl-gym traces convert [--format F] IN OUT`` loads ``IN`` with
  :func:`aryl_gym.workload.real_traces.load_any`, writes ``OUT`` with ``save_trace`` and
  prints the :class:`~aryl_gym.workload.real_traces.MappingReport`.
* ``aryl-gym traces stats FILE [--format F] [--png OUT]`` prints a table of the loaded
  jobs (arrivals, GPU demand, durations, statuses) and optionally plots them.

Both take the mapping options (``--elastic-share``, ``--seed``, ``--min-duration``,
``--drop-failed``, ``--fractional-gpu``, ``--exclude-censored``, ``--qos``, ``--max-gpus``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DAY = 86400.0
HOUR = 3600.0


def add_mapping_arguments(p: argparse.ArgumentParser) -> None:
    """The ``MappingOptions`` flags (defaults are the dataclass's)."""
    from aryl_gym.workload.real_traces import FORMATS

    p.add_argument(
        "--format", choices=list(FORMATS), help="trace format (default: detected from the header)"
    )
    g = p.add_argument_group("mapping options")
    g.add_argument(
        "--elastic-share", type=float, default=0.5, help="share of jobs made elastic (default 0.5)"
    )
    g.add_argument(
        "--seed", type=int, default=0, help="seed of elastic flags and profiles (default 0)"
    )
    g.add_argument(
        "--min-duration",
        type=float,
        default=1.0,
        help="drop rows shorter than this, in s (default 1)",
    )
    g.add_argument(
        "--drop-failed",
        action="store_true",
        help="drop failed and killed jobs (default: keep them)",
    )
    g.add_argument(
        "--fractional-gpu",
        choices=("ceil", "drop"),
        default="ceil",
        help="part-GPU tasks: round up (default) or drop",
    )
    g.add_argument(
        "--exclude-censored",
        action="store_true",
        help="drop jobs still running when the trace ended",
    )
    g.add_argument(
        "--qos", default=None, help="PAI 2023: keep only these qos classes, e.g. BE or BE,Burstable"
    )
    g.add_argument(
        "--max-gpus", type=int, default=None, help="drop jobs asking for more GPUs than this"
    )


def options_from_args(args: argparse.Namespace):
    from aryl_gym.workload.real_traces import MappingOptions

    return MappingOptions(
        elastic_share=args.elastic_share,
        seed=args.seed,
        min_duration_s=args.min_duration,
        keep_failed=not args.drop_failed,
        fractional_gpu=args.fractional_gpu,
        include_censored=not args.exclude_censored,
        qos=args.qos,
        max_gpus=args.max_gpus,
    )


# --------------------------------------------------------------------------- statistics


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f} %"


def _clock(jobs, report) -> np.ndarray:
    """Submit times on the file's own clock (undoing the shift to 0)."""
    return np.asarray(jobs.submit_time, float) - report.time_shift_s


def trace_stats(jobs, report) -> dict[str, str]:
    """The ``traces stats`` table: label -> formatted value."""
    from aryl_gym.workload.real_traces import HAS_CLOCK

    n = len(jobs)
    t = np.asarray(jobs.submit_time, float)
    gpus = np.asarray(jobs.gpus)
    dur_h = np.asarray(jobs.duration, float) / HOUR
    has_clock = HAS_CLOCK.get(report.format, True)
    clock = _clock(jobs, report) if has_clock else t
    span_days = (t[-1] - t[0]) / DAY if n else 0.0

    out: dict[str, str] = {}
    out["file"] = report.source
    out["format"] = report.format
    dropped = {
        k[: -len("_dropped")]: v for k, v in report.counts.items() if k.endswith("_dropped") and v
    }
    detail = ", ".join(f"{k} {v:,}" for k, v in dropped.items())
    out["rows read / jobs kept"] = f"{report.rows_read:,} / {n:,}" + (
        f" (dropped: {detail})" if detail else ""
    )
    out["jobs"] = f"{n:,}"
    out["span"] = f"{span_days:.1f} days"
    day = np.floor(clock / DAY).astype(np.int64)
    per_day = np.bincount(day - day.min()) if n else np.zeros(1, int)
    mean_day = n / span_days if span_days > 0 else float(n)
    out["arrivals per day"] = (
        f"{mean_day:,.0f} (median day {np.median(per_day):,.0f}, "
        f"range {per_day.min():,}-{per_day.max():,} over {per_day.size} calendar days)"
    )
    if n >= 2:
        k = max(2, int(np.ceil(0.95 * n)))
        width = (t[k - 1 :] - t[: n - k + 1]).min() / DAY
        out["shortest window with 95 % of jobs"] = (
            f"{width:.1f} days ({k / width:,.0f} jobs/day in it)" if width > 0 else "0 days"
        )
    if has_clock and n:
        hours = np.floor((clock % DAY) / HOUR).astype(np.int64)
        prof = np.bincount(hours, minlength=24) / per_day.size
        peak, trough = int(np.argmax(prof)), int(np.argmin(prof))
        ratio = prof[peak] / prof[trough] if prof[trough] > 0 else float("inf")
        out["average-day peak/trough"] = (
            f"{ratio:.1f} (peak hour {peak:02d} h, trough {trough:02d} h; "
            "t = 0 of the file taken as midnight)"
        )
    else:
        out["average-day peak/trough"] = "n/a (the format keeps no wall clock)"
    shares = []
    for label, mask in (
        ("1", gpus == 1),
        ("2", gpus == 2),
        ("4", gpus == 4),
        ("8", gpus == 8),
        (">8", gpus > 8),
        ("other <8", (gpus > 2) & (gpus < 8) & (gpus != 4)),
    ):
        if mask.any() or label != "other <8":
            shares.append(f"{label}: {_pct(mask.mean()) if n else '-'}")
    out["GPU demand (share of jobs)"] = ", ".join(shares) + f"; max {int(gpus.max()) if n else 0}"
    out["duration median / p90 / mean"] = (
        f"{np.median(dur_h):.2f} h / {np.quantile(dur_h, 0.9):.2f} h / {dur_h.mean():.2f} h"
    )
    gh = gpus * dur_h
    out["GPU-hours of jobs >= 8 GPUs"] = _pct(gh[gpus >= 8].sum() / gh.sum()) if n else "-"
    out["GPU-hours in all"] = f"{gh.sum():,.0f}"
    if report.status_counts:
        total = sum(report.status_counts.values())
        out["status (kept jobs)"] = ", ".join(
            f"{k} {_pct(v / total)}" for k, v in report.status_counts.items()
        )
    out["elastic (assigned)"] = _pct(np.mean(jobs.elastic)) if n else "-"
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


def register(subparsers) -> None:
    """Add ``traces convert`` and ``traces stats`` to the ``aryl-gym`` sub-commands."""
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
