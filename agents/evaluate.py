"""``aryl-gym evaluate --agent PATH``: a trained agent against the baselines on the test
split, through the one evaluation path (``aryl_gym.evaluate``).

``PATH`` is a run or ``agents/trained/...`` directory holding ``config.yaml`` and a model
zip (``model.zip``, ``best_model.zip`` or ``final_model.zip``; ``--model`` picks another),
or a zip next to a ``config.yaml``. The agent acts deterministically with its masks.

Prints the table of ``aryl-gym benchmark`` (the same metrics, titles, units, decimals
and 95 % Student-t intervals over the seeds, :func:`aryl_gym.experiments.report.format_table`)
with ratios to ``aryl``, then the paired differences to ``aryl`` on the same windows
(t-interval and paired t-test, :func:`aryl_gym.stats.paired_diff`); writes plots
(``--plots DIR``, default next to ``--json`` or ``PATH/eval_plots``) and, with
``--json OUT``, an object keyed by policy name (``agent``, ``aryl``, ``baseline``, ...)
whose values hold the summary keys of ``aryl-gym simulate --json`` (means over the seeds)
plus ``ci95`` (half-widths, null with one seed) and ``per_seed`` rows.

The agent's env is built from its ``config.yaml`` (which pins the env settings it was
trained with); ``--scenario`` and ``--env-kwarg KEY=VALUE`` (episode keywords only:
``episode_hours``, ``drain_hours``, ``workload_seed``, ``split_fractions``, ``trace``)
change the episodes, and every policy runs on the same ones. A progress bar shows the
episodes (``--quiet``: none); ``--max-steps`` is the agent's step guard per episode
(default :data:`aryl_gym.evaluation.DEFAULT_MAX_STEPS`, 0: none), whose error names the
agent, the scenario, the episode and the step count.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from aryl_gym.evaluation import DEFAULT_MAX_STEPS, EPISODE_KEYS, StepLimitExceeded
from aryl_gym.experiments.report import LEVEL, format_table, md_table, write_json
from aryl_gym.sim.catalog import COMPARE_METRICS, TABLE_METRICS, Metric
from aryl_gym.stats import mean_ci, paired_diff

ALLOCATE_BASELINES = ("aryl", "baseline")
RECLAIM_BASELINES = (
    "aryl",
    "aryl-reclaim-lost",
    "aryl-reclaim-least-busy",
    "aryl-reclaim-last-lent",
    "aryl-reclaim-random",
)
#: The policy the table's ratios and the paired differences compare to.
REFERENCE = "aryl"


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


def load_agent(path: Path, model: str | None = None, env_kwargs: dict | None = None):
    """(model, config, env) of a trained agent; ``env_kwargs`` (episode keywords only,
    :data:`aryl_gym.evaluation.EPISODE_KEYS`) override the config's.

    The policy class comes from the config, not from the zip: zips saved when the
    package was the top-level ``agents`` name it by that module, which installs as
    ``aryl_gym.agents``."""
    from aryl_gym.agents.train import algo_class, load_config, policy_spec

    from aryl_gym.envs import make_env

    zip_path, cfg_path = find_model(path, model)
    cfg = load_config(cfg_path)
    extra = dict(env_kwargs or {})
    bad = sorted(set(extra) - set(EPISODE_KEYS))
    if bad:
        raise ValueError(
            f"an evaluation may change only the episodes of a trained agent "
            f"({', '.join(EPISODE_KEYS)}), not {', '.join(bad)}: the others shape what "
            "it observes and does"
        )
    cfg["env_kwargs"] = {**cfg["env_kwargs"], **extra}
    env = make_env(cfg["env_id"], **cfg["env_kwargs"])
    policy_class, _ = policy_spec(cfg, env)
    custom = {} if isinstance(policy_class, str) else {"policy_class": policy_class}
    mdl = algo_class(cfg["algo"]).load(zip_path, device="cpu", custom_objects=custom)
    return mdl, cfg, env


def summarize(rows: list[dict]) -> dict:
    """Means of the numeric summary keys (a boolean's mean is the fraction of seeds where
    it holds), ``ci95`` half-widths (``aryl_gym.stats.mean_ci``: non-finite values are left
    out, NaN with one seed) and the per-seed rows."""
    out: dict = {}
    ci: dict = {}
    for k, v in rows[0].items():
        if not isinstance(v, int | float | np.number | np.bool_):
            continue
        m = mean_ci(float(r[k]) for r in rows)
        out[k], ci[k] = m.mean, m.half_width
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
    *,
    env_kwargs: dict | None = None,
    progress: bool = True,
    max_steps: int | None = DEFAULT_MAX_STEPS,
) -> dict[str, dict]:
    """{policy name: summary} for the agent and the baselines on the same windows (the
    agent's env's, on ``scenario`` when given, with the episode keywords ``env_kwargs``);
    every per-seed row names its ``scenario``. ``progress`` and ``max_steps`` (the
    agent's step guard) as in :func:`aryl_gym.evaluation.evaluate`."""
    from aryl_gym.agents.callbacks import make_agent_policy

    from aryl_gym.evaluation import evaluate

    mdl, cfg, env = load_agent(Path(agent_path), model, env_kwargs)
    env_id = cfg["env_id"]
    scenario = scenario or env.unwrapped.scenario.name
    kind = "allocate" if "Allocate" in env_id else "reclaim"
    if baselines is None:
        baselines = ALLOCATE_BASELINES if kind == "allocate" else RECLAIM_BASELINES
    agent = make_agent_policy(mdl, env, cfg["algo"] == "maskable_ppo")
    seeds = [int(s) for s in seeds]
    results = {}
    # every policy on the agent's env's episodes (its scenario unless one is given)
    for name, policy in (("agent", agent), *((b, b) for b in baselines)):
        rows = evaluate(
            policy, scenario, split, seeds, env=env, progress=progress, max_steps=max_steps
        )
        results[name] = summarize([{**r, "scenario": scenario} for r in rows])
    return results


def results_frame(results: dict[str, dict]) -> pd.DataFrame:
    """The per-seed rows of ``results`` (as :func:`compare` returns them) as a benchmark
    results frame: ``policy``, ``seed``, ``scenario`` and the summary keys, in the order of
    ``results``."""
    return pd.DataFrame(
        [{**r, "policy": name} for name, s in results.items() for r in s["per_seed"]]
    )


def table(results: dict[str, dict], reference: str = REFERENCE) -> str:
    """The benchmark's Markdown table of ``results``: per policy the mean ± 95 % CI over
    seeds of the catalog's ``TABLE_METRICS`` and the ratios to ``reference``."""
    return format_table(results_frame(results), reference, TABLE_METRICS)


def paired(
    results: dict[str, dict],
    ref: str = REFERENCE,
    metrics: Sequence[Metric] = COMPARE_METRICS,
) -> str:
    """Markdown: per-seed paired difference (policy - ``ref``) on the same windows, mean ±
    95 % CI and the paired t-test's p-value; negative = lower than ``ref``. Empty when
    ``ref`` was not evaluated."""
    if ref not in results:
        return ""
    base = {r["seed"]: r for r in results[ref]["per_seed"]}
    rows = []
    for name, s in results.items():
        if name == ref:
            continue
        pairs = [(r, base[r["seed"]]) for r in s["per_seed"] if r["seed"] in base]
        cells = [name]
        for m in metrics:
            d = paired_diff([a[m.key] for a, _ in pairs], [b[m.key] for _, b in pairs])
            p = "" if np.isnan(d.p_value) else f" (p = {d.p_value:.3f})"
            cells.append(m.format(d.mean, d.half_width, sign=True) + p)
        rows.append(cells)
    return "\n".join(md_table([f"policy - {ref}", *(m.heading for m in metrics)], rows, 1))


def plot(
    results: dict[str, dict], out_dir: Path, metrics: Sequence[Metric] = COMPARE_METRICS
) -> list[Path]:
    """``compare.png``: per metric (the catalog's title, unit and scale) a bar per policy,
    the mean over seeds with its 95 % CI (lower bar clipped at 0 where the metric cannot
    be negative); the agent's bar in orange. Returns the PNG paths."""
    from aryl_gym.experiments.plots import bar_panel, new_figure, save_figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(results)
    fig, axes = new_figure(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    colours = ["tab:orange" if n == "agent" else "tab:blue" for n in names]
    for ax, m in zip(axes[0], metrics, strict=True):
        mean = [results[n].get(m.key, np.nan) for n in names]
        ci = [results[n]["ci95"].get(m.key, np.nan) for n in names]
        bar_panel(ax, names, np.array(mean, float), np.array(ci, float), m, colours)
        ax.set_title(m.title, fontsize=10)
        ax.set_ylabel(m.heading, fontsize=9)
    seeds = max((len(r.get("seeds", ())) for r in results.values()), default=0)
    scenarios = sorted(
        {str(r.get("scenario", "?")) for s in results.values() for r in s["per_seed"]}
    )
    fig.suptitle(
        f"{', '.join(scenarios)}: mean ± {LEVEL} CI over {seeds} seed{'s' * (seeds != 1)} "
        "(orange: the agent)",
        fontsize=10,
    )
    return [save_figure(fig, out_dir / "compare.png")]


def parse_env_kwargs(items: Sequence[str] | None) -> dict[str, Any]:
    """``["episode_hours=12", "trace=my.csv"]`` as ``{"episode_hours": 12, "trace":
    "my.csv"}`` (values read as YAML scalars); ``ValueError`` for an item without ``=``."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--env-kwarg takes KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def round_model(agent: Path, model: str | None = None) -> Path | None:
    """The model zip of ``agent`` when its ``config.yaml`` trains ``ArylGym/Round-v0``
    (then ``aryl-gym evaluate`` runs ``evaluate-round`` on it:
    :mod:`aryl_gym.cli.agents`), else ``None``."""
    from aryl_gym.agents.train import ROUND_ENV_ID

    try:
        zip_path, config = find_model(Path(agent), model)
    except FileNotFoundError:
        return None
    if not config.is_file():
        return None
    cfg = yaml.safe_load(config.read_text())
    return zip_path if isinstance(cfg, dict) and cfg.get("env_id") == ROUND_ENV_ID else None


def main_from_args(args: argparse.Namespace) -> int:
    import sys

    max_steps = getattr(args, "max_steps", DEFAULT_MAX_STEPS)
    try:
        res = compare(
            args.agent,
            args.scenario,
            range(args.seeds),
            args.split,
            args.baselines,
            args.model,
            env_kwargs=parse_env_kwargs(getattr(args, "env_kwarg", None)),
            progress=not getattr(args, "quiet", False),
            max_steps=max_steps or None,  # 0: no guard
        )
    except StepLimitExceeded as exc:  # the agent, not the command line, is at fault: 1
        print(f"aryl-gym evaluate: {exc}", file=sys.stderr)
        return 1
    md = table(res)
    if REFERENCE in res:
        md += (
            f"\nPaired differences to `{REFERENCE}` (same windows; mean ± {LEVEL} CI, "
            "paired t-test):\n\n" + paired(res)
        )
    print(f"{args.agent} on {args.split} split, seeds 0..{args.seeds - 1} (mean ± {LEVEL} CI)")
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
        write_json(args.json, res)
        print(f"wrote {args.json}")
    return 0
