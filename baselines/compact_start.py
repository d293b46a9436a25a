"""Compact starts for Aryl's step 1 (``ArylConfig.compact_starts``).

A queued job whose base demand fits on one server but finds no training server with that
many free GPUs (or needs whole servers and finds too few empty ones) would be placed
across more servers than it needs and run at its profile's split factor (0.49-0.87 of
compact speed for five of the six fitted profiles) until it ends. Base demand has
priority over extra workers, so step 1 may take extra workers back for it: with this
rule it takes them back on *one* server (or on whole servers), chosen so the base lands
there compact, rather than wherever the cheapest extra workers sit (which frees GPUs
scattered over the pool: `scripts/explain_jct.py` found 86 % of the inelastic 8-GPU
starts split on `aryl-15d`).

Which workers a shrink removes is the simulator's rule (``view.placement_with``, and
``view.shrink_share`` for one server's share at every count), and the round's changes are
followed server by server with the simulator's own counter (``view.server_counts``), so
nothing here models the placer a second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aryl_gym.sim.cluster import TRAINING
from aryl_gym.sim.job import Job
from aryl_gym.sim.view import ClusterView


class ShrinkLedger:
    """The round's shrinks of donors, followed on the simulator's server counter."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view
        self.counts = view.server_counts()
        self.n_training = len(view.training_servers)  # servers below it are training ones
        self.placed: dict[int, Mapping[int, int]] = {}  # donor idx -> placement counted

    def sync(self, shrink: Mapping[int, int]) -> None:
        """Count the shrinks in ``shrink`` (job index -> GPUs after the round) not counted yet."""
        view = self.view
        for idx, n in shrink.items():
            job = view.job(idx)
            if sum(self.placement(job).values()) != n:
                self.record(job, view.placement_with(job, n))

    def record(self, job: Job, new: Mapping[int, int]) -> None:
        """Count ``job`` shrinking from the placement counted so far to ``new``."""
        self.counts.release(job, new, self.placement(job))
        self.placed[job.idx] = new

    def placement(self, job: Job) -> Mapping[int, int]:
        """``job``'s placement after the shrinks counted so far."""
        return self.placed.get(job.idx, job.placement)


def clear_servers_for(
    ledger: ShrinkLedger, donors: Iterable[list], shrink: dict[int, int], b: int
) -> tuple[int, int] | None:
    """Take extra workers back from donors so a base of ``b`` GPUs lands compact: on one
    training server with ``b`` free GPUs (``b`` <= GPUs per server), or on ``b / g`` empty
    servers (``b`` a multiple of the server size ``g``; other sizes are left alone).
    Servers are tried in the order the donors (least time saved per extra GPU first) can
    clear them. Updates ``donors`` (extras and lent GPUs left), ``shrink`` and the ledger;
    returns the GPUs freed (on training servers, on lent servers), or None when no server
    was cleared (nothing changed; servers cleared before a later one fails stay cleared,
    and the start spans fewer servers)."""
    view, counts = ledger.view, ledger.counts
    g = view.gpus_per_server
    if b <= g:
        need, servers = b, 1
    elif b % g == 0:
        need, servers = g, b // g - counts.hist[TRAINING][g]
    else:
        return None
    n_training = ledger.n_training
    potential: dict[int, int] = {}  # server -> GPUs its donors seen so far might free
    on_server: dict[int, list[list]] = {}
    tried: set[int] = set()
    got_t = got_l = 0
    placed = ledger.placed  # ledger.placement and counts.free_of, looked up here: the
    counted, now = counts.free, counts.cl.free  # loop visits most donors' servers
    for d in donors:
        job, extra, lent = d[2], d[3], d[4]
        if extra <= lent:
            continue  # a shrink removes lent workers first: nothing on training to free
        on_t = extra - lent
        for s, k in placed.get(job.idx, job.placement).items():
            if s >= n_training or s in tried:
                continue
            p = potential[s] = potential.get(s, 0) + (k if k < on_t else on_t)
            rows = on_server.get(s)
            if rows is None:
                on_server[s] = [d]
            else:
                rows.append(d)
            free = counted.get(s, now[s])
            if free < need <= free + p:
                tried.add(s)
                got = _clear(ledger, s, need, on_server[s], shrink)
                if got is not None:
                    got_t += got[0]
                    got_l += got[1]
                    servers -= 1
                    if servers <= 0:
                        return got_t, got_l
    return (got_t, got_l) if got_t or got_l else None


def _clear(
    ledger: ShrinkLedger, s: int, b: int, donors: list[list], shrink: dict[int, int]
) -> tuple[int, int] | None:
    """Shrink ``donors`` (cheapest first), each by the fewest workers that free what is
    missing on server ``s``, until ``s`` has ``b`` free GPUs; None (nothing changed) when
    they cannot."""
    view, counts = ledger.view, ledger.counts
    missing = b - counts.free_of(s)
    plan: list[tuple[list, int, Mapping[int, int], Mapping[int, int]]] = []
    for d in donors:
        if missing <= 0:
            break
        job, extra = d[2], d[3]
        old = ledger.placement(job)
        now = shrink.get(job.idx, job.n_gpus)
        # view.left_on(job, s, now - r) for each r, from the shrink's order once
        k, before = view.shrink_share(job, s)
        had, ahead = old.get(s, 0), job.n_gpus - now - before
        best = None
        for r in range(1, extra + 1):
            remove = ahead + r  # what reaches s of the job's n_gpus - (now - r) removed
            gone = remove if remove > 0 else 0
            freed = had - (k - (gone if gone < k else k))
            if freed > 0 and (best is None or freed > best[1]):
                best = (r, freed)
            if freed >= missing:
                break
        if best is None:
            continue
        r, freed = best
        plan.append((d, r, old, view.placement_with(job, now - r)))
        missing -= freed
    if missing > 0:
        return None
    got_t = got_l = 0
    for d, r, old, new in plan:
        job = d[2]
        lent_freed = sum(k - new.get(t, 0) for t, k in old.items() if t >= ledger.n_training)
        got_l += lent_freed
        got_t += r - lent_freed
        d[3] -= r
        d[4] -= lent_freed
        shrink[job.idx] = shrink.get(job.idx, job.n_gpus) - r
        ledger.record(job, new)
    return got_t, got_l
