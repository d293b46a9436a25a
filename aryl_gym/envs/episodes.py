"""Episodes of the Gymnasium environments: splits of a workload and windows inside them.

A scenario's workload (the synthetic generator's jobs for one *workload seed*, or a trace
file) is cut by submit time into three disjoint segments of its span::

    [first submit, last submit]  ->  train 60 %  |  val 20 %  |  test 20 %

An *episode* is the set of jobs submitted in a window ``[start, start + episode_hours)``
that lies inside one split (a window is clipped at its split's end), so episodes of
different splits never share a job. ``start`` is drawn uniformly from the split by the
generator passed to :meth:`EpisodeSampler.sample` (the env's ``reset(seed=...)``); a
window without any job is redrawn. The episode's clock starts at the window start: job
submit times and the inference-demand series are shifted by ``-start``, and
``time_offset_s = start`` gives back the time of day. The cluster starts empty. The
engine runs the window's jobs to completion or until ``episode_hours + drain_hours``
(the scenario's ``max_time_s``), whichever comes first; jobs still in the system then
are reported as unfinished.

A window may also be drawn from the whole span (split :data:`WHOLE`, ``"all"``): Round-v0
does so on workloads that are held out as a whole (its workload-seed splits,
:mod:`aryl_gym.envs.workload_splits`), where a time split would only waste jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from aryl_gym.config import ScenarioConfig
from aryl_gym.scenarios import build_workload, get_scenario
from aryl_gym.workload.schema import JobTable

SPLITS = ("train", "val", "test")
#: The split name of a window drawn anywhere in the workload's span (no time split).
WHOLE = "all"
HOUR = 3600.0


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode: the window's jobs and demand (clock shifted to start at 0) and the
    scenario to simulate them with (``max_time_s`` set to the episode horizon)."""

    scenario: ScenarioConfig
    split: str
    start_s: float  # window start in the workload's clock
    end_s: float  # window end (exclusive)
    jobs: JobTable  # the window's jobs, submit times shifted by -start_s
    demand: tuple[np.ndarray, np.ndarray]  # (times, servers needed), shifted by -start_s
    engine_seed: int  # seeds the engine's duration-estimate noise
    workload_seed: int
    trace: str | None = None

    @property
    def time_offset_s(self) -> float:
        """Add to the engine's clock to get the workload's clock (time of day)."""
        return self.start_s

    @property
    def n_jobs(self) -> int:
        return len(self.jobs)


def _as_scenario(scenario: str | ScenarioConfig) -> ScenarioConfig:
    return get_scenario(scenario) if isinstance(scenario, str) else scenario


class EpisodeSampler:
    """Builds a scenario's workload once per (trace, workload seed) and cuts episodes from it.

    Parameters mirror the environments' keyword arguments of the same names:

    * ``scenario`` — a scenario name or :class:`ScenarioConfig`.
    * ``workload_seed`` — seed of :func:`~aryl_gym.scenarios.build_workload` (one fixed
      workload per env; episodes are windows of it).
    * ``episode_hours`` — window length; ``drain_hours`` — how long after the window the
      engine may run to finish the window's jobs.
    * ``split_fractions`` — shares of the span given to train, val and test.
    * ``trace`` — a trace file replacing the scenario's workload (any format
      :mod:`aryl_gym.workload.real_traces` reads).
    * ``min_jobs`` — windows with fewer jobs are redrawn (up to ``max_tries`` times).
    """

    #: Workloads kept built (by trace and seed); the oldest is dropped beyond this.
    CACHE_SIZE = 8

    def __init__(
        self,
        scenario: str | ScenarioConfig = "small",
        *,
        workload_seed: int = 0,
        episode_hours: float = 6.0,
        drain_hours: float = 24.0,
        split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
        trace: str | None = None,
        min_jobs: int = 1,
        max_tries: int = 100,
    ) -> None:
        self.scenario = _as_scenario(scenario)
        self.workload_seed = int(workload_seed)
        if not episode_hours > 0:
            raise ValueError(f"episode_hours must be > 0, got {episode_hours}")
        if drain_hours < 0:
            raise ValueError(f"drain_hours must be >= 0, got {drain_hours}")
        fr = tuple(float(f) for f in split_fractions)
        if len(fr) != 3 or min(fr) <= 0 or not math.isclose(sum(fr), 1.0):
            raise ValueError(
                f"split_fractions must be three positive shares summing to 1, got {split_fractions}"
            )
        self.episode_s = float(episode_hours) * HOUR
        self.drain_s = float(drain_hours) * HOUR
        self.split_fractions = fr
        self.trace = str(trace) if trace is not None else None
        self.min_jobs = int(min_jobs)
        self.max_tries = int(max_tries)
        self._cache: dict[
            tuple[str | None, int], tuple[JobTable, tuple[np.ndarray, np.ndarray]]
        ] = {}

    # ------------------------------------------------------------------ workload
    def workload(self, trace: str | None = None, workload_seed: int | None = None):
        """The full job table and demand series for ``trace`` (default: the sampler's)."""
        trace = self.trace if trace is None else str(trace)
        seed = self.workload_seed if workload_seed is None else int(workload_seed)
        key = (trace, seed)
        if key not in self._cache:
            sc = self.scenario
            if trace is not None:
                if not Path(trace).exists():
                    raise FileNotFoundError(f"trace {trace!r} does not exist")
                sc = sc.with_(trace=trace)
            if len(self._cache) >= self.CACHE_SIZE:  # fresh workloads per episode: keep
                del self._cache[next(iter(self._cache))]  # memory bounded (oldest out)
            self._cache[key] = build_workload(sc, seed)
        return self._cache[key]

    def split_bounds(
        self, split: str, trace: str | None = None, workload_seed: int | None = None
    ) -> tuple[float, float]:
        """``[lo, hi)`` of ``split`` in the workload's clock; the three splits tile the span,
        :data:`WHOLE` is all of it."""
        if split not in SPLITS and split != WHOLE:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}, {WHOLE}")
        jobs, _ = self.workload(trace, workload_seed)
        sub = jobs.submit_time
        if len(sub) == 0:
            raise ValueError(f"workload {jobs.source} has no jobs")
        t0, t1 = float(sub[0]), float(sub[-1])
        if split == WHOLE:
            return t0, math.inf
        t1 = np.nextafter(t1, math.inf)  # the last job belongs to test
        edges = [t0]
        acc = 0.0
        for f in self.split_fractions[:2]:
            acc += f
            edges.append(t0 + acc * (t1 - t0))
        edges.append(t1)
        i = SPLITS.index(split)
        hi = float(edges[i + 1]) if i < 2 else math.inf
        return float(edges[i]), hi

    # ------------------------------------------------------------------ episodes
    def sample(
        self,
        rng: np.random.Generator,
        split: str = "train",
        *,
        start: float | None = None,
        trace: str | None = None,
        workload_seed: int | None = None,
        episode_hours: float | None = None,
    ) -> EpisodeSpec:
        """An episode of ``split``; ``start`` pins the window start (workload clock), else it
        is drawn from ``rng``. The engine seed is always drawn from ``rng`` (after the start).
        ``episode_hours`` replaces the sampler's window length for this episode (a
        curriculum); the drain after it stays ``drain_hours``."""
        wseed = self.workload_seed if workload_seed is None else int(workload_seed)
        if episode_hours is None:
            episode_s = self.episode_s
        elif not (math.isfinite(episode_hours) and episode_hours > 0):
            raise ValueError(f"episode_hours must be a finite number > 0, got {episode_hours}")
        else:
            episode_s = float(episode_hours) * HOUR
        jobs, demand = self.workload(trace, wseed)
        lo, hi = self.split_bounds(split, trace, wseed)
        sub = jobs.submit_time
        last = float(sub[-1])
        if start is not None:
            start = float(start)
            if not lo <= start < hi:
                raise ValueError(f"start {start} lies outside split {split!r} [{lo}, {hi})")
            a, b = self._window(sub, start, hi, episode_s)
        else:
            top = max(lo, min(hi, last) - episode_s)
            for _ in range(self.max_tries):
                start = float(lo + rng.random() * (top - lo)) if top > lo else lo
                a, b = self._window(sub, start, hi, episode_s)
                if b - a >= self.min_jobs:
                    break
            else:
                raise RuntimeError(
                    f"no window of {episode_s / HOUR:g} h with >= {self.min_jobs} jobs found in split "
                    f"{split!r} after {self.max_tries} draws"
                )
        engine_seed = int(rng.integers(2**31 - 1))
        end = min(start + episode_s, hi)
        win = jobs.select(np.arange(a, b))
        win = replace(win, submit_time=win.submit_time - start)
        times, needed = demand
        i = max(int(np.searchsorted(times, start, side="right")) - 1, 0)
        d_times = np.concatenate(([0.0], np.asarray(times[i + 1 :], float) - start))
        d_needed = np.asarray(needed[i:], dtype=np.int64)
        sc = self.scenario.with_(window=None, max_time_s=episode_s + self.drain_s)
        trace = self.trace if trace is None else str(trace)
        return EpisodeSpec(
            sc, split, start, end, win, (d_times, d_needed), engine_seed, wseed, trace
        )

    def _window(
        self, sub: np.ndarray, start: float, hi: float, episode_s: float
    ) -> tuple[int, int]:
        end = min(start + episode_s, hi)
        return int(np.searchsorted(sub, start, side="left")), int(
            np.searchsorted(sub, end, side="left")
        )

    def split_of(
        self, start: float, trace: str | None = None, workload_seed: int | None = None
    ) -> str:
        """The split whose segment holds ``start``."""
        for s in SPLITS:
            lo, hi = self.split_bounds(s, trace, workload_seed)
            if lo <= start < hi:
                return s
        raise ValueError(f"start {start} lies before the workload's first job")


def sample_from_options(
    sampler: EpisodeSampler,
    rng: np.random.Generator,
    default_split: str,
    options: dict | None,
    *,
    episode_hours: float | None = None,
) -> EpisodeSpec:
    """Apply a ``reset(options=...)`` dict: ``split``, ``start`` (workload clock, seconds),
    ``trace`` (a trace file path) and ``workload_seed`` pin the episode; ``episode_hours``
    replaces the sampler's window length."""
    options = dict(options or {})
    unknown = set(options) - {"split", "start", "trace", "workload_seed"}
    if unknown:
        raise ValueError(
            f"unknown reset option(s) {sorted(unknown)}; known: split, start, trace, workload_seed"
        )
    trace, wseed = options.get("trace"), options.get("workload_seed")
    start = options.get("start")
    split = options.get("split")
    if split is None:
        split = sampler.split_of(float(start), trace, wseed) if start is not None else default_split
    return sampler.sample(
        rng, split, start=start, trace=trace, workload_seed=wseed, episode_hours=episode_hours
    )
