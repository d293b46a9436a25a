"""Named, disjoint workload-seed splits, and Round-v0's episodes on a fresh workload each.

Round-v0 draws a *new synthetic workload* for every episode (the generator's jobs for a
workload seed), so the learner sees many arrival sequences instead of windows of one. The
seeds are cut into three named ranges, defined here and nowhere else::

    train  [0, 1,000,000)          drawn by training envs (the env's seeded generator)
    val    [1,000,000, 1,001,000)  model selection only
    test   [2,000,000, 2,001,000)  the held-out table (`aryl-gym evaluate-round`)

A held-out workload is held out as a whole: its window may lie anywhere in its span
(split :data:`~aryl_gym.envs.episodes.WHOLE`), since no training episode ever sees one of
its jobs. Every seed the project used before these splits (benchmarks, sweeps, the
time-split envs' ``workload_seed=0``) lies in ``train``, so no held-out seed was ever
trained on or tuned with. Real traces are outside this scheme: they are held out by
never being given to a training env.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from aryl_gym.envs.episodes import WHOLE, EpisodeSampler, EpisodeSpec, sample_from_options

#: The workload-seed range of each split (disjoint; a test checks it).
WORKLOAD_SEED_SPLITS: dict[str, range] = {
    "train": range(0, 1_000_000),
    "val": range(1_000_000, 1_001_000),
    "test": range(2_000_000, 2_001_000),
}
#: The splits that are never drawn in training.
HELD_OUT = ("val", "test")

#: The ``reset(options=...)`` keys of Round-v0.
RESET_OPTIONS = ("split", "start", "trace", "workload_seed", "window_hours")


def _ranges_text() -> str:
    return ", ".join(f"{k} [{r.start:,}, {r.stop:,})" for k, r in WORKLOAD_SEED_SPLITS.items())


def check_workload_split(split: str) -> range:
    """The seed range of workload split ``split``; ``ValueError`` for an unknown name."""
    try:
        return WORKLOAD_SEED_SPLITS[split]
    except KeyError:
        raise ValueError(
            f"unknown workload split {split!r}; known: {', '.join(WORKLOAD_SEED_SPLITS)}"
        ) from None


def workload_split_of(seed: int) -> str:
    """The split whose range holds workload ``seed``; ``ValueError`` when none does."""
    for name, r in WORKLOAD_SEED_SPLITS.items():
        if seed in r:
            return name
    raise ValueError(f"workload seed {seed} lies in no workload split ({_ranges_text()})")


def check_workload_seed(seed: int, split: str) -> int:
    """``seed`` as an int when it belongs to ``split``; else ``ValueError`` naming both."""
    r = check_workload_split(split)
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"workload seed must be an integer, got {seed!r}")
    seed = int(seed)
    if seed not in r:
        raise ValueError(
            f"workload seed {seed:,} is not a {split!r} workload (the {split} range is "
            f"[{r.start:,}, {r.stop:,}); it lies in {_split_name_or_none(seed)})"
        )
    return seed


def _split_name_or_none(seed: int) -> str:
    try:
        return f"the {workload_split_of(seed)!r} range"
    except ValueError:
        return "no range"


def draw_workload_seed(rng: np.random.Generator, split: str = "train") -> int:
    """A workload seed drawn uniformly from ``split``'s range with ``rng``."""
    r = check_workload_split(split)
    return int(rng.integers(r.start, r.stop))


def held_out_seeds(split: str, n: int) -> list[int]:
    """The first ``n`` workload seeds of a held-out split (the evaluation's workloads)."""
    if split not in HELD_OUT:
        raise ValueError(f"held-out workloads come from {' or '.join(HELD_OUT)}, not {split!r}")
    r = WORKLOAD_SEED_SPLITS[split]
    if not 1 <= n <= len(r):
        raise ValueError(f"the number of workloads must lie in [1, {len(r)}], got {n}")
    return list(r[:n])


def check_window_hours(hours: float, where: str = "window_hours") -> float:
    """``hours`` as a float when it is a finite number > 0; else ``ValueError``."""
    try:
        h = float(hours)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number of hours, got {hours!r}") from None
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"{where} must be a finite number > 0, got {hours!r}")
    return h


def round_episode(
    sampler: EpisodeSampler,
    rng: np.random.Generator,
    split: str,
    options: dict | None,
    *,
    fresh: bool,
    window_hours: float | None,
) -> EpisodeSpec:
    """The episode of a Round-v0 ``reset(options=...)``.

    ``fresh`` (the env's ``fresh_workloads``): ``split`` names a workload-seed split;
    the workload seed is drawn from it with ``rng`` unless ``options`` pin one
    (``workload_seed``; with no ``split`` option the split follows from the seed, with one
    the seed must belong to it), and the window lies anywhere in the workload (``start``
    pins it, in the workload's clock). Not ``fresh``: the time splits of one workload, as
    in the other envs (:func:`~aryl_gym.envs.episodes.sample_from_options`).
    ``window_hours`` (an option, else the env's current length) sets the window length.
    """
    options = dict(options or {})
    unknown = set(options) - set(RESET_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown reset option(s) {sorted(unknown)}; known: {', '.join(RESET_OPTIONS)}"
        )
    hours = options.pop("window_hours", None)
    hours = (
        window_hours if hours is None else check_window_hours(hours, "reset option window_hours")
    )
    if not fresh:
        return sample_from_options(sampler, rng, split, options, episode_hours=hours)
    if options.get("trace") is not None:
        raise ValueError(
            "reset option trace needs fresh_workloads=False (a trace is one fixed workload)"
        )
    seed = options.get("workload_seed")
    split = options.get("split") or (split if seed is None else workload_split_of(seed))
    seed = draw_workload_seed(rng, split) if seed is None else check_workload_seed(seed, split)
    spec = sampler.sample(
        rng, WHOLE, start=options.get("start"), workload_seed=seed, episode_hours=hours
    )
    # the spec names the workload split (what an info summary should say), not "all"
    return replace(spec, split=split)


__all__ = [
    "HELD_OUT",
    "RESET_OPTIONS",
    "WORKLOAD_SEED_SPLITS",
    "check_window_hours",
    "check_workload_split",
    "check_workload_seed",
    "draw_workload_seed",
    "held_out_seeds",
    "round_episode",
    "workload_split_of",
]
