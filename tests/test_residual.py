import numpy as np
import pytest

from gainmap_format import residual
from gainmap_format.colour import PRIMARIES, pq_encode
from gainmap_format.errors import InputError


def test_sdr_white_lands_at_pq_0508():
    white = np.full((1, 1, 3), 255, dtype=np.uint8)
    for transfer in ("srgb", "gamma2.4"):
        for primaries in ("bt709", "display-p3", "bt2020"):
            assert residual.sdr_to_pq(white, transfer, primaries) == pytest.approx(0.5080784, abs=1e-5)


def test_sdr_black_is_pq_zero():
    black = np.zeros((1, 1, 3), dtype=np.uint8)
    assert residual.sdr_to_pq(black, "gamma2.4", "bt709") == pytest.approx(pq_encode(np.array(0.0)), abs=1e-7)


def test_hdr_to_pq_scales_by_white_luminance():
    pixels = np.ones((2, 2, 3), dtype=np.float32)
    assert residual.hdr_to_pq(pixels, PRIMARIES["bt2020"], 1000.0) == pytest.approx(0.7518271, abs=1e-5)
    assert residual.hdr_to_pq(pixels * 10, PRIMARIES["bt2020"], 100.0) == pytest.approx(0.7518271, abs=1e-5)
    with pytest.raises(InputError):
        residual.hdr_to_pq(pixels, PRIMARIES["bt2020"], 0.0)


@pytest.mark.parametrize("kind", ["gamma", "gain"])
def test_residual_round_trip(kind):
    rng = np.random.default_rng(0)
    hdr = rng.random((8, 9, 3)).astype(np.float32)
    sdr = (rng.random((8, 9, 3)) * 0.5).astype(np.float32)
    f = residual.residual_map(hdr, sdr, kind)
    assert np.allclose(residual.apply_residual(sdr, f, kind), hdr, atol=2e-6)


def test_gamma_map_definition():
    hdr = np.array([[[0.7, 0.5, 0.2]]], dtype=np.float32)
    sdr = np.array([[[0.5, 0.4, 0.3]]], dtype=np.float32)
    e = 1 / 64
    expected = np.log(hdr + e) / np.log(sdr + e)
    assert np.allclose(residual.residual_map(hdr, sdr, "gamma"), expected, rtol=1e-6)
    assert np.allclose(residual.residual_map(hdr, sdr, "gain"), (hdr + e) / (sdr + e), rtol=1e-6)


def test_apply_residual_clips_to_unit_range():
    sdr = np.full((1, 1, 3), 0.5, dtype=np.float32)
    assert residual.apply_residual(sdr, np.full((1, 1, 3), -10.0, np.float32), "gamma").max() == 1.0


def test_normalisation_round_trip_and_flat_input():
    values = np.linspace(-3, 5, 50, dtype=np.float32)
    norm = residual.Normalisation.of(values)
    z = norm.apply(values)
    assert z.min() >= -1.01 and z.max() <= 1.01
    assert np.allclose(norm.invert(z), values, atol=1e-5)
    flat = residual.Normalisation.of(np.full(10, 2.0, dtype=np.float32))
    assert flat.range > 0 and np.all(np.isfinite(flat.apply(np.full(10, 2.0))))


@pytest.mark.parametrize("kind", ["gamma", "gain"])
def test_weighted_residual_endpoints_and_log_linearity(kind):
    rng = np.random.default_rng(1)
    hdr = rng.random((4, 4, 3)).astype(np.float32) * 0.8
    sdr = rng.random((4, 4, 3)).astype(np.float32) * 0.5
    f = residual.residual_map(hdr, sdr, kind)
    at = {w: residual.apply_residual(sdr, residual.weight_residual(f, kind, w), kind) for w in (0.0, 0.5, 1.0)}
    assert np.allclose(at[0.0], sdr, atol=1e-6)
    assert np.allclose(at[1.0], hdr, atol=2e-6)
    e = 1 / 64
    halfway = np.log(at[0.5] + e)
    assert np.allclose(halfway, (np.log(sdr + e) + np.log(hdr + e)) / 2, atol=1e-4)
