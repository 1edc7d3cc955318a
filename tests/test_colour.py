import numpy as np
import pytest

from gainmap_format import colour
from gainmap_format.errors import InputError


@pytest.mark.parametrize(
    ("luminance", "code"),
    [
        # ITU-R BT.2100 / ST 2084 reference points (BT.2408 table 1 lists 100 and 1000 cd/m²).
        (0.0, 7.309559e-07),
        (100.0, 0.5080784),
        (203.0, 0.5806888),
        (1000.0, 0.7518271),
        (10000.0, 1.0),
    ],
)
def test_pq_reference_values(luminance, code):
    assert colour.pq_encode(np.array(luminance)) == pytest.approx(code, rel=1e-5, abs=1e-9)


def test_pq_round_trip():
    luminance = np.geomspace(1e-3, 1e4, 200)
    assert np.allclose(colour.pq_decode(colour.pq_encode(luminance)), luminance, rtol=1e-9)


def test_pq_clips_out_of_range():
    assert colour.pq_encode(np.array([-5.0, 2e4])).tolist() == pytest.approx([colour.pq_encode(np.array(0.0)), 1.0])
    assert colour.pq_decode(np.array([1.5])) == pytest.approx(10000.0)


def test_srgb_reference_values():
    # IEC 61966-2-1: the linear segment meets the power segment at 0.04045 / 0.0031308.
    assert colour.srgb_decode(np.array(0.04045)) == pytest.approx(0.0031308, rel=1e-4)
    assert colour.srgb_decode(np.array(0.5)) == pytest.approx(0.2140411, rel=1e-6)
    assert colour.srgb_encode(np.array(0.2140411)) == pytest.approx(0.5, rel=1e-6)
    values = np.linspace(0, 1, 101)
    assert np.allclose(colour.srgb_encode(colour.srgb_decode(values)), values, atol=1e-12)


def test_bt709_inverse_oetf_inverts_the_oetf():
    # ITU-R BT.709-6 table 1 item 1.2, the OETF written out here: V = 4.5 L below L = 0.018,
    # else 1.099 L^0.45 - 0.099.
    linear = np.concatenate([np.linspace(0.0, 0.018, 20, endpoint=False), np.linspace(0.018, 1.0, 200)])
    code = np.where(linear < 0.018, 4.5 * linear, 1.099 * linear**0.45 - 0.099)
    assert np.allclose(colour.bt709_inverse_oetf(code), linear, rtol=1e-12, atol=1e-15)
    assert colour.bt709_inverse_oetf(np.array([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0])


def test_gamma24():
    assert colour.gamma24_decode(np.array(0.5)) == pytest.approx(0.5**2.4)
    assert colour.gamma24_encode(colour.gamma24_decode(np.array(0.3))) == pytest.approx(0.3)


def test_transfer_by_name_rejects_unknown():
    with pytest.raises(InputError, match="unknown SDR transfer"):
        colour.transfer_decode(np.zeros(1), "pq")


def test_bt709_to_bt2020_matches_bt2087():
    # ITU-R BT.2087-0 equation (4), to the four decimals it prints.
    expected = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
    matrix = colour.conversion_matrix(colour.PRIMARIES["bt709"], colour.PRIMARIES["bt2020"])
    assert np.allclose(matrix, expected, atol=5e-5)


def test_bt709_to_xyz_matches_srgb_standard():
    # IEC 61966-2-1 RGB to XYZ matrix.
    expected = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    assert np.allclose(colour.rgb_to_xyz_matrix(colour.PRIMARIES["bt709"]), expected, atol=1e-4)
    assert np.allclose(colour.luminance_weights(colour.PRIMARIES["bt2020"]), [0.2627, 0.6780, 0.0593], atol=1e-4)


def test_p3_to_bt709_keeps_white():
    matrix = colour.conversion_matrix(colour.PRIMARIES["display-p3"], colour.PRIMARIES["bt709"])
    assert np.allclose(matrix @ np.ones(3), np.ones(3), atol=1e-9)


def test_white_point_adaptation_maps_white_to_white():
    aces_ap0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
    matrix = colour.conversion_matrix(aces_ap0, colour.PRIMARIES["bt2020"])
    assert np.allclose(matrix @ np.ones(3), np.ones(3), atol=1e-6)


def test_convert_primaries_shape_and_dtype():
    pixels = np.random.default_rng(0).random((4, 5, 3)).astype(np.float64)
    out = colour.convert_primaries(pixels, colour.PRIMARIES["bt709"], colour.PRIMARIES["bt2020"])
    assert out.shape == (4, 5, 3) and out.dtype == np.float32


@pytest.mark.parametrize(
    "bad",
    [
        (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.0),
        (0.3, 0.6, 0.3, 0.6, 0.3, 0.6, 0.3127, 0.329),
        (float("nan"), 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329),
    ],
)
def test_degenerate_chromaticities_are_rejected(bad):
    with pytest.raises(InputError):
        colour.rgb_to_xyz_matrix(bad)


def test_xyz_as_rgb_gives_the_identity():
    xyz = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1 / 3, 1 / 3)
    assert np.allclose(colour.rgb_to_xyz_matrix(xyz), np.eye(3), atol=1e-12)


def test_lab_to_xyz_reference_values():
    white = colour.rgb_to_xyz_matrix(colour.PRIMARIES["bt709"]).sum(axis=1)
    # L* = 50 is Y = (66/116)^3; L* = 5 lies on the linear segment, Y = 5 / 903.3 (CIE 15:2004).
    xyz = colour.lab_to_xyz(np.array([[50.0, 0.0, 0.0], [5.0, 0.0, 0.0], [100.0, 0.0, 0.0]]), white)
    np.testing.assert_allclose(xyz[:, 1], [(66 / 116) ** 3, 5 / (24389 / 27), 1.0], rtol=1e-9)
    np.testing.assert_allclose(xyz[2], white, rtol=1e-12)


def test_lab_round_trip_across_both_segments():
    white = colour.rgb_to_xyz_matrix(colour.PRIMARIES["bt2020"]).sum(axis=1)
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 110, 500), rng.uniform(-90, 90, 500), rng.uniform(-90, 90, 500)], axis=-1)
    np.testing.assert_allclose(colour.xyz_to_lab(colour.lab_to_xyz(lab, white), white), lab, atol=1e-9)


def _pq_formulas(luminance: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ST 2084's two equations written out, one temporary per operation."""
    y_m1 = np.power(np.clip(luminance / 10000.0, 0.0, 1.0), colour.PQ_M1)
    encoded = np.power((colour.PQ_C1 + colour.PQ_C2 * y_m1) / (1.0 + colour.PQ_C3 * y_m1), colour.PQ_M2)
    e = np.power(np.clip(code, 0.0, 1.0), 1.0 / colour.PQ_M2)
    y = np.maximum(e - colour.PQ_C1, 0.0) / (colour.PQ_C2 - colour.PQ_C3 * e)
    return encoded, 10000.0 * np.power(y, 1.0 / colour.PQ_M1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pq_in_place_gives_the_formulas_bits(dtype):
    rng = np.random.default_rng(3)
    luminance = (rng.random((40, 30, 3)) * 12000 - 500).astype(dtype)
    code = (rng.random((40, 30, 3)) * 1.2 - 0.1).astype(dtype)
    encoded, decoded = _pq_formulas(luminance, code)
    assert colour.pq_encode(luminance).dtype == colour.pq_decode(code).dtype == dtype
    np.testing.assert_array_equal(colour.pq_encode(luminance), encoded)
    np.testing.assert_array_equal(colour.pq_decode(code), decoded)


def test_pq_of_scalars_and_lists():
    assert isinstance(colour.pq_encode(100.0), np.floating) and isinstance(colour.pq_decode(0.5), np.floating)
    assert colour.pq_encode([100.0, 1e5]).tolist() == pytest.approx([0.5080784, 1.0], rel=1e-6)
    assert colour.pq_decode(np.array([0, 1])).tolist() == [0.0, 10000.0]
