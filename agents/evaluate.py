"""``aryl-gym evaluate --agent PATH``: a trained agent against the baselines on the test
split, through the one evaluation path (``aryl_gym.evaluate``).

``PATH`` is a run or ``agents/trained/...`` directory holding ``config.yaml`` and a model
zip (``model.zip``, ``best_model.zip`` or ``final_model.zip``; ``--model`` picks another),
or a zip next to a ``config.yaml``. The agent acts deterministically with its masks.

Prints a table of means with 95 % confidence intervals (Student t over the seeds),
writes plots (``--plots DIR``, default next to ``--json`` or ``PATH/eval_plots``) and,
with ``--json OUT``, an object keyed by policy name (``agent``, ``aryl``, ``baseline``,
...) whose values hold the summary keys of ``aryl-gym simulate --json`` (means over the
seeds) plus ``ci95`` (half-widths) and ``per_seed`` rows.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

ALLOCATE_BASELINES = ("aryl", "baseline")
RECLAIM_BASELINES = (
    "aryl",
    "aryl-reclaim-lost",
    "aryl-reclaim-least-busy",
    "aryl-reclaim-last-lent",
    "aryl-reclaim-random",
)
TABLE_KEYS = (
    "avg_jct_s",
    "p95_jct_s",
    "avg_queue_s",
    "usage_overall",
    "preemptions",
    "lost_gpu_hours",
    "jobs_unfinished",
)


def find_model(path: Path, model: str | None = None) -> tuple[Path, Path]:
    """(model zip, config.yaml) of an agent directory or zip, or of a packaged agent by
    name (``allocate``, ``reclaim``: see :func:`aryl_gym.resources.resolve_agent`)."""
    from aryl_gym.resources import resolve_agent

    path = resolve_agent(path)
    if path.suffix == ".zip":
        return path, path.parent / "config.yaml"
    if model:
        return path / model, path / "config.yaml"
    for name in ("model.zip", "best_model.zip", "final_model.zip"):
        if (path / name).exists():
            return path / name, path / "config.yaml"
    raise FileNotFoundError(f"no model.zip / best_model.zip / final_model.zip in {path}")


def load_agent(path: Path, model: str | None = None):
    """(model, config, env) of a trained agent.

    The policy class comes from the config, not from the zip: zips saved when the
    package was the top-level ``agents`` name it by that module, which installs as
    ``aryl_gym.agents``."""
    from aryl_gym.agents.train import algo_class, load_config, policy_spec

    from aryl_gym.envs import make_env

    zip_path, cfg_path = find_model(path, model)
    cfg = load_config(cfg_path)
    env = make_env(cfg["env_id"], **cfg["env_kwargs"])
    policy_class, _ = policy_spec(cfg, env)
    custom = {} if isinstance(policy_class, str) else {"policy_class": policy_class}
    mdl = algo_class(cfg["algo"]).load(zip_path, device="cpu", custom_objects=custom)
    return mdl, cfg, env


def ci95(values) -> float:
    """Half-width of the 95 % Student-t confidence interval of the mean (0 for one value)."""
    v = np.asarray([x for x in values if x == x], float)
    if len(v) < 2:
        return 0.0
    from scipy import stats  # noqa: PLC0415

    return float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def _ci95(values) -> float:
    try:
        return ci95(values)
    except ImportError:  # no scipy: normal approximation
        v = np.asarray([x for x in values if x == x], float)
        return 0.0 if len(v) < 2 else float(1.96 * v.std(ddof=1) / math.sqrt(len(v)))


def summarize(rows: list[dict]) -> dict:
    """Means of the numeric summary keys, ``ci95`` half-widths and the per-seed rows."""
    out: dict = {}
    ci: dict = {}
    for k, v in rows[0].items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        vals = [float(r[k]) for r in rows]
        out[k] = float(np.nanmean(vals)) if any(x == x for x in vals) else float("nan")
        ci[k] = _ci95(vals)
    out["seeds"] = [int(r["seed"]) for r in rows]
    out["ci95"] = ci
    out["per_seed"] = rows
    return out


def compare(
    agent_path,
    scenario: str | None = None,
    seeds=range(5),
    split: str = "test",
    baselines=None,
    model: str | None = None,
) -> dict[str, dict]:
    """{policy name: summary} for the agent and the baselines on the same windows."""
    from aryl_gym.agents.callbacks import eval_kwargs_for, make_agent_policy

    from aryl_gym.evaluation import evaluate

    mdl, cfg, env = load_agent(Path(agent_path), model)
    env_id, env_kwargs = cfg["env_id"], dict(cfg["env_kwargs"])
    scenario = scenario or env_kwargs.get("scenario", "small")
    kind = "allocate" if "Allocate" in env_id else "reclaim"
    if baselines is None:
        baselines = ALLOCATE_BASELINES if kind == "allocate" else RECLAIM_BASELINES
    ekw = eval_kwargs_for(env_id, env_kwargs)
    agent = make_agent_policy(mdl, env, cfg["algo"] == "maskable_ppo")
    results = {}
    rows, invalid = [], []
    for s in seeds:
        r = evaluate(agent, scenario, split, (int(s),), env=kind, **ekw)[0]
        r["invalid_actions"] = agent.invalid_actions
        invalid.append(agent.invalid_actions)
        rows.append(r)
    results["agent"] = summarize(rows)
    for b in baselines:
        results[b] = summarize(
            evaluate(b, scenario, split, [int(s) for s in seeds], env=kind, **ekw)
        )
    return results


def table(results: dict[str, dict], keys=TABLE_KEYS) -> str:
    """A Markdown table: mean ± 95 % CI half-width per policy."""
    head = "| policy | " + " | ".join(keys) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for name, s in results.items():
        cells = []
        for k in keys:
            m, c = s.get(k, float("nan")), s["ci95"].get(k, 0.0)
            fmt = "{:.3f}" if abs(m) < 10 else "{:.0f}"
            cells.append(f"{fmt.format(m)} ± {fmt.format(c)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired(
    results: dict[str, dict], ref: str = "aryl", keys=("avg_jct_s", "preemptions", "lost_gpu_hours")
) -> str:
    """Markdown: per-seed paired difference (policy - ``ref``) on the same windows, mean ±
    95 % CI; negative = lower than ``ref``."""
    if ref not in results:
        return ""
    base = {r["seed"]: r for r in results[ref]["per_seed"]}
    lines = [f"| policy - {ref} | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for name, s in results.items():
        if name == ref:
            continue
        cells = []
        for k in keys:
            d = [r[k] - base[r["seed"]][k] for r in s["per_seed"] if r["seed"] in base]
            cells.append(f"{np.mean(d):+.3f} ± {_ci95(d):.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(
    results: dict[str, dict],
    out_dir: Path,
    keys=("avg_jct_s", "avg_queue_s", "preemptions", "lost_gpu_hours"),
) -> list[Path]:
    """Bar charts (mean with 95 % CI) per metric; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(results)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2))
    for ax, k in zip(np.atleast_1d(axes), keys, strict=True):
        m = [results[n].get(k, np.nan) for n in names]
        c = [results[n]["ci95"].get(k, 0.0) for n in names]
        ax.bar(range(len(names)), m, yerr=c, capsize=3, color=["C1"] + ["C0"] * (len(names) - 1))
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(k, fontsize=9)
    fig.tight_layout()
    png = out_dir / "compare.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return [png]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--agent",
        required=True,
        type=Path,
        help="agent directory (config.yaml + model zip) or zip, or the name of a packaged "
        "trained agent (allocate, reclaim)",
    )
    p.add_argument(
        "--model",
        help="model file inside --agent (default model.zip / best_model.zip / final_model.zip)",
    )
    p.add_argument("--scenario", help="scenario (default: the agent's training scenario)")
    p.add_argument(
        "--seeds", type=int, default=5, help="evaluate on windows of seeds 0..N-1 (default 5)"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--baselines", nargs="*", help="baseline policy names (default: per env)")
    p.add_argument("--json", type=Path, help="write {policy: summary} as JSON here")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    p.add_argument(
        "--plots",
        type=Path,
        help="directory for the plots (default next to --json or PATH/eval_plots)",
    )


def main_from_args(args: argparse.Namespace) -> int:
    res = compare(
        args.agent, args.scenario, range(args.seeds), args.split, args.baselines, args.model
    )
    md = table(res) + "\n\nPaired differences (same windows):\n\n" + paired(res)
    print(f"{args.agent} on {args.split} split, seeds 0..{args.seeds - 1} (mean ± 95 % CI)")
    print(md)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(md + "\n")
    plots_dir = args.plots or (args.json.parent if args.json else Path(args.agent) / "eval_plots")
    if not Path(args.agent).exists() and args.plots is None and args.json is None:
        print("no plots for a packaged agent without --plots DIR or --json OUT")
    else:
        try:
            for p in plot(res, plots_dir):
                print(f"wrote {p}")
        except OSError as exc:  # read-only agent dir: plots are optional
            print(f"no plots: {exc}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m agents.evaluate", description=__doc__.split("\n")[0]
    )
    add_arguments(p)
    return main_from_args(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
