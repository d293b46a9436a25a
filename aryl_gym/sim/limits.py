"""Upper bounds on the sizes a simulation accepts, so that memory stays proportional to the
work and a typo fails at once with a clear message instead of a ``MemoryError`` later.

Every bound is far beyond the paper's scale (``aryl-15d``: 700 + 700 servers of 8 GPUs,
15 days, ~51,000 jobs, jobs of at most a few hundred GPUs) and is checked up front: when a
scenario is built (:class:`~aryl_gym.config.ClusterConfig`,
:class:`~aryl_gym.config.ScenarioConfig`), when a workload is loaded or generated
(:func:`check_jobs`, called by :func:`aryl_gym.scenarios.build_workload` and by
``scenario_with_trace`` before it sizes a cluster), when the inference demand is built
(:func:`aryl_gym.workload.inference.build_demand`) and when the command line parses its
seeds and runs. The message of a violation names the value, the bound and the constant
(e.g. ``aryl_gym.sim.limits.MAX_SIM_TIME_S``), so a user who really needs more knows what to
change.

Only the standard library is imported here.
"""

from __future__ import annotations

import math

DAY_S = 86400.0

#: Longest simulated time span: a workload's last arrival (and a synthetic workload's
#: ``days``) must lie within 5 years of t = 0. The inference demand series is built over
#: this span plus the drain, at 10-minute steps: 5 years are ~263,000 steps (a few MB).
MAX_SIM_TIME_S: float = 5 * 365 * DAY_S

#: Most servers in one pool (training or inference). The engine keeps a few Python
#: objects per server: 100,000 servers take a few tens of MB.
MAX_SERVERS_PER_POOL: int = 100_000

#: Most GPUs on one server.
MAX_GPUS_PER_SERVER: int = 64

#: Most GPUs one job may request (``gpus`` and ``max_gpus``): the largest pool allowed
#: is ``MAX_SERVERS_PER_POOL * 8`` GPUs, and no real trace asks for more than ~10,000.
MAX_GPUS_PER_JOB: int = 65_536

#: Most jobs in one workload (a trace's rows, or a synthetic workload's expected
#: ``jobs_per_day * days``): about 1 KB each in the engine, so 5 GB at the bound.
MAX_JOBS: int = 5_000_000

#: Most steps of an inference demand series (``horizon / step_s``, and the number of
#: 10-minute bins it covers): two arrays of 8 bytes per step, 32 MB each at the bound.
MAX_DEMAND_STEPS: int = 2**22

#: Most seeds one ``benchmark`` / ``sweep`` runs.
MAX_SEEDS: int = 10_000

#: Largest workload seed (seeds are 0 ... MAX_SEED; numpy's ``SeedSequence`` rejects
#: negative ones, and int64 columns hold these).
MAX_SEED: int = 2**63 - 1

#: Most runs (grid points x policies x seeds) of one ``benchmark`` / ``sweep``: each run
#: keeps a record file in the output folder.
MAX_RUNS: int = 100_000

#: Most local worker processes (``--workers``).
MAX_WORKERS: int = 512


def fmt_number(value: float) -> str:
    """``1,234`` for integral values, ``1.5e+12`` style for the rest (readable bounds)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}" if abs(value) < 1e15 else f"{value:.3g}"
    return f"{value:.6g}"


def check_at_most(what: str, value: float, bound_name: str, hint: str = "") -> None:
    """Raise ``ValueError`` when ``value`` exceeds the constant ``bound_name`` of this module
    (or is not a number: NaN never passes). The message names ``what``, the value, the
    bound and the constant, then ``hint``."""
    bound = globals()[bound_name]
    if isinstance(value, float) and math.isnan(value) or not value <= bound:
        raise ValueError(
            f"{what} is {fmt_number(value)}, above the bound of {fmt_number(bound)} "
            f"(aryl_gym.sim.limits.{bound_name})" + (f"; {hint}" if hint else "")
        )


def fmt_duration(seconds: float) -> str:
    """``1e+12 s (31,710 years)`` style: a duration in seconds and in days or years."""
    if not math.isfinite(seconds):
        return f"{seconds} s"
    days = seconds / DAY_S
    human = f"{days / 365:,.0f} years" if days >= 2 * 365 else f"{days:,.1f} days"
    return f"{seconds:.6g} s ({human})"


def check_sim_time(what: str, seconds: float) -> None:
    """``ValueError`` when a time span ``seconds`` exceeds :data:`MAX_SIM_TIME_S` (or is not
    finite), naming ``what`` and both durations in human units."""
    if not (math.isfinite(seconds) and seconds <= MAX_SIM_TIME_S):
        raise ValueError(
            f"{what} is {fmt_duration(seconds)}, beyond the simulated-time bound of "
            f"{fmt_duration(MAX_SIM_TIME_S)} (aryl_gym.sim.limits.MAX_SIM_TIME_S)"
        )


def check_jobs(jobs: object, source: str) -> None:
    """Check a workload against :data:`MAX_JOBS`, :data:`MAX_GPUS_PER_JOB` and
    :data:`MAX_SIM_TIME_S` (last arrival, and longest duration: a job longer than any
    simulation may last would only ever be reported unfinished); ``ValueError`` naming
    ``source`` (a trace path or ``"synthetic workload"``), the job and the bound."""
    n = len(jobs)
    check_at_most(f"{source}: the number of jobs", n, "MAX_JOBS")
    if n == 0:
        return
    for column in ("gpus", "max_gpus"):
        values = getattr(jobs, column)
        i = int(values.argmax())
        check_at_most(
            f"{source}: job {jobs.job_id[i]!r} {column}", int(values[i]), "MAX_GPUS_PER_JOB"
        )
    for column, what in (("submit_time", "the arrival"), ("duration", "the duration")):
        values = getattr(jobs, column)
        i = int(values.argmax())  # NaN counts as the largest: it fails the check too
        check_sim_time(f"{source}: {what} of job {jobs.job_id[i]!r} ({column})", float(values[i]))
