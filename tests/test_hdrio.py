"""Tests for gainmap_format.hdrio: EXR and Radiance reading and writing."""

from __future__ import annotations

import csv
import functools
import io
import struct
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gainmap_format import colour, hdrio, limits
from gainmap_format.errors import InputError, InputRepairWarning
from tests.conftest import SHARED_DATA

DATA_DIR = SHARED_DATA
HDR_DIR = DATA_DIR / "hdr"
NO_DATA = f"shared test data not found at {HDR_DIR}"

# Y row of the Rec.709/D65 RGB-to-XYZ matrix, from the standard (not from our code).
REC709_LUMINANCE = np.array([0.2126390, 0.7151687, 0.0721923])

TREE_CHROMATICITIES = (0.62955, 0.341, 0.2867, 0.6108, 0.1489, 0.07125, 0.3155, 0.33165)


# Helpers that build files byte by byte.


def radiance_file(path: Path, resolution: bytes, body: bytes, header: bytes = b"") -> Path:
    path.write_bytes(b"#?RADIANCE\n" + header + b"\n" + resolution + b"\n" + body)
    return path


def _exr_attribute(name: str, type_name: str, value: bytes) -> bytes:
    return f"{name}\0{type_name}\0".encode() + struct.pack("<i", len(value)) + value


def exr_header(
    samplings: dict[str, int], width: int, height: int, origin=(0, 0), extra: bytes = b""
) -> bytes:
    """Header of an uncompressed single-part scanline EXR with HALF channels."""
    channels = b"".join(
        name.encode() + b"\0" + struct.pack("<iB3xii", 1, 0, s, s)
        for name, s in sorted(samplings.items())
    )
    x0, y0 = origin
    box = struct.pack("<4i", x0, y0, x0 + width - 1, y0 + height - 1)
    return (
        b"\x76\x2f\x31\x01"
        + struct.pack("<I", 2)
        + _exr_attribute("channels", "chlist", channels + b"\0")
        + _exr_attribute("compression", "compression", b"\0")
        + _exr_attribute("dataWindow", "box2i", box)
        + _exr_attribute("displayWindow", "box2i", box)
        + _exr_attribute("lineOrder", "lineOrder", b"\0")
        + _exr_attribute("pixelAspectRatio", "float", struct.pack("<f", 1))
        + _exr_attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0, 0))
        + _exr_attribute("screenWindowWidth", "float", struct.pack("<f", 1))
        + extra
        + b"\0"
    )


def scanline_exr(path: Path, planes: dict[str, tuple[np.ndarray, int]], origin=(0, 0), extra=b""):
    """Write an uncompressed EXR; planes maps a channel name to (samples, sampling).

    The OpenEXR binding cannot write subsampled channels, which Y/RY/BY files need.
    """
    height, width = next(p.shape for p, s in planes.values() if s == 1)
    samplings = {name: s for name, (_, s) in planes.items()}
    header = exr_header(samplings, width, height, origin, extra)
    chunks = []
    for y in range(origin[1], origin[1] + height):
        data = b"".join(
            plane[(y - origin[1]) // s].astype("<f2").tobytes()
            for _, (plane, s) in sorted(planes.items())
            if y % s == 0
        )
        chunks.append(struct.pack("<ii", y, len(data)) + data)
    offsets = len(header) + 8 * height + np.cumsum([0] + [len(c) for c in chunks[:-1]])
    path.write_bytes(header + struct.pack(f"<{height}Q", *offsets) + b"".join(chunks))
    return path


def chromaticities_attribute(values) -> bytes:
    return _exr_attribute("chromaticities", "chromaticities", struct.pack("<8f", *values))


@functools.cache
def manifest_sizes() -> dict[str, tuple[int, int]]:
    """(height, width) of each shared HDR file, from the data set's MANIFEST.tsv."""
    with open(DATA_DIR / "MANIFEST.tsv", newline="") as file:
        rows = csv.DictReader(file, delimiter="\t")
        sizes = {}
        for row in rows:
            width, height = row["width_x_height"].split("x")
            sizes[row["file"]] = (int(height), int(width))
    return sizes


def shared_files() -> list:
    if not HDR_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_DATA))]
    return [pytest.param(path, id=path.name) for path in sorted(HDR_DIR.iterdir())]


def assert_names_file(excinfo: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(excinfo.value)


# Round trips.


@pytest.mark.parametrize("half", [False, True])
def test_exr_round_trip(tmp_path, half):
    rng = np.random.default_rng(0)
    pixels = (rng.standard_normal((7, 11, 3)) * 40).astype(np.float32)
    path = tmp_path / "out.exr"
    hdrio.write_exr(
        path, pixels, chromaticities=TREE_CHROMATICITIES, white_luminance=203.0, half=half
    )
    image = hdrio.read_hdr(path)
    assert image.source == "exr"
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (7, 11, 3)
    assert image.pixels.flags.c_contiguous
    expected = pixels.astype(np.float16).astype(np.float32) if half else pixels
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.chromaticities == TREE_CHROMATICITIES
    assert image.white_luminance == 203.0


def test_exr_without_white_luminance_reads_none(tmp_path):
    path = tmp_path / "out.exr"
    pixels = np.ones((2, 3, 3), np.float32)
    hdrio.write_exr(path, pixels, chromaticities=hdrio.REC709_CHROMATICITIES, white_luminance=None)
    image = hdrio.read_hdr(path)
    assert image.white_luminance is None
    assert image.chromaticities == hdrio.REC709_CHROMATICITIES


def test_exr_half_clips_to_half_range(tmp_path):
    path = tmp_path / "out.exr"
    pixels = np.array([[[1e6, -1e6, 1.0]]], np.float64)
    hdrio.write_exr(
        path, pixels, chromaticities=hdrio.REC709_CHROMATICITIES, white_luminance=None, half=True
    )
    np.testing.assert_array_equal(hdrio.read_hdr(path).pixels, [[[65504, -65504, 1]]])


def test_exr_without_chromaticities_defaults_to_rec709(tmp_path):
    path = tmp_path / "plain.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGB": np.ones((2, 2, 3), np.float32)}).write(
        str(path)
    )
    assert hdrio.read_hdr(path).chromaticities == hdrio.REC709_CHROMATICITIES


def test_exr_data_window_is_honoured(tmp_path):
    rng = np.random.default_rng(1)
    planes = {c: rng.random((5, 4)).astype(np.float32) for c in "RGB"}
    window = (np.array([3, 7], np.int32), np.array([6, 11], np.int32))
    path = tmp_path / "window.exr"
    header = {"type": OpenEXR.scanlineimage, "dataWindow": window}
    OpenEXR.File(header, dict(planes)).write(str(path))  # the binding changes the dict it gets
    image = hdrio.read_hdr(path)
    np.testing.assert_array_equal(image.pixels, np.stack([planes[c] for c in "RGB"], -1))


def test_exr_alpha_is_dropped(tmp_path):
    rgba = np.random.default_rng(2).random((3, 4, 4)).astype(np.float32)
    path = tmp_path / "rgba.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGBA": rgba}).write(str(path))
    np.testing.assert_array_equal(hdrio.read_hdr(path).pixels, rgba[..., :3])


def test_exr_multi_part_reads_the_first_part(tmp_path):
    display = (np.array([0, 0], np.int32), np.array([4, 3], np.int32))
    parts = [
        OpenEXR.Part(
            {"type": OpenEXR.scanlineimage, "displayWindow": display},
            {"RGB": np.full((h, w, 3), value, np.float32)},
            name,
        )
        for name, h, w, value in [("first", 2, 3, 1.0), ("second", 4, 5, 2.0)]
    ]
    path = tmp_path / "parts.exr"
    OpenEXR.File(parts).write(str(path))
    np.testing.assert_array_equal(hdrio.read_hdr(path).pixels, np.ones((2, 3, 3)))


def test_exr_nan_and_inf_become_finite_with_a_warning(tmp_path):
    pixels = np.array([[[np.nan, np.inf, -np.inf], [2.0, -3.0, 5.0], [1.0, 1.0, 1.0]]], np.float32)
    path = tmp_path / "nonfinite.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGB": pixels}).write(str(path))
    with pytest.warns(InputRepairWarning, match=r"nonfinite\.exr: 1 of 3 pixels held NaN or infinite") as record:
        image = hdrio.read_hdr(path)
    np.testing.assert_array_equal(image.pixels, [[[0, 5, -3], [2, -3, 5], [1, 1, 1]]])
    assert record[0].filename == __file__  # the warning points at the caller of read_hdr


@pytest.mark.parametrize(
    "value", [np.inf, np.nan, -np.inf, 0.0, -1.0], ids=["inf", "nan", "-inf", "zero", "negative"]
)
def test_exr_without_light_is_refused(tmp_path, value):
    # The file: all +inf used to become an all-black image, read without a word.
    path = tmp_path / "dark.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGB": np.full((3, 4, 3), value, np.float32)}).write(str(path))
    with pytest.raises(InputError, match="no sample is finite and positive") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


def test_radiance_without_light_is_refused(tmp_path):
    path = radiance_file(tmp_path / "black.hdr", b"-Y 2 +X 3", bytes(4 * 6))
    with pytest.raises(InputError, match="no sample is finite and positive") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize("width", [5, 40, 300])  # flat, RLE with one chunk, RLE with three
def test_radiance_round_trip(tmp_path, width):
    rng = np.random.default_rng(3)
    pixels = np.exp(rng.uniform(-20, 20, (6, width, 3))).astype(np.float32)
    pixels[0, 0] = 0
    path = tmp_path / "out.hdr"
    hdrio.write_radiance(path, pixels)
    image = hdrio.read_hdr(path)
    assert image.source == "radiance"
    assert image.chromaticities == hdrio.REC709_CHROMATICITIES
    assert image.white_luminance is None
    assert image.pixels.dtype == np.float32 and image.pixels.shape == pixels.shape
    # RGBE keeps 8 bits of mantissa relative to the pixel's largest channel.
    peak = pixels.max(axis=-1, keepdims=True)
    assert np.all(np.abs(image.pixels - pixels) <= peak / 256)
    assert np.all(image.pixels[0, 0] == 0)
    rle = 8 <= width < 0x8000
    scanline_start = path.read_bytes().index(b"\n\n-Y") + len(f"\n\n-Y 6 +X {width}\n")
    assert (path.read_bytes()[scanline_start : scanline_start + 2] == b"\x02\x02") == rle


def test_radiance_writer_stores_negatives_as_zero(tmp_path):
    path = tmp_path / "neg.hdr"
    hdrio.write_radiance(path, np.array([[[-1.0, 0.5, 2.0]]]))
    # 2.0 = 128 steps of 2^-6: exponent 130; 0.5 = 32 steps; -1 has mantissa 0.
    assert path.read_bytes()[-4:] == bytes([0, 32, 128, 130])


# Radiance decoding from hand-made bytes.


def rgbe_value(mantissa, exponent):
    """Radiance's colr_color(): (m + 0.5) 2^(e - 136), 0 when e == 0."""
    return 0.0 if exponent == 0 else (mantissa + 0.5) * 2.0 ** (exponent - 136)


def test_rle_scanline_with_runs_and_literals(tmp_path):
    red = bytes([128 + 8, 200])  # a run of 8
    green = bytes([8, *range(0, 256, 32)])  # 8 literals
    blue = bytes([128 + 3, 64, 5, 1, 2, 3, 4, 5])  # a run of 3, then 5 literals
    exponent = bytes([128 + 7, 129, 1, 0])  # a run of 7 at 129, then one literal 0
    body = bytes([2, 2, 0, 8]) + red + green + blue + exponent
    image = hdrio.read_hdr(radiance_file(tmp_path / "rle.hdr", b"-Y 1 +X 8", body))
    blues = [64, 64, 64, 1, 2, 3, 4, 5]
    expected = [
        [rgbe_value(200, 129), rgbe_value(g, 129), rgbe_value(b, 129)]
        for g, b in zip(range(0, 256, 32), blues, strict=True)
    ]
    expected[-1] = [0, 0, 0]  # exponent 0 is black whatever the mantissas
    np.testing.assert_array_equal(image.pixels[0], np.array(expected, np.float32))


def test_old_style_runs(tmp_path):
    first, second = bytes([10, 20, 30, 130]), bytes([40, 50, 60, 131])
    # (1, 1, 1, n) repeats the previous pixel; a second marker in a row counts in units of 256.
    body = first + bytes([1, 1, 1, 2]) + second + first + bytes([1, 1, 1, 43, 1, 1, 1, 1])
    image = hdrio.read_hdr(radiance_file(tmp_path / "old.hdr", b"-Y 1 +X 304", body))
    a = [rgbe_value(m, 130) for m in (10, 20, 30)]
    b = [rgbe_value(m, 131) for m in (40, 50, 60)]
    expected = np.array([a, a, a, b] + [a] * 300, np.float32)
    np.testing.assert_array_equal(image.pixels[0], expected)


def test_flat_scanlines_in_rle_width(tmp_path):
    pixels = bytes(range(100, 132))  # 8 pixels that do not start with 2, 2
    image = hdrio.read_hdr(radiance_file(tmp_path / "flat.hdr", b"-Y 1 +X 8", pixels))
    assert image.pixels[0, 0, 0] == np.float32(rgbe_value(100, 103))


def test_exposure_colorcorr_primaries_and_xyz(tmp_path):
    body = bytes([128, 128, 128, 129])  # about 1.0 in every channel
    header = (
        b"EXPOSURE=2\nEXPOSURE=0.5e1\nCOLORCORR=1 2 4\nPRIMARIES=0.7 0.3 0.2 0.7 0.1 0.1 0.3 0.3\n"
    )
    image = hdrio.read_hdr(radiance_file(tmp_path / "e.hdr", b"-Y 1 +X 1", body, header))
    value = rgbe_value(128, 129)
    np.testing.assert_allclose(image.pixels[0, 0], [value / 10, value / 20, value / 40], rtol=1e-6)
    assert image.chromaticities == (0.7, 0.3, 0.2, 0.7, 0.1, 0.1, 0.3, 0.3)
    xyz = radiance_file(tmp_path / "x.hdr", b"-Y 1 +X 1", body, b"FORMAT=32-bit_rle_xyze\n")
    assert hdrio.read_hdr(xyz).chromaticities == hdrio.XYZ_CHROMATICITIES


def test_photoshop_zero_primaries_mean_unspecified(tmp_path):
    header = b"GAMMA=1\nPRIMARIES=0 0 0 0 0 0 0 0\nFORMAT=32-bit_rle_rgbe\n"
    path = radiance_file(tmp_path / "ps.hdr", b"-Y 1 +X 1", bytes([1, 2, 3, 130]), header)
    assert hdrio.read_hdr(path).chromaticities == hdrio.REC709_CHROMATICITIES


# How each resolution line stores the image [[a, b, c], [d, e, f]] (top row first).
ORIENTATIONS = {
    b"-Y 2 +X 3": ["abc", "def"],
    b"-Y 2 -X 3": ["cba", "fed"],
    b"+Y 2 +X 3": ["def", "abc"],
    b"+Y 2 -X 3": ["fed", "cba"],
    b"+X 3 -Y 2": ["ad", "be", "cf"],
    b"+X 3 +Y 2": ["da", "eb", "fc"],
    b"-X 3 -Y 2": ["cf", "be", "ad"],
    b"-X 3 +Y 2": ["fc", "eb", "da"],
}


@pytest.mark.parametrize("resolution", ORIENTATIONS, ids=lambda r: r.decode())
def test_orientations(tmp_path, resolution):
    def pixel(letter):  # a distinct grey per letter
        return bytes([ord(letter)] * 3 + [130])

    body = b"".join(pixel(letter) for scanline in ORIENTATIONS[resolution] for letter in scanline)
    image = hdrio.read_hdr(radiance_file(tmp_path / "o.hdr", resolution, body))
    expected = [[rgbe_value(ord(letter), 130)] * 3 for letter in "abcdef"]
    np.testing.assert_array_equal(image.pixels, np.array(expected, np.float32).reshape(2, 3, 3))


# Luminance/chroma EXR files.


def test_luminance_only_is_grey(tmp_path):
    luminance = np.random.default_rng(4).random((4, 6)).astype(np.float16)
    path = scanline_exr(tmp_path / "y.exr", {"Y": (luminance, 1)})
    image = hdrio.read_hdr(path)
    np.testing.assert_array_equal(image.pixels, np.repeat(luminance[..., None], 3, -1))


def test_zero_chroma_is_exact_grey(tmp_path):
    luminance = np.random.default_rng(5).random((6, 8)).astype(np.float16)
    zero = np.zeros((3, 4))
    path = scanline_exr(tmp_path / "g.exr", {"Y": (luminance, 1), "RY": (zero, 2), "BY": (zero, 2)})
    image = hdrio.read_hdr(path)
    np.testing.assert_array_equal(image.pixels, np.repeat(luminance[..., None], 3, -1))


def test_constant_chroma_follows_the_yca_formula(tmp_path):
    luminance = np.random.default_rng(6).uniform(0.1, 3, (6, 8)).astype(np.float16)
    ry, by = np.full((3, 4), 0.5), np.full((3, 4), -0.25)
    planes = {"Y": (luminance, 1), "RY": (ry, 2), "BY": (by, 2)}
    image = hdrio.read_hdr(scanline_exr(tmp_path / "c.exr", planes, origin=(2, 4)))
    y = luminance.astype(np.float64)
    red, blue = 1.5 * y, 0.75 * y
    green = (y - red * REC709_LUMINANCE[0] - blue * REC709_LUMINANCE[2]) / REC709_LUMINANCE[1]
    np.testing.assert_allclose(image.pixels, np.stack([red, green, blue], -1), rtol=1e-5)


def test_chroma_is_interpolated_between_samples(tmp_path):
    # Chroma that grows linearly with x (in steps exact in half floats): the interpolation
    # filter reproduces it away from the edges, if sample i sits at x = 2 i.
    width = 48
    ry = np.tile(np.arange(0, width, 2) / 128, (2, 1))
    planes = {"Y": (np.ones((4, width)), 1), "RY": (ry, 2), "BY": (np.zeros_like(ry), 2)}
    image = hdrio.read_hdr(scanline_exr(tmp_path / "ramp.exr", planes))
    x = np.arange(14, width - 14)
    np.testing.assert_allclose(image.pixels[:, x, 0], np.tile(1 + x / 128, (4, 1)), atol=1e-5)


def test_chroma_uses_the_file_chromaticities(tmp_path):
    luminance = np.ones((2, 2))
    planes = {"Y": (luminance, 1), "RY": (np.full((1, 1), 0.5), 2), "BY": (np.zeros((1, 1)), 2)}
    extra = chromaticities_attribute(TREE_CHROMATICITIES)
    image = hdrio.read_hdr(scanline_exr(tmp_path / "tree.exr", planes, extra=extra))
    assert image.chromaticities == TREE_CHROMATICITIES
    weights = colour.luminance_weights(TREE_CHROMATICITIES)
    np.testing.assert_allclose(image.pixels @ weights, 1.0, rtol=1e-5)
    assert not np.allclose(weights, REC709_LUMINANCE, atol=1e-3)


# The shared data set.


@pytest.mark.parametrize("path", shared_files())
def test_shared_file_reads(path):
    image = hdrio.read_hdr(path)
    pixels = image.pixels
    assert pixels.dtype == np.float32 and pixels.flags.c_contiguous
    assert pixels.shape == (*manifest_sizes()[f"hdr/{path.name}"], 3)
    assert np.isfinite(pixels).all()
    assert 0.5 < pixels.max() < 1e6
    assert 1e-5 < np.median(pixels) < 10
    assert pixels.min() >= -0.1 * pixels.max()  # ACES files hold a few small negatives
    assert image.source == ("exr" if path.suffix == ".exr" else "radiance")


def luminance_chroma_files() -> list:
    if not HDR_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_DATA))]
    return [
        pytest.param(path, id=path.name)
        for path in sorted(HDR_DIR.glob("*.exr"))
        if "BY" in [c.name for c in OpenEXR.File(str(path), header_only=True).header()["channels"]]
    ]


@pytest.mark.parametrize("path", luminance_chroma_files())
def test_shared_luminance_chroma_file_is_plausible(path):
    pixels = hdrio.read_hdr(path).pixels
    luminance = OpenEXR.File(str(path), separate_channels=True).channels()["Y"].pixels
    luminance = luminance.astype(np.float32)
    # No large negatives (the saturation fix removes the filter's overshoot) ...
    assert pixels.min() >= -1e-3 * pixels.max()
    # ... and the RGB has the file's luminance: G was solved for it and desaturation keeps it.
    np.testing.assert_allclose(pixels @ REC709_LUMINANCE, luminance, rtol=1e-5, atol=1e-6)
    # Each channel follows Y: colour ratios stay within what real scenes hold.
    lit = luminance > 1e-3
    ratios = pixels[lit] / luminance[lit, None]
    low, high = np.percentile(ratios, [1, 99])
    assert 0.1 < low and high < 10


@pytest.mark.skipif(not HDR_DIR.is_dir(), reason=NO_DATA)
def test_shared_metadata():
    tree = hdrio.read_hdr(HDR_DIR / "oexr_Tree.exr")
    assert tree.chromaticities == TREE_CHROMATICITIES
    assert tree.white_luminance == 621.0
    carrots = hdrio.read_hdr(HDR_DIR / "oexr_Carrots.exr")
    assert carrots.chromaticities[:2] == (0.7347, 0.2653)  # ACES AP0
    assert hdrio.read_hdr(HDR_DIR / "oexr_Rec709.exr").white_luminance is None


# Hostile and unusable files.


@pytest.fixture(scope="module")
def small_exr(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("exr") / "small.exr"
    pixels = np.random.default_rng(7).random((32, 32, 3))
    hdrio.write_exr(path, pixels, chromaticities=TREE_CHROMATICITIES, white_luminance=100.0)
    return path.read_bytes()


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.95])
def test_truncated_exr(tmp_path, small_exr, keep):
    path = tmp_path / "cut.exr"
    path.write_bytes(small_exr[: int(len(small_exr) * keep)])
    with pytest.raises(InputError) as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (16384, 8193)])
def test_huge_exr_is_refused_before_reading_pixels(tmp_path, width, height):
    path = tmp_path / "huge.exr"
    path.write_bytes(exr_header({"R": 1, "G": 1, "B": 1}, width, height) + bytes(64))
    with pytest.raises(InputError, match=f"exceeds the limit of {limits.MAX_PIXELS} pixels"):
        hdrio.read_hdr(path)


def test_the_readers_share_the_library_limit():
    assert hdrio.MAX_PIXELS == limits.MAX_PIXELS == 1 << 27


def test_radiance_over_the_limit_is_refused_from_its_header(tmp_path):
    # The file: a few run-length scanlines that declare 16384 x 16384 pixels used to be
    # decoded (5 GB, 28 s) before anything refused them.
    scanline = bytes([2, 2, 0x40, 0x00]) + (bytes([128 + 127, 1]) * 129 + bytes([128 + 1, 1])) * 4
    path = radiance_file(tmp_path / "bomb.hdr", b"-Y 16384 +X 16384", scanline * 100)
    with pytest.raises(InputError, match="exceeds the limit") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize(
    ("resolution", "message"),
    [(b"-Y 8193 +X 16384", "exceeds the limit"), (b"+X 8193 -Y 16384", "exceeds the limit"),
     (b"-Y 8192 +X 16384", "scanline 0")],
)
def test_radiance_limit_is_inclusive(tmp_path, resolution, message):
    # At the limit the header is accepted, and the missing pixel data is what fails.
    path = radiance_file(tmp_path / "big.hdr", resolution, b"")
    with pytest.raises(InputError, match=message):
        hdrio.read_hdr(path)


def _allocate_too_much(*args, **kwargs):
    return np.empty(1 << 62, np.uint8)  # numpy's own MemoryError, as a real shortage raises it


@pytest.mark.parametrize(("function", "suffix"), [("_exr_rgb", ".exr"), ("_rgbe_to_float", ".hdr")])
def test_running_out_of_memory_while_reading_is_an_input_error(tmp_path, monkeypatch, function, suffix):
    path = tmp_path / f"image{suffix}"
    pixels = np.ones((2, 3, 3))
    if suffix == ".exr":
        hdrio.write_exr(path, pixels, chromaticities=hdrio.REC709_CHROMATICITIES, white_luminance=None)
    else:
        hdrio.write_radiance(path, pixels)
    monkeypatch.setattr(hdrio, function, _allocate_too_much)
    with pytest.raises(InputError, match="too large for the memory available") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize(("function", "writer"), [("_write_exr", "write_exr"), ("_encode_rgbe", "write_radiance")])
def test_running_out_of_memory_while_writing_is_an_input_error(tmp_path, monkeypatch, function, writer):
    path = tmp_path / "out"
    path.write_bytes(b"precious")
    monkeypatch.setattr(hdrio, function, _allocate_too_much)
    options = {"chromaticities": hdrio.REC709_CHROMATICITIES, "white_luminance": None} if writer == "write_exr" else {}
    with pytest.raises(InputError, match="too large for the memory available") as excinfo:
        getattr(hdrio, writer)(path, np.ones((2, 3, 3)), **options)
    assert_names_file(excinfo, path)
    assert path.read_bytes() == b"precious"


def test_radiance_read_failure_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "image.hdr"
    hdrio.write_radiance(path, np.ones((2, 3, 3)))
    opened = []

    def open_once(*args, **kwargs):
        # read_hdr's first open (for the magic bytes) works; the reader's own then fails.
        opened.append(args[0])
        if len(opened) > 1:
            raise OSError(5, "Input/output error")
        return open(*args, **kwargs)

    monkeypatch.setattr(hdrio, "open", open_once, raising=False)
    with pytest.raises(InputError, match="cannot read the file: .*Input/output error") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


def test_exr_without_image_channels(tmp_path):
    path = tmp_path / "depth.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": np.ones((2, 2), np.float32)}).write(
        str(path)
    )
    with pytest.raises(InputError, match="neither R, G, B nor Y"):
        hdrio.read_hdr(path)


def test_exr_with_integer_channels(tmp_path):
    path = tmp_path / "uint.exr"
    planes = {c: np.ones((2, 2), np.uint32) for c in "RGB"}
    OpenEXR.File({"type": OpenEXR.scanlineimage}, planes).write(str(path))
    with pytest.raises(InputError, match="not floats"):
        hdrio.read_hdr(path)


def test_exr_with_degenerate_chromaticities(tmp_path):
    extra = chromaticities_attribute([0.3, 0.3] * 4)
    path = scanline_exr(tmp_path / "bad.exr", {c: (np.ones((2, 2)), 1) for c in "RGB"}, extra=extra)
    with pytest.raises(InputError, match="chromaticities"):
        hdrio.read_hdr(path)


@pytest.mark.parametrize(
    "attribute", [b"chromaticities\0chromaticities\0", b"whiteLuminance\0float\0"]
)
def test_exr_attribute_of_unknown_type(tmp_path, small_exr, attribute):
    # The binding cannot even repr() an attribute whose type name is not UTF-8.
    name, type_name = attribute.split(b"\0")[:2]
    path = tmp_path / "odd.exr"
    path.write_bytes(small_exr.replace(attribute, name + b"\0\x84" + type_name[1:] + b"\0"))
    with pytest.raises(InputError, match="undecodable"):
        hdrio.read_hdr(path)


@given(
    changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    keep=st.floats(0, 1),
)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzzed_exr(tmp_path, small_exr, changes, keep):
    data = bytearray(small_exr)
    for where, value in changes:
        data[int(where * len(data))] = value
    path = tmp_path / "fuzz.exr"
    path.write_bytes(data[: max(4, int(keep * len(data)))])
    try:
        image = hdrio.read_hdr(path)
    except InputError:
        return
    assert image.pixels.shape == (32, 32, 3) and np.isfinite(image.pixels).all()


def test_truncated_radiance(tmp_path):
    path = tmp_path / "cut.hdr"
    hdrio.write_radiance(path, np.random.default_rng(8).random((4, 16, 3)))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(InputError, match="scanline 3") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize(
    ("resolution", "body", "header", "message"),
    [
        (b"-Y 1 +X 8", bytes([2, 2, 0, 8, 128 + 9, 7]), b"", "RLE code 137 does not fit"),
        (b"-Y 1 +X 8", bytes([2, 2, 0, 8, 9]) + bytes(9), b"", "RLE code 9 does not fit"),
        (b"-Y 1 +X 8", bytes([2, 2, 0, 8, 0]), b"", "RLE code 0"),
        (b"-Y 1 +X 8", bytes([2, 2, 0, 9]), b"", "declares length 9"),
        (b"-Y 1 +X 3", bytes([5, 5, 5, 130, 1, 1, 1, 3]), b"", "run of 3 overflows"),
        (b"-Y 1 +X 3", bytes([1, 1, 1, 3]), b"", "no pixel before it"),
        (b"-Y 0 +X 3", b"", b"", "empty"),
        (b"-Y 100000 +X 100000", b"", b"", "exceeds"),
        (b"-Y 3 -Y 3", b"", b"", "resolution line"),
        (b"-Y x +X 3", b"", b"", "resolution line"),
        (b"-Y 1 +X 1", bytes(4), b"FORMAT=32-bit_rle_cmyk\n", "line 2: unsupported FORMAT"),
        (b"-Y 1 +X 1", bytes(4), b"EXPOSURE=0\n", "line 2"),
        (b"-Y 1 +X 1", bytes(4), b"EXPOSURE=nan\n", "line 2"),
        (b"-Y 1 +X 1", bytes(4), b"#\nCOLORCORR=1 2\n", "line 3"),
        (b"-Y 1 +X 1", bytes(4), b"PRIMARIES=0.3 0.3 0.3 0.3 0.3 0.3 0.3 0.3\n", "collinear"),
        (b"-Y 1 +X 1", bytes(4), b"PRIMARIES=1 2 3\n", "expected 8 numbers"),
    ],
)
def test_bad_radiance_files(tmp_path, resolution, body, header, message):
    path = radiance_file(tmp_path / "bad.hdr", resolution, body, header)
    with pytest.raises(InputError, match=message) as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


def test_radiance_header_over_64_kib(tmp_path):
    path = tmp_path / "long.hdr"
    path.write_bytes(b"#?RADIANCE\n" + b"# comment\n" * 7000 + b"\n-Y 1 +X 1\n" + bytes(4))
    with pytest.raises(InputError, match="65536 bytes"):
        hdrio.read_hdr(path)


@pytest.mark.parametrize(
    "content", [b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n-Y 1 +X 1\n", b"#?\xff\xfe\x00garbage\n\n"]
)
def test_radiance_header_without_end(tmp_path, content):
    path = tmp_path / "noend.hdr"
    path.write_bytes(content)
    with pytest.raises(InputError, match="do not end"):
        hdrio.read_hdr(path)


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content", [_png_bytes(), _jpeg_bytes(), b"", b"#!RADIANCE\n", b"\x76\x2f"]
)
def test_not_an_hdr_file(tmp_path, content):
    path = tmp_path / "image.hdr"  # the name says Radiance; the bytes decide
    path.write_bytes(content)
    with pytest.raises(InputError, match="not an OpenEXR or Radiance file") as excinfo:
        hdrio.read_hdr(path)
    assert_names_file(excinfo, path)


def test_exr_named_hdr_is_read_as_exr(tmp_path, small_exr):
    path = tmp_path / "actually.hdr"
    path.write_bytes(small_exr)
    assert hdrio.read_hdr(path).source == "exr"


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        hdrio.read_hdr(tmp_path / "absent.exr")


@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=200).map(lambda b: bytes([2, 2, 0, 9]) + b),
        st.lists(st.sampled_from([bytes([1, 1, 1, 2]), bytes([9, 9, 9, 140])])).map(b"".join),
    ),
    resolution=st.sampled_from([b"-Y 2 +X 3", b"-Y 3 +X 9", b"+X 9 -Y 2", b"-Y 1 +X 1"]),
)
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzzed_radiance_data(tmp_path, body, resolution):
    path = radiance_file(tmp_path / "fuzz.hdr", resolution, body)
    try:
        image = hdrio.read_hdr(path)
    except InputError:
        return
    assert image.pixels.dtype == np.float32 and image.pixels.ndim == 3
    assert np.isfinite(image.pixels).all()


# Writing.


def test_write_exr_rejects_bad_pixels_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.exr"
    path.write_bytes(b"precious")
    for bad in [np.ones((2, 2)), np.ones((2, 2, 3), np.int32), np.ones((0, 2, 3)), [[[1.0] * 3]]]:
        with pytest.raises(InputError) as excinfo:
            hdrio.write_exr(
                path, bad, chromaticities=hdrio.REC709_CHROMATICITIES, white_luminance=None
            )
        assert_names_file(excinfo, path)
    with pytest.raises(InputError, match="NaN"):
        hdrio.write_radiance(path, np.full((1, 1, 3), np.nan))
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.exr"]


@pytest.mark.parametrize(
    ("chromaticities", "white_luminance"),
    [((0.64, 0.33), None), ((0.3, 0.3) * 4, None), (hdrio.REC709_CHROMATICITIES, 0.0)],
)
def test_write_exr_rejects_bad_metadata(tmp_path, chromaticities, white_luminance):
    with pytest.raises(InputError):
        hdrio.write_exr(
            tmp_path / "x.exr",
            np.ones((1, 1, 3)),
            chromaticities=chromaticities,
            white_luminance=white_luminance,
        )
    assert list(tmp_path.iterdir()) == []


def test_failed_rename_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "inside").write_bytes(b"x")  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError):
        hdrio.write_radiance(target, np.ones((1, 1, 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]
    assert [p.name for p in target.iterdir()] == ["inside"]


def test_failed_exr_write_keeps_the_old_file(tmp_path, monkeypatch):
    class FailingFile:
        def __init__(self, header, channels):
            pass

        def write(self, name):
            Path(name).write_bytes(b"half an EXR")
            raise RuntimeError("disk full")

    path = tmp_path / "keep.exr"
    path.write_bytes(b"precious")
    monkeypatch.setattr(OpenEXR, "File", FailingFile)
    with pytest.raises(RuntimeError, match="disk full"):
        hdrio.write_exr(
            path,
            np.ones((1, 1, 3)),
            chromaticities=hdrio.REC709_CHROMATICITIES,
            white_luminance=None,
        )
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.exr"]


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "image.exr"
    path.write_bytes(b"old")
    hdrio.write_exr(
        path, np.ones((1, 2, 3)), chromaticities=hdrio.REC709_CHROMATICITIES, white_luminance=None
    )
    assert hdrio.read_hdr(path).pixels.shape == (1, 2, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["image.exr"]


def test_hdr_image_checks_its_pixels():
    chromaticities = hdrio.REC709_CHROMATICITIES
    with pytest.raises(InputError):
        hdrio.HdrImage(np.ones((2, 2, 3)), chromaticities, None, "exr")  # float64
    with pytest.raises(InputError):
        hdrio.HdrImage(np.full((2, 2, 3), np.inf, np.float32), chromaticities, None, "exr")


def test_exr_channels_of_mixed_types_are_read_one_by_one(tmp_path):
    # The binding cannot interleave HALF with FLOAT channels; the reader reads them separately.
    rng = np.random.default_rng(11)
    planes = {"R": rng.random((5, 6)).astype(np.float16), "G": rng.random((5, 6)).astype(np.float32),
              "B": rng.random((5, 6)).astype(np.float16)}
    path = tmp_path / "mixed.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, dict(planes)).write(str(path))
    np.testing.assert_array_equal(hdrio.read_hdr(path).pixels, np.stack([planes[c] for c in "RGB"], -1))


@pytest.mark.parametrize("half", [False, True])
def test_exr_writes_float64_pixels_clipped_to_the_channel_type(tmp_path, half):
    dtype = np.float16 if half else np.float32
    limit = float(np.finfo(dtype).max)
    pixels = np.array([[[1e300, -1e300, 0.1]], [[2.5, -3.0, 7.0]]])
    path = tmp_path / "wide.exr"
    hdrio.write_exr(path, pixels, chromaticities=hdrio.REC709_CHROMATICITIES, white_luminance=None, half=half)
    expected = np.clip(pixels, -limit, limit).astype(dtype).astype(np.float32)
    np.testing.assert_array_equal(hdrio.read_hdr(path).pixels, expected)
