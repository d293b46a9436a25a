"""Queue-order schedulers on the training pool alone: FIFO and SJF (no loaning, no elastic
scaling; every job at its requested GPUs)."""

from __future__ import annotations

from aryl_gym.policy import Allocation, Policy
from aryl_gym.sim.view import ClusterView


class FifoNoLoan(Policy):
    """Strict FIFO by submit time at requested GPUs on the training pool; the head of the
    queue blocks the rest (no backfilling)."""

    name = "fifo-noloan"
    elastic_scaling = False
    description = "FIFO by submit time, requested GPUs, training pool only, no backfilling"

    def allocate(self, view: ClusterView) -> Allocation:
        free = view.free_training_gpus
        out: dict[int, int] = {}
        if free == 0 or not view.queued:
            return Allocation(out)
        for job in sorted(view.queued.values(), key=lambda j: (j.submit, j.idx)):
            if job.gpus > free:
                break
            out[job.idx] = job.gpus
            free -= job.gpus
        return Allocation(out)


class SjfNoLoan(Policy):
    """Shortest (estimated) job first at requested GPUs on the training pool, with
    backfilling: a job that does not fit is skipped, smaller ones behind it may start."""

    name = "sjf-noloan"
    elastic_scaling = False
    description = (
        "shortest estimated job first with backfilling, requested GPUs, training pool only"
    )

    def allocate(self, view: ClusterView) -> Allocation:
        free = view.free_training_gpus
        out: dict[int, int] = {}
        if free == 0 or not view.queued:
            return Allocation(out)
        t = view.now
        smallest = min(j.gpus for j in view.queued.values())
        if smallest > free:
            return Allocation(out)
        order = sorted(
            view.queued.values(),
            key=lambda j: (j.est_remaining_work(t) / j.speedup[j.gpus], j.submit, j.idx),
        )
        for job in order:
            if job.gpus <= free:
                out[job.idx] = job.gpus
                free -= job.gpus
                if free < smallest:
                    break
        return Allocation(out)
