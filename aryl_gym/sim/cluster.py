"""Server state of the two pools and the primitives that move GPUs between jobs.

Servers ``0 .. T-1`` form the training pool, ``T .. T+I-1`` the inference pool. An
inference server holds training workers only while it is *lent*. Free GPUs are indexed
by bucket (one set of servers per free-GPU count, per placement class) so that best-fit
placement costs O(gpus_per_server), never a scan over all servers.
"""

from __future__ import annotations

from aryl_gym.sim.config import ClusterConfig

TRAINING, LENT = 0, 1  # placement classes: training pool, lent inference servers


class Cluster:
    """Mutable server state. Only the engine mutates it; policies read it via the view."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        g = cfg.gpus_per_server
        self.gpus_per_server = g
        self.n_training = cfg.training_servers
        self.n_servers = cfg.training_servers + cfg.inference_servers
        self.speed = [cfg.training_gpu_speed] * cfg.training_servers + [
            cfg.inference_gpu_speed
        ] * cfg.inference_servers
        self.free = [g] * self.n_servers
        self.lent = [False] * self.n_servers
        self.lent_at = [0.0] * self.n_servers  # time each lent server was lent
        self.jobs_on: list[dict[int, int]] = [{} for _ in range(self.n_servers)]  # job idx -> GPUs
        # buckets[cls][f] = servers of class cls with exactly f free GPUs (f >= 1)
        self.buckets: list[list[set[int]]] = [
            [set() for _ in range(g + 1)] for _ in (TRAINING, LENT)
        ]
        for s in range(self.n_training):
            self.buckets[TRAINING][g].add(s)
        self.unlent: list[int] = list(
            range(self.n_training, self.n_servers)
        )  # sorted, lend lowest id first
        self.lent_order: list[int] = []  # lent servers in the order they were lent
        self.version = 0  # bumps on every change of any server's free GPUs (cache key)
        self.busy = [0, 0]  # busy GPUs per class
        self.free_total = [self.n_training * g, 0]  # free GPUs per class
        # servers that gained free GPUs, in order (policies read it incrementally to learn
        # which servers' jobs may now grow without a new server)
        self.release_log: list[int] = []

    # -- copies ----------------------------------------------------------------------------
    # ``find_fit`` takes the first server a bucket set iterates, and a set's iteration
    # order depends on its history (its table size, deleted slots), which a copy does not
    # keep: ``copy.deepcopy`` and pickle rebuild each set from its elements. Copying
    # therefore rebuilds the buckets of the original and of the copy the same way, from
    # their sorted elements, so that both iterate alike from then on (and keep doing so:
    # they then see the same operations). A cluster that is never copied is untouched,
    # so its runs stay exactly as they were.
    def _canonical_buckets(self) -> None:
        self.buckets = [[set(sorted(b)) for b in cls] for cls in self.buckets]

    def __getstate__(self) -> dict:
        self._canonical_buckets()
        return self.__dict__.copy()

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._canonical_buckets()

    # -- queries ---------------------------------------------------------------------------
    def server_class(self, s: int) -> int | None:
        """TRAINING, LENT, or None for an inference server that is not lent (unusable)."""
        if s < self.n_training:
            return TRAINING
        return LENT if self.lent[s] else None

    @property
    def n_lent(self) -> int:
        return len(self.lent_order)

    # -- GPU bookkeeping -------------------------------------------------------------------
    def _set_free(self, s: int, cls: int, old: int, new: int) -> None:
        self.version += 1
        b = self.buckets[cls]
        if old:
            b[old].discard(s)
        if new:
            b[new].add(s)
        self.free[s] = new

    def take(self, s: int, job: int, n: int) -> None:
        """Put ``n`` GPUs of ``job`` on server ``s`` (caller checked they are free)."""
        cls = TRAINING if s < self.n_training else self.server_class(s)
        old = self.free[s]
        self._set_free(s, cls, old, old - n)
        on = self.jobs_on[s]
        on[job] = on.get(job, 0) + n
        self.busy[cls] += n
        self.free_total[cls] -= n

    def release(self, s: int, job: int, n: int) -> None:
        """Remove ``n`` GPUs of ``job`` from server ``s``."""
        cls = TRAINING if s < self.n_training else self.server_class(s)
        old = self.free[s]
        self._set_free(s, cls, old, old + n)
        on = self.jobs_on[s]
        left = on[job] - n
        if left:
            on[job] = left
        else:
            del on[job]
        self.busy[cls] -= n
        self.free_total[cls] += n
        self.release_log.append(s)

    # -- loaning ---------------------------------------------------------------------------
    def lend(self, t: float) -> int:
        """Lend the lowest-id idle inference server; return it."""
        s = self.unlent.pop(0)
        self.lent[s] = True
        self.lent_at[s] = t
        self.lent_order.append(s)
        self._set_free(s, LENT, 0, self.gpus_per_server)
        self.free_total[LENT] += self.gpus_per_server
        return s

    def give_back(self, s: int) -> None:
        """Return an empty lent server to the inference pool."""
        assert not self.jobs_on[s], f"server {s} still holds workers"
        self._set_free(s, LENT, self.free[s], 0)
        self.free[s] = self.gpus_per_server
        self.free_total[LENT] -= self.gpus_per_server
        self.lent[s] = False
        self.lent_order.remove(s)
        # keep unlent sorted so lending order is deterministic
        lo, hi = 0, len(self.unlent)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.unlent[mid] < s:
                lo = mid + 1
            else:
                hi = mid
        self.unlent.insert(lo, s)

    # -- placement search ------------------------------------------------------------------
    def find_fit(
        self,
        cls: int,
        n: int,
        prefer: dict[int, int] | None = None,
        reserved: dict[int, int] | None = None,
        empty_only: bool = False,
    ) -> list[tuple[int, int]]:
        """Servers of class ``cls`` for ``n`` GPUs on as few servers as possible.

        Servers in ``prefer`` (the job's current ones) are filled first so that a growing
        job does not spread; ``reserved`` GPUs on them are already promised and not free.
        Then: whole servers for full multiples, best fit (smallest free count that holds
        the rest), else the emptiest servers; with ``empty_only`` only empty servers after
        the preferred ones. Returns
        ``[(server, gpus), ...]`` covering at most ``n`` GPUs (fewer when the class lacks room);
        nothing is taken yet.
        """
        out: list[tuple[int, int]] = []
        need = n
        used: set[int] = set()
        if prefer:
            for s in sorted(prefer):
                used.add(s)
                avail = self.free[s] - (reserved.get(s, 0) if reserved else 0)
                if need and avail > 0 and self.server_class(s) == cls:
                    k = need if need < avail else avail
                    out.append((s, k))
                    need -= k
        b = self.buckets[cls]
        g = self.gpus_per_server
        free = self.free
        while need > 0:
            # best fit: the smallest free count that holds the rest; else the emptiest
            # server; the first server of a bucket in the set's order that is not used yet
            if empty_only:
                pick = _first_unused(b, range(g, g + 1), used)
            else:
                pick = _first_unused(b, range(need if need < g else g, g + 1), used)
                if pick < 0:
                    pick = _first_unused(b, range(g, 0, -1), used)
            if pick < 0:
                break
            k = free[pick] if free[pick] < need else need
            out.append((pick, k))
            used.add(pick)
            need -= k
        return out


def _first_unused(buckets: list[set[int]], free_counts: range, used: set[int]) -> int:
    for f in free_counts:
        bucket = buckets[f]
        if bucket:
            if not used:
                for s in bucket:
                    return s
            for s in bucket:
                if s not in used:
                    return s
    return -1
