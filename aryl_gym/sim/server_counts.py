"""Server-level counting of a round's changes (:class:`ServerCount`) and the placer's best
fit on free-GPU counts: what :meth:`~aryl_gym.sim.placer.Placer.fit` counts with under
``extras_own_or_empty`` and what ``view.server_counts()`` hands to policies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aryl_gym.sim.job import Job
    from aryl_gym.sim.placer import Placer


class ServerCount:
    """Server-level counting for :meth:`Placer.fit` under ``extras_own_or_empty``: per
    class how many servers have each free-GPU count, the free GPUs of the servers whose
    count the round's earlier changes moved, and the servers each job's base workers took
    this round (not known by id: their free GPUs left). Exact for one change; for several,
    exact unless a base placement lands on a later job's own server (the engine then cuts
    that job's grow, ``Engine.grows_cut``)."""

    def __init__(self, placer: Placer) -> None:
        self.cl = placer.cluster
        self.hist = [list(h) for h in placer._histograms()]
        self.free: dict[int, int] = {}  # server -> free GPUs after the changes so far
        # (class, free GPUs left) of the servers the base workers of the grow being
        # counted took: that job's own servers for its extra workers
        self.new_holes: list[tuple[int, int]] = []

    def copy(self) -> ServerCount:
        """A copy to count one more grow on (kept with :meth:`adopt` if it fits)."""
        other = ServerCount.__new__(ServerCount)
        other.cl = self.cl
        other.hist = [list(h) for h in self.hist]
        other.free = dict(self.free)
        other.new_holes = []
        return other

    def adopt(self, other: ServerCount) -> None:
        self.hist, self.free, self.new_holes = other.hist, other.free, other.new_holes

    def _move(self, s: int, f_new: int) -> None:
        c = self.cl.server_class(s)
        f = self.free_of(s)
        self.hist[c][f] -= 1
        self.hist[c][f_new] += 1
        self.free[s] = f_new

    def release(
        self, job: Job, new: Mapping[int, int], old: Mapping[int, int] | None = None
    ) -> None:
        """``job`` shrinks from ``old`` (default: its placement now) to ``new``."""
        for s, k in (job.placement if old is None else old).items():
            gone = k - new.get(s, 0)
            if gone:
                self._move(s, self.free_of(s) + gone)

    def free_of(self, s: int) -> int:
        """Free GPUs of server ``s`` after the changes counted so far."""
        return self.free.get(s, self.cl.free[s])

    def own_free(self, job: Job, cls: int) -> int:
        """Free GPUs (after the changes so far) on ``job``'s own servers of class ``cls``."""
        cl = self.cl
        counted, now = self.free, cl.free  # free_of, inlined (the fit asks per grow)
        total = 0
        for s in job.placement:
            if cl.server_class(s) == cls:
                total += counted.get(s, now[s])
        return total

    def has_compact_room(self, cls: int, n: int) -> bool:
        """Whether the placer's best fit would put ``n`` new GPUs of class ``cls`` on as
        few servers as ``n`` needs, after the changes so far: a server with ``n`` free GPUs
        (``n`` <= GPUs per server), else enough empty servers for the whole servers ``n``
        needs and a server with room for the rest."""
        g = self.cl.gpus_per_server
        h = self.hist[cls]
        if n <= g:
            return any(h[n:])
        whole, rest = divmod(n, g)
        if h[g] < whole:
            return False
        return not rest or any(h[rest:g]) or h[g] > whole

    def take_base(self, cls: int, need: int) -> int:
        """Base workers: the best fit of :meth:`Cluster.find_fit`, on counts."""
        h = self.hist[cls]
        got = 0
        for f, k in best_fit_takes(h, need, self.cl.gpus_per_server):
            h[f - k] += 1  # the server stays, with fewer free GPUs
            self.new_holes.append((cls, f - k))
            got += k
        return got

    def take_extras(self, job: Job, cls: int, need: int) -> int:
        """Extra workers: the job's own servers of ``cls`` (in the placer's order), then
        empty servers."""
        h, g, got = self.hist[cls], self.cl.gpus_per_server, 0
        cl = self.cl
        for s in sorted(job.placement):
            if need and cl.server_class(s) == cls:
                f = self.free_of(s)
                k = need if need < f else f
                if k:
                    self._move(s, f - k)
                    got += k
                    need -= k
        for i, (c, f) in enumerate(self.new_holes):  # the servers its base took now
            k = need if need < f else f
            if k and c == cls:
                h[f] -= 1
                h[f - k] += 1
                self.new_holes[i] = (c, f - k)
                got += k
                need -= k
        while need > 0 and h[g]:
            k = need if need < g else g
            h[g] -= 1
            h[g - k] += 1
            got += k
            need -= k
        return got


def best_fit_count(hist: list[int], need: int, g: int, empty_only: bool = False) -> tuple[int, int]:
    """How many new servers the placer's best fit takes for ``need`` GPUs from servers
    with ``hist[f]`` servers of ``f`` free GPUs, and how many GPUs it gets (fewer than
    ``need`` when the class runs out): :meth:`Cluster.find_fit` on counts (``empty_only``:
    from empty servers alone)."""
    if empty_only:
        got = min(need, hist[g] * g)
        return -(-got // g), got
    servers = got = 0
    for _, k in best_fit_takes(list(hist), need, g):
        servers += 1
        got += k
    return servers, got


def best_fit_takes(h: list[int], need: int, g: int) -> Iterator[tuple[int, int]]:
    """:meth:`Cluster.find_fit`'s best fit on counts: for each server it takes, ``(its free
    GPUs, GPUs taken)``, removing it from ``h`` (the caller's histogram, changed)."""
    while need > 0:
        f = 0
        least = need if need < g else g  # min(need, g)
        for c in range(least, g + 1):  # best fit: smallest free count that holds it
            if h[c]:
                f = c
                break
        if not f:
            for c in range(g, 0, -1):  # else the emptiest server
                if h[c]:
                    f = c
                    break
        if not f:
            return
        h[f] -= 1
        k = need if need < f else f
        yield f, k
        need -= k
