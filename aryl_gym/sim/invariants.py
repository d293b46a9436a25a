"""Full consistency check of the engine state, O(servers + active jobs).

Run after every event batch and decision when ``Engine(check_invariants=True)``; tests
use it, normal runs do not pay for it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aryl_gym.sim.cluster import LENT, TRAINING
from aryl_gym.sim.job import QUEUED, RUNNING

if TYPE_CHECKING:
    from aryl_gym.sim.engine import Engine


class InvariantError(AssertionError):
    """The engine reached a state the model forbids (a simulator bug, or a policy that
    mutated what it should only read)."""


def check_invariants(e: Engine) -> None:
    def fail(msg: str) -> None:
        raise InvariantError(f"t={e.t:.3f}: {msg}")

    cl = e.cluster
    g = cl.gpus_per_server
    busy = [0, 0]
    for s in range(cl.n_servers):
        used = sum(cl.jobs_on[s].values())
        if used + cl.free[s] != g:
            fail(f"server {s}: {used} used + {cl.free[s]} free != {g} GPUs")
        if used > g or cl.free[s] < 0:
            fail(f"server {s}: {used} GPUs used of {g}")
        cls = cl.server_class(s)
        if used and cls is None:
            fail(f"server {s} holds workers but is neither a training server nor lent")
        if cls is not None:
            busy[cls] += used
            if cl.free[s] and s not in cl.buckets[cls][cl.free[s]]:
                fail(f"server {s} missing from free bucket {cl.free[s]}")
    if busy != cl.busy:
        fail(f"busy GPU counters {cl.busy} != recount {busy}")
    if cl.free_total[TRAINING] != cl.n_training * g - busy[TRAINING]:
        fail("training free counter drifted")
    if cl.free_total[LENT] != cl.n_lent * g - busy[LENT]:
        fail("lent free counter drifted")
    inf = e.scenario.cluster.inference_servers
    loanable = max(0, inf - e.needed - e.reserve)
    if cl.n_lent > loanable and e._pending_reclaim == 0:
        fail(f"{cl.n_lent} servers lent but only {loanable} loanable")
    if e._pending_reclaim == 0 and inf - cl.n_lent < min(inf, e.needed + e.reserve):
        fail(
            f"inference demand {e.needed} (+{e.reserve} reserve) not met by {inf - cl.n_lent} servers"
        )
    if not e.uses_loaning and cl.n_lent:
        fail("servers lent to a policy that does not use loaning")
    for idx, job in e.running.items():
        if job.state != RUNNING or job.idx != idx:
            fail(f"job {job.job_id!r} in running set with state {job.state}")
        n = sum(job.placement.values())
        if n != job.n_gpus or n <= 0:
            fail(f"job {job.job_id!r}: placement sums to {n}, n_gpus={job.n_gpus}")
        if not job.min_gpus <= n <= job.max_gpus:
            fail(f"job {job.job_id!r}: {n} GPUs outside [{job.min_gpus}, {job.max_gpus}]")
        for s, k in job.placement.items():
            if cl.jobs_on[s].get(idx) != k:
                fail(
                    f"job {job.job_id!r}: placement says {k} GPUs on server {s}, server says {cl.jobs_on[s].get(idx)}"
                )
        if job.progress > job.work * (1 + 1e-9) + 1e-6:
            fail(f"job {job.job_id!r}: progress {job.progress} beyond work {job.work}")
        if job.run_from != max(job.t_update, job.pause_until):
            fail(f"job {job.job_id!r}: run_from {job.run_from} is not max(t_update, pause_until)")
        mirror = (e._progress[idx], e._rate[idx], e._run_from[idx], e._pause_until[idx])
        if mirror != (job.progress, job.rate, job.run_from, job.pause_until) or (
            e._n_training[idx] != job.n_gpus - job.lent_gpus or e._work[idx] != job.work
        ):
            fail(f"job {job.job_id!r}: the engine's progress arrays miss a change")
    for job in e.queue.values():
        if job.state != QUEUED or job.n_gpus or job.placement:
            fail(f"queued job {job.job_id!r} holds GPUs")
        if job.run_from != math.inf:
            fail(f"queued job {job.job_id!r}: run_from {job.run_from} is not inf")
