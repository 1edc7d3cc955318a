"""The Pillow plugin reading standard gain-map JPEGs, over the generated files of every reader path.

The files come from ``tests/standard_fixtures.py``; the small real files of ``../shared/data``
join them when present. ``tests/test_standard_fixtures.py`` checks the rendering itself against
the standard equations and libultrahdr; here the check is that ``Image.open`` gives Pillow's own
SDR image with exactly that rendering as ``im.hdr``, and that saves keep the map.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import pillow_plugin
from gainmap_format import standard
from gainmap_format.errors import StandardGainMapError
from pillow_plugin import GainMapWarning, HdrDroppedWarning
from tests.standard_fixtures import FIXTURES, case_bytes, reader_cases, standard_fixture
from tests.test_pillow_plugin import _open, _open_plain
from tests.test_standard import psnr_after_scale

#: Fixtures whose map a plain re-save keeps: an Apple maker-note headroom needs the Exif passed on.
SAVED_WITHOUT_EXIF = tuple(name for name in FIXTURES if name != "apple-maker-note")

#: Floor for the HDR of a re-saved file against the original's, in dB after one scale: the base is
#: re-encoded at quality 95 4:4:4 (4:2:0 costs these small, colourful bases about 37 dB), the map
#: is carried byte for byte.
RESAVE_PSNR_DB = 40.0


@pytest.mark.parametrize("case", reader_cases())
def test_open_gives_pillows_sdr_and_the_standard_rendering_as_hdr(case):
    data = case_bytes(case)
    plain, image = _open_plain(data), _open(data)
    assert isinstance(image, type(plain)) and image.format == plain.format
    assert (image.mode, image.size) == ("RGB", plain.size) and image.tobytes() == plain.tobytes()
    assert {k: v for k, v in image.info.items() if k != pillow_plugin.INFO_KEY} == plain.info
    found = standard.find_gain_map(data)
    hdr = np.asarray(image.hdr)
    assert hdr.dtype == np.float32 and not hdr.flags.writeable
    assert np.array_equal(hdr, found.render())
    assert np.array_equal(image.hdr.render(1.0), found.render(1.0))
    assert np.allclose(image.hdr.absolute(), found.render() * 203.0, rtol=1e-6)
    meta = image.hdr.metadata
    assert meta.details == found.metadata and (meta.kind, meta.version) == (found.metadata.kind, found.metadata.version)
    assert (meta.width, meta.height) == found.base_size == image.size
    assert (meta.gain_map_width, meta.gain_map_height, meta.gain_map_channels) == (
        *found.gain_map_size,
        found.gain_map_channels,
    )
    assert (meta.primaries, image.hdr.primaries) == (found.primaries, found.primaries)
    assert meta.payload_bytes == len(found.gain_map_jpeg) and meta.sdr_white_luminance == 203.0


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_metadata_through_the_plugin(name):
    """What the plugin reports is what the file was written with, not only what the reader found."""
    fixture = standard_fixture(name)
    meta = _open(fixture.data).hdr.metadata
    assert meta.kind == fixture.metadata.kind and meta.primaries == fixture.primaries
    assert (meta.gain_map_width, meta.gain_map_height) == fixture.gain_map_size
    assert meta.gain_map_channels == fixture.gain_map_channels
    assert meta.max_headroom == pytest.approx(fixture.metadata.max_headroom, abs=1e-7)


@pytest.mark.parametrize("name", SAVED_WITHOUT_EXIF)
def test_unchanged_save_keeps_the_standard_gain_map(name):
    data = standard_fixture(name).data
    image = _open(data)
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.save(out, "JPEG", quality=95, subsampling=0, icc_profile=image.info.get("icc_profile"))
    before, after = standard.find_gain_map(data), standard.find_gain_map(out.getvalue())
    assert after.gain_map_jpeg == before.gain_map_jpeg and after.metadata == before.metadata
    again = _open(out.getvalue())
    assert again.hdr.primaries == image.hdr.primaries
    assert psnr_after_scale(np.asarray(again.hdr), np.asarray(image.hdr)) > RESAVE_PSNR_DB


def test_apple_maker_note_headroom_is_kept_only_with_the_exif():
    image = _open(standard_fixture("apple-maker-note").data)
    with pytest.warns(HdrDroppedWarning, match="exif"):
        image.save(io.BytesIO(), "JPEG", quality=90)  # without options the file itself is written
    out = io.BytesIO()
    image.save(out, "JPEG", exif=image.info["exif"])
    again = _open(out.getvalue()).hdr.metadata
    assert again.kind == "apple" and again.details.apple_headroom == pytest.approx(2.0**2.65)


@pytest.mark.parametrize("name", FIXTURES)
def test_read_standard_off_opens_without_hdr(name):
    data = standard_fixture(name).data
    pillow_plugin.register(read_standard=False)
    try:
        assert _open(data).hdr is None
    finally:
        pillow_plugin.register(read_standard=True)
    assert _open(data).hdr is not None


@pytest.mark.parametrize("name", FIXTURES)
def test_a_damaged_gain_map_opens_as_sdr_with_a_warning(name):
    data = standard_fixture(name).data
    at = standard.find_gain_map(data).gain_map_offset
    damaged = data[:at] + b"\x00\x00" + data[at + 2 :]
    with pytest.warns(GainMapWarning):
        image = _open(damaged)
    assert image.tobytes() == _open_plain(damaged).tobytes()
    with pytest.raises(StandardGainMapError):
        image.hdr  # noqa: B018
