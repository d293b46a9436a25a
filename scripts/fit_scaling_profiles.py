#!/usr/bin/env python
"""Fit the scaling profiles of ``aryl_gym.sim.profiles`` to measured step times.

Reads ``<scaling>/<model>/placements.csv`` and ``scalability.csv`` (real measurements
from petuum/adaptdl, branch osdi21-artifact, commit
c793c7089bd307462686339d29707925c461f9a9, folder simulator/traces/<model>/, Apache-2.0;
T4 GPUs, 4 GPUs per node), fits per model

* the exponent ``gamma`` of ``speedup(n) = n ** gamma`` to the throughput of compact
  placements (fewest nodes) relative to the measured 1-GPU throughput (least squares in
  log space, one point per GPU count: the geometric mean of its compact placements),
  and, for comparison only, an anchored Universal-Scalability-Law curve
  ``n / (1 + a (n-1) + b n (n-1))`` (printed, not used), and
* the placement factor: ``split_factor`` (throughput multiplier when a job that fits on
  one node is spread over more nodes) and ``extra_server_factor`` (multiplier per
  further extra node),

prints the fitted numbers (these are the numbers committed in ``profiles.py``), the fit
errors and a table of speedups, and writes ``docs/scaling-profiles.png``.

Uses scipy and matplotlib (both core dependencies of the package)::

    .venv/bin/python scripts/fit_scaling_profiles.py [path/to/shared/scaling] [--plot PNG]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aryl_gym.sim.profiles import PROFILES, ScalingProfile  # noqa: E402

MODELS = ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")
#: GPUs per node of the measurement cluster (16 nodes x 4 T4 GPUs).
GPUS_PER_NODE = 4
#: Significant digits of the committed parameters.
SIG = 4


@dataclass
class Point:
    n: int  # GPUs
    nodes: int  # nodes used
    thr: float  # samples/s

    @property
    def min_nodes(self) -> int:
        return math.ceil(self.n / GPUS_PER_NODE)

    @property
    def extra(self) -> int:
        return self.nodes - self.min_nodes


def read_points(folder: Path, model: str) -> tuple[int, list[Point]]:
    """Pick the local batch size and return all its (placement, throughput) points.

    The local batch size is the largest one measured at every placement of
    placements.csv and every (num_nodes, num_replicas) of scalability.csv.
    """
    with open(folder / model / "placements.csv", newline="") as f:
        prows = list(csv.DictReader(f))
    with open(folder / model / "scalability.csv", newline="") as f:
        srows = list(csv.DictReader(f))
    all_p = {r["placement"] for r in prows}
    all_s = {(r["num_nodes"], r["num_replicas"]) for r in srows}
    full = [
        b
        for b in {int(r["local_bsz"]) for r in prows}
        if {r["placement"] for r in prows if int(r["local_bsz"]) == b} == all_p
        and {(r["num_nodes"], r["num_replicas"]) for r in srows if int(r["local_bsz"]) == b}
        == all_s
    ]
    bsz = max(full)
    pts = []
    for r in prows:
        if int(r["local_bsz"]) == bsz:
            n = sum(int(c) for c in r["placement"])
            pts.append(Point(n, len(r["placement"]), n * bsz / float(r["step_time"])))
    for r in srows:
        if int(r["local_bsz"]) == bsz:
            n = int(r["num_replicas"])
            pts.append(Point(n, int(r["num_nodes"]), n * bsz / float(r["step_time"])))
    return bsz, pts


def usl(n: np.ndarray, a: float, b: float) -> np.ndarray:
    return n / (1.0 + a * (n - 1.0) + b * n * (n - 1.0))


def fit_usl(n: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Anchored USL fit (comparison only): a, b, rms log error."""

    def r(theta: np.ndarray) -> np.ndarray:
        return y - np.log(usl(n, theta[0], theta[1]))

    best = min(
        (
            least_squares(r, [a0, 0.0], bounds=([0.0, 0.0], [0.999, 1.0]))
            for a0 in (0.01, 0.05, 0.2)
        ),
        key=lambda res: res.cost,
    )
    return float(best.x[0]), float(best.x[1]), float(np.sqrt(np.mean(best.fun**2)))


def compact_log_means(pts: list[Point]) -> dict[int, float]:
    """Mean log-throughput per GPU count over compact placements (one point per n)."""
    groups: dict[int, list[float]] = {}
    for p in pts:
        if p.extra == 0:
            groups.setdefault(p.n, []).append(math.log(p.thr))
    return {n: float(np.mean(v)) for n, v in sorted(groups.items())}


def speedup_residuals(prof: ScalingProfile, comp: dict[int, float]) -> np.ndarray:
    """log(measured / fitted) per compact GPU count, relative to the measured 1-GPU point."""
    n = np.array(list(comp), dtype=int)
    y = np.array(list(comp.values())) - comp[1]
    return y - np.log(prof.speedup(n))


def placement_residuals(
    prof: ScalingProfile, pts: list[Point], comp: dict[int, float]
) -> np.ndarray:
    """Log residuals of spread placements relative to the compact mean at the same n."""
    res = [
        math.log(p.thr) - comp[p.n] - math.log(prof.placement_factor(p.extra, p.min_nodes))
        for p in pts
        if p.extra > 0 and p.n in comp
    ]
    return np.array(res)


def sig(x: float) -> float:
    return float(f"{x:.{SIG}g}")


def fit_model(model: str, pts: list[Point]) -> tuple[ScalingProfile, dict[str, float]]:
    comp = compact_log_means(pts)
    n = np.array(list(comp), dtype=float)
    y = np.array(list(comp.values()))

    # Power law through the measured 1-GPU point: log X(n) = gamma log n.
    n = np.array(list(comp), dtype=float)
    y = np.array(list(comp.values())) - comp[1]
    ln = np.log(n)
    gamma = min(1.0, float(np.sum(ln * y) / np.sum(ln**2)))
    usl_a, usl_b, usl_rms = fit_usl(n, y)

    # Placement: split_factor q (job that fits one node, spread) and per-extra-node d.
    spread = [p for p in pts if p.extra > 0 and p.n in comp]
    lr = np.array([math.log(p.thr) - comp[p.n] for p in spread])
    k = np.array([p.extra for p in spread], dtype=float)
    single = np.array([p.min_nodes == 1 for p in spread])

    def r_pl(theta: np.ndarray) -> np.ndarray:
        lq, ld = theta
        pred = np.where(single, lq + ld * (k - 1.0), ld * k)
        return lr - pred

    rp = least_squares(r_pl, [-0.3, 0.0], bounds=([-5.0, -5.0], [0.0, 0.0]))
    q, d = math.exp(rp.x[0]), math.exp(rp.x[1])

    prof = ScalingProfile(
        name=model,
        gamma=sig(gamma),
        split_factor=sig(q),
        extra_server_factor=sig(d),
    )
    ru = speedup_residuals(prof, comp)
    rpl = placement_residuals(prof, pts, comp)
    stats = {
        "t1": math.exp(comp[1]),
        "rms": float(np.sqrt(np.mean(ru**2))),
        "max": float(np.max(np.abs(ru))),
        "n_pts": len(ru),
        "usl_a": usl_a,
        "usl_b": usl_b,
        "usl_rms": usl_rms,
        "pl_rms": float(np.sqrt(np.mean(rpl**2))),
        "pl_n": len(rpl),
    }
    return prof, stats


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 8), sharex=True)
    grid = np.arange(1, 65)
    for ax, (model, (prof, stats, bsz, pts)) in zip(axes.flat, results.items(), strict=False):
        t1 = stats["t1"]
        sp = [p for p in pts if p.extra > 0]
        cp = [p for p in pts if p.extra == 0]
        ax.scatter(
            [p.n for p in sp],
            [p.thr / t1 for p in sp],
            s=10,
            marker="x",
            color="0.6",
            label="spread (more nodes)",
        )
        ax.scatter(
            [p.n for p in cp],
            [p.thr / t1 for p in cp],
            s=18,
            color="C0",
            label="compact (fewest nodes)",
        )
        ax.plot(grid, prof.speedup(grid), color="C1", label="fitted speedup(n)")
        ax.plot(
            grid,
            prof.speedup(grid) * prof.placement_factor(1),
            color="C1",
            ls="--",
            lw=0.8,
            label=f"x split_factor {prof.split_factor:.2f} (1-server job split)",
        )
        ax.plot(grid, grid, color="k", ls=":", lw=0.8, label="linear")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_title(
            f"{model} (local batch {bsz})\ngamma {prof.gamma:.3f}, rms {stats['rms']:.2f}",
            fontsize=10,
        )
        ax.set_xlabel("GPUs")
        ax.set_ylabel("throughput / measured 1-GPU")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(
        "Measured throughput (petuum/adaptdl osdi21-artifact, T4, 4 GPUs/node) vs fitted profiles"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scaling", nargs="?", type=Path, default=REPO.parent / "shared" / "scaling")
    ap.add_argument("--plot", type=Path, default=REPO / "docs" / "scaling-profiles.png")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    if not args.scaling.is_dir():
        print(f"error: {args.scaling} is not a folder", file=sys.stderr)
        return 2

    results = {}
    for model in MODELS:
        bsz, pts = read_points(args.scaling, model)
        prof, stats = fit_model(model, pts)
        results[model] = (prof, stats, bsz, pts)

    print("Fitted parameters (commit these in aryl_gym/sim/profiles.py):")
    print(
        f"{'model':12} {'bsz':>5} {'gamma':>7} {'split':>7} {'extra':>7}"
        f" {'rms':>6} {'max':>6} {'pts':>4} {'pl_rms':>7} {'pl_pts':>6}"
        f"   {'usl_a':>7} {'usl_b':>8} {'usl_rms':>7}"
    )
    for model, (prof, st, bsz, _) in results.items():
        print(
            f"{model:12} {bsz:5d} {prof.gamma:7.4g} {prof.split_factor:7.4g}"
            f" {prof.extra_server_factor:7.4g} {st['rms']:6.3f} {st['max']:6.3f}"
            f" {st['n_pts']:4d} {st['pl_rms']:7.3f} {st['pl_n']:6d}"
            f"   {st['usl_a']:7.4f} {st['usl_b']:8.2g} {st['usl_rms']:7.3f}"
        )
    print("\nSpeedup (compact placement):")
    ns = [1, 2, 4, 8, 16, 32, 64]
    print(f"{'model':12} " + " ".join(f"{n:>6d}" for n in ns))
    for model, (prof, *_rest) in results.items():
        print(f"{model:12} " + " ".join(f"{prof.speedup(n):6.2f}" for n in ns))
    print("\nMeasured compact speedup (geometric mean over compact placements, / 1 GPU):")
    for model, (_p, _s, _b, pts) in results.items():
        comp = compact_log_means(pts)
        print(
            f"{model:12} "
            + " ".join(f"{math.exp(comp[n] - comp[1]):6.2f}" if n in comp else "     -" for n in ns)
        )

    drift = [m for m, (prof, *_r) in results.items() if PROFILES.get(m) != prof]
    if drift:
        print(f"\nNOTE: committed profiles differ from this fit for: {', '.join(drift)}")
    else:
        print("\nCommitted profiles in aryl_gym/sim/profiles.py match this fit.")
    if not args.no_plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
