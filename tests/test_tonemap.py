import numpy as np
import pytest

from gainmap_format import tonemap
from gainmap_format.colour import pq_encode


def test_curve_reference_points():
    assert tonemap.tone_curve(np.array(0.0)) == 0.0
    assert tonemap.tone_curve(np.array(1000.0)) == pytest.approx(1.0)
    assert tonemap.tone_curve(np.array(5000.0)) == 1.0
    x = 100.0 / 1000.0
    assert tonemap.tone_curve(np.array(100.0)) == pytest.approx(1.9662 * x / (1 + 0.9662 * x))


def test_curve_is_monotone():
    values = tonemap.tone_curve(np.linspace(0, 2000, 1000))
    assert np.all(np.diff(values) >= 0)


def test_default_sdr_of_grey_ramp():
    luminance = np.linspace(0, 1000, 64)
    hdr_pq = np.repeat(pq_encode(luminance)[None, :, None], 3, axis=2).astype(np.float32)
    sdr = tonemap.default_sdr(hdr_pq)
    assert sdr.dtype == np.uint8 and sdr.shape == (1, 64, 3)
    assert sdr[0, 0].tolist() == [0, 0, 0] and sdr[0, -1].tolist() == [255, 255, 255]
    assert np.all(np.diff(sdr[0, :, 1].astype(int)) >= 0)
    expected = round(255 * tonemap.tone_curve(np.array(luminance[20])) ** (1 / 2.4))
    assert abs(int(sdr[0, 20, 1]) - expected) <= 1
