"""Training callbacks: episode metrics to TensorBoard, validation evaluation through the
one evaluation path (``aryl_gym.evaluate`` with the agent's masks), best model,
checkpoints and a progress bar.

The TensorBoard scalars are ``episode/<key>`` and ``eval/<key>`` for the catalog's
``EPISODE_METRICS`` and ``invalid_actions`` (:mod:`aryl_gym.sim.catalog`; values in the
stored units, the keys say which), plus ``eval/<metric>_over_aryl`` and
``eval/best_<metric>``."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from aryl_gym.sim.catalog import EPISODE_METRICS, metric

#: The summary keys logged per episode and per evaluation (``eval_log.csv``'s columns).
EPISODE_KEYS: tuple[str, ...] = tuple(m.key for m in EPISODE_METRICS)
#: The agent's own metric, logged besides them.
INVALID = metric("invalid_actions").key


class EpisodeMetricsCallback(BaseCallback):
    """Logs ``episode/<key>`` (means over the episodes finished since the last dump) from
    the final step's ``info["summary"]`` for the catalog's ``EPISODE_METRICS`` (average
    JCT, queueing, usage, preemptions, lost GPU-hours, unfinished jobs), and the episode's
    invalid actions."""

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            s = info.get("summary")
            if s is None:
                continue
            for k in EPISODE_KEYS:
                v = s.get(k)
                if v is not None and np.isfinite(v):
                    self.logger.record_mean(f"episode/{k}", float(v))
            self.logger.record_mean(f"episode/{INVALID}", float(info.get(INVALID, 0)))
        return True


def make_agent_policy(model, env, masked: bool):
    """An ``aryl_gym.evaluation.AgentPolicy`` acting with ``model`` (deterministic)."""
    from aryl_gym.evaluation import AgentPolicy

    if masked:

        def act(obs, mask):
            return int(model.predict(obs, action_masks=mask, deterministic=True)[0])
    else:

        def act(obs, mask):
            return int(model.predict(obs, deterministic=True)[0])

    return AgentPolicy.from_env(env, act)


def eval_kwargs_for(env_id: str, env_kwargs: dict) -> dict:
    """The ``aryl_gym.evaluate`` keywords that reproduce the env's episodes."""
    from aryl_gym.evaluation import EPISODE_KEYS

    kw = {k: v for k, v in env_kwargs.items() if k != "scenario"}
    if "Allocate" in env_id:
        kw = {k: v for k, v in kw.items() if k in EPISODE_KEYS}
    return kw


def run_eval(model, env, env_id, env_kwargs, split, seeds, masked=True, policy=None):
    """Summary rows of the model (or of the heuristic ``policy``) on ``split``."""
    from aryl_gym.evaluation import evaluate

    kind = "allocate" if "Allocate" in env_id else "reclaim"
    p = policy if policy is not None else make_agent_policy(model, env, masked)
    return evaluate(
        p,
        env_kwargs.get("scenario", "small"),
        split,
        seeds,
        env=kind,
        progress=False,  # inside the training bar
        **eval_kwargs_for(env_id, env_kwargs),
    )


class ValEvalCallback(BaseCallback):
    """Every ``eval_freq`` env steps (and at the start): the deterministic, masked agent
    on the validation windows ``seeds``; logs ``eval/*`` and the ratio to Aryl on the same
    windows, writes a CSV row, and saves ``best_model.zip`` when ``metric`` improves
    (lower is better)."""

    def __init__(
        self,
        eval_env,
        env_id: str,
        env_kwargs: dict,
        out_dir: Path,
        eval_freq: int,
        seeds,
        metric: str,
        split: str = "val",
        masked: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.eval_env = eval_env
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs)
        self.out = Path(out_dir)
        self.eval_freq, self.seeds, self.metric, self.split = (
            int(eval_freq),
            list(seeds),
            metric,
            split,
        )
        self.masked = masked
        self.best = np.inf
        self.last = -np.inf
        self.t0 = time.perf_counter()
        self.csv = self.out / "eval_log.csv"
        self.ref = None

    def _init_callback(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        ref = run_eval(
            None, self.eval_env, self.env_id, self.env_kwargs, self.split, self.seeds, policy="aryl"
        )
        self.ref = {k: float(np.mean([r[k] for r in ref])) for k in EPISODE_KEYS}
        if not self.csv.exists():
            with self.csv.open("w", newline="") as f:
                csv.writer(f).writerow(
                    ["timesteps", "wall_s", *EPISODE_KEYS, INVALID, f"aryl_{self.metric}"]
                )

    def evaluate_now(self) -> float:
        """Evaluate the current model on the validation windows; returns the metric (inf
        when the agent hit the step guard in an episode: it is then not a best model)."""
        from aryl_gym.evaluation import StepLimitExceeded, evaluate

        agent = make_agent_policy(self.model, self.eval_env, self.masked)
        kind = "allocate" if "Allocate" in self.env_id else "reclaim"
        try:
            rows = evaluate(
                agent,
                self.env_kwargs.get("scenario", "small"),
                self.split,
                self.seeds,
                env=kind,
                progress=False,  # inside the training bar
                **eval_kwargs_for(self.env_id, self.env_kwargs),
            )
        except StepLimitExceeded as exc:  # a stuck policy must not end (or hang) training
            print(f"validation at {self.num_timesteps} steps stopped: {exc}")
            rows = [{k: np.nan for k in (*EPISODE_KEYS, INVALID)}]
        invalid = float(np.sum([r.get(INVALID, 0) for r in rows]))
        means = {k: float(np.nanmean([r[k] for r in rows])) for k in EPISODE_KEYS}
        for k, v in means.items():
            self.logger.record(f"eval/{k}", v)
        self.logger.record(f"eval/{INVALID}", invalid / len(self.seeds))
        ref = self.ref[self.metric]
        if ref > 0:
            self.logger.record(f"eval/{self.metric}_over_aryl", means[self.metric] / ref)
        value = means[self.metric]
        if not np.isfinite(value):
            value = np.inf
        with self.csv.open("a", newline="") as f:
            csv.writer(f).writerow(
                [
                    self.num_timesteps,
                    round(time.perf_counter() - self.t0, 1),
                    *means.values(),
                    invalid / len(self.seeds),
                    ref,
                ]
            )
        if value < self.best:
            self.best = value
            self.model.save(self.out / "best_model.zip")
            if self.verbose:
                print(f"new best {self.metric}={value:.4g} at {self.num_timesteps} steps")
        self.logger.record(f"eval/best_{self.metric}", self.best)
        self.last = self.num_timesteps
        return value

    def _on_training_start(self) -> None:
        self.evaluate_now()
        self.logger.dump(self.num_timesteps)

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last >= self.eval_freq:
            self.evaluate_now()
        return True


class TqdmCallback(BaseCallback):
    """A tqdm progress bar over the run's timesteps (no ``rich`` needed)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = int(total)
        self.bar = None

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.total, initial=0, unit="step", dynamic_ncols=True, mininterval=2.0
        )
        self._n = self.num_timesteps

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self._n)
        self._n = self.num_timesteps
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = [
    "EpisodeMetricsCallback",
    "TqdmCallback",
    "ValEvalCallback",
    "make_agent_policy",
    "run_eval",
]
