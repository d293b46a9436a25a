"""Markdown table of the real training traces' statistics beside the synthetic generator's.

Rows: the three training traces of ``../shared/traces`` as loaded by
``aryl_gym.workload.real_traces.load_any`` (default ``MappingOptions``), and the synthetic
workload of the ``aryl-15d`` scenario, ``generate_jobs(WorkloadConfig(), seed=0)``. The
numbers are those of ``aryl-gym traces stats`` (``aryl_gym.cli.traces.trace_numbers``).

    .venv/bin/python scripts/trace_table.py [--traces-dir ../shared/traces]

Output is pasted into docs/real-traces.md; no trace data is written anywhere.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from aryl_gym.cli.traces import trace_numbers
from aryl_gym.workload.generator import WorkloadConfig, generate_jobs
from aryl_gym.workload.real_traces import MappingReport, load_any

ROOT = Path(__file__).resolve().parents[1]
TRACES = (
    ("Microsoft ITP cluster04", "train_microsoft_itp_cluster04.csv"),
    ("SenseTime Helios (last 15k)", "train_sensetime_helios_last15k.csv"),
    ("Alibaba PAI 2023 (openb)", "train_alibaba_pai_openb2023_pods.csv"),
)
SHARES = ("1", "2", "4", "8", ">8")


def row(name: str, jobs, report) -> list[str]:
    v = trace_numbers(jobs, report)
    ratio = v["peak_trough"]
    pt = "n/a (no clock)" if math.isnan(ratio) else f"{ratio:.1f}"
    w = v["window95_days"]
    dense = f"{v['window95_jobs'] / w:,.0f}" if w > 0 else "-"
    return [
        name,
        f"{v['jobs']:,}",
        f"{v['span_days']:.1f}",
        f"{v['jobs_per_day']:,.0f}",
        dense,
        pt,
        *(f"{100 * v['gpu_share'][k]:.1f}" for k in SHARES),
        f"{v['max_gpus']}",
        f"{v['duration_median_h']:.2f} / {v['duration_p90_h']:.2f} / {v['duration_mean_h']:.2f}",
        f"{100 * v['gpu_hours_share_ge8']:.1f}",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces-dir", type=Path, default=ROOT.parent / "shared" / "traces")
    args = ap.parse_args(argv)

    rows = []
    for name, fname in TRACES:
        jobs, report = load_any(args.traces_dir / fname)
        rows.append(row(f"{name} (`{report.format}`)", jobs, report))
    synth = generate_jobs(WorkloadConfig(), seed=0)
    rows.append(
        row(
            "synthetic `aryl-15d` (`generate_jobs(WorkloadConfig(), seed=0)`)",
            synth,
            MappingReport(source="generate_jobs(WorkloadConfig(), seed=0)", format="aryl"),
        )
    )
    head = [
        "workload",
        "jobs",
        "span (days)",
        "jobs/day",
        "jobs/day in 95 % window",
        "avg-day peak/trough",
        *(f"{k} GPU (%)" for k in SHARES),
        "max GPUs",
        "duration median / p90 / mean (h)",
        "GPU-h in jobs >= 8 GPUs (%)",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
