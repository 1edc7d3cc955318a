"""Hostile metadata in standard gain-map JPEGs (issue 10): odd XMP encodings and the parser audit.

Every file here ends in the library's documented ``StandardGainMapError`` from ``find_gain_map``,
and opens through the plugin as its SDR base (Pillow's own pixels) with a ``GainMapWarning``;
``im.hdr`` then raises the same error. Files are built by the project's writers, so these tests
run without ../shared/data; the real-file variants skip without it.
"""

from __future__ import annotations

import io
import re
import struct
import tracemalloc
import warnings

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

import pillow_plugin
from gainmap_format import standard, structs
from gainmap_format.errors import StandardGainMapError
from gainmap_format.jpeg import APP0, JpegLayout, Segment, parse_jpeg, replace_segments
from gainmap_format.standard import icc
from gainmap_format.standard.xmp import RDF_NS, announcing_xmp
from pillow_plugin import GainMapWarning
from tests.conftest import jpeg_bytes, shared_data
from tests.standard_fixtures import apple_maker_note_exif

#: Encoding names an XML declaration may give that are not the packet's own, ASCII, bytes.
ODD_DECLARATIONS = ("utf-32", "shift_jis", "x-bogus", "UTF-16", "ISO-8859-1", "ebcdic", "UTF-32BE", "utf-16-le")

#: A packet's encoding (Python codec) and whether it starts with a byte-order mark.
ENCODINGS = (
    ("utf-8", True),
    ("utf-16-le", True),
    ("utf-16-le", False),
    ("utf-16-be", True),
    ("utf-16-be", False),
    ("utf-32-le", True),
    ("utf-32-be", False),
)


def values_packet(**properties: str) -> str:
    """The gain-map image's hdrgm packet: version 1.0, a 2-stop map, and ``properties`` on top."""
    values = {"Version": "1.0", "GainMapMax": "2", "HDRCapacityMax": "2", **properties}
    attributes = " ".join(f'hdrgm:{name}="{value}"' for name, value in values.items())
    return (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}"><rdf:Description rdf:about="" '
        f'xmlns:hdrgm="{standard.HDRGM_NS}" {attributes}/></rdf:RDF></x:xmpmeta>'
    )


def _encoded(text: str, codec: str = "utf-8", bom: bool = False) -> bytes:
    return (("\ufeff" if bom else "") + text).encode(codec)


def _with_segments(jpeg: bytes, *payloads: bytes) -> bytes:
    """``jpeg`` with APP1 segments holding ``payloads`` right after its SOI."""
    layout = parse_jpeg(jpeg)
    return JpegLayout((*(Segment(APP0 + 1, p) for p in payloads), *layout.segments), layout.scan).to_bytes()


def _gain_map_image(*payloads: bytes, rows: int = 8) -> bytes:
    code = np.tile(np.arange(12, dtype=np.uint8)[None, :] * 20, (rows, 1))
    buffer = io.BytesIO()
    Image.fromarray(code, "L").save(buffer, "JPEG")
    return _with_segments(buffer.getvalue(), *payloads)


def _base() -> bytes:
    return jpeg_bytes(np.full((16, 24, 3), 128, np.uint8), quality=90)


def ultrahdr_file(encode=_encoded, primary_text: str | None = None, map_text: str | None = None) -> bytes:
    """An Ultra HDR XMP file: announcing packet in the primary, hdrgm values in the map, MPF.

    ``encode`` turns each packet's text into bytes.
    """
    secondary = _gain_map_image(structs.XMP_IDENTIFIER + encode(map_text or values_packet()))
    primary_text = primary_text or announcing_xmp(len(secondary)).decode()
    announce = Segment(APP0 + 1, structs.XMP_IDENTIFIER + encode(primary_text))
    return standard.append_image(_base(), secondary, [announce])


def declared_file(encoding: str, image: str) -> bytes:
    """An Ultra HDR file whose primary or gain-map packet declares ``encoding`` over ASCII bytes."""
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    if image == "primary":
        return ultrahdr_file(primary_text=declaration + announcing_xmp(600).decode())
    return ultrahdr_file(map_text=declaration + values_packet())


def _assert_opens_as_sdr_base(data: bytes, match: str) -> None:
    """Image.open gives Pillow's own pixels with a GainMapWarning, and ``im.hdr`` raises the error."""
    with pytest.warns(GainMapWarning, match=match):
        image = Image.open(io.BytesIO(data))
        image.load()
    with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as plain:
        assert image.size == plain.size and np.array_equal(np.asarray(image), np.asarray(plain))
    with pytest.raises(StandardGainMapError, match=match):
        _ = image.hdr


# ---- XMP that names an odd encoding (issue 10, item 1) ----


@pytest.mark.parametrize("image", ["primary", "gain map"])
@pytest.mark.parametrize("encoding", ODD_DECLARATIONS)
def test_an_odd_encoding_declaration_is_a_documented_error(encoding, image):
    data = declared_file(encoding, image)
    message = rf"XMP APP1 segment at offset \d+: XMP declares encoding '{re.escape(encoding)}' but its bytes are UTF-8"
    with pytest.raises(StandardGainMapError, match=message):
        standard.find_gain_map(data)
    _assert_opens_as_sdr_base(data, "declares encoding")


@pytest.mark.parametrize("name", ["pixel_uhdr_01.jpg", "pixel_uhdr_02.jpg", "libavif_paris_gainmap_le.jpg"])
@pytest.mark.parametrize("encoding", ["utf-32", "shift_jis", "x-bogus"])
def test_real_files_whose_xmp_declares_an_odd_encoding(name, encoding):
    """An hdrgm packet's xpacket header becomes a declaration of the same length: MPF stays right."""
    data = (shared_data("gainmaps") / name).read_bytes()
    headers = re.finditer(rb"<\?xpacket begin=[^>]*\?>", data)
    header = next(h for h in headers if standard.HDRGM_NS.encode() in data[h.end() : h.end() + 4000])
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    assert len(declaration) <= len(header[0])
    changed = data[: header.start()] + declaration.ljust(len(header[0])) + data[header.end() :]
    with pytest.raises(StandardGainMapError, match="declares encoding"):
        standard.find_gain_map(changed)
    _assert_opens_as_sdr_base(changed, "declares encoding")


@pytest.mark.parametrize(("codec", "bom"), ENCODINGS)
def test_utf16_and_utf32_packets_read_as_utf8_ones(codec, bom):
    """XMP Part 1 allows UTF-16 and UTF-32, told by a byte-order mark or by how "<" is encoded."""
    reference = standard.find_gain_map(ultrahdr_file())
    data = ultrahdr_file(lambda text: _encoded(text, codec, bom))
    found = standard.find_gain_map(data)
    assert found is not None and found.metadata == reference.metadata and found.announced_by == {"xmp"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", GainMapWarning)
        image = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(image.hdr), reference.render())


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (lambda text: _encoded(text).replace(b'"2"', b'"\xff"', 1), "not valid UTF-8 at packet byte"),
        (lambda text: _encoded(text, "utf-16-le").replace(b"2\x00", b"\x00\xd8", 1), "not valid UTF-16-LE"),
        (lambda text: _encoded(text, "utf-32-be", bom=True) + b"\x00", "not valid UTF-32-BE"),
        (lambda text: _encoded('<?xml version="1.0" encoding="UTF-8"?>' + text, "utf-16-be"), "declares encoding"),
    ],
    ids=["bad UTF-8", "lone surrogate", "truncated UTF-32", "UTF-16 declared UTF-8"],
)
def test_packets_that_do_not_decode_are_documented_errors(encode, message):
    data = ultrahdr_file(encode)
    with pytest.raises(StandardGainMapError, match=rf"XMP APP1 segment at offset \d+: XMP .*{message}"):
        standard.find_gain_map(data)
    _assert_opens_as_sdr_base(data, message)


# ---- the parser audit: values that Python would take or that overflow ----


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"GainMapMax": "2_0"}, "GainMapMax is '2_0', not a number"),
        ({"GainMapMax": "\u0662"}, "not a number"),
        ({"GainMapMax": "nan"}, "not a number"),
        ({"GainMapMax": "1e400"}, "must be finite"),
        ({"GainMapMax": "1" * 5000}, r"must be finite"),
        ({"GainMapMax": "x" * 5000}, r"\.\.\. \(5002 characters\), not a number"),
        ({"Gamma": "1e-30"}, r"gamma\[0\] 1e-30 is outside \[0.001, 1000\]"),
    ],
    ids=["underscore", "arabic-indic digit", "nan", "overflow", "long number", "long text", "tiny gamma"],
)
def test_hostile_hdrgm_values(properties, message):
    data = ultrahdr_file(map_text=values_packet(**properties))
    with pytest.raises(StandardGainMapError, match=message):
        standard.find_gain_map(data)


#: Arabic-Indic digits, which Python's int() and float() take for 0-9.
_ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))


@pytest.mark.parametrize(
    "spell", [lambda n: n.translate(_ARABIC_INDIC), "_".join, lambda n: "9" * 5000, lambda n: hex(int(n))],
    ids=["arabic-indic digits", "underscores", "5000 digits", "hex"],
)
def test_container_item_lengths_are_ascii_integers(spell):
    """Without MPF the map is found through the primary's Item:Length, which must be ASCII digits."""
    secondary = _gain_map_image(structs.XMP_IDENTIFIER + values_packet().encode())
    right = str(len(secondary))
    packet = announcing_xmp(len(secondary))
    assert standard.find_gain_map(_with_segments(_base(), structs.XMP_IDENTIFIER + packet) + secondary) is not None
    packet = packet.replace(f'Item:Length="{right}"'.encode(), f'Item:Length="{spell(right)}"'.encode())
    with pytest.raises(StandardGainMapError, match=r"GContainer item 2 Item:Length is .*not an integer"):
        standard.find_gain_map(_with_segments(_base(), structs.XMP_IDENTIFIER + packet) + secondary)


@pytest.mark.parametrize(("rows", "error"), [(64, None), (65, "more than 4 times its 24x16 base on a side")])
def test_a_gain_map_much_larger_than_its_base_is_refused(rows, error):
    """Rendering decodes and resamples the whole map: a tall one declared over a small base took 15 s."""
    data = standard.append_image(_base(), _gain_map_image(structs.XMP_IDENTIFIER + values_packet().encode(), rows=rows))
    if error is None:
        assert standard.find_gain_map(data).gain_map_size == (12, rows)
        return
    with pytest.raises(StandardGainMapError, match=error):
        standard.find_gain_map(data)
    _assert_opens_as_sdr_base(data, error)


def _mpf_payload(entries: list[tuple[int, int]]) -> bytes:
    """An MPF APP2 payload (CIPA DC-007) listing images as (size, data offset) pairs."""
    table = 8 + structs.IFD_OVERHEAD + 3 * structs.IFD_ENTRY_SIZE
    fields = [(0xB000, 7, 4, b"0100"), (0xB001, 4, 1, len(entries).to_bytes(4, "big")),
              (0xB002, 7, 16 * len(entries), table.to_bytes(4, "big"))]
    names = ("tag", "type", "count", "value")
    ifd = structs.TIFF_IFD[b"MM"].build(
        {"count": 3, "entries": [dict(zip(names, f, strict=True)) for f in fields], "next_ifd": 0}
    )
    images = b"".join(
        structs.MP_ENTRY[b"MM"].build(
            {"attribute": 0, "size": size, "data_offset": offset, "dependent_image_1": 0, "dependent_image_2": 0}
        )
        for size, offset in entries
    )
    return structs.MPF_IDENTIFIER + structs.TIFF_HEADER[b"MM"].build({"ifd_offset": 8}) + ifd + images


def test_an_mpf_index_listing_one_large_image_many_times_costs_little_memory():
    """Each of 15 entries pointing at the same image was copied twice: 31 times the file's size."""
    noise = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    secondary = jpeg_bytes(noise, quality=100)
    announce = Segment(APP0 + 2, standard.iso.announcing_iso_payload())
    placeholder = replace_segments(parse_jpeg(_base()), [announce, Segment(APP0 + 2, _mpf_payload([(0, 0)] * 16))],
                                   lambda s: False).to_bytes()
    mpf = parse_jpeg(placeholder).app_payloads(2, structs.MPF_IDENTIFIER)[0]
    relative = len(placeholder) - (mpf.offset + 4 + len(structs.MPF_IDENTIFIER))
    payload = _mpf_payload([(len(placeholder), 0)] + [(len(secondary), relative)] * 15)
    data = placeholder[: mpf.offset + 4] + payload + placeholder[mpf.offset + 4 + len(payload) :] + secondary
    tracemalloc.start()
    try:
        with pytest.raises(StandardGainMapError, match="no gain-map image was found"):
            standard.find_gain_map(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * len(data), f"{peak} bytes at the peak for a {len(data)}-byte file"


def apple_file(tag33: tuple[int, int], tag48: tuple[int, int]) -> bytes:
    """An Apple HDRGainMap file of version 1: the headroom only in the primary's maker note."""
    aux = (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}"><rdf:Description rdf:about="" '
        f'xmlns:apdi="{standard.xmp.APDI_NS}" apdi:AuxiliaryImageType="{standard.apple.APPLE_AUX_TYPE}"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    base = _with_segments(_base(), apple_maker_note_exif(tag33, tag48))
    return standard.append_image(base, _gain_map_image(structs.XMP_IDENTIFIER + aux.encode()))


def test_apple_maker_note_headroom():
    """Tag 33 = 1.519 and tag 48 = 0 give 3 stops by Apple's formula (as in libavif's old file)."""
    found = standard.find_gain_map(apple_file((1519, 1000), (0, 1)))
    assert found.metadata.kind == "apple" and found.metadata.apple_headroom == pytest.approx(8.0)


@pytest.mark.parametrize("tag33", [(1519, 1000), (0, 1)])
def test_apple_maker_note_that_overflows_is_a_documented_error(tag33):
    """Python's 2.0 ** stops raised OverflowError for a tag 48 this negative; the bound comes first now."""
    data = apple_file(tag33, (-(2**31), 1))
    with pytest.raises(StandardGainMapError, match=r"maker-note tags 33 and 48 give .* stops of headroom, over the 16"):
        standard.find_gain_map(data)
    _assert_opens_as_sdr_base(data, "maker-note tags")


def test_an_icc_tag_count_over_the_bound_is_not_parsed(monkeypatch):
    """A count of 2^32 - 1 over a 16 MB profile took 20 s to parse; the count is checked first."""
    profile = bytearray(200)
    profile[128:132] = (icc.MAX_ICC_TAGS + 1).to_bytes(4, "big")
    layout = JpegLayout((Segment(APP0 + 2, structs.ICC_IDENTIFIER + b"\x01\x01" + bytes(profile)),), b"\xff\xda")

    class Refuse:
        def parse(self, data: bytes) -> None:
            raise AssertionError("the tag table was parsed")

    monkeypatch.setattr(structs, "ICC_PROFILE", Refuse())
    assert icc.icc_primaries(layout) is None


def test_an_icc_tag_table_of_huge_tags_costs_no_memory():
    """Each of 1024 tags spanning a 256 KiB profile was copied whole: 256 MiB from a 256 KiB file."""
    profile = bytearray(1 << 18)
    profile[128:132] = icc.MAX_ICC_TAGS.to_bytes(4, "big")
    for index in range(icc.MAX_ICC_TAGS):
        struct.pack_into(">III", profile, 132 + 12 * index, index, 1, 0xFFFFFFFF)  # distinct signatures
    chunks = [profile[i : i + 65_000] for i in range(0, len(profile), 65_000)]
    layout = JpegLayout(
        tuple(
            Segment(APP0 + 2, structs.ICC_IDENTIFIER + bytes((n, len(chunks))) + chunk)
            for n, chunk in enumerate(chunks, start=1)
        ),
        b"\xff\xda",
    )
    tracemalloc.start()
    try:
        assert icc.icc_primaries(layout) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes at the peak"


# ---- the opener: any failure leaves the SDR base open ----


@pytest.mark.parametrize("error", [IndexError("list index out of range"), struct.error("unpack"), TypeError("x")])
def test_an_unexpected_exception_while_probing_still_opens_the_base(monkeypatch, error):
    """Pillow turns these, raised from a factory, into "cannot identify image file"."""

    def broken(data: bytes) -> None:
        raise error

    monkeypatch.setattr(pillow_plugin.opener, "find_gain_map", broken)
    _assert_opens_as_sdr_base(ultrahdr_file(), rf"failed with {type(error).__name__}: .*a bug in gainmap_format")


def test_the_warning_names_the_file(tmp_path):
    path = tmp_path / "declared.jpg"
    path.write_bytes(declared_file("x-bogus", "primary"))
    with pytest.warns(GainMapWarning, match=rf"^{re.escape(str(path))}: the gain map is unusable"):
        Image.open(path).close()
