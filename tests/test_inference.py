"""Tests of the inference-demand curves."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aryl_gym.workload.inference import (
    CURVES,
    InferenceConfig,
    build_demand,
    peak_to_trough,
    utilisation_week,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WEEK = 7 * 86400.0


def test_required_curves_present():
    for name in ("flat", "diurnal", "servegen-llm-large", "servegen-llm-small", "sd-requests"):
        assert name in CURVES and CURVES[name]


@pytest.mark.parametrize("curve", list(CURVES))
def test_bounds_shape_determinism(curve):
    cfg = InferenceConfig(curve=curve, noise=0.1, reserve_servers=2)
    times, needed = build_demand(cfg, 40, 15 * 86400.0, seed=3)
    assert times.dtype == np.float64 and needed.dtype == np.int64
    assert times.shape == needed.shape == (15 * 144,)
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    assert np.allclose(np.diff(times), 600.0)
    assert needed.min() >= 0 and needed.max() <= 38
    t2, n2 = build_demand(cfg, 40, 15 * 86400.0, seed=3)
    assert np.array_equal(times, t2) and np.array_equal(needed, n2)
    if curve != "sd-requests":  # sd-requests sits at 0 for hours; noise cannot move 0
        _, n3 = build_demand(cfg, 40, 15 * 86400.0, seed=4)
        assert not np.array_equal(needed, n3)


@pytest.mark.parametrize("curve", list(CURVES))
@pytest.mark.parametrize("peak", [0.5, 0.9, 1.0])
def test_peak_utilisation_respected(curve, peak):
    n = 37
    _, needed = build_demand(InferenceConfig(curve=curve, peak_utilisation=peak), n, WEEK, seed=0)
    assert needed.max() == math.ceil(n * peak - 1e-9)
    assert utilisation_week(
        InferenceConfig(curve=curve, peak_utilisation=peak)
    ).max() == pytest.approx(peak)


@pytest.mark.parametrize("curve", [c for c in CURVES if c != "flat"])
def test_trough_utilisation_rescales(curve):
    cfg = InferenceConfig(curve=curve, peak_utilisation=0.8, trough_utilisation=0.2)
    u = utilisation_week(cfg)
    assert u.min() == pytest.approx(0.2) and u.max() == pytest.approx(0.8)
    assert 1.0 < peak_to_trough(cfg) <= 4.0 + 1e-9


def test_peak_to_trough_values():
    assert peak_to_trough(InferenceConfig(curve="flat")) == pytest.approx(1.0)
    assert 3.0 < peak_to_trough(InferenceConfig(curve="diurnal")) < 6.0
    assert 1.2 < peak_to_trough(InferenceConfig(curve="servegen-llm-large")) < 2.0
    assert 1.6 < peak_to_trough(InferenceConfig(curve="servegen-llm-small")) < 3.0
    assert peak_to_trough(InferenceConfig(curve="sd-requests")) > 20.0


def test_diurnal_night_mostly_below_forty_percent():
    times, needed = build_demand(InferenceConfig(curve="diurnal"), 100, WEEK, seed=0)
    hour = (times % 86400) / 3600
    night = (hour >= 1) & (hour < 8)
    assert (needed[night] < 40).mean() > 0.8
    weekday = needed[: 5 * 144].reshape(5, 144).mean()
    weekend = needed[5 * 144 :].reshape(2, 144).mean()
    assert weekend < weekday
    evening = (hour >= 19) & (hour < 22)
    assert needed[evening].mean() > needed[~evening].mean()


def test_curves_repeat_weekly_over_long_horizons():
    for curve in CURVES:
        _, needed = build_demand(InferenceConfig(curve=curve), 50, 3 * WEEK, seed=0)
        a, b, c = needed.reshape(3, -1)
        assert np.array_equal(a, b) and np.array_equal(b, c)


def test_step_sizes():
    cfg = InferenceConfig(curve="diurnal", step_s=3600.0)
    times, needed = build_demand(cfg, 100, 86400.0, seed=0)
    assert times.shape == (24,) and times[-1] == 23 * 3600.0
    _, fine = build_demand(InferenceConfig(curve="diurnal"), 100, 86400.0, seed=0)
    assert np.array_equal(needed, fine.reshape(24, 6).max(axis=1))  # a step covers its peak
    times, _ = build_demand(InferenceConfig(step_s=250.0), 10, 1000.0, seed=0)
    assert np.allclose(times, [0, 250, 500, 750])
    times, needed = build_demand(InferenceConfig(), 10, 0.0, seed=0)
    assert times.tolist() == [0.0] and needed.shape == (1,)


def test_reserve_caps_needed():
    _, needed = build_demand(
        InferenceConfig(curve="flat", peak_utilisation=1.0, reserve_servers=3), 10, 86400.0, 0
    )
    assert np.all(needed == 7)
    with pytest.raises(ValueError, match="reserve_servers"):
        build_demand(InferenceConfig(reserve_servers=11), 10, 86400.0, 0)


def test_unknown_curve_lists_names():
    with pytest.raises(KeyError) as err:
        InferenceConfig(curve="nope")
    for name in CURVES:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"peak_utilisation": 0.0}, "peak_utilisation"),
        ({"peak_utilisation": 1.1}, "peak_utilisation"),
        ({"trough_utilisation": 0.95}, "trough_utilisation"),
        ({"trough_utilisation": -0.1}, "trough_utilisation"),
        ({"step_s": 0.0}, "step_s"),
        ({"noise": -1.0}, "noise"),
        ({"reserve_servers": -1}, "reserve_servers"),
    ],
)
def test_config_validation(kw, field):
    with pytest.raises(ValueError, match=field):
        InferenceConfig(**kw)


def test_data_file_shapes():
    from importlib import resources

    data = json.loads(
        resources.files("aryl_gym").joinpath("data/inference_curves.json").read_text()
    )
    for name, c in data["curves"].items():
        assert name in CURVES and c["source"]
        assert len(c["day"]) == 144 and len(c["week"]) == 7
        assert abs(np.mean(c["day"]) - 1) < 1e-3 and abs(np.mean(c["week"]) - 1) < 1e-3


@pytest.mark.shared
def test_derivation_reproduces_committed_file():
    if not (SHARED / "traces").is_dir():
        pytest.skip(f"real traces not present at {SHARED / 'traces'}")
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "derive_inference_curves.py"),
            "--check",
            "--plot",
            "",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
