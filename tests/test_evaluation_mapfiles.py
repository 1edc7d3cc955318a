import io

import numpy as np
import pytest
from PIL import Image

from gainmap_format import standard
from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import NoGainMapError
from gainmap_format.evaluation.baselines import encode_map_jpeg, quantise_map
from gainmap_format.evaluation.mapfiles import (
    GammaMapRecord,
    apply_iso_map,
    iso_gain_values,
    iso_metadata,
    iso_rendition_to_pq,
    lossless_base_linear,
    read_gamma_file,
    write_gamma_file,
    write_iso_file,
)
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.residual import hdr_to_pq
from gainmap_format.scenes import hdr_scene
from gainmap_format.tonemap import default_sdr
from tests.conftest import jpeg_bytes
from tests.test_standard import psnr_after_scale


@pytest.fixture(scope="module")
def gain_file():
    """A Gain-JPEG of a scene whose colours stay inside BT.709, with its HDR reference."""
    hdr_pq = hdr_to_pq(hdr_scene(64, 96, seed=4), PRIMARIES["bt709"], 1.0)
    code = default_sdr(hdr_pq)
    base = jpeg_bytes(code, quality=98, subsampling=0)
    quantised = quantise_map(iso_gain_values(hdr_pq, standard.decode.base_linear(base)), 4)
    metadata = iso_metadata(quantised.low, quantised.high, hdr_pq)
    return write_iso_file(base, encode_map_jpeg(quantised.code, 95), metadata), hdr_pq, code


def test_gain_jpeg_is_an_iso_file_the_plugin_reads(gain_file):
    data, hdr_pq, _ = gain_file
    gain_map = standard.find_gain_map(data)
    assert gain_map.metadata.kind == "iso21496-1" and gain_map.announced_by == frozenset({"iso"})
    assert gain_map.gain_map_size == (24, 16) and gain_map.gain_map_channels == 3
    assert pq_psnr(hdr_pq, iso_rendition_to_pq(gain_map.render(), gain_map.primaries)) > 34.0
    import pillow_plugin

    pillow_plugin.register()
    with Image.open(io.BytesIO(data)) as image:
        assert image.hdr is not None
        assert np.allclose(np.asarray(image.hdr), gain_map.render(), atol=1e-5)


def test_gain_jpeg_agrees_with_libultrahdr(gain_file):
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    data, _, _ = gain_file
    reference = imagecodecs.ultrahdr_decode(data)[..., :3].astype(np.float32)
    assert psnr_after_scale(standard.find_gain_map(data).render(), reference) >= 40.0


def test_applying_a_map_to_the_lossless_base(gain_file):
    data, hdr_pq, code = gain_file
    gain_map = standard.find_gain_map(data)
    codes = standard.decode.decode_jpeg(gain_map.gain_map_jpeg, "map")
    base = lossless_base_linear(code)
    before = base.copy()
    assert pq_psnr(hdr_pq, apply_iso_map(base, codes, gain_map.metadata)) > 34.0
    assert np.array_equal(base, before)


def test_gamma_file_round_trip_and_invisible_to_standard_readers():
    base = jpeg_bytes(np.full((16, 24, 3), 90, np.uint8))
    map_jpeg = jpeg_bytes(np.full((4, 6, 3), 200, np.uint8))
    record = GammaMapRecord(0.25, 1.5)
    data = write_gamma_file(base, map_jpeg, record)
    image, read = read_gamma_file(data)
    assert read == record and image.startswith(b"\xff\xd8") and image.endswith(b"\xff\xd9")
    assert GammaMapRecord.from_bytes(record.to_bytes()) == record
    assert standard.find_gain_map(data) is None
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    with pytest.raises(imagecodecs.UltrahdrError):
        imagecodecs.ultrahdr_decode(data)


def test_reading_a_gamma_map_from_a_plain_jpeg():
    with pytest.raises(NoGainMapError):
        read_gamma_file(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))


def test_iso_gain_clips_colours_outside_bt709():
    hdr_pq = hdr_to_pq(np.array([[[0.0, 200.0, 0.0]]], np.float32), PRIMARIES["bt2020"], 1.0)
    values = iso_gain_values(hdr_pq, np.zeros((1, 1, 3), np.float32))
    assert np.all(np.isfinite(values)) and values[0, 0, 0] == 0.0
