"""The default placer and the rate rule: where a job's workers go and how fast it runs.

Everything that needs to know "which servers would job j get with n GPUs" or "what rate
would it run at" asks this module, through the engine's read-only view (what-if
queries) or from the engine itself, so there is one copy of each rule:

* **grow** — base workers on training servers (best fit, fewest servers), extra workers
  per :class:`~aryl_gym.sim.decisions.PlacementRules` (lent servers first by default);
  a growing job fills its own servers first; the classes of every grow of a round are
  decided on the cluster as the round found it (:meth:`Placer.grow_classes`);
* **shrink** — workers leave lent servers first, then the servers holding fewest of them;
* **rate** — ``speedup(n) x placement_factor(servers beyond the minimum) x the slowest
  GPU's speed`` (synchronous data parallelism runs at the slowest worker's pace).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from aryl_gym.sim.cluster import LENT, TRAINING, Cluster
from aryl_gym.sim.decisions import InvalidDecision, PlacementRules
from aryl_gym.sim.server_counts import ServerCount, best_fit_count

if TYPE_CHECKING:
    from aryl_gym.sim.job import Job

Placement = dict[int, int]  # server -> GPUs of the job on it
ClassOrders = tuple[tuple[int, ...], tuple[int, ...]]  # classes tried for base, extra workers
ONLY_TRAINING: ClassOrders = ((TRAINING,), (TRAINING,))  # Allocation.on_training


class Placer:
    """The default placer of one engine (its cluster and rules)."""

    def __init__(self, cluster: Cluster, rules: PlacementRules) -> None:
        self.cluster = cluster
        self.rules = rules
        self._hist_key = -1
        self._hist: list[list[int]] = []
        self._hist_tuple: tuple[tuple[int, ...], ...] = ()
        self._room_key = -1
        self._room: dict[tuple[int, ...], int] = {}  # classes -> extra_room, this version
        # rate curves by everything they depend on (profile, GPUs, own servers' free GPUs
        # and speeds, the histograms): jobs in the same situation share one computation
        self._curves: dict[tuple, list[tuple[float, bool]]] = {}
        # rate_curves' rows of jobs on full servers, by reach (_reach_key), then by the
        # number standing for the job's signature (_fast_ids): nested tuple keys hashed
        # once per call and per new signature, not once per job and lookup
        self._fast_rows: dict[tuple, dict[int, list[float]]] = {}
        self._fast_n = 0  # rows kept in _fast_rows
        # under extras_own_or_empty the same rows by (signature number, free GPUs of empty
        # training servers, of empty lent servers), each free count capped at the most
        # extra workers the signature can add: reaches that differ only beyond that cap
        # share their rows (_reach_rows)
        self._capped_rows: dict[tuple[int, int, int], list[float]] = {}
        # idx -> what the rows depend on of a job on full servers (_fast_sig)
        self._fast_sigs: dict[int, tuple] = {}
        self._fast_ids: dict[tuple, int] = {}  # signature -> its number
        self._counts: dict[tuple[int, int], tuple[np.ndarray, int]] = {}
        self._classes_memo: dict[tuple, ClassOrders] = {}
        # grow_classes of extras-only grows of jobs on full servers, by what they depend
        # on (_classes_key): kept across cluster versions
        self._classes_by_reach: dict[tuple, ClassOrders] = {}
        self._orders: dict[tuple[bool, bool], ClassOrders] = {}  # _class_orders per kind
        self._fit_memo: tuple | None = None  # fit's last answer (see fit)
        # ((idx, version, GPUs, cluster version, classes), placement) of the last
        # _decide_classes: the fill of the classes it decided
        self._decided_fill: tuple | None = None
        self._bounds: dict[tuple, list[float]] = {}
        self._bound_jobs: dict[int, tuple[int, tuple]] = {}  # idx -> (version, bound info)
        self._levels_memo: dict[tuple, list[tuple[tuple[int, ...], float]]] = {}  # _levels
        self._shrink_orders: dict[int, tuple[int, tuple[int, ...]]] = {}  # idx -> (version, order)

    def _histograms(self) -> list[list[int]]:
        """Per class, how many servers have each free-GPU count (cached per cluster state)."""
        cl = self.cluster
        if self._hist_key != cl.version:
            self._hist = [[len(b) for b in cl.buckets[c]] for c in (TRAINING, LENT)]
            self._hist_tuple = tuple(tuple(h) for h in self._hist)
            self._hist_key = cl.version
        return self._hist

    def histogram_key(self) -> tuple[tuple[int, ...], ...]:
        """Per class, how many servers have each free-GPU count, as one hashable value.

        Everything the placer decides for a queued job depends on it alone: best fit
        picks servers by free count, GPUs of a class all run at one speed, and the rate
        depends only on how many servers of each class the job gets (which servers does
        not matter). So a queued job's :meth:`rate_with` may be cached on this key, which
        repeats far more often than :attr:`Cluster.version`."""
        self._histograms()
        return self._hist_tuple

    # ------------------------------------------------------------------ rules
    def may_use_lent(self, job: Job) -> bool:
        """Whether ``job`` may have workers on lent servers at all."""
        r = self.rules
        if r.lent_memory_fit and not job.profile.fits_lent_gpu:
            return False
        return job.elastic or r.inelastic_on_lent

    def base_may_use_lent(self, job: Job) -> bool:
        """Whether ``job``'s base workers may go to lent servers."""
        return LENT in self._class_orders(job)[0]

    def _class_orders(self, job: Job) -> ClassOrders:
        """(classes for base workers, classes for extra workers), in the order tried:
        the rules' answer for what the job is (its model's fit on a lent GPU, elasticity),
        kept per that pair."""
        key = (job.profile.fits_lent_gpu, job.elastic)
        hit = self._orders.get(key)
        if hit is None:
            hit = self._orders[key] = self._decide_orders(job)
        return hit

    def _decide_orders(self, job: Job) -> ClassOrders:
        r = self.rules
        if not self.may_use_lent(job):
            return (TRAINING,), (TRAINING,)
        base_may_lend = r.base_on_lent and not (job.elastic and r.elastic_base_on_training)
        base = (TRAINING, LENT) if base_may_lend else (TRAINING,)
        extra = (LENT, TRAINING) if r.extra_on_lent_first else (TRAINING, LENT)
        return base, extra

    # ------------------------------------------------------------------ placement
    def rate(self, job: Job, placement: Mapping[int, int]) -> float:
        """The rate (work per second) of ``job`` on ``placement`` (non-empty)."""
        n = 0
        for k in placement.values():
            n += k
        return self.rate_on(job, n, len(placement), self.slowest_speed(placement))

    def slowest_speed(self, placement: Iterable[int]) -> float:
        """The speed of the slowest GPU on ``placement``'s servers (non-empty), without a
        ``min()`` call: speeds are >= 0, so -1.0 stands for none seen yet."""
        speeds = self.cluster.speed
        speed = -1.0
        for s in placement:
            v = speeds[s]
            if speed < 0.0 or v < speed:
                speed = v
        return speed

    def rate_on(self, job: Job, n: int, servers: int, speed: float) -> float:
        """The rate of ``job`` with ``n`` GPUs on ``servers`` servers whose slowest GPU
        runs at ``speed``: ``speedup(n) x placement factor x speed``, the one formula
        :meth:`rate`, the engine's reallocation and the counted curves
        (:meth:`start_curve`, :meth:`_hist_curve`) share."""
        g = self.cluster.gpus_per_server
        min_servers = (n + g - 1) // g
        extra_servers = servers - min_servers
        factor = (
            job.profile.placement_factor(extra_servers, min_servers) if extra_servers > 0 else 1.0
        )
        return job.speedups[n] * factor * speed

    def grow_classes(self, job: Job, n: int) -> ClassOrders:
        """The placement classes a grow of ``job`` to ``n`` GPUs takes its base and extra
        workers from, in the order tried, decided on the cluster as it is now.

        ``no_slow_mix``: when the rules' classes would mix GPU speeds, the grow keeps them
        only when that is faster than every placeable placement on one speed (training
        only, or lent only for a queued job), else it takes that speed's class alone. The
        engine decides the classes of every grow of a round on the cluster as the round
        found it, before the round changes anything, so that :meth:`feasible` counts
        exactly what the grows then take."""
        base_cls, extra_cls = self._class_orders(job)
        if not self.rules.no_slow_mix or extra_cls == (TRAINING,):
            return base_cls, extra_cls
        # validation, application and policies' can_place ask the same question on the
        # same cluster state within a round: answer it once
        key = (job.idx, job.version, job.n_gpus, n, self.cluster.version)
        hit = self._classes_memo.get(key)
        if hit is not None:
            return hit
        if len(self._classes_memo) > 4096:
            self._classes_memo.clear()
        shared = self._classes_key(job, n)
        if shared is None:
            best = self._decide_classes(job, n, base_cls, extra_cls)
        else:
            # the fit drops most of a busy round's grows after deciding their classes,
            # and the same jobs come back round after round: the decision is kept by
            # what it depends on, across cluster versions
            kept = self._classes_by_reach
            best = kept.get(shared)
            if best is None:
                if len(kept) > 100_000:
                    kept.clear()
                best = kept[shared] = self._decide_classes(job, n, base_cls, extra_cls)
        self._classes_memo[key] = best
        return best

    def _classes_key(self, job: Job, n: int) -> tuple | None:
        """What :meth:`_decide_classes` depends on for a grow of a running job that adds
        extra workers only while none of its servers has a free GPU, else None. Such a
        grow takes new servers only, whose count per class depends on the classes' free
        GPUs as :meth:`_reach_key` has them (as in :meth:`rate_curves`); its rates on
        ``speedup[n]``, the profile's placement factors and its servers' count and
        speeds (one speed per class: ``lo`` and ``hi`` are the set); both fills on the
        class orders. Under ``extras_own_or_empty`` the ``n - n0`` extra workers take
        whole empty servers, so a class's free GPUs there count only up to ``n - n0``
        (capped: reaches that differ beyond share the decision). (A start's decision
        depends on the free-GPU histograms, which rarely repeat with the same start: not
        kept.)"""
        n0 = job.n_gpus
        if n0 == 0 or n0 < job.base_gpus:
            return None
        free, speed = self.cluster.free, self.cluster.speed
        lo, hi = 2.0**60, 0.0
        for s in job.placement:
            if free[s]:
                return None
            v = speed[s]
            lo = v if v < lo else lo
            hi = v if v > hi else hi
        prof = job.profile
        reach = self._reach_key()
        if self.rules.extras_own_or_empty:
            g, add = self.cluster.gpus_per_server, n - n0
            free_t, free_l = reach[TRAINING] * g, reach[LENT] * g
            reach = (free_t if free_t < add else add, free_l if free_l < add else add)
        return (
            n0, n, job.speedups[n], prof.split_factor, prof.extra_server_factor,
            len(job.placement), lo, hi, self._class_orders(job), reach,
        )  # fmt: skip

    def _decide_classes(
        self, job: Job, n: int, base_cls: tuple[int, ...], extra_cls: tuple[int, ...]
    ) -> ClassOrders:
        mixed = self._fill(job, n, base_cls, extra_cls)
        best, place = (base_cls, extra_cls), mixed
        if mixed is not None and len({self.cluster.speed[s] for s in mixed}) > 1:
            best_rate = self.rate(job, mixed)
            pure_orders: list[tuple[int, ...]] = [(TRAINING,)]
            if not job.n_gpus and LENT in base_cls:  # a queued job may start on lent GPUs alone
                pure_orders.append((LENT,))
            for classes in pure_orders:
                pure = self._fill(job, n, classes, classes)
                if pure is not None:
                    r = self.rate(job, pure)
                    if r >= best_rate:
                        best, best_rate, place = (classes, classes), r, pure
        # the grow asked next (grow, rate_with) fills the decided classes on this cluster
        # again: it takes this placement instead
        self._decided_fill = ((job.idx, job.version, n, self.cluster.version, best), place)
        return best

    def grow(self, job: Job, n: int, classes: ClassOrders | None = None) -> Placement:
        """Where ``job`` (running or queued) would have its workers with ``n`` > current
        GPUs; ``InvalidDecision`` when there is no room. Nothing is taken. ``classes``:
        the :meth:`grow_classes` decided earlier in the round (default: decided now)."""
        classes = self.grow_classes(job, n) if classes is None else classes
        kept = self._decided_fill
        if kept is not None and kept[0] == (job.idx, job.version, n, self.cluster.version, classes):
            self._decided_fill, new = None, kept[1]  # handed out once: the caller may keep it
        else:
            new = self._fill(job, n, *classes)
        if new is None:
            cl = self.cluster
            raise InvalidDecision(
                f"job {job.job_id!r}: no room for {n} GPUs (free: {cl.free_total[TRAINING]} "
                f"training, {cl.free_total[LENT]} lent; may use lent: {self.may_use_lent(job)})"
            )
        return new

    def _fill(
        self, job: Job, n: int, base_cls: Iterable[int], extra_cls: Iterable[int]
    ) -> Placement | None:
        add = n - job.n_gpus
        base = job.base_gpus - job.n_gpus  # min(add, max(0, ...)) without the calls
        base = base if base > 0 else 0
        base = add if add < base else base
        new = dict(job.placement)
        cl = self.cluster
        own_or_empty = self.rules.extras_own_or_empty
        for need, classes, empty_only in (
            (base, base_cls, False),
            (add - base, extra_cls, own_or_empty),
        ):
            for cls in classes:
                if need == 0:
                    break
                reserved = {s: k - job.placement.get(s, 0) for s, k in new.items()}
                for s, k in cl.find_fit(
                    cls, need, prefer=new, reserved=reserved, empty_only=empty_only
                ):
                    new[s] = new.get(s, 0) + k
                    need -= k
            if need > 0:
                return None
        return new

    def shrink(self, job: Job, remove: int) -> Placement:
        """``job``'s placement after removing ``remove`` workers: lent servers first, then
        the servers holding fewest of its workers (ties: highest id)."""
        new = dict(job.placement)
        for s in self._shrink_order(job):
            if remove == 0:
                break
            k = new[s]
            k = remove if remove < k else k
            new[s] -= k
            remove -= k
            if new[s] == 0:
                del new[s]
        return new

    def left_on(self, job: Job, server: int, n: int) -> int:
        """``job``'s workers on ``server`` after :meth:`shrink` to ``n`` (<= its GPUs)
        GPUs, without building the placement (from :meth:`shrink_share`)."""
        k, before = self.shrink_share(job, server)
        gone = job.n_gpus - n - before  # of the removed workers, those that reach server
        gone = gone if gone > 0 else 0
        return k - (gone if gone < k else k)

    def shrink_share(self, job: Job, server: int) -> tuple[int, int]:
        """``(k, before)``: ``job``'s GPUs on ``server`` and the GPUs :meth:`shrink` takes
        off its other servers before it reaches ``server``, so that a shrink removing
        ``remove`` workers leaves ``k - min(k, max(0, remove - before))`` there: what
        :meth:`left_on` returns, for every count at once."""
        place = job.placement
        before = 0
        for s in self._shrink_order(job):
            if s == server:
                return place[s], before
            before += place[s]
        return 0, before

    def _shrink_order(self, job: Job) -> tuple[int, ...]:
        """The order :meth:`shrink` empties ``job``'s servers in, kept per job and
        allocation version (what-if shrinks, e.g. a compact start's donors, ask it for
        every count): a job's servers are all training or lent while it holds them."""
        hit = self._shrink_orders.get(job.idx)
        if hit is not None and hit[0] == job.version:
            return hit[1]
        if len(self._shrink_orders) > 100_000:
            self._shrink_orders.clear()
        cl, place = self.cluster, job.placement
        order = tuple(sorted(place, key=lambda s: (cl.server_class(s) != LENT, place[s], -s)))
        self._shrink_orders[job.idx] = (job.version, order)
        return order

    def placement_with(self, job: Job, n: int) -> Placement | None:
        """The placement ``job`` would have with ``n`` GPUs (``{}`` for 0), or None when
        the default placer finds no room."""
        cur = job.n_gpus
        if n == cur:
            return dict(job.placement)
        if n == 0:
            return {}
        if n < cur:
            return self.shrink(job, cur - n)
        try:
            return self.grow(job, n)
        except InvalidDecision:
            return None

    def moved_to_training(self, job: Job) -> Placement | None:
        """``job``'s placement with its workers on lent servers moved to training servers
        (placed as extra workers are: the job's own training servers first, then, with
        ``extras_own_or_empty``, empty servers only), or None when it has none on lent
        servers or they do not fit. Nothing is taken."""
        cl = self.cluster
        new = self._training_part(job)
        need = job.n_gpus - sum(new.values())
        if need == 0 or not new:
            return None
        for s, k in cl.find_fit(
            TRAINING, need, prefer=new, empty_only=self.rules.extras_own_or_empty
        ):
            new[s] = new.get(s, 0) + k
            need -= k
        return new if need == 0 else None

    def _training_part(self, job: Job) -> Placement:
        """``job``'s workers on training servers (the servers below ``n_training``)."""
        n_training = self.cluster.n_training
        return {s: k for s, k in job.placement.items() if s < n_training}

    def rate_with(self, job: Job, n: int) -> float | None:
        """The rate ``job`` would run at with ``n`` GPUs placed by the default placer
        (0.0 for 0 GPUs), or None when they cannot be placed."""
        if n == job.n_gpus and n:
            return job.rate
        place = self.placement_with(job, n)
        if place is None:
            return None
        return self.rate(job, place) if place else 0.0

    def rate_curve(self, job: Job, n_hi: int) -> list[float]:
        """``[rate_with(job, n) for n = job.n_gpus .. n_hi]``, stopping before the first
        count the placer cannot place; element 0 is the current rate.

        For a running job whose added workers are all extra workers this counts servers
        on the per-class histograms of free GPUs (the placer's best fit depends only on
        how many servers have each free count, not on which), O(1) histograms per round
        instead of one placement search per count; ``tests/test_whatif.py`` checks it
        against :meth:`rate_with` for every count. Other jobs take the slow path."""
        n0 = job.n_gpus
        if n0 == 0 or n0 < job.base_gpus or n_hi <= n0:
            return [self.rate_with(job, n0) or 0.0, *self._slow_curve(job, n0 + 1, n_hi)]
        _, extra_cls = self._class_orders(job)
        out = [job.rate]
        mixed = self._hist_curve(job, n_hi, extra_cls)
        if self.rules.no_slow_mix and extra_cls != (TRAINING,):
            pure = self._hist_curve(job, n_hi, (TRAINING,))
            for i in range(len(mixed)):
                r_mixed, is_mixed = mixed[i]
                if is_mixed and i < len(pure) and pure[i][0] >= r_mixed:
                    mixed[i] = pure[i]
        out += [r for r, _ in mixed]
        return out

    def start_curve(self, job: Job, n_lo: int, n_hi: int) -> list[float]:
        """``[rate_with(job, n) for n = n_lo .. n_hi]`` for a queued ``job``, stopping
        before the first count the placer cannot place (empty when ``n_lo`` cannot be).

        Every count's fill places the same base workers (``n_lo`` at least the job's
        base): found once per class order here, by the placer's own search. Under
        ``extras_own_or_empty`` the extra workers then fill the base servers' free GPUs of
        each extra class and then whole empty servers, so the servers and speeds of every
        count follow by counting, as :meth:`_decide_classes` then compares them; one
        placement search per class order instead of one or three per count
        (``tests/test_whatif.py`` checks it against :meth:`rate_with` for every count).
        Other cases take the slow path."""
        if job.n_gpus or n_lo < max(job.base_gpus, 1) or not self.rules.extras_own_or_empty:
            return self._slow_curve(job, n_lo, n_hi)
        base_cls, extra_cls = self._class_orders(job)
        decide = self.rules.no_slow_mix and extra_cls != (TRAINING,)
        base = self._fill(job, job.base_gpus, base_cls, extra_cls)  # every count's base
        mixed = self._start_fills(job, n_lo, n_hi, base, extra_cls)
        # the orders _decide_classes tries against a mix, and their fills (on first need)
        orders = [(TRAINING,)] + ([(LENT,)] if LENT in base_cls else [])
        pures: list[list[tuple[int, float, bool]]] | None = None
        out = []
        memo = self._classes_memo
        if decide and len(memo) > 4096:
            memo.clear()
        key = [job.idx, job.version, 0, 0, self.cluster.version]
        for i, (servers, speed, is_mixed) in enumerate(mixed):
            best = self.rate_on(job, n_lo + i, servers, speed)
            classes = base_cls, extra_cls
            if decide and is_mixed:
                if pures is None:
                    pures = []
                    n_training = self.cluster.n_training
                    for c in orders:
                        # a base on training servers alone, found by a fill that tried
                        # them first, is what the training-only fill places (one search)
                        alone = c == (TRAINING,) and base_cls[0] == TRAINING
                        alone = alone and all(s < n_training for s in base)
                        pure_base = base if alone else self._fill(job, job.base_gpus, c, c)
                        pures.append(self._start_fills(job, n_lo, n_hi, pure_base, c))
                for c, pure in zip(orders, pures, strict=True):
                    if i < len(pure):
                        r = self.rate_on(job, n_lo + i, pure[i][0], pure[i][1])
                        if r >= best:
                            best, classes = r, (c, c)
            if decide:  # what grow_classes decides for this count (the round's fit asks)
                key[3] = n_lo + i
                memo[tuple(key)] = classes
            out.append(best)
        return out

    def _start_fills(
        self,
        job: Job,
        n_lo: int,
        n_hi: int,
        new: Placement | None,
        extra_cls: tuple[int, ...],
    ) -> list[tuple[int, float, bool]]:
        """``(servers, slowest speed, mixes speeds?)`` of :meth:`_fill` of queued ``job``
        for ``n = n_lo .. n_hi`` with base placement ``new`` (its fill at its base
        GPUs; None: unplaceable) and extra workers from ``extra_cls`` (own or empty
        servers), cut before the first count it cannot place."""
        if new is None:
            return []
        base = job.base_gpus
        cl = self.cluster
        g = cl.gpus_per_server
        free, speed_of = cl.free, cl.speed
        # per extra class: the base servers' GPUs left free (filled first, in any order:
        # only the total counts) and the empty servers not among them (then taken whole)
        own_left = [0, 0]
        empty = [len(cl.buckets[TRAINING][g]), len(cl.buckets[LENT][g])]
        speeds = set()
        for s, k in new.items():
            c = cl.server_class(s)
            own_left[c] += free[s] - k
            if free[s] == g:
                empty[c] -= 1
            speeds.add(speed_of[s])
        class_speed = (cl.cfg.training_gpu_speed, cl.cfg.inference_gpu_speed)
        out = []
        for x in range(n_lo - base, n_hi - base + 1):  # extra workers
            need, servers, used = x, len(new), set(speeds)
            for c in extra_cls:
                if need == 0:
                    break
                need -= own_left[c] if own_left[c] < need else need
                if need:
                    k = -(-need // g)
                    k = empty[c] if empty[c] < k else k
                    if k:
                        servers += k
                        used.add(class_speed[c])
                    need -= k * g if k * g < need else need
            if need:
                break  # not placeable, nor is any larger count
            out.append((servers, min(used), len(used) > 1))
        return out

    def rate_curves(self, jobs: Sequence[Job], n_max: Sequence[int]) -> list[list[float]]:
        """:meth:`rate_curve` of many running jobs at once (``n_max[i]`` for ``jobs[i]``).

        Jobs none of whose servers has a free GPU (the common case in a busy cluster) take
        new servers only, and how many the placer takes for ``m`` GPUs of a class depends
        on the class's free-GPU histogram alone (under ``extras_own_or_empty`` on its empty
        servers alone): such a job's curve depends only on what it is (profile, GPUs, its
        servers' count and speeds, maximum) and on that reach (:meth:`_reach_key`). Those
        curves are kept per such signature and reach, and the missing ones computed
        together as one array operation; busy clusters revisit a few reaches all the time
        (an emptied server wakes a hundred jobs whose curves were asked before). The others
        go through :meth:`rate_curve`. Same floats as :meth:`rate_with` (tests/test_whatif.py)."""
        cl = self.cluster
        free = cl.free
        out: list[list[float]] = [[]] * len(jobs)  # every slot is set below
        sigs, ids = self._fast_sigs, self._fast_ids
        if len(sigs) > 100_000:
            sigs.clear()
        if len(ids) > 100_000 or self._fast_n > 50_000:  # rows are kept by signature number
            self._fast_rows.clear()
            self._capped_rows.clear()
            self._fast_n = 0
            ids.clear()
            sigs.clear()
        reach = self._reach_key()
        cache = self._fast_rows.get(reach)
        if cache is None:
            cache = self._fast_rows[reach] = {}
        missing: dict[int, tuple[Job, tuple[int, float, float], tuple[int, ...]]] = {}
        fast: list[tuple[int, int]] = []  # (slot, signature number of a row computed below)
        for i, job in enumerate(jobs):
            n0 = job.n_gpus
            place = job.placement
            if n0 == 0 or n0 < job.base_gpus or n_max[i] <= n0:
                out[i] = self.rate_curve(job, n_max[i])
                continue
            for s in place:
                if free[s]:
                    break
            else:  # its servers are full: the signature's row
                sig = sigs.get(job.idx)
                if sig is None or sig[0] != job.version:
                    sig = sigs[job.idx] = self._fast_sig(job)
                sid = sig[1]
                row = cache.get(sid)
                if row is not None:  # kept: the curve at once
                    out[i] = [job.rate, *row[: n_max[i] - n0]]
                    continue
                fast.append((i, sid))
                if sid not in missing:
                    missing[sid] = (job, sig[3], sig[2])
                continue
            out[i] = self.rate_curve(job, n_max[i])
        capped = self._reach_rows(reach, missing, cache) if missing else None
        if missing:
            groups: dict[tuple[int, ...], list[int]] = {}
            for sid, (_, _, classes) in missing.items():  # same class order of extra workers
                groups.setdefault(classes, []).append(sid)
            for classes, sids in groups.items():
                reps = [missing[k] for k in sids]
                rows = self._fast_curves(
                    [j for j, _, _ in reps],
                    [j.max_gpus for j, _, _ in reps],
                    classes,
                    [o for _, o, _ in reps],
                )
                cache.update(zip(sids, rows, strict=True))
                if capped is not None:
                    self._capped_rows.update(zip(map(capped.get, sids), rows, strict=True))
                self._fast_n += len(rows)
        for i, sid in fast:
            job = jobs[i]
            out[i] = [job.rate, *cache[sid][: n_max[i] - job.n_gpus]]
        return out

    def _reach_rows(
        self,
        reach: tuple,
        missing: dict[int, tuple[Job, tuple[int, float, float], tuple[int, ...]]],
        cache: dict[int, list[float]],
    ) -> dict[int, tuple[int, int, int]] | None:
        """Under ``extras_own_or_empty``, move the rows of ``missing`` signatures that
        another reach already gave into ``cache`` (taking them off ``missing``), and return
        the capped keys of the rest (None under the other rule). A row counts the new
        servers of up to ``K = max_gpus - n0`` extra workers, which reach a class's free
        GPUs (``empty servers x g``) only up to ``K``: its floats are those of any reach
        with the same capped free GPUs (:meth:`_fast_curves` computes each element on its
        own)."""
        if not self.rules.extras_own_or_empty:
            return None
        g = self.cluster.gpus_per_server
        free_t, free_l = reach[TRAINING] * g, reach[LENT] * g
        kept, keys = self._capped_rows, {}
        for sid in list(missing):
            job = missing[sid][0]
            top = job.max_gpus - job.n_gpus
            key = (sid, free_t if free_t < top else top, free_l if free_l < top else top)
            row = kept.get(key)
            if row is None:
                keys[sid] = key
            else:
                cache[sid] = row
                del missing[sid]
                self._fast_n += 1  # an entry of _fast_rows all the same
        return keys

    def _fast_sig(self, job: Job) -> tuple[int, int, tuple[int, ...], tuple[int, float, float]]:
        """What :meth:`rate_curves` keeps of a job on full servers per allocation version:
        ``(version, its signature's number, its extra workers' class order, (servers,
        slowest and fastest server speed))`` (its servers' count and speeds change only
        with a move)."""
        speeds = [self.cluster.speed[s] for s in job.placement]
        own = (len(speeds), min(speeds), max(speeds))
        classes = self._class_orders(job)[1]
        full_sig = (id(job.speedup), job.profile.name, job.n_gpus, job.max_gpus, *own, classes)
        ids = self._fast_ids
        sid = ids.get(full_sig)
        if sid is None:
            sid = ids[full_sig] = len(ids)
        return job.version, sid, classes, own

    def _reach_key(self) -> tuple:
        """What the new servers extra workers take depend on: per class, the number of
        empty servers under ``extras_own_or_empty``, else the free-GPU histograms."""
        if self.rules.extras_own_or_empty:
            hist = self._histograms()
            g = self.cluster.gpus_per_server
            return (hist[TRAINING][g], hist[LENT][g])
        return self.histogram_key()

    def _class_counts(self, cls: int, m_max: int) -> tuple[np.ndarray, int]:
        """``S[m]``: new servers the placer takes for ``m = 0 .. m_max`` extra workers of
        class ``cls`` (from the histogram), and the class's free GPUs they can reach."""
        key = (self.cluster.version, cls)
        hit = self._counts.get(key)
        if hit is not None and len(hit[0]) > m_max:
            return hit
        hist = self._histograms()[cls]
        g = self.cluster.gpus_per_server
        own_or_empty = self.rules.extras_own_or_empty
        # the GPUs extra workers can reach on new servers: the empty ones only, by the rule
        free = hist[g] * g if own_or_empty else self.cluster.free_total[cls]
        top = min(m_max, free)
        counts = np.zeros(m_max + 1, dtype=np.int64)
        if own_or_empty:  # best_fit_count's empty-only count, ceil(m / g) (m <= free), at once
            counts[1 : top + 1] = -(-np.arange(1, top + 1) // g)
        else:
            for m in range(1, top + 1):
                counts[m] = best_fit_count(hist, m, g)[0]
        if self._counts and next(iter(self._counts))[0] != self.cluster.version:
            self._counts.clear()
        self._counts[key] = (counts, free)
        return counts, free

    def _fast_curves(
        self,
        jobs: list[Job],
        n_max: list[int],
        extra_cls: tuple[int, ...],
        own: list[tuple[int, float, float]],
    ) -> list[list[float]]:
        """Per job (its own servers full), the rates at ``n0 + 1 .. n_max`` GPUs up to the
        first count that cannot be placed, as one array operation."""
        cl = self.cluster
        g = cl.gpus_per_server
        K = max(n_max[i] - jobs[i].n_gpus for i in range(len(jobs)))
        ks = np.arange(1, K + 1)
        n0 = np.array([j.n_gpus for j in jobs])
        n_own, own_min, own_max = (np.array(col) for col in zip(*own, strict=True))
        tables = {}
        for j in jobs:
            tables.setdefault(id(j.speedup), j.speedup)
        keys = list(tables)
        width = max(len(t) for t in tables.values())
        stack = np.zeros((len(keys), width))
        for r, k in enumerate(keys):
            stack[r, : len(tables[k])] = tables[k]
        row = np.array([keys.index(id(j.speedup)) for j in jobs])
        split = np.array([j.profile.split_factor for j in jobs])
        xf = np.array([j.profile.extra_server_factor for j in jobs])
        n = n0[:, None] + ks[None, :]  # GPUs after the grow, [jobs, K]
        valid = n <= np.array([n_max[i] for i in range(len(jobs))])[:, None]
        sp = stack[row[:, None], np.minimum(n, width - 1)]
        min_servers = (n + g - 1) // g
        speeds = (cl.cfg.training_gpu_speed, cl.cfg.inference_gpu_speed)

        def curve(classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            # columns and rows that broadcast to [jobs, K] in the first operation that
            # mixes them (each step makes a new array: nothing is written in place)
            servers, lo, hi = n_own[:, None], own_min[:, None], own_max[:, None]
            need = ks[None, :]
            for c in classes:
                counts, free = self._class_counts(c, K)
                take = np.minimum(need, free)
                servers = servers + counts[take]
                used = take > 0
                lo = np.where(used, np.minimum(lo, speeds[c]), lo)
                hi = np.where(used, np.maximum(hi, speeds[c]), hi)
                need = need - take
            extra = servers - min_servers
            one = min_servers == 1
            factor = np.where(
                extra > 0,
                np.where(
                    one,
                    split[:, None] * xf[:, None] ** np.maximum(extra - 1, 0),
                    xf[:, None] ** np.maximum(extra, 0),
                ),
                1.0,
            )
            rate = sp * factor * lo
            rate = np.where((need == 0) & valid, rate, np.nan)
            return rate, hi != lo

        rate, mixed = curve(extra_cls)
        if self.rules.no_slow_mix and extra_cls != (TRAINING,):
            pure, _ = curve((TRAINING,))
            rate = np.where(mixed & ~np.isnan(pure) & (pure >= rate), pure, rate)
        bad = np.isnan(rate)
        ends = np.where(bad.any(axis=1), bad.argmax(axis=1), K).tolist()
        rows = rate.tolist()
        return [rows[i][: ends[i]] for i in range(len(jobs))]

    def _slow_curve(self, job: Job, n_lo: int, n_hi: int) -> list[float]:
        out = []
        for n in range(n_lo, n_hi + 1):
            r = self.rate_with(job, n)
            if r is None:
                break
            out.append(r)
        return out

    def _hist_curve(
        self, job: Job, n_hi: int, classes: tuple[int, ...]
    ) -> list[tuple[float, bool]]:
        """(rate, mixes speeds?) for ``n = n0 + 1 .. n_hi`` extra workers placed over
        ``classes`` in order, by counting on free-GPU histograms (kept by what they depend
        on: under ``extras_own_or_empty`` the empty servers' free GPUs, capped)."""
        cl = self.cluster
        g = cl.gpus_per_server
        place = job.placement
        own_free = [0, 0]  # free GPUs on the job's own servers, per class
        base_hist = self._histograms()
        hist = base_hist
        speeds = set()
        for s in place:
            c = cl.server_class(s)
            f = cl.free[s]
            if f:
                own_free[c] += f
                if hist is base_hist:
                    hist = [list(base_hist[0]), list(base_hist[1])]
                hist[c][f] -= 1  # an own server is filled first, never picked as new
            speeds.add(cl.speed[s])
        n0 = job.n_gpus
        n_own = len(place)
        own_or_empty = self.rules.extras_own_or_empty
        if own_or_empty:
            # new servers are empty ones only (an own server is never empty), and at most
            # n_hi - n0 of their free GPUs are taken: the free GPUs beyond change nothing
            top, empty_t, empty_l = n_hi - n0, hist[TRAINING][g] * g, hist[LENT][g] * g
            reach: tuple = (empty_t if empty_t < top else top, empty_l if empty_l < top else top)
        else:
            reach = (tuple(hist[0]), tuple(hist[1]))
        key = (
            job.profile.name, n0, n_hi, n_own, own_free[0], own_free[1], tuple(sorted(speeds)),
            classes, reach,
        )  # fmt: skip
        hit = self._curves.get(key)
        if hit is not None:
            return list(hit)
        if len(self._curves) > 100_000:
            self._curves.clear()
        class_speed = (cl.cfg.training_gpu_speed, cl.cfg.inference_gpu_speed)
        out: list[tuple[float, bool]] = []
        for n in range(n0 + 1, n_hi + 1):
            need = n - n0
            servers = n_own
            used_speeds = set(speeds)
            for c in classes:
                if need == 0:
                    break
                take = own_free[c]
                need -= take if take < need else need
                if need:
                    k, got = best_fit_count(hist[c], need, g, own_or_empty)
                    if k:
                        servers += k
                        used_speeds.add(class_speed[c])
                    need -= got
            if need:
                break  # not placeable
            rate = self.rate_on(job, n, servers, min(used_speeds))
            out.append((rate, len(used_speeds) > 1))
        self._curves[key] = out
        return list(out)

    # ------------------------------------------------------------------ feasibility
    def feasible(
        self,
        targets: Mapping[int, int],
        jobs: Mapping[int, Job],
        on_training: Container[int] = (),
        moves: Mapping[int, Job] | None = None,
    ) -> bool:
        """Whether the default placer can place every change of ``targets`` (job index ->
        GPUs after the round), applied as the engine does: shrinks and stops first (they
        free lent GPUs first), then the ``moves`` (``Allocation.to_training``: index ->
        job), then grows in order, each from the classes :meth:`grow_classes` gives on the
        cluster as the round found it. Counting free GPUs per class is exact: the placer
        fails only when a class it may use has too few. Grows of jobs in ``on_training``
        take training servers only (``Allocation.on_training``)."""
        kept: list[int] = []
        fitted = self.fit(targets, jobs, on_training=on_training, moves=moves, kept_moves=kept)
        return fitted == dict(targets) and len(kept) == len(moves or ())

    def fit(
        self,
        targets: Mapping[int, int],
        jobs: Mapping[int, Job],
        fallback: Mapping[int, int] | None = None,
        on_training: Container[int] = (),
        moves: Mapping[int, Job] | None = None,
        kept_moves: list[int] | None = None,
    ) -> dict[int, int]:
        """``targets`` with every grow that does not fit (see :meth:`feasible`) replaced by
        its ``fallback`` count when that fits, else left out; one pass in the engine's
        order. Without a fallback a grow that does not fit is left out. ``moves`` that fit
        (counted before the grows) are appended to ``kept_moves``.

        The engine validates a policy's decision (:meth:`feasible`, no fallback) on the
        cluster the policy just fitted it on: the last answer is kept by cluster version
        (every placement change bumps it), targets and pinned grows, and reused without a
        fallback when it was computed without one or every grow fitted at its target
        (then the fallback was never consulted). An answer that used the fallback is
        kept as the answer to itself: fitted again without a fallback, each grow it kept
        is counted at the count it was kept at on the same counts as before (a grow left
        out took nothing), so it fits whole; that is what the policy hands the engine.
        Decisions with moves are not kept."""
        if moves:
            return self._fit(targets, jobs, fallback, on_training, moves, kept_moves)
        cl = self.cluster
        memo_key = (
            cl.version,
            tuple(targets.items()),
            frozenset(j for j in targets if j in on_training),
        )
        if fallback is None and self._fit_memo is not None and self._fit_memo[0] == memo_key:
            return dict(self._fit_memo[1])
        result = self._fit(targets, jobs, fallback, on_training)
        if fallback is None or result == targets:
            self._fit_memo = (memo_key, dict(result))
        else:
            kept = (
                cl.version,
                tuple(result.items()),
                frozenset(j for j in result if j in on_training),
            )
            self._fit_memo = (kept, dict(result))
        return result

    def _fit(
        self,
        targets: Mapping[int, int],
        jobs: Mapping[int, Job],
        fallback: Mapping[int, int] | None,
        on_training: Container[int],
        moves: Mapping[int, Job] | None = None,
        kept_moves: list[int] | None = None,
    ) -> dict[int, int]:
        cl = self.cluster
        free = [cl.free_total[TRAINING], cl.free_total[LENT]]
        # extras_own_or_empty: extra workers reach only their own servers' and empty
        # servers' free GPUs, so the count also follows servers: free-count histograms
        # per class and the free GPUs of the servers the round's changes touch
        servers = ServerCount(self) if self.rules.extras_own_or_empty else None
        out: dict[int, int] = {}
        grows = []
        for j, n in targets.items():
            job = jobs[j]
            c = job.n_gpus
            if n < c:
                r = c if n == 0 else c - n
                from_l = min(r, job.lent_gpus)
                free[LENT] += from_l
                free[TRAINING] += r - from_l
                if servers is not None:
                    servers.release(job, self.shrink(job, r) if n else {})
                out[j] = n
            elif n > c:
                grows.append((j, job, n))
            else:
                out[j] = n
        for j, job in (moves or {}).items():
            if self._take_move(job, free, servers) and kept_moves is not None:
                kept_moves.append(j)
        for j, job, n in grows:
            options = [n]
            if fallback is not None and j in fallback and fallback[j] != n:
                options.append(fallback[j])
            for m in options:
                if m <= job.n_gpus:
                    if m == job.n_gpus and j in targets:
                        out[j] = m
                    break
                if self._extras_cannot_fit(job, m, free, servers):
                    continue  # what _take would find, without deciding classes or copying
                classes = ONLY_TRAINING if j in on_training else self.grow_classes(job, m)
                if classes[1] != self._class_orders(job)[1] and self._extras_cannot_fit(
                    job, m, free, servers, classes[1]
                ):
                    continue  # the fewer classes decided (training only) lack the room
                took = self._take(job, m, free, classes, servers)
                if took is not None:
                    free = took
                    out[j] = m
                    break
        return {j: out[j] for j in targets if j in out}

    def _take_move(self, job: Job, free: list[int], servers: ServerCount | None) -> bool:
        """Count ``job``'s move to training servers (:meth:`moved_to_training`) on ``free``
        (and ``servers``), changed only when it fits."""
        lent = job.lent_gpus
        if lent > free[TRAINING]:
            return False
        if servers is not None:
            trial = servers.copy()
            if trial.take_extras(job, TRAINING, lent) < lent:
                return False
            trial.release(job, self._training_part(job))
            servers.adopt(trial)
        free[TRAINING] -= lent
        free[LENT] += lent
        return True

    def server_counts(self) -> ServerCount:
        """Server-level counts of the cluster now, to follow a round's changes on."""
        return ServerCount(self)

    def _extras_cannot_fit(
        self,
        job: Job,
        n: int,
        free: list[int],
        servers: ServerCount | None,
        classes: tuple[int, ...] | None = None,
    ) -> bool:
        """True when growing ``job`` to ``n`` adds extra workers only and they cannot fit
        in ``classes``, by default in whatever classes :meth:`grow_classes` picks (each
        is a subset of the job's extra classes): :meth:`_take` would return None (its
        trial count starts with no new holes, and takes own free GPUs, then empty
        servers', of each class in turn). Rounds where the knapsack grants many grows
        that one empty server can take drop most of them here, cheaply. False means
        nothing (the full check follows)."""
        if not job.n_gpus or job.n_gpus < job.base_gpus:
            return False  # a start, or base workers too: left to _take
        need = n - job.n_gpus
        if classes is None:
            classes = self._class_orders(job)[1]
        if servers is None:
            reach = 0
            for cls in classes:
                reach += free[cls]
            return reach < need
        # take_extras' most: per class min(free, own servers' free GPUs + empty servers').
        # Bounds first, without the own servers (a pass over the job's servers per class):
        # the free GPUs alone fall short, or the empty servers alone reach ``need``
        g = servers.cl.gpus_per_server
        hist = servers.hist
        top = low = 0
        for cls in classes:
            f, e = free[cls], hist[cls][g] * g
            top += f
            low += f if f < e else e
        if top < need:
            return True
        if low >= need:
            return False
        reach = 0
        for cls in classes:
            f, e = free[cls], servers.own_free(job, cls) + hist[cls][g] * g
            reach += e if e < f else f
        return reach < need

    def _take(
        self,
        job: Job,
        n: int,
        free: list[int],
        classes: ClassOrders,
        servers: ServerCount | None = None,
    ) -> list[int] | None:
        """Free GPUs per class after growing ``job`` to ``n`` from ``classes`` (None: it
        does not fit); ``servers`` (extras_own_or_empty) is updated only when it fits."""
        base_cls, extra_cls = classes
        left = list(free)
        add = n - job.n_gpus
        base = job.base_gpus - job.n_gpus  # min(add, max(0, ...)) without the calls
        base = base if base > 0 else 0
        base = add if add < base else base
        trial = servers.copy() if servers is not None else None
        for need, classes, is_extra in ((base, base_cls, False), (add - base, extra_cls, True)):
            for cls in classes:
                most = left[cls] if left[cls] < need else need  # min(need, left[cls])
                if trial is None:
                    take = most
                elif is_extra:  # never more than the class has left in all
                    take = trial.take_extras(job, cls, most)
                else:
                    take = trial.take_base(cls, most)
                left[cls] -= take
                need -= take
            if need:
                return None
        if trial is not None:
            servers.adopt(trial)
        return left

    def rate_bound(self, job: Job, n_max: int) -> float:
        """An upper bound of :meth:`rate_with` over ``n = job.n_gpus + 1 .. n_max`` for a
        running job, given the free GPUs of each class now.

        A grow that takes GPUs of a class runs at most at that class's speed (and its own
        servers' slowest), and can reach at most the free GPUs of the classes at least as
        fast; so the bound is the best, over the speed levels of the classes the job may
        use, of ``speedup(n) x placement factor x speed`` for ``n`` within that level's
        reach (own free GPUs always within reach). The placement factor is taken at the
        fewest servers the job could span (its own, plus a new one when they are full);
        it never rises with more servers."""
        return self.grow_bound(job, n_max)[0]

    def grow_bound(self, job: Job, n_max: int) -> tuple[float, tuple]:
        """``(rate_bound(job, n_max), bound_levels(job))`` with one pass over the job's
        servers: a job whose bound fails sleeps on its levels at once."""
        cl = self.cluster
        free = cl.free
        own_free = 0
        # _bound_info's kept answer and extra_room's, looked up here (a call per watched
        # job and level costs more than the lookups)
        hit = self._bound_jobs.get(job.idx)
        info = hit[1] if hit is not None and hit[0] == job.version else self._bound_info(job)
        servers, levels, p_full, p_free = info
        for s in servers:
            own_free += free[s]
        prefix = p_free if own_free else p_full
        k_max = n_max - job.n_gpus
        if k_max >= len(prefix):
            k_max = len(prefix) - 1
        best = 0.0
        rooms = self._room if self._room_key == cl.version else {}
        for reach_classes, speed in levels:
            room = rooms.get(reach_classes)
            if room is None:
                room = self.extra_room(reach_classes)
            reach = own_free + room
            k = reach if reach < k_max else k_max
            if k > 0:
                r = prefix[k] * speed
                best = r if r > best else best
        own = own_free if self.rules.extras_own_or_empty else 0
        return best, (prefix, levels, not own_free, own)

    def _bound_info(self, job: Job) -> tuple:
        """What :meth:`rate_bound` needs of ``job`` that changes only with its allocation:
        its servers, the levels ``(classes, speed)`` and both prefixes (own servers full
        or not), kept per job and allocation version."""
        hit = self._bound_jobs.get(job.idx)
        if hit is not None and hit[0] == job.version:
            return hit[1]
        if len(self._bound_jobs) > 100_000:
            self._bound_jobs.clear()
        info = (
            tuple(job.placement),
            self._levels(job),
            self._bound_prefix(job, full=True),
            self._bound_prefix(job, full=False),
        )
        self._bound_jobs[job.idx] = (job.version, info)
        return info

    def extra_room(self, classes: Iterable[int]) -> int:
        """The free GPUs of ``classes`` that extra workers can reach beyond their job's
        own servers: every free GPU, or under ``extras_own_or_empty`` those of empty
        servers (kept per cluster state: growth checks ask it for every watched job)."""
        cl = self.cluster
        if self._room_key != cl.version:
            self._room_key = cl.version
            self._room = {}
        if type(classes) is not tuple:
            classes = tuple(classes)
        room = self._room.get(classes)
        if room is None:
            if self.rules.extras_own_or_empty:
                g = cl.gpus_per_server
                room = sum(len(cl.buckets[c][g]) for c in classes) * g
            else:
                room = sum(cl.free_total[c] for c in classes)
            self._room[classes] = room
        return room

    def bound_levels(
        self, job: Job
    ) -> tuple[list[float], list[tuple[tuple[int, ...], float]], bool, int]:
        """``(p, levels)``: a bound of every grow of running ``job`` that holds whatever
        the cluster's free GPUs become while the job's own allocation stays as it is.

        For ``k`` more GPUs, ``rate_with(job, n0 + k) <= p[k] x speed`` for some level
        ``(classes, speed)`` with ``extra_room(classes) + own >= k``; ``p`` is
        non-decreasing. ``own`` is the job's own servers' free GPUs that ``extra_room``
        does not count (0 without ``extras_own_or_empty``: every free GPU counts there);
        it holds only until one of those servers gains a free GPU (``release_log``). When
        the job's own servers are full now (``full`` true) ``p`` counts the new server any
        grow must take, and the bound holds only until one of them gains a free GPU;
        otherwise ``p`` assumes compact placement over its own servers and holds whatever
        happens. A policy can thus tell from the room per class (and its servers'
        releases) when a job's grows may become worth checking again. Returns
        ``(p, levels, full, own)``."""
        free = self.cluster.free
        own_free = 0
        for s in job.placement:
            own_free += free[s]
        full = not own_free
        own = own_free if self.rules.extras_own_or_empty else 0
        _, levels, p_full, p_free = self._bound_info(job)  # kept per allocation version
        return (p_full if full else p_free), levels, full, own

    def _levels(self, job: Job) -> list[tuple[tuple[int, ...], float]]:
        """``(classes within reach, speed)`` per class the job may use: a grow whose
        slowest new GPUs are of that class reaches the free GPUs of the classes at least as
        fast and runs at most at that speed (and its own servers' slowest)."""
        cl = self.cluster
        own_speed = self.slowest_speed(job.placement)
        orders = self._class_orders(job)
        key = (own_speed, orders)  # all it depends on: kept (jobs share a few)
        levels = self._levels_memo.get(key)
        if levels is not None:
            return levels
        base_cls, extra_cls = orders
        allowed = [c for c in (TRAINING, LENT) if c in base_cls or c in extra_cls]
        speeds = (cl.cfg.training_gpu_speed, cl.cfg.inference_gpu_speed)
        levels = []
        for c in allowed:
            reach = tuple(c2 for c2 in allowed if speeds[c2] >= speeds[c])
            levels.append((reach, min(speeds[c], own_speed)))
        self._levels_memo[key] = levels  # shared: callers only read it
        return levels

    def _bound_prefix(self, job: Job, full: bool) -> list[float]:
        """``p[k]``: the largest ``speedup(n) x factor`` over ``n = n0 + 1 .. n0 + k`` at
        the fewest servers the job could span: its own, plus a new one when ``full`` (its
        servers have no free GPU). Memoised by everything it depends on."""
        n0 = job.n_gpus
        n_own = len(job.placement)
        g = self.cluster.gpus_per_server
        key = (id(job.speedup), job.profile.name, n0, n_own, full, job.max_gpus, g)
        hit = self._bounds.get(key)
        if hit is not None:
            return hit
        out = [0.0]
        best = 0.0
        for n in range(n0 + 1, job.max_gpus + 1):
            min_servers = (n + g - 1) // g
            extra = n_own + (1 if full else 0) - min_servers
            extra = extra if extra > 0 else 0
            factor = job.profile.placement_factor(extra, min_servers) if extra else 1.0
            r = job.speedups[n] * factor
            best = r if r > best else best  # max(best, r)
            out.append(best)
        self._bounds[key] = out
        return out
