"""Pictures of an episode for both envs: ``render_mode="ansi"`` (a text frame) and
``render_mode="rgb_array"`` (an ``(H, W, 3)`` ``uint8`` image).

Both draw the same :class:`Frame`, the engine's state at the current decision plus the
decision being made:

* the two pools (busy GPUs, lent servers, servers inference needs),
* every training server and every lent server with the jobs on its GPUs (the text frame
  gives each job a letter, the picture a colour),
* the queue (requested GPUs, time waited) and the running jobs (GPUs, rate, servers),
* the decision: the round's pending allocation in ``Allocate-v0``, the servers picked so
  far in ``Reclaim-v0``,
* a sparkline of the busy share of all GPUs over the episode.

The envs call :func:`render_env` from ``render()``; :func:`ansi_frame` and
:func:`rgb_frame` draw any engine, so a simulator run can be shown the same way. The
picture is drawn on a matplotlib Agg canvas created for the call (matplotlib's global
backend is left alone) and always has the same size (``FIGSIZE`` x ``DPI``), as video
writers need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from aryl_gym.envs.allocation_round import AllocationRound
from aryl_gym.envs.reclaim_round import ReclaimRound
from aryl_gym.sim.cluster import LENT, TRAINING
from aryl_gym.sim.job import Job

if TYPE_CHECKING:
    from aryl_gym.sim.engine import Engine

#: The render modes of both envs (``metadata["render_modes"]``).
RENDER_MODES = ("ansi", "rgb_array")
#: Frames per second a recorder plays the frames at (``metadata["render_fps"]``).
RENDER_FPS = 4
#: Size of the ``rgb_array`` picture: inches x dots per inch = 800 x 480 pixels.
FIGSIZE, DPI = (10.0, 6.0), 80

#: Glyphs of the jobs on a server line of the text frame; more jobs share ``"*"``.
GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
FREE_GLYPH = "."
SPARK = "▁▂▃▄▅▆▇█"

# colours (RGB 0-255) of the picture
_PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232),
        (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
        (247, 182, 210), (219, 219, 141), (158, 218, 229), (127, 127, 127), (57, 59, 121),
    ],
    dtype=np.uint8,
)  # fmt: skip
_FREE = (236, 236, 236)  # a free GPU of the training pool
_FREE_LENT = (205, 235, 205)  # a free GPU of a lent server
_SERVING = (70, 90, 125)  # an inference server serving inference
_IDLE = (190, 190, 190)  # an inference server neither lent nor needed (about to be lent)
_GAP = (255, 255, 255)


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` when it is ``None`` or one of :data:`RENDER_MODES`, else ``ValueError``."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"render_mode must be None or one of {', '.join(map(repr, RENDER_MODES))}, "
            f"got {render_mode!r}"
        )
    return render_mode


def job_color(idx: int) -> np.ndarray:
    """The RGB colour of job ``idx`` in the picture (a 20-colour palette, cycled)."""
    return _PALETTE[idx % len(_PALETTE)]


# --------------------------------------------------------------------------- the frame
@dataclass(frozen=True)
class Frame:
    """What one picture shows: ``engine`` (``None`` before the first reset), a ``title``
    line, the ``decision`` being made (one line), the ``returning`` servers already picked
    in a reclaim, and ``time_offset_s`` (engine clock + offset = the workload's clock, for
    the time of day)."""

    engine: Engine | None
    title: str
    decision: str = ""
    returning: tuple[int, ...] = ()
    time_offset_s: float = 0.0


def env_frame(env: Any) -> Frame:
    """The :class:`Frame` of an ``Allocate-v0`` / ``Reclaim-v0`` env (unwrapped) now."""
    spec_id = env.spec.id if env.spec is not None else type(env).__name__
    ep = env.spec_
    if env.engine is None or ep is None:
        return Frame(None, f"{spec_id} · {env.scenario.name}", "no episode yet: call reset()")
    title = (
        f"{spec_id} · {env.scenario.name} · {ep.split} split · "
        f"window {fmt_duration(ep.start_s)}–{fmt_duration(ep.end_s)}"
    )
    rnd = env.round
    returning: tuple[int, ...] = ()
    if env._done:
        decision = "episode over"
    elif isinstance(rnd, AllocationRound):
        decision = allocation_decision(rnd, env.engine)
    elif isinstance(rnd, ReclaimRound):
        decision = reclaim_decision(rnd, env.reclaims)
        returning = tuple(rnd.picked)
    else:  # an env of another kind
        decision = ""
    return Frame(env.engine, title, decision, returning, ep.time_offset_s)


def allocation_decision(rnd: AllocationRound, engine: Engine) -> str:
    """The allocate round in progress: its number, the actions taken and the pending
    changes (``start``, ``grow``, ``shrink``, ``stop``) in the order they were first made."""
    changes = []
    for idx, target in rnd.pending.items():
        job = engine.jobs[idx]
        now = job.n_gpus
        if target == now:
            continue
        if now == 0:
            changes.append(f"start {job.job_id}@{target}")
        elif target == 0:
            changes.append(f"stop {job.job_id}")
        else:
            verb = "grow" if target > now else "shrink"
            changes.append(f"{verb} {job.job_id} {now}→{target}")
    head = f"round {rnd.rounds}, {rnd.n_taken} action{'s' if rnd.n_taken != 1 else ''}"
    if rnd.last_invalid:
        head += " (last invalid)"
    return f"{head}: " + (", ".join(changes) if changes else "no change yet")


def reclaim_decision(rnd: ReclaimRound, n_reclaim: int) -> str:
    """The reclaim in progress: how many lent servers go back and those picked so far."""
    picked = ", ".join(f"s{s}" for s in rnd.picked) or "none yet"
    return f"reclaim {n_reclaim}: return {rnd.k} lent server(s); picked {picked} ({rnd.picks_left} left)"


def render_env(env: Any) -> str | np.ndarray | None:
    """``env.render()`` of both envs: the frame in ``env.render_mode`` (``None`` without one,
    with Gymnasium's warning)."""
    mode = env.render_mode
    if mode is None:
        import gymnasium as gym

        gym.logger.warn(
            "render() called without a render_mode; pass render_mode='ansi' or 'rgb_array' "
            "to gymnasium.make"
        )
        return None
    frame = env_frame(env)
    return ansi_frame(frame) if mode == "ansi" else rgb_frame(frame)


# --------------------------------------------------------------------------- helpers
def fmt_duration(seconds: float) -> str:
    """``93784`` -> ``"1d 02:03:04"``; under a day ``"02:03:04"``."""
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def usage_series(engine: Engine) -> np.ndarray:
    """Busy share of all GPUs at the engine's samples, then now (values in ``[0, 1]``)."""
    cl = engine.cluster
    total = max(cl.n_servers * cl.gpus_per_server, 1)
    s = engine.metrics.series
    busy = np.add(s["busy_training"], s["busy_lent"], dtype=float)
    return np.append(busy, cl.busy[TRAINING] + cl.busy[LENT]) / total


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """The last ``width`` values in ``[0, 1]`` as block characters."""
    v = np.clip(np.asarray(values, float)[-width:], 0.0, 1.0)
    return "".join(SPARK[min(int(x * len(SPARK)), len(SPARK) - 1)] for x in v)


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def _elastic(job: Job) -> str:
    """``" (elastic 1-4)"`` for an elastic job, else ``""``."""
    return f" (elastic {job.min_gpus}-{job.max_gpus})" if job.elastic else ""


def _capped(items: list[str], limit: int, sep: str = "\n") -> str:
    more = len(items) - limit
    return sep.join(items[:limit] + ([f"… and {more} more"] if more > 0 else []))


# --------------------------------------------------------------------------- ansi
def ansi_frame(frame: Frame, *, max_lines: int = 40) -> str:
    """The text frame of ``frame``: a header, the pools, one line per training or lent
    server (its GPUs as job letters, ``.`` free, then the letters' job ids and GPU
    counts), the inference servers not lent, the queue, the running jobs, the decision
    and the usage sparkline. Each list shows at most ``max_lines`` entries, then
    ``… and N more``."""
    e = frame.engine
    lines = [frame.title]
    if e is None:
        lines.append(frame.decision)
        return "\n".join(lines) + "\n"
    cl = e.cluster
    g = cl.gpus_per_server
    n_inf = cl.n_servers - cl.n_training
    lines.append(
        f"t = {fmt_duration(e.t)} into the episode (clock {fmt_duration(frame.time_offset_s + e.t)})"
        f" · jobs: {len(e.queue)} queued, {len(e.running)} running, {e.n_done} done"
    )
    lines.append(
        f"training pool:  {cl.n_training} servers, {cl.busy[TRAINING]}/{cl.n_training * g} GPUs busy"
    )
    lines.append(
        f"inference pool: {n_inf} servers, {cl.n_lent} lent ({cl.busy[LENT]}/{cl.n_lent * g} "
        f"GPUs busy), inference needs {e.needed}"
    )
    server_lines, glyph_of = [], {}
    for s in list(range(cl.n_training)) + list(cl.lent_order):
        on = cl.jobs_on[s]
        cells, legend = "", []
        for j, n in on.items():
            glyph = glyph_of.setdefault(
                j, GLYPHS[len(glyph_of)] if len(glyph_of) < len(GLYPHS) else "*"
            )
            cells += glyph * n
            legend.append(f"{glyph}={e.jobs[j].job_id}×{n}")
        cells += FREE_GLYPH * (g - len(cells))
        if s < cl.n_training:
            where = "training"
        else:
            where = f"lent {fmt_duration(e.t - cl.lent_at[s])}"
            if s in frame.returning:
                where += " ← returning"
        server_lines.append(f"  s{s:<4} [{cells}] {where:<22} {' '.join(legend)}".rstrip())
    lines.append("servers:")
    lines.append(_capped(server_lines, max_lines))
    unlent = cl.unlent
    if unlent:
        lines.append(f"  not lent: {_server_ranges(unlent)}")
    queue = [
        f"  {j.job_id}: asks {_gpus(j.gpus)}{_elastic(j)}, waiting {fmt_duration(e.t - j.queued_since)}"
        for j in e.queue.values()
    ]
    lines.append(f"queue ({len(queue)}):")
    if queue:
        lines.append(_capped(queue, max_lines))
    running = []
    for j in e.running.values():
        paused = " paused" if j.pause_until > e.t else ""
        servers = ",".join(f"s{s}" for s in sorted(j.placement))
        running.append(
            f"  {j.job_id}: {_gpus(j.n_gpus)}{f' of {j.gpus} asked' if j.n_gpus != j.gpus else ''}"
            f"{_elastic(j)}, rate {j.rate:.2f}{paused} on {servers}"
        )
    lines.append(f"running ({len(running)}):")
    if running:
        lines.append(_capped(running, max_lines))
    lines.append(f"decision: {frame.decision}")
    u = usage_series(e)
    lines.append(f"GPUs busy {sparkline(u)} {u[-1]:.0%} now")
    return "\n".join(lines) + "\n"


def _server_ranges(servers: Sequence[int]) -> str:
    """``[8, 9, 10, 12]`` -> ``"s8-s10, s12"``."""
    out, start, prev = [], None, None
    for s in list(servers) + [None]:
        if start is not None and (s is None or s != prev + 1):
            out.append(f"s{start}" if start == prev else f"s{start}-s{prev}")
            start = None
        if s is not None and start is None:
            start = s
        prev = s
    return ", ".join(out)


# --------------------------------------------------------------------------- rgb_array
def server_cells(
    engine: Engine, servers: Sequence[int], returning: Sequence[int] = ()
) -> np.ndarray:
    """An ``(len(servers), gpus_per_server, 3)`` ``uint8`` array: each row a server, each
    cell a GPU coloured by its job (:func:`job_color`), or by the server's state when
    free (training, lent, serving inference, idle; returning lent servers are darkened)."""
    cl = engine.cluster
    g = cl.gpus_per_server
    img = np.empty((len(servers), g, 3), np.uint8)
    n_serving = engine.needed
    serving_left = n_serving
    for row, s in enumerate(servers):
        if s < cl.n_training:
            img[row] = _FREE
        elif cl.lent[s]:
            img[row] = _FREE_LENT
        else:
            img[row] = _SERVING if serving_left > 0 else _IDLE
            serving_left -= 1
        col = 0
        for j, n in cl.jobs_on[s].items():
            img[row, col : col + n] = job_color(j)
            col += n
        if s in returning:
            img[row] = img[row] // 2
    return img


def _panel(cells: np.ndarray, max_rows: int = 40) -> np.ndarray:
    """Server rows wrapped into columns of at most ``max_rows``, one blank GPU between
    columns."""
    n, g = cells.shape[:2]
    if n == 0:
        return np.full((1, g, 3), 255, np.uint8)
    n_cols = math.ceil(n / max_rows)
    rows = math.ceil(n / n_cols)
    out = np.full((rows, n_cols * (g + 1) - 1, 3), _GAP, np.uint8)
    for i in range(n):
        c, r = divmod(i, rows)
        out[r, c * (g + 1) : c * (g + 1) + g] = cells[i]
    return out


def _draw_servers(ax, panel: np.ndarray, servers: Sequence[int]) -> None:
    """``panel`` on ``ax`` with white lines between servers and their ids as labels (when
    the servers fit in one column of at most 24 rows)."""
    _image(ax, panel)
    rows = panel.shape[0]
    if rows <= 64:
        ax.hlines(np.arange(rows - 1) + 0.5, -0.5, panel.shape[1] - 0.5, color="white", lw=1.5)
    if len(servers) == rows and rows <= 24:
        for r, s in enumerate(servers):
            ax.text(-0.6, r, f"s{s}", fontsize=7, ha="right", va="center")


def _image(ax, img: np.ndarray) -> None:
    """``img`` filling ``ax``, no ticks (tick objects dominate the drawing time)."""
    ax.imshow(img, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    ax.add_patch(_frame_patch(ax))


def _frame_patch(ax):
    from matplotlib.patches import Rectangle

    return Rectangle(
        (0, 0), 1, 1, transform=ax.transAxes, fill=False, ec="0.4", lw=0.8, clip_on=False
    )


def rgb_frame(frame: Frame) -> np.ndarray:
    """The picture of ``frame``: the training pool and the inference pool (lent servers
    first, in lending order, then the servers serving inference and the idle ones), one
    row per server and one cell per GPU coloured by job; the queue as a strip of job
    colours (one cell per requested GPU); the busy share of all GPUs over the episode;
    the title, the time and the decision as text. Always ``FIGSIZE x DPI`` pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    e = frame.engine
    fig.text(0.01, 0.97, frame.title, fontsize=11, weight="bold", va="top")
    fig.text(0.01, 0.025, f"decision: {_clip(frame.decision, 120)}", fontsize=9, va="bottom")
    if e is not None:
        _draw_state(fig, frame, e)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _draw_state(fig, frame: Frame, e: Engine) -> None:
    cl = e.cluster
    g = cl.gpus_per_server
    fig.text(
        0.01,
        0.915,
        f"t = {fmt_duration(e.t)} (clock {fmt_duration(frame.time_offset_s + e.t)})   "
        f"queued {len(e.queue)} · running {len(e.running)} · done {e.n_done}   "
        f"lent {cl.n_lent} · inference needs {e.needed}",
        fontsize=9,
        va="top",
    )
    training = list(range(cl.n_training))
    inference = list(cl.lent_order) + list(cl.unlent)
    for x0, servers, label in (
        (0.05, training, f"training pool: {cl.busy[TRAINING]}/{len(training) * g} GPUs busy"),
        (
            0.54,
            inference,
            f"inference pool: {cl.n_lent} lent, {cl.busy[LENT]}/{cl.n_lent * g} GPUs busy",
        ),
    ):
        ax = fig.add_axes((x0, 0.38, 0.43, 0.46))
        _draw_servers(ax, _panel(server_cells(e, servers, frame.returning)), servers)
        ax.set_title(label, fontsize=9)
    from matplotlib.patches import Patch

    fig.legend(
        handles=[
            Patch(facecolor=np.divide(c, 255), edgecolor="0.6", label=t)
            for c, t in (
                (_FREE, "free GPU"),
                (_FREE_LENT, "free GPU, lent server"),
                (_SERVING, "serving inference"),
                (_IDLE, "idle inference server"),
            )
        ],
        loc="upper right",
        bbox_to_anchor=(0.99, 0.995),
        ncol=2,
        fontsize=7,
        frameon=False,
    )
    # the queue: one cell per requested GPU, coloured by job (the first 256 GPUs)
    ax = fig.add_axes((0.05, 0.25, 0.92, 0.06))
    strip = [job_color(j.idx) for j in e.queue.values() for _ in range(j.gpus)][:256]
    row = np.full((4, 64, 3), 255, np.uint8)
    if strip:
        row.reshape(-1, 3)[: len(strip)] = strip
    _image(ax, row)
    ax.set_title(f"queue: {len(e.queue)} jobs, one cell per requested GPU", fontsize=8, loc="left")
    # usage over the episode
    ax = fig.add_axes((0.05, 0.09, 0.92, 0.12))
    u = usage_series(e)
    ax.fill_between(np.arange(len(u)), u, step="post", color="#4c72b0", alpha=0.8)
    ax.set_xlim(0, max(len(u) - 1, 1))
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    ax.add_patch(_frame_patch(ax))
    ax.set_title(
        f"busy share of all GPUs over the episode: {u[-1]:.0%} now", fontsize=8, loc="left"
    )
