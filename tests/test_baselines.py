import numpy as np
import pytest

from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import InputError
from gainmap_format.evaluation.baselines import dequantise_map, quantise_map, traditional_map
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.residual import hdr_to_pq, sdr_to_pq
from gainmap_format.scenes import hdr_scene
from gainmap_format.tonemap import default_sdr


@pytest.fixture(scope="module")
def pair():
    hdr_pq = hdr_to_pq(hdr_scene(64, 96, seed=1), PRIMARIES["bt2020"], 1.0)
    return hdr_pq, sdr_to_pq(default_sdr(hdr_pq), "gamma2.4", "bt709")


@pytest.mark.parametrize("kind", ["gamma", "gain"])
def test_map_is_a_real_jpeg_and_reconstructs(pair, kind):
    hdr_pq, sdr_pq = pair
    result = traditional_map(hdr_pq, sdr_pq, kind, scale=4, quality=95)
    assert result.jpeg[:2] == b"\xff\xd8"
    assert result.hdr_pq.shape == hdr_pq.shape
    assert pq_psnr(hdr_pq, result.hdr_pq) > 30.0
    assert result.low < result.high


def test_more_resolution_and_quality_help(pair):
    hdr_pq, sdr_pq = pair
    coarse = traditional_map(hdr_pq, sdr_pq, "gamma", scale=8, quality=60)
    fine = traditional_map(hdr_pq, sdr_pq, "gamma", scale=1, quality=100)
    assert pq_psnr(hdr_pq, fine.hdr_pq) > pq_psnr(hdr_pq, coarse.hdr_pq) + 3.0
    assert len(fine.jpeg) > len(coarse.jpeg)


def test_bad_arguments(pair):
    hdr_pq, sdr_pq = pair
    with pytest.raises(InputError):
        traditional_map(hdr_pq, sdr_pq, "gamma", scale=0)
    with pytest.raises(InputError):
        traditional_map(hdr_pq, sdr_pq, "gamma", quality=101)


def test_tiny_image(pair):
    hdr_pq, sdr_pq = pair
    result = traditional_map(hdr_pq[:3, :2], sdr_pq[:3, :2], "gamma", scale=4)
    assert result.hdr_pq.shape == (3, 2, 3) and np.all(np.isfinite(result.hdr_pq))


def test_quantised_codes_stand_for_their_range():
    values = np.linspace(-2.0, 3.0, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    quantised = quantise_map(values, 1)
    assert quantised.code.min() == 0 and quantised.code.max() == 255
    assert quantised.low == pytest.approx(-2.0) and quantised.high == pytest.approx(3.0)
    restored = dequantise_map(quantised.code, quantised.low, quantised.high, (8, 8))
    assert np.abs(restored - values).max() <= 5.0 / 255 / 2 + 1e-6


def test_flat_maps_and_shrinking():
    quantised = quantise_map(np.full((16, 12, 3), 0.7, np.float32), 4)
    assert quantised.code.shape == (4, 3, 3) and np.all(quantised.code == 0) and quantised.high > quantised.low
    assert np.allclose(dequantise_map(quantised.code, quantised.low, quantised.high, (12, 16)), 0.7)
    with pytest.raises(InputError):
        quantise_map(np.zeros((4, 4, 3), np.float32), 0)
