"""Tests of the synthetic training-workload generator."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aryl_gym.workload.generator import (
    WorkloadConfig,
    generate_jobs,
    mean_gpu_hours_per_job,
    offered_gpus,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
COLS = ("job_id", "submit_time", "gpus", "duration", "elastic", "min_gpus", "max_gpus", "profile")


def small(**kw) -> WorkloadConfig:
    return replace(WorkloadConfig(days=3.0, jobs_per_day=2000.0), **kw)


def test_same_seed_same_table_different_seed_different():
    a, b, c = generate_jobs(small(), 7), generate_jobs(small(), 7), generate_jobs(small(), 8)
    for col in COLS:
        assert np.array_equal(getattr(a, col), getattr(b, col)), col
    assert len(a) != len(c) or not np.array_equal(a.submit_time, c.submit_time)
    assert not np.array_equal(a.duration[:100], c.duration[:100])


def test_submit_times_sorted_non_negative_within_horizon():
    cfg = small(days=2.5)
    t = generate_jobs(cfg, 1).submit_time
    assert t.dtype == np.float64 and t.size > 0
    assert np.all(t >= 0) and np.all(np.diff(t) >= 0) and t[-1] <= cfg.days * 86400


def test_gpu_values_only_from_config_and_durations_clipped():
    cfg = small(
        gpu_values=(1, 3, 5),
        gpu_probs=(0.5, 0.3, 0.2),
        duration_by_gpus=((0.1, 3600.0, 1.0),) * 3,
        duration_min_s=120.0,
        duration_max_s=86400.0,
    )
    jobs = generate_jobs(cfg, 2)
    assert set(np.unique(jobs.gpus)) <= {1, 3, 5}
    assert jobs.duration.min() >= 120.0 and jobs.duration.max() <= 86400.0
    shares = np.array([(jobs.gpus == g).mean() for g in (1, 3, 5)])
    assert np.allclose(shares, (0.5, 0.3, 0.2), atol=0.03)


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_elastic_share_and_min_max_defaults(share):
    jobs = generate_jobs(small(jobs_per_day=20000.0 / 3.0, elastic_share=share), 3)
    assert len(jobs) > 18000
    assert abs(jobs.elastic.mean() - share) < 0.015
    g, e = jobs.gpus, jobs.elastic
    assert np.array_equal(jobs.min_gpus[e], np.maximum(1, g[e] // 2))
    assert np.array_equal(jobs.max_gpus[e], 2 * g[e])
    assert np.array_equal(jobs.min_gpus[~e], g[~e]) and np.array_equal(jobs.max_gpus[~e], g[~e])


@pytest.mark.parametrize(("fraction", "factor"), [(0.25, 1.5), (1.0, 1.0), (0.75, 3.0)])
def test_elastic_range_follows_the_fraction_and_factor(fraction, factor):
    cfg = small(elastic_share=1.0, elastic_min_fraction=fraction, elastic_max_factor=factor)
    jobs = generate_jobs(cfg, 5)
    g = jobs.gpus
    want_min = np.clip(np.floor(g * fraction), 1, g)
    want_max = np.maximum(g, np.floor(g * factor))
    assert np.array_equal(jobs.min_gpus, want_min)
    assert np.array_equal(jobs.max_gpus, want_max)
    assert (jobs.min_gpus <= g).all() and (g <= jobs.max_gpus).all()
    # the range changes nothing else: same submits, sizes and durations as the defaults
    ref = generate_jobs(small(elastic_share=1.0), 5)
    for col in ("submit_time", "gpus", "duration", "elastic", "profile"):
        assert np.array_equal(getattr(jobs, col), getattr(ref, col)), col


def test_profiles_come_from_the_mix():
    jobs = generate_jobs(small(profile_mix=(("bert", 0.25), ("ncf", 0.75))), 4)
    assert set(jobs.profile) == {"bert", "ncf"}
    assert abs((jobs.profile == "ncf").mean() - 0.75) < 0.03
    default = set(generate_jobs(small(), 4).profile)
    assert default <= {"bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3"}


def test_arrival_profile_follows_diurnal_shape():
    cfg = WorkloadConfig(days=21.0)
    t = generate_jobs(cfg, 5).submit_time
    assert abs(t.size / cfg.days - cfg.jobs_per_day) / cfg.jobs_per_day < 0.03
    counts = np.bincount(((t % 86400) // 3600).astype(int), minlength=24)
    observed = counts / counts.mean()
    expected = np.asarray(cfg.diurnal) / np.mean(cfg.diurnal)
    assert np.max(np.abs(observed / expected - 1)) < 0.2
    assert np.corrcoef(observed, expected)[0, 1] > 0.98
    daily = np.bincount((t // 86400).astype(int), minlength=21)
    weekly = daily.reshape(3, 7).mean(axis=0)
    assert weekly[5:].mean() < 0.85 * weekly[:5].mean()  # Venus weekends are quieter


def test_larger_jobs_hold_most_gpu_hours():
    jobs = generate_jobs(WorkloadConfig(days=5.0), 6)
    gh = jobs.gpus * jobs.duration
    assert gh[jobs.gpus >= 8].sum() / gh.sum() > 0.85
    assert np.median(jobs.duration[jobs.gpus >= 16]) > np.median(jobs.duration[jobs.gpus == 1])


def test_offered_load_matches_sample():
    cfg = WorkloadConfig(days=30.0)
    jobs = generate_jobs(cfg, 9)
    sample = float((jobs.gpus * jobs.duration).mean() / 3600.0)
    assert abs(sample / mean_gpu_hours_per_job(cfg) - 1) < 0.1
    assert offered_gpus(cfg.scaled(0.5)) == pytest.approx(0.5 * offered_gpus(cfg))


def test_scaled_keeps_shape():
    cfg = WorkloadConfig()
    s = cfg.scaled(0.5)
    assert s.jobs_per_day == pytest.approx(1700.0)
    assert replace(s, jobs_per_day=cfg.jobs_per_day) == cfg
    with pytest.raises(ValueError, match="load"):
        cfg.scaled(-1.0)


def test_zero_rate_gives_empty_table():
    jobs = generate_jobs(small(jobs_per_day=0.0), 0)
    assert len(jobs) == 0


def test_default_workload_has_fifty_thousand_jobs():
    # its generation time is a benchmark (scripts/benchmark_sim.py), not a test
    jobs = generate_jobs(WorkloadConfig(), 0)
    assert len(jobs) > 48000


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"days": 0.0}, "days"),
        ({"jobs_per_day": -1.0}, "jobs_per_day"),
        ({"diurnal": (1.0,) * 23}, "diurnal"),
        ({"diurnal": (-1.0,) + (1.0,) * 23}, "diurnal"),
        ({"weekly": (1.0,) * 6}, "weekly"),
        ({"gpu_probs": (0.5, 0.5, 0, 0, 0, 0, 0.5)}, "gpu_probs"),
        ({"gpu_probs": (1.0,)}, "gpu_probs"),
        ({"gpu_values": (1, 2, 4, 8, 16, 32, 0)}, "gpu_values"),
        ({"duration_by_gpus": ((0.1, 3600.0, 1.0),)}, "duration_by_gpus"),
        ({"duration_by_gpus": ((1.5, 3600.0, 1.0),) * 7}, "duration_by_gpus"),
        ({"duration_short": (0.0, 1.0)}, "duration_short"),
        ({"duration_min_s": 10.0, "duration_max_s": 5.0}, "duration_min_s"),
        ({"elastic_share": 1.2}, "elastic_share"),
        ({"elastic_share": -0.1}, "elastic_share"),
        ({"elastic_min_fraction": 0.0}, "elastic_min_fraction"),
        ({"elastic_min_fraction": 1.5}, "elastic_min_fraction"),
        ({"elastic_min_fraction": math.nan}, "elastic_min_fraction"),
        ({"elastic_max_factor": 0.9}, "elastic_max_factor"),
        ({"elastic_max_factor": math.inf}, "elastic_max_factor"),
        ({"profile_mix": (("bert", 0.5), ("ncf", 0.2))}, "profile_mix"),
        ({"profile_mix": (("bert", 1.5), ("ncf", -0.5))}, "profile_mix"),
    ],
)
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        WorkloadConfig(**kw)


def test_defaults_are_normalised():
    cfg = WorkloadConfig()
    assert len(cfg.diurnal) == 24 and abs(np.mean(cfg.diurnal) - 1) < 0.01
    assert len(cfg.weekly) == 7 and abs(np.mean(cfg.weekly) - 1) < 0.01
    assert abs(sum(cfg.gpu_probs) - 1) < 1e-9


@pytest.mark.shared
def test_defaults_match_a_fresh_fit_of_the_traces():
    if not (SHARED / "traces").is_dir():
        pytest.skip(f"real traces not present at {SHARED / 'traces'}")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import calibrate_workload as cw

    hourly, weekly = cw.fit_arrivals(cw.load_venus(SHARED / "traces"))
    cfg = WorkloadConfig()
    assert np.allclose(hourly, cfg.diurnal, atol=1e-3)
    assert np.allclose(weekly, cfg.weekly, atol=1e-3)
    assert np.allclose(cw.fit_gpu_probs(cw.load_itp(SHARED / "traces")), cfg.gpu_probs, atol=1e-4)
