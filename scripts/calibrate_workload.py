"""Calibrate the synthetic training workload against the real traces in ``../shared/traces``.

Prints a markdown table: the target statistics measured on the real traces next to the
same statistics of ``generate_jobs(WorkloadConfig(), seed=0)``, and writes
``docs/workload-calibration.png`` (arrival profile, duration CDF, GPU-demand CDF).

    .venv/bin/python scripts/calibrate_workload.py            # table + plot
    .venv/bin/python scripts/calibrate_workload.py --fit      # also re-fit the defaults

``--fit`` re-derives the defaults of ``WorkloadConfig`` from the traces and prints them
(hourly and weekly arrival factors from SenseTime Venus; GPU-demand shares and the
duration mixture from Microsoft ITP cluster04), so every default can be reproduced.
The traces are read, never copied into the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aryl_gym.workload.generator import (  # noqa: E402
    WorkloadConfig,
    generate_jobs,
    offered_gpus,
)

SHARED = ROOT.parent / "shared" / "traces"
GPU_VALUES = (1, 2, 4, 8, 16, 32, 64)
PAPER_JOBS_PER_DAY = 50_000 / 15  # Aryl paper: ">50,000 jobs" in its 15-day trace


def load_itp(shared: Path) -> pd.DataFrame:
    """ITP cluster04 (microsoft/elasticflow-traces): columns gpus, duration (s), submit (s)."""
    d = pd.read_csv(shared / "train_microsoft_itp_cluster04.csv")
    return pd.DataFrame(
        {
            "gpus": d["num_gpu"].to_numpy(),
            "duration": d["duration"].to_numpy(float),
            "submit": d["submission_time"].to_numpy(float),
        }
    )


def load_helios(shared: Path) -> pd.DataFrame:
    """Helios last 15k (DIR-LAB/Gen-Parallel-Workloads), GPU jobs only."""
    d = pd.read_csv(shared / "train_sensetime_helios_last15k.csv")
    d = d[d["gpu_num"] > 0]
    return pd.DataFrame(
        {"gpus": d["gpu_num"].to_numpy(), "duration": d["run_time"].to_numpy(float)}
    )


def load_venus(shared: Path) -> pd.DataFrame:
    """Venus per-10-min GPU-job submissions (S-Lab-System-Group/Lucid)."""
    v = pd.read_csv(shared / "train_sensetime_venus_submissions_10min.csv", parse_dates=["time"])
    return pd.DataFrame({"time": v["time"], "n": v["submit_gpu_job"].to_numpy(float)})


# ----------------------------------------------------------------------------- fitting


def fit_arrivals(venus: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Average-day hourly factors and Mon..Sun daily factors, each with mean 1."""
    hourly = venus.groupby(venus["time"].dt.hour)["n"].mean().to_numpy()
    daily = venus.groupby(venus["time"].dt.floor("D"))["n"].sum()
    weekly = daily.groupby(daily.index.day_of_week).mean().to_numpy()
    return hourly / hourly.mean(), weekly / weekly.mean()


def fit_gpu_probs(itp: pd.DataFrame) -> np.ndarray:
    """Share of ITP jobs at each GPU value, rounded to 4 decimals and summing to 1."""
    probs = np.array([(itp["gpus"] == g).mean() for g in GPU_VALUES])
    probs = np.round(probs, 4)
    probs[np.argmax(probs)] += 1.0 - probs.sum()
    return np.round(probs, 4)


def fit_duration(itp: pd.DataFrame, iters: int = 2000, sigma_floor: float = 0.3):
    """EM fit of the duration mixture on log-durations.

    Model: with probability ``short_share[g]`` a job is *short* (one lognormal shared by
    all sizes: failed or debugging runs), otherwise it follows the *main* lognormal of
    its GPU count (``median[g]``, ``sigma[g]``). Returns ``(short_median_s,
    short_sigma, rows)`` with one ``(short_share, median_s, sigma)`` row per GPU value.
    """
    y = np.log(itp["duration"].to_numpy(float))
    ci = np.searchsorted(np.array(GPU_VALUES), itp["gpus"].to_numpy())
    n_cls = len(GPU_VALUES)
    ms, ss = np.log(0.3 * 3600.0), 0.5
    p = np.full(n_cls, 0.2)
    mm = np.array([np.median(y[ci == c]) for c in range(n_cls)])
    sm = np.ones(n_cls)
    eps = 1e-12
    for _ in range(iters):
        l0 = np.log(p[ci] + eps) - 0.5 * ((y - ms) / ss) ** 2 - np.log(ss)
        l1 = np.log(1 - p[ci] + eps) - 0.5 * ((y - mm[ci]) / sm[ci]) ** 2 - np.log(sm[ci])
        r = np.exp(l0 - np.logaddexp(l0, l1))  # responsibility of the short component
        ms = float((r * y).sum() / r.sum())
        ss = float(np.sqrt((r * (y - ms) ** 2).sum() / r.sum()))
        for c in range(n_cls):
            k = ci == c
            w = 1.0 - r[k]
            p[c] = r[k].mean()
            mm[c] = (w * y[k]).sum() / w.sum()
            sm[c] = max(float(np.sqrt((w * (y[k] - mm[c]) ** 2).sum() / w.sum())), sigma_floor)
    rows = tuple(
        (round(float(p[c]), 3), round(float(np.exp(mm[c])), -1), round(float(sm[c]), 3))
        for c in range(n_cls)
    )
    return round(float(np.exp(ms)), -1), round(ss, 3), rows


def print_fit(shared: Path) -> None:
    hourly, weekly = fit_arrivals(load_venus(shared))
    itp = load_itp(shared)
    short_med, short_sigma, rows = fit_duration(itp)
    print("# fitted defaults (paste into aryl_gym/workload/generator.py)")
    print("diurnal =", tuple(round(float(x), 3) for x in hourly))
    print("weekly =", tuple(round(float(x), 3) for x in weekly))
    print("gpu_probs =", tuple(float(x) for x in fit_gpu_probs(itp)))
    print("duration_short =", (short_med, short_sigma))
    print("duration_by_gpus =", rows)
    print()


# ----------------------------------------------------------------------------- statistics


def profile_peak_trough(
    hour_of_day: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Average-day hourly profile (mean 1) and its highest/lowest ratio."""
    counts = np.bincount(hour_of_day.astype(int), weights=weights, minlength=24)[:24]
    prof = counts / counts.mean()
    return prof, float(prof.max() / prof.min())


def job_stats(gpus: np.ndarray, duration: np.ndarray) -> dict[str, float]:
    """GPU shares, duration quantiles (hours) and the GPU-hour share of >= 8-GPU jobs."""
    h = duration / 3600.0
    gh = h * gpus
    out = {f"share {g} GPU": float((gpus == g).mean()) for g in (1, 2, 4, 8)}
    out["share >8 GPU"] = float((gpus > 8).mean())
    out["mean GPUs per job"] = float(gpus.mean())
    out["duration median (h)"] = float(np.median(h))
    out["duration p90 (h)"] = float(np.quantile(h, 0.9))
    out["duration mean (h)"] = float(h.mean())
    out["GPU-hours in jobs >= 8 GPUs"] = float(gh[gpus >= 8].sum() / gh.sum())
    return out


def fmt(x: float, pct: bool = False) -> str:
    if pct:
        return f"{100 * x:.1f} %"
    return f"{x:,.2f}" if abs(x) < 100 else f"{x:,.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED, help="folder of the real traces")
    ap.add_argument("--fit", action="store_true", help="re-fit and print the defaults first")
    ap.add_argument(
        "--plot",
        default=str(ROOT / "docs" / "workload-calibration.png"),
        help="where to draw the comparison; '' to skip",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.shared.is_dir():
        print(f"no traces at {args.shared}", file=sys.stderr)
        return 2
    if args.fit:
        print_fit(args.shared)

    itp, helios, venus = load_itp(args.shared), load_helios(args.shared), load_venus(args.shared)
    cfg = WorkloadConfig()
    jobs = generate_jobs(cfg, seed=args.seed)
    g_sub, g_gpus, g_dur = jobs.submit_time, jobs.gpus, jobs.duration

    v_prof, v_pt = profile_peak_trough(venus["time"].dt.hour.to_numpy(), venus["n"].to_numpy())
    g_prof, g_pt = profile_peak_trough((g_sub % 86400.0) // 3600.0)
    v_days = venus.groupby(venus["time"].dt.floor("D"))["n"].sum()
    v_week = v_days.groupby(v_days.index.day_of_week).mean().to_numpy()
    g_daily = np.bincount((g_sub // 86400.0).astype(int), minlength=int(np.ceil(cfg.days)))
    g_dow = np.arange(g_daily.size) % 7
    g_week = np.array([g_daily[g_dow == d].mean() for d in range(7)])
    itp_days = (itp["submit"].max() - itp["submit"].min()) / 86400.0

    rows: list[tuple[str, str, str, str]] = [
        (
            "jobs per day",
            "Aryl paper (>50,000 jobs / 15 days)",
            fmt(PAPER_JOBS_PER_DAY),
            fmt(len(jobs) / cfg.days),
        ),
        (
            "  (reference) jobs per day",
            "Venus GPU jobs / ITP cluster04",
            f"{v_days.mean():,.0f} / {len(itp) / itp_days:,.0f}",
            "",
        ),
        ("average-day peak/trough (hourly)", "Venus", f"{v_pt:.2f}", f"{g_pt:.2f}"),
        (
            "peak hour / trough hour",
            "Venus",
            f"{int(v_prof.argmax())} h / {int(v_prof.argmin())} h",
            f"{int(g_prof.argmax())} h / {int(g_prof.argmin())} h",
        ),
        (
            "Sat+Sun / weekday arrivals",
            "Venus",
            f"{v_week[5:].mean() / v_week[:5].mean():.2f}",
            f"{g_week[5:].mean() / g_week[:5].mean():.2f}",
        ),
    ]
    t_itp = job_stats(itp["gpus"].to_numpy(), itp["duration"].to_numpy())
    t_hel = job_stats(helios["gpus"].to_numpy(), helios["duration"].to_numpy())
    t_gen = job_stats(g_gpus, g_dur)
    for key in t_itp:
        pct = "share" in key or "GPU-hours" in key
        rows.append(
            (
                key,
                "ITP cluster04 (Helios)",
                f"{fmt(t_itp[key], pct)} ({fmt(t_hel[key], pct)})",
                fmt(t_gen[key], pct),
            )
        )
    rows.append(
        (
            "elastic share",
            "docs/model.md default",
            fmt(cfg.elastic_share, True),
            fmt(float(jobs.elastic.mean()), True),
        )
    )
    rows.append(("jobs generated", f"WorkloadConfig(), seed={args.seed}", "", f"{len(jobs):,}"))
    rows.append(
        (
            "offered load (GPUs busy on average)",
            "offered_gpus(WorkloadConfig())",
            "",
            f"{offered_gpus(cfg):,.0f}",
        )
    )

    print("| statistic | target source | target | generator |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")

    if args.plot:
        plot(Path(args.plot), v_prof, g_prof, itp, helios, g_gpus, g_dur)
        print(f"\nwrote {args.plot}")
    return 0


def plot(path: Path, v_prof, g_prof, itp, helios, g_gpus, g_dur) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    hours = np.arange(25)
    ax[0].step(hours, np.append(v_prof, v_prof[-1]), where="post", label="Venus (target)")
    ax[0].step(
        hours, np.append(g_prof, g_prof[-1]), where="post", label="generator", linestyle="--"
    )
    ax[0].set(xlabel="hour of day", ylabel="arrivals / mean", title="average-day arrival profile")
    ax[0].legend()

    def cdf(a, x, label, **kw):
        s = np.sort(np.asarray(x, float))
        a.plot(s, np.arange(1, s.size + 1) / s.size, label=label, **kw)

    cdf(ax[1], itp["duration"] / 3600, "ITP cluster04 (target)")
    cdf(ax[1], helios["duration"].clip(lower=1) / 3600, "Helios (reference)", alpha=0.6)
    cdf(ax[1], g_dur / 3600, "generator", linestyle="--")
    ax[1].set(xscale="log", xlabel="duration (h)", ylabel="CDF", title="job duration")
    ax[1].legend()
    for name, g in (
        ("ITP cluster04 (target)", itp["gpus"]),
        ("Helios (reference)", helios["gpus"]),
        ("generator", g_gpus),
    ):
        g = np.asarray(g)
        xs = np.array(GPU_VALUES)
        ax[2].step(
            xs,
            [(g <= x).mean() for x in xs],
            where="post",
            label=name,
            linestyle="--" if name == "generator" else "-",
        )
    ax[2].set(xscale="log", xlabel="GPUs per job", ylabel="CDF", title="GPU demand")
    ax[2].set_xticks(GPU_VALUES, [str(v) for v in GPU_VALUES])
    ax[2].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
