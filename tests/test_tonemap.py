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


def test_reference_white_lands_at_sdr_white_and_grey_at_18_percent():
    grey_ramp = np.repeat(np.array([0.0, 0.18 * WHITE, WHITE])[:, None], 3, axis=1)
    for name in ("bt2390", "reinhard"):
        code = tonemap.render_sdr(_pq_pixels(grey_ramp), name)
        if name == "bt2390":
            assert code[0, :, 1].tolist() == [0, round(255 * (1.055 * 0.18 ** (1 / 2.4) - 0.055)), 255]
        assert np.all(code[0, :, 0] == code[0, :, 1]) and np.all(code[0, :, 1] == code[0, :, 2])


def test_exposure_shifts_the_light_before_the_map():
    grey = _pq_pixels([[0.05 * WHITE] * 3])
    brighter = srgb_decode(tonemap.render_sdr(grey, exposure=1.0)[0, 0, 0] / 255.0)
    plain = srgb_decode(tonemap.render_sdr(grey)[0, 0, 0] / 255.0)
    assert brighter / plain == pytest.approx(2.0, rel=0.03)


def test_highlights_keep_their_hue_and_nothing_clips():
    # An orange highlight at twice reference white, beside a peak that sets the roll-off.
    orange = np.array([2.0, 1.0, 0.25]) * WHITE
    code = tonemap.render_sdr(_pq_pixels([orange, [8 * WHITE] * 3]))
    shown = srgb_decode(code[0, 0] / 255.0)
    expected = convert_primaries(orange, PRIMARIES["bt2020"], PRIMARIES["bt709"])
    assert np.allclose(shown / shown.max(), expected / expected.max(), atol=0.02)
    assert code[0, 0].max() < 255 and code[0, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("name", ["bt2390", "reinhard"])
def test_colours_outside_the_base_primaries_are_mixed_with_grey_of_their_luminance(name):
    # BT.2020's green primary, at a tenth of reference white: no BT.709 colour is that green.
    green = np.array([0.0, 0.1, 0.0]) * WHITE
    code = tonemap.render_sdr(_pq_pixels([green]), name)
    shown = _shown(code[0, 0].astype(np.float64))
    weights = luminance_weights(PRIMARIES["bt2020"])
    # Green stays the largest channel, the most negative one lands on 0 and luminance is kept
    # (the EETF keeps light below its knee; Reinhard's curve is the only change of luminance).
    assert code[0, 0, 1] > code[0, 0, 2] > code[0, 0, 0] == 0
    luminance = np.array(0.1 * weights[1])
    kept = tonemap.extended_reinhard(luminance, float(luminance)) if name == "reinhard" else luminance
    assert shown @ weights == pytest.approx(kept, rel=0.05)


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


def test_cap_peak_rolls_off_only_what_exceeds_it_and_keeps_hue():
    luminance = np.array([[10.0, 20.0, 30.0], [1000.0, 500.0, 100.0], [50.0, 60.0, 70.0]])
    capped = pq_decode(tonemap.cap_peak(_pq_pixels(luminance), 200.0).astype(np.float64))[0]
    assert capped.max() == pytest.approx(200.0, rel=1e-4)
    assert np.allclose(capped[0], luminance[0], rtol=1e-4) and np.allclose(capped[2], luminance[2], rtol=1e-4)
    assert np.allclose(capped[1] / capped[1, 0], luminance[1] / luminance[1, 0], rtol=1e-3)
    dim = _pq_pixels(luminance[:1])
    assert tonemap.cap_peak(dim, 200.0) is dim
