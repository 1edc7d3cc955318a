import numpy as np
import pytest

from gainmap_format import jpeg
from gainmap_format.errors import JpegError
from tests.conftest import jpeg_bytes


def _sample_jpeg(**options) -> bytes:
    code = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    return jpeg_bytes(code, **options)


def test_parse_and_reassemble_is_identity():
    data = _sample_jpeg(quality=90)
    layout = jpeg.parse_jpeg(data)
    assert layout.to_bytes() == data
    assert layout.segments[0].marker == jpeg.APP0 and layout.segments[0].offset == 2
    assert layout.scan.startswith(b"\xff\xda") and layout.scan.endswith(b"\xff\xd9")


def test_progressive_and_exif_files_parse():
    data = _sample_jpeg(progressive=True, exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00")
    layout = jpeg.parse_jpeg(data)
    assert any(s.is_app(1) for s in layout.segments)
    assert layout.to_bytes() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n", "not a JPEG"),
        (b"", "not a JPEG"),
        (b"\xff\xd8\xff\xe0\x00", "has no length"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "ends 10 bytes early"),
        (b"\xff\xd8\xff\xe0\x00\x01", "invalid length 1"),
        (b"\xff\xd8\xff\xd9", "unexpected marker 0xFFD9"),
        (b"\xff\xd8\xff\xe0\x00\x02\x00", "expected a marker"),
        (b"\xff\xd8\xff\xe0\x00\x02", "before the first scan"),
        (b"\xff\xd8\xff\xff\xff", "fill bytes"),
    ],
)
def test_malformed_files_raise_jpeg_error(data, message):
    with pytest.raises(JpegError, match=message):
        jpeg.parse_jpeg(data)


def test_every_truncation_of_a_header_raises_or_parses():
    data = _sample_jpeg()
    first_scan = data.index(b"\xff\xda")
    for end in range(first_scan + 1):
        with pytest.raises(JpegError):
            jpeg.parse_jpeg(data[:end])


def test_replace_segments_inserts_after_app0_app1_and_before_app2():
    layout = jpeg.JpegLayout(
        (
            jpeg.Segment(jpeg.APP0, b"JFIF\x00"),
            jpeg.Segment(jpeg.APP1, b"Exif\x00\x00"),
            jpeg.Segment(jpeg.APP0 + 2, b"MPF\x00"),
            jpeg.Segment(jpeg.APP15, b"old"),
            jpeg.Segment(0xDB, b"\x00" * 65),
        ),
        b"\xff\xda\x00\x02\xff\xd9",
    )
    new = jpeg.Segment(jpeg.APP15, b"new")
    changed = jpeg.replace_segments(layout, [new], lambda s: s.payload == b"old")
    assert [s.payload[:4] for s in changed.segments] == [b"JFIF", b"Exif", b"new", b"MPF\x00", b"\x00" * 4]
    assert changed.scan is layout.scan


def test_segment_payload_limit():
    assert len(jpeg.Segment(jpeg.APP15, b"x" * jpeg.MAX_SEGMENT_PAYLOAD).encode()) == 65537
    with pytest.raises(JpegError, match="over the 65533-byte limit"):
        jpeg.Segment(jpeg.APP15, b"x" * (jpeg.MAX_SEGMENT_PAYLOAD + 1)).encode()


def test_app_payloads_filters_by_identifier():
    layout = jpeg.JpegLayout(
        (
            jpeg.Segment(jpeg.APP15, b"GainMLP\x00a"),
            jpeg.Segment(jpeg.APP15, b"Other"),
            jpeg.Segment(jpeg.APP1, b"GainMLP"),
        ),
        b"",
    )
    assert [s.payload for s in layout.app_payloads(15, b"GainMLP\x00")] == [b"GainMLP\x00a"]
