"""Aryl's start rule for slow lent GPUs (``ArylConfig.lent_start="if_sooner"``).

The paper's lent GPUs are slower than training GPUs, and a job that spans both runs at the
slowest one's speed, so it cannot be read as letting a queued job crawl on lent GPUs
whenever they are free. A queued job starts (partly) on lent GPUs only if it is expected
to finish sooner there than by waiting for training GPUs (MODEL.md section 5, placement):
:func:`sooner_on_lent` compares the two, with the wait read off the running jobs'
estimated finishes (:func:`training_release`) and, with ``lent_wait_at_least_waited``, at
least the time the job has waited already. :func:`late_on_lent` lets step 1 skip the rest
of a queue group once that verdict is "wait" for all of it (baselines/overdue.py: unless
the group holds an overdue job). Everything is the simulator's what-if answers
(``view.rate_with``, ``view.est_remaining_works``): nothing models the placer a second
time.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import NamedTuple

import numpy as np

from aryl_gym.sim.job import Job
from aryl_gym.sim.view import ClusterView


def training_release(view: ClusterView) -> tuple[list[float], list[int]]:
    """When running jobs' training GPUs free up if nothing changes: (estimated finish
    times sorted, cumulative training GPUs freed by then), as lists: they are read one
    element at a time, where numpy scalars cost more than they save. One array pass over
    the running jobs (view.est_remaining_works), in the order of ``view.running`` (the
    stable sort's ties)."""
    t = view.now
    running = view.running
    idx = np.fromiter(running, dtype=np.int64, count=len(running))
    rate, pause, on_training = view.job_columns(idx)
    keep = (on_training != 0) & (rate != 0.0)
    idx, rate, pause, on_training = idx[keep], rate[keep], pause[keep], on_training[keep]
    ends = np.where(t >= pause, t, pause) + view.est_remaining_works(idx) / rate
    order = np.argsort(ends, kind="stable")
    return ends[order].tolist(), np.cumsum(on_training[order]).tolist()


class SoonerTerms(NamedTuple):
    """What :func:`sooner_on_lent` needs of a waiting job alone (kept per job version)."""

    version: int
    base: int  # b, the GPUs it would start at
    rate_key: tuple  # its start rate's key for one free-GPU histogram
    remaining: float  # R, its estimated remaining work
    speedup: float  # p[b]
    on_training: float  # R / (p[b] x training speed): its run time on training GPUs


def late_on_lent(
    view: ClusterView, b: int, waits: tuple[list[float], list[int]], lent_speed: float
) -> float | None:
    """A threshold ``x`` such that every queued job at base ``b`` whose remaining work per
    speedup ``R / p[b]`` (its key in step 1's SJF order: a waiting job's remaining work is
    the same at its submit time and now) is at least ``x`` gets False from
    :func:`sooner_on_lent` by its first test, at whatever free training GPUs the round
    has left (None: no such threshold). Step 1 walks a group in key order, and a job
    that waits for training GPUs leaves the GPUs as they were, so once one job of the
    group passes the threshold while its base cannot fit on training GPUs (which stays
    so in the round: starts and shrinks only move GPUs between free and spare), all the
    group's later jobs would wait too: the walk skips them.

    The first test is ``R / (p L) >= wait + R / (p T)`` (``L``, ``T``: lent and training
    GPU speeds). ``wait`` only grows as fewer training GPUs are free (the release curve
    is sorted), at most to ``wait_max`` with none free, which must be on the curve (else
    the test is not reached). In exact arithmetic the test holds once ``R / p >= wait_max
    / (1 / L - 1 / T)``; the threshold adds a relative margin of 1e-9, far above the
    float operations' rounding (a few 1e-16), so it holds for the floats as well. With
    ``lent_wait_at_least_waited`` the wait is at least the time a job has waited, which
    can only turn the test for an overdue job (baselines/overdue.py): step 1 does not
    skip a group that holds one."""
    ends, cum = waits
    k = bisect_left(cum, b)  # free_t = 0: the latest wait
    if k >= len(ends):
        return None
    wait_max = max(0.0, ends[k] - view.now)
    inv_l, inv_t = 1.0 / lent_speed, 1.0 / view.scenario.cluster.training_gpu_speed
    coef = (inv_l - inv_t - 1e-9 * (inv_l + inv_t)) * (1.0 - 1e-9)
    if coef <= 0.0:
        return None
    return wait_max * (1.0 + 1e-9) / coef + 1e-300


def sooner_on_lent(
    view: ClusterView,
    job: Job,
    b: int,
    free_t: int,
    waits: tuple[list[float], list[int]],
    rates: dict[tuple, float | None],
    lent_speed: float,
    memo: dict[int, SoonerTerms] | None = None,
    min_wait: float = 0.0,
) -> bool:
    """``lent_start="if_sooner"``: whether ``job`` started now at ``b`` GPUs (partly) on
    lent GPUs finishes before it would by waiting for ``b`` training GPUs (the running
    jobs' estimated finishes free them; queued jobs ahead are not counted), a wait of at
    least ``min_wait`` (``lent_wait_at_least_waited``: the time it has waited already).
    ``rates`` keeps start rates for one free-GPU histogram: a queued job's depends only
    on what it is and on that histogram. ``memo`` (job index -> its terms) keeps what
    depends on the job alone: a waiting job's remaining work does not change until it
    starts, which changes its version."""
    hit = None if memo is None else memo.get(job.idx)
    if hit is None or hit.version != job.version or hit.base != b:
        sp = float(job.speedup[b])
        r = job.est_remaining_work(view.now)
        key = (job.profile.name, id(job.speedup), job.elastic, job.base_gpus, b)
        # r / sp x speed: the time on training GPUs once they are free
        hit = SoonerTerms(
            job.version, b, key, r, sp, r / (sp * view.scenario.cluster.training_gpu_speed)
        )
        if memo is not None:
            memo[job.idx] = hit
    _, _, key, r, sp, on_training = hit
    # the what-if answers on the cluster as the round found it, whose training GPUs the
    # round's earlier starts may have taken (``free_t`` is what is left): started now,
    # the job takes at least ``b - free_t`` lent GPUs and runs at most at their speed
    cap = sp * lent_speed
    ends, cum = waits
    k = bisect_left(cum, b - free_t)  # np.searchsorted's default side
    if k < len(ends):
        wait = max(min_wait, ends[k] - view.now)  # the curve may be a few minutes old
        if r / cap >= wait + on_training:
            # not sooner even at the cap: r / min(rate, cap) >= r / cap (division is
            # monotone), so the start rate, a placement search on a new histogram, is
            # not needed for the verdict
            return False
    rate = rates.get(key, rates)
    if rate is rates:
        rates[key] = rate = view.rate_with(job, b)
    if not rate:
        return False
    if k >= len(ends):
        return True  # the training pool alone never frees enough while these jobs run
    return r / min(rate, cap) < wait + on_training
