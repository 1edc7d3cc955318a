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


@pytest.mark.parametrize("transfer", ["srgb", "gamma2.4"])
@pytest.mark.parametrize("primaries", ["bt709", "display-p3", "bt2020"])
def test_sdr_to_pq_looks_up_what_the_eotf_computes(transfer, primaries):
    from gainmap_format.colour import convert_primaries, transfer_decode

    code = np.random.default_rng(4).integers(0, 256, (17, 19, 3), dtype=np.uint8)
    code.reshape(-1)[:256] = np.arange(256)  # every level at least once
    linear = transfer_decode(code.astype(np.float32) / 255.0, transfer)
    bt2020 = convert_primaries(linear, PRIMARIES[primaries], PRIMARIES["bt2020"])
    expected = pq_encode(np.clip(bt2020, 0.0, None) * 100.0)
    np.testing.assert_array_equal(residual.sdr_to_pq(code, transfer, primaries), expected.astype(np.float32))


def test_normalisation_of_levels_is_that_of_the_looked_up_image():
    code = np.random.default_rng(5).integers(3, 250, (64, 48, 3), dtype=np.uint8)
    looked_up = residual.CODE_VALUES[code]
    assert residual.Normalisation.of_levels(code, residual.CODE_VALUES) == residual.Normalisation.of(looked_up)
    flat = np.full((2, 2, 3), 7, np.uint8)
    assert residual.Normalisation.of_levels(flat, residual.CODE_VALUES).range == pytest.approx(1e-6)


@pytest.mark.parametrize("kind", ["gamma", "gain"])
def test_residual_in_float32_is_within_1e7_of_float64(kind):
    rng = np.random.default_rng(6)
    hdr = rng.random((50, 40, 3), dtype=np.float32)
    sdr = rng.random((50, 40, 3), dtype=np.float32) * np.float32(0.52)
    h, s = hdr.astype(np.float64) + residual.EPSILON, sdr.astype(np.float64) + residual.EPSILON
    exact = np.log(h) / np.log(s) if kind == "gamma" else h / s
    f = residual.residual_map(hdr, sdr, kind)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, exact, rtol=4e-7, atol=1e-7)
