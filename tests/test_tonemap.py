import numpy as np
import pytest

from gainmap_format import tonemap
from gainmap_format.colour import pq_decode, pq_encode


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


# ---- the photographic maps (issue 15) ----

from gainmap_format import limits  # noqa: E402
from gainmap_format.colour import PRIMARIES, convert_primaries, luminance_weights, srgb_decode  # noqa: E402

WHITE = tonemap.REFERENCE_WHITE_LUMINANCE


def _pq_pixels(rgb_luminance) -> np.ndarray:
    """float32 (1, N, 3) BT.2020 PQ of BT.2020 RGB in cd/m²."""
    return pq_encode(np.asarray(rgb_luminance, np.float64).reshape(1, -1, 3)).astype(np.float32)


def _shown(code: np.ndarray, primaries: str = "bt709") -> np.ndarray:
    """Linear light of sRGB-curve code values, converted to BT.2020."""
    return convert_primaries(srgb_decode(code / 255.0), PRIMARIES[primaries], PRIMARIES["bt2020"])


def test_eetf_keeps_light_below_its_knee_and_ends_at_white():
    values = np.linspace(0.0, 6.0, 601)
    out = tonemap.bt2390_eetf(values, peak=6.0)
    assert np.all(np.diff(out) >= 0) and out[-1] == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(out[:20], values[:20], rtol=1e-9)  # up to 0.19 of white: below the knee
    assert np.max(np.abs(np.diff(out, 2))) < 2e-3  # no step in slope where the spline starts
    assert np.array_equal(tonemap.bt2390_eetf(values, peak=0.8), np.clip(values, 0.0, 1.0))


def test_reinhard_curve_keeps_shadows_puts_its_unit_near_half_and_ends_at_white():
    values = np.linspace(0.0, 8.0, 801, dtype=np.float32)
    out = tonemap.extended_reinhard(values, peak=8.0)
    assert out.dtype == np.float32 and out[0] == 0.0 and out[-1] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(out) > 0)
    assert out[1] == pytest.approx(values[1], rel=0.011)  # slope 1 at black: shadows keep their light
    assert out[100] == pytest.approx(0.5 * (1 + 1 / 64), rel=1e-6)
    assert np.array_equal(tonemap.extended_reinhard(np.array([9.0, 20.0]), peak=8.0), [1.0, 1.0])


def _light(code: np.ndarray) -> np.ndarray:
    """Linear light of sRGB code values, float64."""
    return srgb_decode(code.astype(np.float64) / 255.0)


def test_bt2390_puts_reference_white_at_sdr_white_and_keeps_grey():
    grey_ramp = np.repeat(np.array([0.0, 0.18 * WHITE, WHITE])[:, None], 3, axis=1)
    code = tonemap.render_sdr(_pq_pixels(grey_ramp), "bt2390")
    assert code[0, :, 1].tolist() == [0, round(255 * (1.055 * 0.18 ** (1 / 2.4) - 0.055)), 255]
    assert np.all(code[0, :, 0] == code[0, :, 1]) and np.all(code[0, :, 1] == code[0, :, 2])


def test_reinhard_maps_grey_through_its_curve_and_the_peak_to_white():
    unit = tonemap.REINHARD_UNIT_LUMINANCE
    levels = np.array([0.0, 0.18 * WHITE, WHITE, 8 * WHITE])
    code = tonemap.render_sdr(_pq_pixels(np.repeat(levels[:, None], 3, axis=1)))
    expected = tonemap.extended_reinhard(levels / unit, 8 * WHITE / unit)
    assert np.allclose(_light(code[0, :, 1]), expected, atol=0.004)
    assert code[0, -1].tolist() == [255, 255, 255]
    assert np.all(code[0, :, 0] == code[0, :, 1]) and np.all(code[0, :, 1] == code[0, :, 2])


@pytest.mark.parametrize("name", ["reinhard", "bt2390"])
def test_exposure_is_the_same_as_brighter_hdr(name):
    rng = np.random.default_rng(2)
    luminance = rng.uniform(0, 3 * WHITE, (4, 5, 3))
    shifted = tonemap.render_sdr(_pq_pixels(luminance).reshape(4, 5, 3), name, exposure=1.0)
    brighter = tonemap.render_sdr(_pq_pixels(2 * luminance).reshape(4, 5, 3), name)
    assert np.max(np.abs(shifted.astype(int) - brighter)) <= 1


def test_bt2390_exposure_below_the_knee_doubles_the_light():
    pixels = _pq_pixels([[0.05 * WHITE] * 3, [4 * WHITE] * 3])
    brighter = _light(tonemap.render_sdr(pixels, "bt2390", exposure=1.0)[0, 0, 0])
    plain = _light(tonemap.render_sdr(pixels, "bt2390")[0, 0, 0])
    assert brighter / plain == pytest.approx(2.0, rel=0.03)


@pytest.mark.parametrize("name", ["reinhard", "bt2390"])
def test_highlights_keep_their_hue_and_nothing_clips(name):
    # An orange highlight at twice reference white, beside a peak that sets the roll-off.
    orange = np.array([2.0, 1.0, 0.25]) * WHITE
    code = tonemap.render_sdr(_pq_pixels([orange, [8 * WHITE] * 3]), name)
    shown = _light(code[0, 0])
    expected = convert_primaries(orange, PRIMARIES["bt2020"], PRIMARIES["bt709"])
    assert np.allclose(shown / shown.max(), expected / expected.max(), atol=0.02)
    assert code[0, 0].max() < 255 and code[0, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("name", ["reinhard", "bt2390"])
def test_colours_outside_the_base_primaries_are_mixed_with_grey_of_their_luminance(name):
    # BT.2020's green primary, at a tenth of reference white (no BT.709 colour is that green),
    # beside a white at four times reference white that sets the roll-off.
    green = np.array([0.0, 0.1, 0.0]) * WHITE
    code = tonemap.render_sdr(_pq_pixels([green, [4 * WHITE] * 3]), name)
    bt709 = convert_primaries(green, PRIMARIES["bt2020"], PRIMARIES["bt709"]).astype(np.float64)
    luminance = 0.1 * WHITE * luminance_weights(PRIMARIES["bt2020"])[1]
    # The mix of the colour and its grey whose lowest channel is 0: same luminance, same hue.
    mixed = luminance + (bt709 - luminance) * luminance / (luminance - bt709.min())
    shown = _light(code[0, 0])
    assert code[0, 0, 1] > code[0, 0, 2] > code[0, 0, 0] == 0
    assert np.allclose(shown / shown.max(), mixed / mixed.max(), atol=0.01)
    unit = tonemap.REINHARD_UNIT_LUMINANCE if name == "reinhard" else WHITE
    norm = np.array(mixed.max() / unit)
    kept = tonemap.extended_reinhard(norm, 4 * WHITE / unit) if name == "reinhard" else norm
    assert shown.max() == pytest.approx(float(kept), rel=0.03)


def test_display_p3_base_keeps_more_of_a_saturated_colour():
    red = _pq_pixels([[0.5 * WHITE, 0.02 * WHITE, 0.02 * WHITE]])
    srgb_red = _shown(tonemap.render_sdr(red).astype(np.float64)[0, 0], "bt709")
    p3_red = _shown(tonemap.render_sdr(red, primaries="display-p3").astype(np.float64)[0, 0], "display-p3")
    target = np.array([0.5, 0.02, 0.02])
    assert np.abs(p3_red - target).sum() < np.abs(srgb_red - target).sum()


def test_transfer_changes_only_the_encoding():
    rng = np.random.default_rng(3)
    hdr_pq = pq_encode(rng.uniform(0, 3 * WHITE, (8, 9, 3))).astype(np.float32)
    srgb = srgb_decode(tonemap.render_sdr(hdr_pq) / 255.0)
    gamma = (tonemap.render_sdr(hdr_pq, transfer="gamma2.4") / 255.0) ** 2.4
    assert np.allclose(srgb, gamma, atol=0.01)


@pytest.mark.parametrize("name", tonemap.TONE_MAPS)
def test_row_blocks_render_what_one_pass_renders(name, monkeypatch):
    # The peak that sets the roll-off is the whole image's: here it sits in the last row only.
    rng = np.random.default_rng(4)
    luminance = rng.uniform(0, 2 * WHITE, (9, 7, 3))
    luminance[-1, -1] = 10 * WHITE
    hdr_pq = pq_encode(luminance).astype(np.float32)
    whole = tonemap.render_sdr(hdr_pq, name, primaries="display-p3")
    monkeypatch.setattr(limits, "BLOCK_PIXELS", 14)  # two rows a block
    assert np.array_equal(tonemap.render_sdr(hdr_pq, name, primaries="display-p3"), whole)


def test_default_sdr_is_the_papers_rendition():
    rng = np.random.default_rng(5)
    hdr_pq = rng.uniform(0, 0.8, (6, 5, 3)).astype(np.float32)
    expected = tonemap.render_sdr(hdr_pq, "paper", transfer="gamma2.4", primaries="bt709")
    assert np.array_equal(tonemap.default_sdr(hdr_pq), expected)
    assert not np.array_equal(tonemap.render_sdr(hdr_pq), expected)
    assert tonemap.DEFAULT_TONE_MAP == "reinhard"


def test_cap_peak_rolls_off_only_what_exceeds_it_and_keeps_hue():
    luminance = np.array([[10.0, 20.0, 30.0], [1000.0, 500.0, 100.0], [50.0, 60.0, 70.0]])
    capped = pq_decode(tonemap.cap_peak(_pq_pixels(luminance), 200.0).astype(np.float64))[0]
    assert capped.max() == pytest.approx(200.0, rel=1e-4)
    assert np.allclose(capped[0], luminance[0], rtol=1e-4) and np.allclose(capped[2], luminance[2], rtol=1e-4)
    assert np.allclose(capped[1] / capped[1, 0], luminance[1] / luminance[1, 0], rtol=1e-3)
    dim = _pq_pixels(luminance[:1])
    assert tonemap.cap_peak(dim, 200.0) is dim
