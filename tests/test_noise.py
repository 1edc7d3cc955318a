import numpy as np
import pytest

from gainmap_format import codec
from gainmap_format.colour import PRIMARIES, convert_primaries
from gainmap_format.errors import InputError
from gainmap_format.metainit.noise import (
    NOISE_WHITE_LUMINANCE,
    chromatic_noise,
    noise_fit_inputs,
    noise_lab,
    spectral_field,
)
from gainmap_format.residual import hdr_to_pq
from gainmap_format.tonemap import default_sdr


def _spectral_slope(field: np.ndarray) -> float:
    """Log-log slope of the amplitude spectrum, averaged in log-spaced rings of frequency."""
    height, width = field.shape
    amplitude = np.abs(np.fft.fft2(field))
    frequency = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    edges = np.geomspace(1.0 / max(height, width), 0.5, 13)
    ring = np.digitize(frequency, edges)
    points = [
        (np.log(frequency[ring == i]).mean(), np.log(amplitude[ring == i]).mean())
        for i in range(1, len(edges))
        if np.any(ring == i)
    ]
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


def test_shape_dtype_and_range():
    image = chromatic_noise(40, 56, seed=1)
    assert image.shape == (40, 56, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= NOISE_WHITE_LUMINANCE
    # Uses the whole range, from near black to the clip at the tone curve's peak.
    assert np.percentile(image, 1) < 5.0 and image.max() == NOISE_WHITE_LUMINANCE


def test_reproducible_with_a_seed_and_different_across_seeds():
    assert np.array_equal(chromatic_noise(32, 32, seed=7), chromatic_noise(32, 32, seed=7))
    assert np.array_equal(chromatic_noise(32, 32, seed=(7, 2)), chromatic_noise(32, 32, seed=(7, 2)))
    assert not np.allclose(chromatic_noise(32, 32, seed=7), chromatic_noise(32, 32, seed=8))
    assert not np.allclose(chromatic_noise(32, 32, seed=(7, 0)), chromatic_noise(32, 32, seed=(7, 1)))


def test_spans_a_gamut_wider_than_bt709():
    image = chromatic_noise(64, 64, seed=2)
    bt709 = convert_primaries(image, PRIMARIES["bt2020"], PRIMARIES["bt709"])
    outside = np.mean(np.any(bt709 < -0.01 * NOISE_WHITE_LUMINANCE, axis=-1))
    assert 0.05 < outside < 0.8


def test_lab_mapping_ranges():
    lab = noise_lab(np.random.default_rng(3), 48, 48)
    lightness, a, b = np.moveaxis(lab, -1, 0)
    low, high = 105.0 / (1.0 + np.exp(4.0)), 105.0 / (1.0 + np.exp(-4.0))
    assert lightness.min() == pytest.approx(low) and lightness.max() == pytest.approx(high)
    assert abs(a.mean()) < 1e-9 and abs(b.mean()) < 1e-9
    assert np.ptp(a) == pytest.approx(150.0) and np.ptp(b) == pytest.approx(150.0)


def test_field_is_normalised():
    field = spectral_field(np.random.default_rng(0), 30, 50)
    assert field.shape == (30, 50) and field.min() == 0.0 and field.max() == 1.0
    assert np.all(spectral_field(np.random.default_rng(0), 1, 1) == 0.5)


def test_spectrum_falls_off_as_one_over_f_squared():
    slopes = [_spectral_slope(spectral_field(np.random.default_rng(seed), 128, 96)) for seed in range(4)]
    assert -2.2 < np.mean(slopes) < -1.8
    assert all(-2.4 < s < -1.6 for s in slopes)
    # The same measurement finds white noise flat, so the check can tell the difference.
    assert abs(_spectral_slope(np.random.default_rng(0).uniform(size=(128, 96)))) < 0.15


def test_fit_inputs_match_what_encode_would_fit():
    inputs = noise_fit_inputs(32, 48, seed=(0, 1), residual="gamma")
    hdr = chromatic_noise(32, 48, seed=(0, 1))
    assert inputs.code.shape == (32, 48, 3) and inputs.code.dtype == np.uint8
    assert np.array_equal(inputs.code, codec.decode_base(inputs.base))
    # The SDR is the default tone mapping, off only by the base JPEG's compression.
    expected = default_sdr(hdr_to_pq(hdr, PRIMARIES["bt2020"], 1.0)).astype(np.int16)
    assert np.mean(np.abs(inputs.code.astype(np.int16) - expected)) < 2.0
    assert inputs.code.min() < 30 and inputs.code.max() > 225
    assert inputs.target.dtype == np.float32 and np.all(np.isfinite(inputs.target))
    assert inputs.target.min() >= -2.0 and inputs.target.max() <= 2.0
    gain = noise_fit_inputs(32, 48, seed=(0, 1), residual="gain")
    assert np.array_equal(gain.code, inputs.code) and not np.allclose(gain.target, inputs.target)


@pytest.mark.parametrize(("height", "width"), [(0, 4), (4, 0)])
def test_rejects_empty_sizes(height, width):
    with pytest.raises(InputError):
        chromatic_noise(height, width)
