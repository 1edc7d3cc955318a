"""The standard gain-map reader over generated files: every reader path, from a clean clone.

The files come from ``tests/standard_fixtures.py`` (the project's own writers, 64x48 bases).
Each is checked three ways: its metadata and layout read back as written; its rendering equals
an independent numpy computation of ISO 21496-1's or Apple's equations from the stored map and
the metadata it was built with; and, where libultrahdr reads it, libultrahdr renders the same.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
from PIL import JpegImagePlugin

from gainmap_format import standard, structs
from gainmap_format.colour import PRIMARIES, convert_primaries
from gainmap_format.errors import StandardGainMapError
from gainmap_format.jpeg import parse_jpeg, replace_segments
from gainmap_format.standard.decode import base_linear
from tests.standard_fixtures import FIXTURES, standard_fixture
from tests.test_standard import LIBULTRAHDR_CEILING, psnr_after_scale

#: Relative tolerance of the rendering against the float64 equations: the reader works in float32.
RENDER_RTOL = 1e-4

#: Absolute tolerance, in relative linear light (1.0 = SDR white), for values near zero.
RENDER_ATOL = 1e-5

#: Floor for libultrahdr's rendering of these files, in dB after one least-squares scale. Higher
#: than the real files' 40 dB floor: these are smooth, with quality-100 4:4:4 images.
FIXTURE_PSNR_DB = 50.0


def _pillow_codes(jpeg: bytes) -> np.ndarray:
    """float64 (H, W, C) code values in [0, 1], decoded by Pillow's JPEG decoder (no plugin)."""
    with JpegImagePlugin.JpegImageFile(io.BytesIO(jpeg)) as image:
        codes = np.asarray(image, dtype=np.float64) / 255.0
    return codes[..., None] if codes.ndim == 2 else codes


def _srgb_eotf(code: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1's piecewise sRGB EOTF, written out here rather than taken from the library."""
    return np.where(code <= 0.04045, code / 12.92, ((code + 0.055) / 1.055) ** 2.4)


def _srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_srgb_eotf`."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def _bt709_inverse_oetf(code: np.ndarray) -> np.ndarray:
    """ITU-R BT.709's OETF inverted: how Apple's maps are linearised."""
    return np.where(code < 0.081, code / 4.5, ((code + 0.099) / 1.099) ** (1 / 0.45))


def _sample_grid(base_size: tuple[int, int], map_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Base rows and columns that sit exactly on a map sample (sample 0 on pixel 0), and those samples.

    Returns:
        ((base_rows, base_columns), (map_rows, map_columns)) as index arrays for np.ix_.
    """
    axes = []
    for base, gain in zip(base_size, map_size, strict=True):
        step = base // math.gcd(base, gain)
        pixels = np.arange(0, base, step)
        axes.append((pixels, pixels * gain // base))
    (columns, map_columns), (rows, map_rows) = axes
    return (rows, columns), (map_rows, map_columns)


def _expected(
    fixture_name: str, display_headroom: float | None
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """ISO 21496-1 §7 or Apple's formula in float64 from the fixture's metadata and its stored map.

    Returns:
        (expected, rendered, grid): float64 (h, w, 3) at the base pixels of ``grid`` that sit on
        map samples, and the reader's rendering at the same pixels.
    """
    fixture = standard_fixture(fixture_name)
    found = standard.find_gain_map(fixture.data)
    meta = fixture.metadata
    (rows, columns), (map_rows, map_columns) = _sample_grid(found.base_size, fixture.gain_map_size)
    base = base_linear(fixture.data).astype(np.float64)
    if fixture.primaries != fixture.base_primaries:
        base = convert_primaries(base, PRIMARIES[fixture.base_primaries], PRIMARIES[fixture.primaries])
    base = base[np.ix_(rows, columns)]
    g = _pillow_codes(found.gain_map_jpeg)[np.ix_(map_rows, map_columns)]
    top = meta.max_headroom if display_headroom is None else display_headroom
    low, high = meta.base_headroom, meta.alternate_headroom
    weight = float(np.clip((top - low) / (high - low), 0.0, 1.0))
    if meta.apple_headroom is not None:
        gain = (1.0 + (meta.apple_headroom - 1.0) * _bt709_inverse_oetf(g[..., :1])) ** weight
        expected = base * gain
    else:
        channel = np.array([c if g.shape[2] == 3 else 0 for c in range(3)])
        minimum, maximum, gamma = (np.array(v) for v in (meta.gain_map_min, meta.gain_map_max, meta.gamma))
        log_gain = minimum + (maximum - minimum) * g[..., channel] ** (1.0 / gamma)
        expected = (base + np.array(meta.base_offset)) * 2.0 ** (log_gain * weight) - np.array(meta.alternate_offset)
    rendered = found.render(display_headroom)[np.ix_(rows, columns)]
    return expected, rendered, (rows, columns)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_reads_back_as_written(name):
    fixture = standard_fixture(name)
    found = standard.find_gain_map(fixture.data)
    meta, written = found.metadata, fixture.metadata
    assert (meta.kind, meta.version, meta.channels) == (written.kind, written.version, written.channels)
    assert meta.use_base_colour_space == written.use_base_colour_space
    for field in ("gain_map_min", "gain_map_max", "gamma", "base_offset", "alternate_offset"):
        assert getattr(meta, field) == pytest.approx(getattr(written, field), abs=1e-7), field
    assert (meta.base_headroom, meta.alternate_headroom) == pytest.approx(
        (written.base_headroom, written.alternate_headroom), abs=1e-7
    )
    assert (meta.apple_headroom is None) == (written.apple_headroom is None)
    assert (meta.apple_headroom or 0.0) == pytest.approx(written.apple_headroom or 0.0, rel=1e-9)
    assert (found.base_size, found.gain_map_size, found.gain_map_channels) == (
        (64, 48),
        fixture.gain_map_size,
        fixture.gain_map_channels,
    )
    assert found.announced_by == fixture.announced_by
    assert (found.base_primaries, found.primaries) == (fixture.base_primaries, fixture.primaries)
    assert found.data[found.gain_map_offset : found.gain_map_offset + 2] == b"\xff\xd8"


@pytest.mark.parametrize("name", FIXTURES)
def test_base_decodes_to_pillows_codes_through_the_srgb_eotf(name):
    """The reader decodes Y'CbCr in floating point (libultrahdr's way); libjpeg rounds: within one code value."""
    data = standard_fixture(name).data
    ours = _srgb_oetf(base_linear(data).astype(np.float64))
    assert np.abs(ours - _pillow_codes(data)).max() <= 1.0 / 255.0


@pytest.mark.parametrize("headroom", [None, 1.0, 0.0], ids=["full", "one stop", "sdr"])
@pytest.mark.parametrize("name", FIXTURES)
def test_rendering_follows_the_standard_equations(name, headroom):
    expected, rendered, _ = _expected(name, headroom)
    assert rendered.dtype == np.float32 and rendered.shape == expected.shape
    np.testing.assert_allclose(rendered, expected, rtol=RENDER_RTOL, atol=RENDER_ATOL)


@pytest.mark.parametrize("name", FIXTURES)
def test_libultrahdr_renders_the_same_or_refuses_as_recorded(name, record_property):
    """libultrahdr 1.4.0's linear decode, in its gamut (the map's ICC when the gain applies there)."""
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    fixture = standard_fixture(name)
    if not fixture.libultrahdr:
        with pytest.raises(imagecodecs.UltrahdrError):
            imagecodecs.ultrahdr_decode(fixture.data)
        return
    reference = imagecodecs.ultrahdr_decode(fixture.data)[..., :3].astype(np.float32)
    found = standard.find_gain_map(fixture.data)
    ours = found.render()
    if found.primaries != found.alternate_primaries:
        ours = convert_primaries(ours, PRIMARIES[found.primaries], PRIMARIES[found.alternate_primaries])
    psnr = psnr_after_scale(np.clip(ours, 0.0, LIBULTRAHDR_CEILING), reference)
    record_property("psnr_db", round(psnr, 2))
    assert psnr >= FIXTURE_PSNR_DB


def test_iso_wins_over_xmp_and_both_say_the_same():
    """Android's layout: without its ISO segments the file reads from hdrgm XMP with the same values."""
    data = standard_fixture("iso-and-xmp").data
    with_iso = standard.find_gain_map(data)

    def iso_segment(segment) -> bool:
        return segment.is_app(2) and segment.payload.startswith(structs.ISO_IDENTIFIER)

    secondary = replace_segments(parse_jpeg(with_iso.gain_map_jpeg), [], iso_segment).to_bytes()
    primary = replace_segments(parse_jpeg(data[: with_iso.gain_map_offset]), [], iso_segment).to_bytes()
    xmp_only = standard.find_gain_map(standard.append_image(primary, secondary))
    assert (with_iso.metadata.kind, xmp_only.metadata.kind) == ("iso21496-1", "ultrahdr-xmp")
    assert xmp_only.announced_by == {"xmp"}
    same = dataclasses.replace(xmp_only.metadata, kind="iso21496-1", version="0.0")
    for field in ("gain_map_min", "gain_map_max", "gamma", "base_offset", "alternate_offset"):
        assert getattr(same, field) == pytest.approx(getattr(with_iso.metadata, field), abs=1e-7)
    assert np.allclose(xmp_only.render(), with_iso.render(), rtol=1e-5)


@pytest.mark.parametrize("name", FIXTURES)
def test_an_extracted_gain_map_image_is_not_a_gain_map_file(name):
    found = standard.find_gain_map(standard_fixture(name).data)
    assert standard.find_gain_map(found.gain_map_jpeg) is None


@pytest.mark.parametrize("name", ["iso-and-xmp", "xmp-mpf"])
def test_mpf_offsets_that_miss_fall_back_to_the_container_directory(name):
    """Bytes between the primary and the map shift it away from MPF's offset; Item:Length still finds it."""
    data = standard_fixture(name).data
    at = standard.find_gain_map(data).gain_map_offset
    shifted = data[:at] + bytes(16) + data[at:]
    mpf = standard.mpf_images(parse_jpeg(shifted))
    assert shifted[mpf[1].offset : mpf[1].offset + 2] != b"\xff\xd8"
    found = standard.find_gain_map(shifted)
    assert found.gain_map_offset == at + 16
    assert np.array_equal(found.render(), standard.find_gain_map(data).render())


#: How a missing map is reported: MPF's entry runs past the end, no image is found, or the
#: GContainer directory's lengths point before the file's start or at bytes that are no JPEG.
MISSING = "past the end|announces a gain map|GContainer GainMap item at offset"


@pytest.mark.parametrize("name", [n for n in FIXTURES if standard_fixture(n).announced_by])
def test_an_announced_gain_map_that_is_missing_is_an_error(name):
    data = standard_fixture(name).data
    primary = data[: standard.find_gain_map(data).gain_map_offset]
    with pytest.raises(StandardGainMapError, match=MISSING):
        standard.find_gain_map(primary)
    without_mpf = replace_segments(
        parse_jpeg(primary), [], lambda s: s.payload.startswith(structs.MPF_IDENTIFIER)
    ).to_bytes()
    with pytest.raises(StandardGainMapError, match=MISSING):
        standard.find_gain_map(without_mpf)


@pytest.mark.parametrize("damage", ["truncated", "map SOI overwritten"])
@pytest.mark.parametrize("name", FIXTURES)
def test_a_damaged_gain_map_image_is_a_documented_error(name, damage):
    data = standard_fixture(name).data
    at = standard.find_gain_map(data).gain_map_offset
    damaged = data[:-100] if damage == "truncated" else data[:at] + b"\x00\x00" + data[at + 2 :]
    with pytest.raises(StandardGainMapError):
        standard.find_gain_map(damaged).render()
