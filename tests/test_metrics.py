import sys

import numpy as np
import pytest

from gainmap_format.colour import pq_encode
from gainmap_format.errors import InputError
from gainmap_format.evaluation.metrics import (
    BT2100_ICTCP_MATRIX,
    BT2100_LMS_MATRIX,
    delta_e_2000,
    delta_e_itp,
    linear_to_lab,
    mean_delta_e_2000,
    pq_psnr,
    pq_ssim,
)


def test_pq_psnr_reference_values():
    reference = np.zeros((4, 4, 3), np.float32)
    assert pq_psnr(reference, reference) == float("inf")
    assert pq_psnr(reference, reference + 0.01) == pytest.approx(40.0, abs=1e-4)
    assert pq_psnr(reference, reference + 0.1) == pytest.approx(20.0, abs=1e-4)


def test_pq_psnr_shape_mismatch():
    with pytest.raises(InputError, match="shape"):
        pq_psnr(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))


# --- pq_ssim -------------------------------------------------------------------------------------


def _ssim_constant_images(a: float, b: float) -> float:
    # Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
    # similarity", IEEE TIP 13(4), 2004, eq. 13 with K1 = 0.01, K2 = 0.03, L = 1: on flat images the
    # variances and covariance are 0, so SSIM reduces to the luminance term (2ab + C1) / (a² + b² + C1).
    c1 = 0.01**2
    return (2 * a * b + c1) / (a * a + b * b + c1)


def test_pq_ssim_identical_is_one():
    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 3)).astype(np.float32)
    assert pq_ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_pq_ssim_constant_images_match_wang_2004_closed_form():
    reference = np.full((12, 13, 3), 0.5)
    assert pq_ssim(reference, np.full_like(reference, 0.6)) == pytest.approx(_ssim_constant_images(0.5, 0.6), abs=1e-9)
    assert _ssim_constant_images(0.5, 0.6) == pytest.approx(0.6001 / 0.6101, abs=1e-12)


def test_pq_ssim_is_mean_over_channels():
    reference = np.full((11, 11, 3), 0.5)
    test = np.stack([np.full((11, 11), v) for v in (0.5, 0.25, 0.75)], axis=-1)
    expected = np.mean([_ssim_constant_images(0.5, v) for v in (0.5, 0.25, 0.75)])
    assert pq_ssim(reference, test) == pytest.approx(expected, abs=1e-9)


def test_pq_ssim_drops_with_noise():
    rng = np.random.default_rng(1)
    reference = rng.random((32, 32, 3))
    slightly = pq_ssim(reference, reference + rng.normal(0, 0.01, reference.shape))
    heavily = pq_ssim(reference, reference + rng.normal(0, 0.2, reference.shape))
    assert 1.0 > slightly > heavily


@pytest.mark.parametrize("shape", [(10, 16, 3), (16, 10, 3), (7, 7, 3)])
def test_pq_ssim_small_image(shape):
    with pytest.raises(InputError, match="11x11 SSIM window"):
        pq_ssim(np.zeros(shape), np.zeros(shape))


def test_pq_ssim_bad_shapes():
    with pytest.raises(InputError, match="shape"):
        pq_ssim(np.zeros((16, 16, 3)), np.zeros((16, 17, 3)))
    with pytest.raises(InputError, match=r"\(H, W, C\)"):
        pq_ssim(np.zeros((16, 16)), np.zeros((16, 16)))


def test_pq_ssim_without_skimage_names_bench_extra(monkeypatch):
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)
    with pytest.raises(ImportError, match=r"\[bench\]"):
        pq_ssim(np.zeros((11, 11, 3)), np.zeros((11, 11, 3)))


# --- CIEDE2000 -----------------------------------------------------------------------------------

# Sharma, Wu, Dalal, "The CIEDE2000 color-difference formula: implementation notes, supplementary
# test data, and mathematical observations", Color Res. Appl. 30(1):21-30, 2005, Table 1 (also
# distributed as ciede2000testdata.txt): L1, a1, b1, L2, a2, b2, ΔE00 to 4 decimals.
SHARMA_2005_TABLE_1 = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_delta_e_2000_sharma_2005_table_1():
    table = np.array(SHARMA_2005_TABLE_1)
    assert table.shape == (34, 7)
    computed = delta_e_2000(table[:, 0:3], table[:, 3:6])
    assert computed.shape == (34,)
    np.testing.assert_allclose(computed, table[:, 6], rtol=0, atol=1e-4)


def test_delta_e_2000_is_symmetric_and_zero_on_equal():
    table = np.array(SHARMA_2005_TABLE_1)
    np.testing.assert_allclose(delta_e_2000(table[:, 3:6], table[:, 0:3]), table[:, 6], atol=1e-4)
    np.testing.assert_array_equal(delta_e_2000(table[:, 0:3], table[:, 0:3]), 0.0)


def test_delta_e_2000_pure_lightness_difference():
    # Sharma 2005 eq. 2-22 with a = b = 0: ΔE00 = |ΔL| / S_L, S_L = 1 + 0.015 (L̄-50)² / sqrt(20 + (L̄-50)²).
    assert float(delta_e_2000(np.array([100.0, 0, 0]), np.array([0.0, 0, 0]))) == pytest.approx(100.0)
    s_l = 1 + 0.015 * 25.0**2 / np.sqrt(20 + 25.0**2)
    assert float(delta_e_2000(np.array([50.0, 0, 0]), np.array([0.0, 0, 0]))) == pytest.approx(50.0 / s_l)


def test_linear_to_lab_srgb_primaries_reference_values():
    # IEC 61966-2-1 sRGB primaries, D65: red (1, 0, 0) is L*a*b* (53.24, 80.09, 67.20), green
    # (87.73, -86.18, 83.18), blue (32.30, 79.19, -107.86) (Lindbloom's calculator / Wikipedia "SRGB";
    # those use the rounded D65 white 0.95047, 1, 1.08883, hence 0.02 tolerance), white (100, 0, 0).
    rgb = np.array([[100.0, 0, 0], [0, 100.0, 0], [0, 0, 100.0], [100.0, 100.0, 100.0]])
    expected = np.array([[53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [100, 0, 0]])
    np.testing.assert_allclose(linear_to_lab(rgb, "bt709", 100.0), expected, atol=0.02)


def test_linear_to_lab_white_anchor_and_hdr_above_100():
    grey = np.array([[203.0, 203.0, 203.0]])
    np.testing.assert_allclose(linear_to_lab(grey, "bt2020", 203.0), [[100.0, 0, 0]], atol=1e-9)
    # CIE 15:2004: L* = 116 (Y/Yn)^(1/3) - 16; Y/Yn = 10 gives L* above 100.
    np.testing.assert_allclose(linear_to_lab(grey * 10, "display-p3", 203.0)[0, 0], 116 * 10 ** (1 / 3) - 16)


def test_mean_delta_e_2000():
    white = np.full((2, 3, 3), 100.0)
    black = np.zeros((2, 3, 3))
    assert mean_delta_e_2000(white, white, "bt709") == 0.0
    assert mean_delta_e_2000(white, black, "bt709") == pytest.approx(100.0, abs=1e-9)
    # Half the pixels differ by white-vs-black: the mean halves.
    half = white.copy()
    half[0] = 0.0
    assert mean_delta_e_2000(white, half, "bt2020") == pytest.approx(50.0, abs=1e-9)
    # Doubling white_luminance halves Y/Yn for both images: a different, smaller L* step.
    assert mean_delta_e_2000(white, black, "bt709", white_luminance=200.0) < 100.0


def test_mean_delta_e_2000_bad_arguments():
    with pytest.raises(InputError, match="shape"):
        mean_delta_e_2000(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)), "bt709")
    with pytest.raises(InputError, match="white_luminance"):
        mean_delta_e_2000(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)), "bt709", white_luminance=0.0)
    with pytest.raises(InputError, match="primaries"):
        mean_delta_e_2000(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)), "srgb")
    with pytest.raises(InputError, match="RGB"):
        mean_delta_e_2000(np.zeros((2, 2, 4)), np.zeros((2, 2, 4)), "bt709")


# --- ΔE_ITP --------------------------------------------------------------------------------------


def test_bt2100_matrices_match_table_7():
    # ITU-R BT.2100-2 (07/2018) Table 7, integer coefficients over 4096.
    np.testing.assert_array_equal(BT2100_LMS_MATRIX * 4096, [[1688, 2146, 262], [683, 2951, 462], [99, 309, 3688]])
    np.testing.assert_array_equal(
        BT2100_ICTCP_MATRIX * 4096, [[2048, 2048, 0], [6610, -13613, 7003], [17933, -17390, -543]]
    )
    np.testing.assert_array_equal(BT2100_ICTCP_MATRIX[0], [0.5, 0.5, 0.0])
    # LMS rows sum to 4096 (grey stays grey: L = M = S), and the Ct, Cp rows sum to 0 (grey is achromatic).
    np.testing.assert_array_equal(BT2100_LMS_MATRIX.sum(axis=1), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(BT2100_ICTCP_MATRIX[1:].sum(axis=1), [0.0, 0.0])


def test_delta_e_itp_identical_is_zero():
    rng = np.random.default_rng(2)
    image = rng.random((4, 5, 3)) * 1000
    assert delta_e_itp(image, image, "display-p3") == 0.0


def test_delta_e_itp_grey_luminance_step():
    # On grey, Ct = Cp = 0, so ΔE_ITP = 720 |ΔI| with I = PQ(Y) (BT.2124 eq. 1, BT.2100 Table 7).
    # SMPTE ST 2084 PQ code values: PQ(100 cd/m²) = 0.50808, PQ(1000 cd/m²) = 0.75183 (BT.2100-2 / BT.2408).
    low = np.full((2, 2, 3), 100.0)
    high = np.full((2, 2, 3), 1000.0)
    expected = 720 * (pq_encode(np.float64(1000.0)) - pq_encode(np.float64(100.0)))
    assert expected == pytest.approx(720 * (0.75183 - 0.50808), abs=720 * 2e-5)
    for primaries in ("bt709", "display-p3", "bt2020"):
        assert delta_e_itp(low, high, primaries) == pytest.approx(expected, rel=1e-9)


def test_delta_e_itp_chroma_counts_and_mean_over_pixels():
    grey = np.full((1, 2, 3), 100.0)
    tinted = grey.copy()
    tinted[0, 0] = [110.0, 100.0, 90.0]
    one_pixel = delta_e_itp(grey[:, :1], tinted[:, :1], "bt2020")
    assert one_pixel > 0.0
    assert delta_e_itp(grey, tinted, "bt2020") == pytest.approx(one_pixel / 2)


def test_delta_e_itp_shape_mismatch():
    with pytest.raises(InputError, match="shape"):
        delta_e_itp(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)), "bt709")


def test_cvvdp_says_why_it_is_unavailable(monkeypatch):
    from gainmap_format.evaluation.metrics import cvvdp_jod, cvvdp_metric

    cvvdp_metric.cache_clear()
    monkeypatch.setitem(sys.modules, "pycvvdp", None)
    image = np.full((16, 16, 3), 0.5, np.float32)
    with pytest.raises(ImportError, match="ColorVideoVDP is unavailable"):
        cvvdp_jod(image, image)
    cvvdp_metric.cache_clear()


def test_cvvdp_of_identical_images():
    from gainmap_format.evaluation.metrics import cvvdp_jod, cvvdp_metric

    try:
        cvvdp_metric()
    except ImportError as error:
        pytest.skip(str(error))
    image = np.random.default_rng(0).uniform(0.2, 0.6, (64, 64, 3)).astype(np.float32)
    assert cvvdp_jod(image, image) == pytest.approx(10.0, abs=0.01)
    assert cvvdp_jod(image, image + 0.05) < 9.9
