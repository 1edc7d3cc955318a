import numpy as np
import pytest
from PIL import ImageFile

from gainmap_format import codec, jpeg, standard
from gainmap_format.errors import JpegError, StandardGainMapError
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


# check_decodable: whole files, bounded scan counts.


def _with_scans(data: bytes, count: int) -> bytes:
    """``data`` (ending in EOI) with its last scan repeated until it holds ``count`` scans."""
    scans = data.count(b"\xff\xda")  # entropy-coded data never holds FF DA: a data FF is stuffed
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * (count - scans) + data[-2:]


def _noise_jpeg(**options) -> bytes:
    # Noise at high quality has many 0xFF data bytes, each stuffed as FF 00.
    code = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    return jpeg_bytes(code, quality=100, **options)


@pytest.mark.parametrize(
    "options",
    [{}, {"progressive": True}, {"restart_marker_blocks": 1}, {"progressive": True, "restart_marker_rows": 1}],
    ids=["baseline", "progressive", "restarts", "progressive-restarts"],
)
def test_whole_files_are_decodable(options):
    data = _noise_jpeg(**options)
    assert data.count(b"\xff\x00") > 10
    jpeg.check_decodable(data, "sample")
    jpeg.check_decodable(data + b"\xff\xd8 a secondary image after EOI", "sample")


def test_max_scans_decode_and_one_more_is_refused():
    data = _noise_jpeg(progressive=True)
    assert 5 <= data.count(b"\xff\xda") <= 20  # what real encoders write, far below the bound
    most = _with_scans(data, jpeg.MAX_SCANS)
    jpeg.check_decodable(most, "most")
    assert codec.decode_base(most).shape == (64, 48, 3)
    too_many = _with_scans(data, jpeg.MAX_SCANS + 1)
    with pytest.raises(JpegError, match=rf"^bomb\.jpg: scan {jpeg.MAX_SCANS + 1} at offset \d+ is over the bound"):
        jpeg.check_decodable(too_many, "bomb.jpg")
    with pytest.raises(JpegError, match="over the bound"):
        codec.decode_base(too_many)
    with pytest.raises(StandardGainMapError, match="gain map: scan 101 .* over the bound"):
        standard.decode.decode_jpeg(too_many, "gain map")
    with pytest.raises(StandardGainMapError, match="primary image: scan 101 .* over the bound"):
        standard.decode.base_linear(too_many)


def test_a_scan_bomb_is_refused_without_reading_past_the_bound():
    # The bomb: the last scan repeated 5,000 times. The walk stops at scan 101, so the
    # damage after it (no EOI) is never reached.
    bomb = _with_scans(_sample_jpeg(progressive=True), 5000)[:-2]
    with pytest.raises(JpegError, match="scan 101 at offset"):
        jpeg.check_decodable(bomb, "bomb")


def test_every_truncation_after_the_first_scan_is_refused():
    data = _sample_jpeg(progressive=True)
    for end in range(data.index(b"\xff\xda"), len(data)):
        with pytest.raises(JpegError, match=r"^cut\.jpg: truncated JPEG"):
            jpeg.check_decodable(data[:end], "cut.jpg")


def test_truncated_base_is_refused_even_when_pillow_would_fill_it(monkeypatch):
    data = _sample_jpeg()
    # Applications set this Pillow-wide flag to load damaged files; libjpeg then fills the rest grey.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(JpegError, match="truncated"):
        codec.decode_base(data[:-20])
    with pytest.raises(StandardGainMapError, match="truncated"):
        standard.decode.decode_jpeg(data[:-20], "gain map")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a", "not a JPEG"),
        (b"\xff\xd8\xff\xd9", "unexpected marker 0xFFD9"),
        (b"\xff\xd8\xff\xda\x00\x02\x01\x02\xff\xd8", "unexpected marker 0xFFD8"),
        (b"\xff\xd8\xff\xda\x00\x02\x01\x02\xff\xc4\x00\x10\x00", "declares 16 bytes"),
        (b"\xff\xd8\xff\xda\x00\x02\x01\x02\xff\xc4", "has no length"),
        (b"\xff\xd8\xff\xda\x00\x08\x01", "declares 8 bytes"),
        (b"\xff\xd8\xff\xda\x00\x02\x01\x02\xff\xff", "truncated JPEG"),
        (b"\xff\xd8\xff\xda\x00\x02\x01\xff\x00\xff\xd0\x02\xff\xd9\x00", None),
    ],
)
def test_check_decodable_on_hand_made_files(data, message):
    if message is None:
        jpeg.check_decodable(data, "tiny")
        return
    with pytest.raises(JpegError, match=rf"^tiny: .*{message}"):
        jpeg.check_decodable(data, "tiny")
