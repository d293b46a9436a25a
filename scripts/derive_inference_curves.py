"""Derive the real inference-demand shapes and write ``aryl_gym/data/inference_curves.json``.

Reads ``../shared/traces`` (never copied into the repository) and stores, per curve, only
derived numbers: an average-day rate profile of 144 ten-minute bins (mean 1) and seven
daily factors (mean 1). Re-running reproduces the committed file byte for byte.

    .venv/bin/python scripts/derive_inference_curves.py [--check] [--plot docs/inference-curves.png]

Derivation, per curve:
1. a rate per 10-minute window (ServeGen: summed request rate; SD: requests counted);
2. average day: mean rate per time-of-day bin over the days used, then a circular
   3-bin (30-minute) centred moving average, divided by its mean;
3. weekly factors: mean daily rate per weekday slot (trace day ``d`` -> slot ``d % 7``;
   slot 0 is placed on the simulator's Monday), divided by their mean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
OUT = ROOT / "aryl_gym" / "data" / "inference_curves.json"
BIN_S = 600
SD_FIRST_DAY, SD_LAST_DAY = "2024-11-24", "2024-12-07"  # the last two whole weeks

SERVEGEN_SRC = (
    "traces/infer_alibaba_servegen_llm_rate_10min.csv (DERIVED aggregate of GitHub alibaba/ServeGen "
    "@f891d11, data/language/{m}/chunk-*-trace.csv, Apache-2.0): column {col}, 14 days; "
    "exact-zero windows (collection gaps) dropped; t=0 is 00:00 (presumably Beijing time); "
    "the weekday of trace day 0 is not published, it is placed on Monday."
)
SD_SRC = (
    "traces/infer_alibaba_genai_sd_requests.csv (GitHub alibaba/clusterdata @7a6c496, "
    "cluster-trace-v2026-GenAI/lora_request_trace.csv): requests per 10 min, days "
    f"{SD_FIRST_DAY}..{SD_LAST_DAY} of the shifted clock (the two last whole weeks; the first "
    "four days are a <100-requests/day ramp-up). The clock is shifted by an unknown offset, "
    "so the phase of day and week is not the real one; weekdays are the shifted clock's."
)


def _smooth(day: np.ndarray) -> np.ndarray:
    """Circular centred 3-bin moving average."""
    return (np.roll(day, 1) + day + np.roll(day, -1)) / 3.0


def _shape(bin_of_day: np.ndarray, day_slot: np.ndarray, rate: np.ndarray) -> tuple[list, list]:
    day = np.array([rate[bin_of_day == b].mean() for b in range(144)])
    day = _smooth(day)
    day /= day.mean()
    week = np.array([rate[day_slot == d].mean() for d in range(7)])
    week /= week.mean()
    return [round(float(x), 4) for x in day], [round(float(x), 4) for x in week]


def servegen(shared: Path, model: str) -> dict:
    s = pd.read_csv(shared / "infer_alibaba_servegen_llm_rate_10min.csv")
    col = f"{model.replace('-', '_')}_rate_rps"
    s = s[s[col] > 0]
    t = s["window_start_s"].to_numpy()
    day, week = _shape((t % 86400) // BIN_S, (t // 86400) % 7, s[col].to_numpy(float))
    return {"source": SERVEGEN_SRC.format(m=model, col=col), "day": day, "week": week}


def stable_diffusion(shared: Path) -> dict:
    t = pd.read_csv(
        shared / "infer_alibaba_genai_sd_requests.csv",
        usecols=["gmt_create"],
        parse_dates=["gmt_create"],
    )["gmt_create"]
    first, last = pd.Timestamp(SD_FIRST_DAY), pd.Timestamp(SD_LAST_DAY) + pd.Timedelta(days=1)
    t = t[(t >= first) & (t < last)]
    bins = pd.date_range(first, last, freq=f"{BIN_S}s", inclusive="left")
    counts = t.dt.floor(f"{BIN_S}s").value_counts().reindex(bins, fill_value=0)
    idx = counts.index
    bin_of_day = (idx.hour * 3600 + idx.minute * 60).to_numpy() // BIN_S
    day, week = _shape(bin_of_day, idx.day_of_week.to_numpy(), counts.to_numpy(float))
    return {"source": SD_SRC, "day": day, "week": week}


def derive(shared: Path) -> dict:
    return {
        "note": "Derived by scripts/derive_inference_curves.py from ../shared/traces (see "
        "shared/traces/SOURCES.md). day: 144 ten-minute bins from 00:00, mean 1, 30-minute "
        "circular smoothing; week: Mon..Sun daily factors, mean 1.",
        "bin_s": BIN_S,
        "curves": {
            "servegen-llm-large": servegen(shared, "m-large"),
            "servegen-llm-small": servegen(shared, "m-small"),
            "sd-requests": stable_diffusion(shared),
        },
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1) + "\n"


def plot(path: Path) -> None:
    """One week of utilisation (peak 0.9) and the average day of every curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(ROOT))
    from aryl_gym.workload.inference import (
        CURVES,
        InferenceConfig,
        peak_to_trough,
        utilisation_week,
    )

    fig, ax = plt.subplots(2, 1, figsize=(12, 7))
    days = np.arange(7 * 144) / 144.0
    hours = (np.arange(144) + 0.5) / 6.0
    for name in CURVES:
        cfg = InferenceConfig(curve=name)
        u = utilisation_week(cfg)
        ratio = peak_to_trough(cfg)
        label = f"{name} (avg-day peak/trough {'inf' if ratio == float('inf') else f'{ratio:.2f}'})"
        ax[0].plot(days, u, label=label, lw=1)
        ax[1].plot(hours, u.reshape(7, 144).mean(axis=0), label=name, lw=1.2)
    ax[0].axhline(0.4, color="grey", ls=":", lw=1)
    ax[0].set(
        xlabel="day of week (0 = Monday 00:00)",
        ylabel="utilisation",
        title="inference demand, peak_utilisation = 0.9",
        ylim=(0, 1),
    )
    ax[0].legend(fontsize=8, loc="lower right")
    ax[1].axhline(0.4, color="grey", ls=":", lw=1)
    ax[1].set(
        xlabel="hour of day", ylabel="utilisation", title="average day", xlim=(0, 24), ylim=(0, 1)
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="only compare with the existing file")
    ap.add_argument(
        "--plot",
        default=str(ROOT / "docs" / "inference-curves.png"),
        help="where to draw the curves (after writing the file); '' to skip",
    )
    args = ap.parse_args(argv)
    if not args.shared.is_dir():
        print(f"no traces at {args.shared}", file=sys.stderr)
        return 2
    text = render(derive(args.shared))
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print("up to date" if same else f"{args.out} differs from a fresh derivation")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    if args.plot:
        plot(Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
