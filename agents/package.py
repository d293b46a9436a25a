"""Copy a run's model into ``agents/trained/<task>/`` and evaluate it on the test split.

    python -m aryl_gym.agents.package runs/agents/allocate_maskable_setnet agents/trained/allocate --seeds 20

Writes ``model.zip`` (``--model``, default ``best_model.zip``), ``config.yaml``,
``meta.json`` (the run's, plus which file was packaged), ``learning_curve.png``, and the
evaluation table ``eval.md`` / ``eval.json`` of ``aryl-gym evaluate``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from aryl_gym.agents.evaluate import compare, paired, plot, table

    p = argparse.ArgumentParser(prog="python -m aryl_gym.agents.package")
    p.add_argument("run", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--model", default="best_model.zip")
    p.add_argument("--seeds", type=int, default=20)
    a = p.parse_args(argv)
    a.dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(a.run / a.model, a.dest / "model.zip")
    shutil.copy(a.run / "config.yaml", a.dest / "config.yaml")
    for extra in ("learning_curve.png", "eval_log.csv", "bc.json"):
        if (a.run / extra).exists():
            shutil.copy(a.run / extra, a.dest / extra)
    meta = json.loads((a.run / "meta.json").read_text())
    meta["packaged_model"] = a.model
    meta["run_dir"] = str(a.run)
    (a.dest / "meta.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    res = compare(a.dest, seeds=range(a.seeds))
    md = table(res) + "\n\nPaired differences (same windows):\n\n" + paired(res)
    head = (
        f"`aryl-gym evaluate --agent {a.dest} --seeds {a.seeds}` (test split, mean ± 95 % CI)\n\n"
    )
    (a.dest / "eval.md").write_text(head + md + "\n")
    (a.dest / "eval.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    plot(res, a.dest)
    print(head + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
