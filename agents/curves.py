"""Learning curves exported from TensorBoard event files and ``eval_log.csv``.

    python -m aryl_gym.agents.curves OUT.png RUN_DIR [RUN_DIR ...] [--metric avg_jct_s]

One panel per quantity: the validation metric of the deterministic agent (with Aryl on
the same windows as a dashed line), the training episodes' metric and the episode length
(``rollout/ep_len_mean``), each against timesteps.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def scalars(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: list[int] = []
    values: list[float] = []
    for d in sorted(Path(run_dir, "tb").glob("*/")):
        ea = EventAccumulator(str(d))
        ea.Reload()
        if tag in ea.Tags()["scalars"]:
            for e in ea.Scalars(tag):
                steps.append(e.step)
                values.append(e.value)
    return steps, values


def plot(out: Path, runs: list[Path], metric: str = "avg_jct_s") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for i, run in enumerate(runs):
        c = f"C{i}"
        csv = Path(run, "eval_log.csv")
        if csv.exists():
            df = pd.read_csv(csv)
            axes[0].plot(df["timesteps"], df[metric], marker="o", color=c, label=Path(run).name)
            ref = f"aryl_{metric}"
            if ref in df:
                axes[0].axhline(df[ref].iloc[0], color=c, ls="--", lw=0.8)
        for ax, tag in ((axes[1], f"episode/{metric}"), (axes[2], "rollout/ep_len_mean")):
            s, v = scalars(Path(run), tag)
            if s:
                ax.plot(s, v, color=c, label=Path(run).name)
    axes[0].set_title(f"val {metric} (deterministic; dashed: Aryl)", fontsize=9)
    axes[1].set_title(f"training episodes: {metric} (sampled actions)", fontsize=9)
    axes[2].set_title("training episode length (steps)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("timesteps")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m aryl_gym.agents.curves", description=__doc__.split("\n")[0]
    )
    p.add_argument("out", type=Path)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--metric", default="avg_jct_s")
    a = p.parse_args(argv)
    plot(a.out, a.runs, a.metric)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
