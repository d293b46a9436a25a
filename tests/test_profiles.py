"""Tests of aryl_gym.sim.profiles: curve properties and the fit to the measurements."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aryl_gym.sim.profiles import (
    BIG_SUFFIX,
    DEFAULT_PROFILE_MIX,
    PROFILES,
    ScalingProfile,
    get_profile,
)

MEASURED = ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")
SCALING = Path(__file__).parents[1].parent / "shared" / "scaling"
N_MAX = 4096
EPS = 1e-9


def test_profile_names() -> None:
    assert set(PROFILES) == {"linear", *MEASURED, *(f"{m}{BIG_SUFFIX}" for m in MEASURED)}
    for name, prof in PROFILES.items():
        assert prof.name == name
        assert prof.fits_lent_gpu == (not name.endswith(BIG_SUFFIX))
        if name.endswith(BIG_SUFFIX):  # a big variant scales like its model
            small = PROFILES[name.removesuffix(BIG_SUFFIX)]
            assert (prof.gamma, prof.split_factor) == (small.gamma, small.split_factor)


def test_default_mix() -> None:
    assert set(DEFAULT_PROFILE_MIX) == set(MEASURED)
    assert math.isclose(sum(DEFAULT_PROFILE_MIX.values()), 1.0)
    assert all(v > 0 for v in DEFAULT_PROFILE_MIX.values())


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_speedup_shape(name: str) -> None:
    prof = PROFILES[name]
    assert prof.speedup(0) == 0.0
    assert prof.speedup(1) == pytest.approx(1.0, abs=1e-12)
    s = prof.speedup(np.arange(N_MAX + 1))
    assert isinstance(s, np.ndarray) and s.dtype == np.float64
    marg = np.diff(s)
    assert np.all(marg >= 0.0), "not non-decreasing"
    assert np.all(np.diff(marg) <= EPS), "not concave on integers"
    assert np.all(s <= np.arange(N_MAX + 1) + EPS), "super-linear"


def test_linear_profile() -> None:
    lin = get_profile("linear")
    n = np.arange(100)
    np.testing.assert_array_equal(lin.speedup(n), n.astype(float))
    assert all(lin.placement_factor(k) == 1.0 for k in range(10))


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_placement_factor(name: str) -> None:
    prof = PROFILES[name]
    for m in (1, 2, 5):
        f = [prof.placement_factor(k, min_servers=m) for k in range(64)]
        assert f[0] == 1.0
        assert all(0.0 < x <= 1.0 for x in f)
        assert all(b <= a for a, b in zip(f, f[1:], strict=False))
    assert prof.placement_factor(3) == prof.placement_factor(3, min_servers=1)
    with pytest.raises(ValueError):
        prof.placement_factor(-1)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_speedup_table(name: str) -> None:
    prof = PROFILES[name]
    t = prof.speedup_table(300)
    assert t.shape == (301,) and t.dtype == np.float64
    np.testing.assert_array_equal(t, prof.speedup(np.arange(301)))
    assert prof.speedup_table(300) is t  # cached
    assert prof.speedup_table(0).tolist() == [0.0]


@given(
    gamma=st.floats(min_value=0.05, max_value=1.0),
    n=st.integers(min_value=0, max_value=100_000),
)
def test_speedup_scalar_matches_array(gamma: float, n: int) -> None:
    prof = ScalingProfile(name="h", gamma=gamma)
    assert prof.speedup(n) == pytest.approx(float(prof.speedup(np.array([n]))[0]))
    assert prof.speedup(n + 1) - prof.speedup(n) >= 0.0


@given(st.floats(min_value=0.05, max_value=1.0))
def test_concave_any_gamma(gamma: float) -> None:
    s = ScalingProfile(name="h", gamma=gamma).speedup(np.arange(1025))
    assert np.all(np.diff(np.diff(s)) <= EPS)


def test_invalid_parameters() -> None:
    for kw in ({"gamma": 0.0}, {"gamma": 1.2}, {"split_factor": 0.0}, {"extra_server_factor": 1.5}):
        with pytest.raises(ValueError):
            ScalingProfile(name="bad", **kw)
    with pytest.raises(ValueError):
        PROFILES["bert"].speedup(-1)


def test_get_profile_error_lists_names() -> None:
    assert get_profile("bert") is PROFILES["bert"]
    with pytest.raises(KeyError) as e:
        get_profile("resnet9000")
    msg = str(e.value)
    assert "resnet9000" in msg
    for name in PROFILES:
        assert name in msg


# --- the committed numbers against the measurements ---------------------------------------


def _points(model: str, bsz: int) -> list[tuple[int, int, float]]:
    """(GPUs, nodes, samples/s) of every measurement at local batch ``bsz``."""
    pts = []
    with open(SCALING / model / "placements.csv", newline="") as f:
        for r in csv.DictReader(f):
            if int(r["local_bsz"]) == bsz:
                n = sum(int(c) for c in r["placement"])
                pts.append((n, len(r["placement"]), n * bsz / float(r["step_time"])))
    with open(SCALING / model / "scalability.csv", newline="") as f:
        for r in csv.DictReader(f):
            if int(r["local_bsz"]) == bsz:
                n = int(r["num_replicas"])
                pts.append((n, int(r["num_nodes"]), n * bsz / float(r["step_time"])))
    return pts


@pytest.mark.shared
@pytest.mark.parametrize("model", MEASURED)
def test_committed_fit_matches_measurements(model: str) -> None:
    if not SCALING.is_dir():
        pytest.skip(f"../shared/scaling not present: {SCALING} (measured data, not in the repo)")
    prof = PROFILES[model]
    assert prof.local_bsz is not None and prof.fit_rms_log_error is not None
    assert prof.placement_rms_log_error is not None
    pts = _points(model, prof.local_bsz)
    assert pts, f"no measurements at local batch {prof.local_bsz}"
    # One point per GPU count: geometric mean over its compact placements (4 GPUs/node).
    comp: dict[int, list[float]] = {}
    for n, nodes, thr in pts:
        if nodes == math.ceil(n / 4):
            comp.setdefault(n, []).append(math.log(thr))
    mean = {n: float(np.mean(v)) for n, v in comp.items()}
    res = [mean[n] - mean[1] - math.log(prof.speedup(n)) for n in mean]
    rms = math.sqrt(float(np.mean(np.square(res))))
    assert rms <= prof.fit_rms_log_error + 0.002
    # Spread placements against the compact mean at the same GPU count.
    pres = [
        math.log(thr)
        - mean[n]
        - math.log(prof.placement_factor(nodes - math.ceil(n / 4), math.ceil(n / 4)))
        for n, nodes, thr in pts
        if nodes > math.ceil(n / 4) and n in mean
    ]
    assert len(pres) > 50
    prms = math.sqrt(float(np.mean(np.square(pres))))
    assert prms <= prof.placement_rms_log_error + 0.002
    # The exponent is the least-squares optimum: nudging it makes the fit worse.
    for g in (prof.gamma * 0.97, min(1.0, prof.gamma * 1.03)):
        if g == prof.gamma:
            continue
        worse = ScalingProfile(name="x", gamma=g)
        r2 = [mean[n] - mean[1] - math.log(worse.speedup(n)) for n in mean]
        assert math.sqrt(float(np.mean(np.square(r2)))) >= rms - 1e-6
