"""Reproduce the Aryl comparison of docs/reproducing-aryl.md: every table of that page.

Runs (scenario change, policy, seed) triples of ``aryl-15d`` in worker processes, keeps
each run's summary and daily usage as JSON under ``--out`` (a finished run is never
recomputed: rerun the command to resume, or to add seeds), then writes ``report.md`` there:

* **headline** — Aryl, the reference point and both ablations, ``--seeds`` seeds: queueing,
  JCT, usage (15-day mean and "up to": the largest daily gain), preemptions, lost GPU-hours;
* **reclaim** — Aryl's greedy reclaim against random, least-busy (DeepBoot's stand-in for
  Aryl's reclaim) and last-lent, paired by seed; **reclaim-homogeneous** the same with lent
  GPUs as fast as training GPUs (at 0.4x only extra workers sit on lent servers, and no
  rule preempts);
* **sweeps** — Aryl vs the reference point over one scenario parameter at a time (lent-GPU
  speed, inference pool size, elastic share, an elastic job's range around its request,
  load, share of jobs too large for lent GPUs), and **equal_throughput**: lent GPUs at
  training speed with the inference pool cut to 280 or 420 servers (280 lends the
  default's GPU throughput at full speed: what the lent GPUs' slowness costs);
* **readings** — Aryl with each reading for slower lent GPUs (docs/model.md) switched
  alone and all off together, and loaning alone with lent starts whenever GPUs are free
  (``--sweep-seeds`` seeds);
* **ablations-by-speed** — both ablations beside Aryl and the reference point at every
  lent-GPU speed of the sweep (``--sweep-seeds`` seeds): where the paper's order holds.

With the ``inference_servers``, ``inference_gpu_speed`` and ``equal_throughput`` sweeps, the
report ends with Aryl's JCT ratio against the lent GPU throughput, slow lent GPUs beside
fast ones (a table and ``lent-throughput.png``).

::

    python scripts/reproduce_aryl.py --out runs/repro                       # everything
    python scripts/reproduce_aryl.py --out runs/repro --sections headline --seeds 5
    python scripts/reproduce_aryl.py --out runs/repro --sections equal_throughput --sweep-seeds 5
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from aryl_gym.experiments.grid import PARAMETERS
from aryl_gym.scenarios import get_scenario
from aryl_gym.stats import mean_ci, paired_diff

DAY = 86400.0
ABLATIONS = ["baseline", "aryl", "aryl-loan-only", "aryl-elastic-only", "aryl-split-starts"]
RECLAIMS = [
    ("aryl", "Aryl greedy (preemption cost)"),
    ("aryl-reclaim-random", "random"),
    ("aryl-reclaim-least-busy", "least-busy (DeepBoot's stand-in for Aryl's reclaim)"),
    ("aryl-reclaim-last-lent", "last-lent"),
]
#: the heterogeneity readings (docs/model.md), each switched from Aryl's default alone,
#: then all of them off, and loaning alone with lent starts whenever lent GPUs are free:
#: name -> ArylConfig
READINGS: dict[str, dict] = {
    "aryl": {},
    "aryl/mix-allowed": {"no_slow_mix": False},
    "aryl/elastic-base-on-training": {"elastic_base_on_training": True},
    "aryl/lent-start-always": {"lent_start": "always"},
    "aryl/no-wait-floor": {"lent_wait_at_least_waited": False},
    "aryl/no-readings": {
        "no_slow_mix": False,
        "elastic_base_on_training": False,
        "lent_start": "always",
    },
    "aryl-loan-only": {"elastic": False},
    "aryl-loan-only/no-wait-floor": {"elastic": False, "lent_wait_at_least_waited": False},
    "aryl-loan-only/lent-start-always": {"elastic": False, "lent_start": "always"},
}
#: the reclaim comparison repeated where lent servers hold work a reclaim can preempt
HOMOGENEOUS = ("inference_gpu_speed", 1.0)
#: a change of two parameters at once (_apply): lent GPUs as fast as training GPUs, and
#: the inference pool of the value's servers
EQUAL_THROUGHPUT = "equal_throughput"
#: swept parameter -> values (the default of aryl-15d is among them, except for
#: EQUAL_THROUGHPUT)
SWEEPS: dict[str, list] = {
    "inference_gpu_speed": [0.25, 0.4, 0.6, 1.0],
    "inference_servers": [175, 350, 700],
    "elastic_share": [0.0, 0.25, 0.5, 1.0],
    # an elastic job's range around its request (MODEL.md's defaults: half, twice)
    "elastic_min_fraction": [0.25, 0.5, 1.0],
    "elastic_max_factor": [1.5, 2.0, 3.0],
    "load": [0.8, 1.0, 1.2],
    "large_model_share": [0.0, 0.25, 0.5],
    # lent GPUs at training speed, the inference pool cut to this many servers: 280 (0.4 x
    # 700) lends the default's GPU throughput at full speed (what slow lent GPUs cost)
    EQUAL_THROUGHPUT: [280, 420],
}


def run_one(param: str | None, value, policy: str, seed: int) -> dict:
    """One run of aryl-15d (with ``param`` set to ``value``): summary and daily usage."""
    from aryl_gym.simulate import run_policy

    sc = get_scenario("aryl-15d")
    if param is not None:
        sc = _apply(sc, param, value)
    res = run_policy(sc, _policy(policy), seed)
    ts = res.timeseries()
    c = sc.cluster
    g = c.gpus_per_server
    usage = (ts.busy_training + ts.busy_lent + ts.needed * g) / (c.training_gpus + c.inference_gpus)
    day = (ts.t // DAY).astype(int)
    daily = usage[ts.t < 15 * DAY].groupby(day[ts.t < 15 * DAY]).mean()
    return {
        "param": param,
        "value": value,
        "policy": policy,
        "seed": seed,
        "summary": {k: v for k, v in res.summary.items() if isinstance(v, int | float)},
        "daily_usage": [float(x) for x in daily.to_numpy()],
    }


def _apply(sc, param: str, value):
    """``sc`` with the swept ``param`` at ``value`` (a grid parameter, or EQUAL_THROUGHPUT)."""
    if param == EQUAL_THROUGHPUT:
        sc = PARAMETERS["inference_gpu_speed"].apply(sc, 1.0)
        return PARAMETERS["inference_servers"].apply(sc, value)
    return PARAMETERS[param].apply(sc, value)


def _policy(name: str):
    """A registered policy, or an Aryl of :data:`READINGS` (``name/reading``)."""
    from aryl_gym.baselines import make_policy
    from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

    if "/" in name:
        return ArylPolicy(ArylConfig(**READINGS[name]), name=name)
    return make_policy(name)


def _norm(param, value) -> tuple:
    """A sweep point at the scenario's own value is the default run (computed once)."""
    if param in PARAMETERS and PARAMETERS[param].default(get_scenario("aryl-15d")) == value:
        return None, None
    return param, value


def _key(param, value, policy, seed) -> str:
    param, value = _norm(param, value)
    return f"{param or 'default'}={value}__{policy.replace('/', '+')}__s{seed}"


def run_all(specs: list[tuple], out: Path, workers: int) -> dict[str, dict]:
    """Every spec's record, computing the missing ones (each written as it finishes)."""
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    todo = []
    for spec in specs:
        path = runs_dir / f"{_key(*spec)}.json"
        if path.exists():
            done[_key(*spec)] = json.loads(path.read_text())
        else:
            todo.append(spec)
    print(f"{len(done)} runs cached, {len(todo)} to compute", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_one, *spec): spec for spec in todo}
        for i, fut in enumerate(as_completed(futures), 1):
            spec = futures[fut]
            rec = fut.result()
            tmp = runs_dir / f"{_key(*spec)}.json.tmp"
            tmp.write_text(json.dumps(rec))
            tmp.replace(runs_dir / f"{_key(*spec)}.json")
            done[_key(*spec)] = rec
            print(
                f"[{i}/{len(todo)}] {_key(*spec)}: JCT {rec['summary']['avg_jct_s']:.0f} s "
                f"({time.perf_counter() - t0:.0f} s elapsed)",
                flush=True,
            )
    return done


def _cell(values, decimals: int = 2, scale: float = 1.0) -> str:
    ci = mean_ci([v * scale for v in values])
    if math.isnan(ci.half_width):
        return f"{ci.mean:,.{decimals}f}"
    return f"{ci.mean:,.{decimals}f} ± {ci.half_width:,.{decimals}f}"


def _get(runs, param, value, policy, seeds, key):
    return [runs[_key(param, value, policy, s)]["summary"][key] for s in seeds]


def headline(runs, seeds, param=None, value=None, policies=ABLATIONS) -> list[str]:
    ref = "baseline"
    rows = [
        "| policy | avg queue (h) | p95 queue (h) | avg JCT (h) | usage, 15-day mean (%) | "
        "usage gain, mean (pp) | usage gain, up to (pp / relative) | preemptions | "
        "lost GPU-h | queueing vs ref | JCT vs ref |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_daily = {s: runs[_key(param, value, ref, s)]["daily_usage"] for s in seeds}
    bq = _get(runs, param, value, ref, seeds, "avg_queue_s")
    bj = _get(runs, param, value, ref, seeds, "avg_jct_s")
    bu = _get(runs, param, value, ref, seeds, "usage_overall")
    for p in policies:
        q = _get(runs, param, value, p, seeds, "avg_queue_s")
        j = _get(runs, param, value, p, seeds, "avg_jct_s")
        u = _get(runs, param, value, p, seeds, "usage_overall")
        ups_pp, ups_rel = [], []
        for s in seeds:
            d = np.asarray(runs[_key(param, value, p, s)]["daily_usage"])
            b = np.asarray(base_daily[s])
            n = min(len(d), len(b))
            k = int(np.argmax(d[:n] - b[:n]))
            ups_pp.append(100 * (d[k] - b[k]))
            ups_rel.append(100 * (d[k] / b[k] - 1))
        qr = [bq_ / q_ if q_ > 0 else math.inf for bq_, q_ in zip(bq, q, strict=True)]
        finite_qr = [x for x in qr if math.isfinite(x)]
        qcell = _cell(finite_qr) + "x" if finite_qr else "inf"
        rows.append(
            f"| {p} | {_cell(q, 2, 1 / 3600)} | "
            f"{_cell(_get(runs, param, value, p, seeds, 'p95_queue_s'), 2, 1 / 3600)} | "
            f"{_cell(j, 2, 1 / 3600)} | {_cell(u, 1, 100)} | "
            f"{_cell([100 * (a - b) for a, b in zip(u, bu, strict=True)], 1)} | "
            f"{_cell(ups_pp, 1)} / {_cell(ups_rel, 1)} % | "
            f"{_cell(_get(runs, param, value, p, seeds, 'preemptions'), 0)} | "
            f"{_cell(_get(runs, param, value, p, seeds, 'lost_gpu_hours'), 0)} | "
            f"{qcell} | {_cell([a / b for a, b in zip(bj, j, strict=True)])}x |"
        )
    return rows


def reclaim_table(runs, seeds, param=None, value=None) -> list[str]:
    rows = [
        "| reclaim rule | preemptions | lost GPU-h | avg JCT (h) | preemptions vs Aryl's greedy "
        "(paired, 95 % CI) | lost GPU-h vs greedy | JCT (s) vs greedy |",
        "|:---|---:|---:|---:|---:|---:|---:|",
    ]
    g = {
        k: _get(runs, param, value, "aryl", seeds, k)
        for k in ("preemptions", "lost_gpu_hours", "avg_jct_s")
    }
    for p, label in RECLAIMS:
        v = {k: _get(runs, param, value, p, seeds, k) for k in g}
        diffs = []
        for k in ("preemptions", "lost_gpu_hours", "avg_jct_s"):
            d = paired_diff(v[k], g[k])
            diffs.append(
                "—" if p == "aryl" else f"{d.mean:+,.1f} ± {d.half_width:,.1f} (p={d.p_value:.3f})"
            )
        rows.append(
            f"| {label} | {_cell(v['preemptions'], 0)} | {_cell(v['lost_gpu_hours'], 0)} | "
            f"{_cell(v['avg_jct_s'], 2, 1 / 3600)} | " + " | ".join(diffs) + " |"
        )
    return rows


def sweep_table(runs, param, values, seeds) -> list[str]:
    rows = [
        f"| {param} | baseline avg JCT (h) | aryl avg JCT (h) | JCT vs ref | queueing vs ref | "
        "usage gain (pp) | aryl preemptions |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in values:
        bj = _get(runs, param, v, "baseline", seeds, "avg_jct_s")
        aj = _get(runs, param, v, "aryl", seeds, "avg_jct_s")
        bq = _get(runs, param, v, "baseline", seeds, "avg_queue_s")
        aq = _get(runs, param, v, "aryl", seeds, "avg_queue_s")
        bu = _get(runs, param, v, "baseline", seeds, "usage_overall")
        au = _get(runs, param, v, "aryl", seeds, "usage_overall")
        qr = [b / a for a, b in zip(aq, bq, strict=True) if a > 0]
        rows.append(
            f"| {v} | {_cell(bj, 2, 1 / 3600)} | {_cell(aj, 2, 1 / 3600)} | "
            f"{_cell([b / a for a, b in zip(aj, bj, strict=True)])}x | "
            f"{(_cell(qr) + 'x') if qr else 'inf'} | "
            f"{_cell([100 * (a - b) for a, b in zip(au, bu, strict=True)], 1)} | "
            f"{_cell(_get(runs, param, v, 'aryl', seeds, 'preemptions'), 0)} |"
        )
    return rows


def ablation_speed_table(runs, values, seeds) -> list[str]:
    """Avg JCT of each ablation and of Aryl against the reference point, per lent speed."""
    param = "inference_gpu_speed"
    pols = ABLATIONS[1:4]  # aryl, loan-only, elastic-only
    rows = [
        f"| {param} | baseline avg JCT (h) | "
        + " | ".join(f"{p}: JCT vs ref" for p in pols)
        + " | order (best first) |",
        "|---:|---:|" + "---:|" * len(pols) + ":---|",
    ]
    for v in values:
        bj = _get(runs, param, v, "baseline", seeds, "avg_jct_s")
        ratios = {
            p: [b / a for a, b in zip(_get(runs, param, v, p, seeds, "avg_jct_s"), bj, strict=True)]
            for p in pols
        }
        order = sorted(pols, key=lambda p: -float(np.mean(ratios[p])))
        rows.append(
            f"| {v} | {_cell(bj, 2, 1 / 3600)} | "
            + " | ".join(f"{_cell(ratios[p])}x" for p in pols)
            + f" | {' > '.join(order)} > baseline |"
        )
    return rows


def throughput_points(runs, seeds) -> dict[str, list[tuple[int, float, float]]]:
    """Aryl's JCT ratio against the lent GPU throughput (servers lent on average x GPUs per
    server x lent speed, in training-GPU equivalents), for slow lent GPUs (the
    ``inference_servers`` sweep at the default 0.4x) and for fast ones (``equal_throughput``
    and the 1.0x point of the ``inference_gpu_speed`` sweep): ``(servers, throughput,
    mean ratio)`` per point found in ``runs``, by kind."""
    cluster = get_scenario("aryl-15d").cluster
    g, slow_speed = cluster.gpus_per_server, cluster.inference_gpu_speed
    kinds = {
        f"lent GPUs at {slow_speed:g}x": [
            ("inference_servers", v, v, slow_speed) for v in SWEEPS["inference_servers"]
        ],
        "lent GPUs at 1.0x": [(EQUAL_THROUGHPUT, v, v, 1.0) for v in SWEEPS[EQUAL_THROUGHPUT]]
        + [("inference_gpu_speed", 1.0, cluster.inference_servers, 1.0)],
    }
    out: dict[str, list[tuple[int, float, float]]] = {}
    for kind, points in kinds.items():
        for param, value, servers, speed in points:
            keys = [_key(param, value, p, s) for p in ("baseline", "aryl") for s in seeds]
            if not all(k in runs for k in keys):
                continue
            lent = _get(runs, param, value, "aryl", seeds, "avg_lent_servers")
            ratio = [
                b / a
                for a, b in zip(
                    _get(runs, param, value, "aryl", seeds, "avg_jct_s"),
                    _get(runs, param, value, "baseline", seeds, "avg_jct_s"),
                    strict=True,
                )
            ]
            tput = float(np.mean(lent)) * g * speed
            out.setdefault(kind, []).append((servers, tput, float(np.mean(ratio))))
    return {k: sorted(v, key=lambda p: p[1]) for k, v in out.items()}


def throughput_plot(points: dict, path: Path) -> None:
    """The points of :func:`throughput_points` as one PNG: JCT ratio against lent
    throughput, one line per lent speed, the issue's 1.3x bar dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for kind, pts in points.items():
        ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", label=kind)
        for servers, x, y in pts:
            ax.annotate(f"{servers}", (x, y), textcoords="offset points", xytext=(4, -10))
    ax.axhline(1.3, color="grey", linestyle="--", linewidth=1, label="issue #11's bar (1.3x)")
    top = max(p[2] for pts in points.values() for p in pts)
    ax.set_ylim(1.0, max(top, 1.3) + 0.05)  # from the reference point's own level
    ax.set_xlabel("lent GPU throughput (training-GPU equivalents, mean over the run)")
    ax.set_ylabel("Aryl's avg JCT, reference point / Aryl (x)")
    ax.set_title(
        "aryl-15d: the same lent throughput, slow or fast GPUs\n(labels: inference servers)"
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=5, help="seeds of headline and reclaim")
    ap.add_argument("--sweep-seeds", type=int, default=2, help="seeds of each sweep point")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--sections",
        default=",".join(["headline", "reclaim", "reclaim-homogeneous", *SWEEPS])
        + ",readings,ablations-by-speed",
        help="comma-separated: headline, reclaim, reclaim-homogeneous, sweep parameters, "
        "readings and ablations-by-speed",
    )
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    seeds = list(range(args.seeds))
    sweep_seeds = list(range(args.sweep_seeds))
    specs: list[tuple] = []
    if "headline" in sections:
        specs += [(None, None, p, s) for s in seeds for p in ABLATIONS]
    if "reclaim" in sections:
        specs += [(None, None, p, s) for s in seeds for p, _ in RECLAIMS]
    if "reclaim-homogeneous" in sections:
        specs += [(*_norm(*HOMOGENEOUS), p, s) for s in seeds for p, _ in RECLAIMS]
    for param in sections:
        if param in SWEEPS:
            specs += [
                (*_norm(param, v), p, s)
                for v in SWEEPS[param]
                for s in sweep_seeds
                for p in ("baseline", "aryl")
            ]
    if "readings" in sections:
        specs += [(None, None, p, s) for s in sweep_seeds for p in ("baseline", *READINGS)]
    if "ablations-by-speed" in sections:
        specs += [
            (*_norm("inference_gpu_speed", v), p, s)
            for v in SWEEPS["inference_gpu_speed"]
            for s in sweep_seeds
            for p in ABLATIONS[:4]
        ]
    specs = list(dict.fromkeys(specs))
    runs = run_all(specs, args.out, args.workers)
    lines = [f"# aryl-15d reproduction ({time.strftime('%Y-%m-%d')})", ""]
    if "headline" in sections:
        lines += [f"## Headline ({len(seeds)} seeds)", "", *headline(runs, seeds), ""]
    if "reclaim" in sections:
        lines += [
            f"## Reclaim rules ({len(seeds)} seeds, paired)",
            "",
            *reclaim_table(runs, seeds),
            "",
        ]
    if "reclaim-homogeneous" in sections:
        lines += [
            f"## Reclaim rules, lent GPUs as fast as training GPUs ({len(seeds)} seeds, paired)",
            "",
            *reclaim_table(runs, seeds, *HOMOGENEOUS),
            "",
        ]
    for param in sections:
        if param in SWEEPS:
            lines += [
                f"## Sweep: {param} ({len(sweep_seeds)} seeds)",
                "",
                *sweep_table(runs, param, SWEEPS[param], sweep_seeds),
                "",
            ]
    if "readings" in sections:
        lines += [
            f"## Heterogeneity readings, lent GPUs at 0.4x ({len(sweep_seeds)} seeds)",
            "",
            *headline(runs, sweep_seeds, policies=list(READINGS)),
            "",
        ]
    if "ablations-by-speed" in sections:
        lines += [
            f"## Ablations by lent-GPU speed ({len(sweep_seeds)} seeds)",
            "",
            *ablation_speed_table(runs, SWEEPS["inference_gpu_speed"], sweep_seeds),
            "",
        ]
    points = throughput_points(runs, sweep_seeds)
    if sum(len(v) for v in points.values()) >= 3:  # a picture worth drawing
        throughput_plot(points, args.out / "lent-throughput.png")
        lines += [
            f"## Aryl's JCT ratio against lent GPU throughput ({len(sweep_seeds)} seeds)",
            "",
            "| lent GPUs | inference servers | lent throughput (GPU equivalents) | JCT vs ref |",
            "|:---|---:|---:|---:|",
            *(
                f"| {kind} | {servers} | {tput:,.0f} | {ratio:.2f}x |"
                for kind, pts in points.items()
                for servers, tput, ratio in pts
            ),
            "",
            "![JCT ratio against lent throughput](lent-throughput.png)",
            "",
        ]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
