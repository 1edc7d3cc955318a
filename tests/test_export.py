"""gainmap_format.export: the HDR of any gain-map JPEG, as PQ PNG and OpenEXR."""

import struct
import zlib

import numpy as np
import pytest

from gainmap_format import codec, hdrio
from gainmap_format.colour import PRIMARIES, convert_primaries
from gainmap_format.errors import InputError, NoGainMapError
from gainmap_format.export import PQ_CICP, STANDARD_SDR_WHITE, encode_png, export, render_any
from tests.conftest import jpeg_bytes
from tests.standard_fixtures import standard_fixture


def _chunks(png: bytes) -> dict[bytes, bytes]:
    """A PNG's chunks by type (IDAT joined), every CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        at += 12 + length
    return chunks


def _samples(png: bytes) -> np.ndarray:
    """uint16 (H, W, 3) of a 16-bit RGB PNG whose rows all use the Sub filter (what encode_png writes)."""
    chunks = _chunks(png)
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (16, 2)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + 6 * width)
    assert np.all(rows[:, 0] == 1)
    data = rows[:, 1:].astype(np.int64)
    for x in range(6, data.shape[1]):
        data[:, x] = (data[:, x] + data[:, x - 6]) % 256
    return data.astype(np.uint8).reshape(height, width * 6).view(">u2").reshape(height, width, 3)


def test_png_carries_cicp_and_the_pq_samples():
    rng = np.random.default_rng(2)
    pq = rng.uniform(-0.1, 1.1, (5, 7, 3)).astype(np.float32)
    png = encode_png(pq)
    chunks = _chunks(png)
    assert tuple(chunks[b"cICP"]) == PQ_CICP == (9, 16, 0, 1)
    assert list(chunks)[:2] == [b"IHDR", b"cICP"] and list(chunks)[-1] == b"IEND"
    expected = np.rint(np.clip(pq, 0.0, 1.0) * 65535.0).astype(np.uint16)
    assert np.array_equal(_samples(png), expected)


def test_png_is_read_by_an_independent_decoder():
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    pq = np.linspace(0.0, 1.0, 4 * 9 * 3, dtype=np.float32).reshape(4, 9, 3)
    decoded = imagecodecs.png_decode(encode_png(pq))
    assert decoded.dtype == np.uint16 and np.array_equal(decoded, np.rint(pq * 65535.0).astype(np.uint16))


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 4), (0, 4, 3)])
def test_png_refuses_what_is_not_an_rgb_image(shape):
    with pytest.raises(InputError, match="PQ image"):
        encode_png(np.zeros(shape, np.float32))


def test_a_standard_file_renders_with_sdr_white_at_203():
    fixture = standard_fixture("iso-alternate-space")
    rendition = render_any(fixture.data)
    assert rendition.kind == "iso21496-1" and rendition.sdr_white_luminance == STANDARD_SDR_WHITE
    from gainmap_format import standard

    gain_map = standard.find_gain_map(fixture.data)
    expected = convert_primaries(gain_map.render(), PRIMARIES[gain_map.primaries], PRIMARIES["bt2020"])
    assert np.allclose(rendition.relative, expected, atol=1e-6)
    assert np.allclose(rendition.absolute(), expected * 203.0, rtol=1e-6, atol=1e-4)
    sdr = render_any(fixture.data, 0.0)
    assert sdr.relative.max() <= 1.0 + 1e-5


def test_a_gainmlp_file_renders_as_decode_does(encoded):
    rendition = render_any(encoded.jpeg, 1.0)
    decoded = codec.decode(encoded.jpeg, display_headroom=1.0)
    assert rendition.kind == "gainmlp" and rendition.sdr_white_luminance == decoded.metadata.sdr_white_luminance
    assert np.array_equal(rendition.relative, decoded.relative)
    assert np.array_equal(rendition.pq(), decoded.pq)


def test_export_returns_png_and_exr_bytes(tmp_path, encoded):
    png, rendition = export(encoded.jpeg, "png")
    assert np.array_equal(_samples(png), np.rint(np.clip(rendition.pq(), 0, 1) * 65535).astype(np.uint16))
    exr, _ = export(encoded.jpeg, "exr")
    path = tmp_path / "x.exr"
    path.write_bytes(exr)
    image = hdrio.read_hdr(path)
    assert np.allclose(image.pixels, rendition.absolute(), rtol=1e-6)
    with pytest.raises(InputError, match="export format"):
        export(encoded.jpeg, "heic")


def test_a_jpeg_without_gain_map_is_refused():
    with pytest.raises(NoGainMapError, match="holds no gain map"):
        render_any(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))


def test_avif_is_10_bit_bt2020_pq():
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs is the avif extra")
    from gainmap_format.export import encode_avif

    pq = np.linspace(0.0, 1.0, 16 * 24 * 3, dtype=np.float32).reshape(16, 24, 3)
    data = encode_avif(pq, quality=100)
    at = data.find(b"colrnclx")
    assert at > 0 and struct.unpack(">HHHB", data[at + 8 : at + 15]) == (9, 16, 0, 0x80)
    assert np.array_equal(imagecodecs.avif_decode(data), np.rint(pq * 1023.0).astype(np.uint16))


def test_avif_without_its_extra_is_refused_before_any_work(monkeypatch, encoded):
    from gainmap_format import export as export_module

    monkeypatch.setattr(export_module, "avif_available", lambda: False)
    monkeypatch.setattr(export_module, "render_any", lambda *a, **k: pytest.fail("decoded anyway"))
    with pytest.raises(InputError, match="'avif' extra"):
        export(encoded.jpeg, "avif")
    with pytest.raises(InputError, match="'avif' extra"):
        export_module.encode_avif(np.zeros((2, 2, 3), np.float32))


def test_a_gainmlp_rendition_without_its_pq_is_the_same_light(encoded):
    full, linear_only = render_any(encoded.jpeg), render_any(encoded.jpeg, with_pq=False)
    assert linear_only.decoded_pq is None and np.array_equal(linear_only.relative, full.relative)
    # pq() then encodes the linear light again, with numpy's powers rather than the kernel's.
    assert np.allclose(linear_only.pq(), full.pq(), atol=1e-5)
