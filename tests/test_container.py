import dataclasses
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from gainmap_format import container as ctr
from gainmap_format import structs
from gainmap_format.errors import ContainerError, UnsupportedVersionError
from gainmap_format.geometry import Placement
from gainmap_format.jpeg import JpegLayout, Segment

METADATA = ctr.GainMapMetadata(
    residual="gamma",
    activation="sine",
    hidden_width=16,
    width=640,
    height=480,
    base_transfer="gamma2.4",
    base_primaries="bt709",
    input_mean=0.4,
    input_range=0.9,
    residual_mean=0.7,
    residual_range=1.3,
    alternate_headroom=3.3219,
)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def test_round_trip():
    data = ctr.build_container(METADATA, b"graph-bytes")
    parsed = ctr.parse_container(data)
    assert parsed.graph == b"graph-bytes"
    assert parsed.size == len(data)
    assert parsed.metadata == dataclasses.replace(
        METADATA,
        input_mean=pytest.approx(0.4),
        input_range=pytest.approx(0.9),
        residual_mean=pytest.approx(0.7),
        residual_range=pytest.approx(1.3),
    )
    assert parsed.metadata.peak_luminance == pytest.approx(1000.0, rel=1e-4)


def test_every_single_bit_flip_is_detected():
    data = ctr.build_container(METADATA, b"g" * 40)
    for index in range(len(data)):
        for bit in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[index] ^= bit
            with pytest.raises(ContainerError):
                ctr.parse_container(bytes(damaged))


def test_checksum_mismatch_message():
    data = bytearray(ctr.build_container(METADATA, b"graph"))
    data[40] ^= 0xFF
    with pytest.raises(ContainerError, match="checksum mismatch"):
        ctr.parse_container(bytes(data))


def test_bad_magic_and_short_input():
    data = ctr.build_container(METADATA, b"graph")
    with pytest.raises(ContainerError, match="magic"):
        ctr.parse_container(b"XMLP" + data[4:])
    with pytest.raises(ContainerError, match="too short"):
        ctr.parse_container(data[:10])


@pytest.mark.parametrize(("version", "kind"), [((3, 0), "major"), ((2, 2), "minor"), ((1, 1), "minor"),
                                               ((1, 255), "minor")])
def test_newer_minimum_version_is_rejected(version, kind):
    body = bytearray(ctr.build_container(METADATA, b"graph")[:-4])
    body[4:6] = bytes(version)
    with pytest.raises(UnsupportedVersionError, match=f"unknown {kind} version"):
        ctr.parse_container(_with_crc(bytes(body)))


def test_newer_writer_version_is_accepted():
    newer = dataclasses.replace(METADATA, writer_version=(1, 7))
    assert ctr.parse_container(ctr.build_container(newer, b"g")).metadata.writer_version == (1, 7)


def test_written_versions():
    """Spec §5.1: version 2.0 adds no feature, so its files need only a 1.0 reader."""
    data = ctr.build_container(METADATA, b"graph")
    assert data[4:8] == b"\x01\x00\x02\x00"
    assert ctr.parse_container(data).metadata.writer_version == (2, 0)


@pytest.mark.parametrize("minimum", [(1, 0), (2, 0)])
def test_minimum_versions_this_reader_implements_are_read(minimum):
    body = bytearray(ctr.build_container(METADATA, b"graph")[:-4])
    body[4:8] = bytes((*minimum, 1, 0))
    assert ctr.parse_container(_with_crc(bytes(body))).graph == b"graph"


def test_trailing_bytes_from_a_writer_of_this_version_are_rejected():
    body = ctr.build_container(METADATA, b"graph")[:-4]
    with pytest.raises(ContainerError, match="4 unexpected bytes after the graph"):
        ctr.parse_container(_with_crc(body + b"junk"))


def test_extension_bytes_from_a_newer_minor_writer_are_skipped():
    newer = dataclasses.replace(METADATA, writer_version=(2, 3))
    body = ctr.build_container(newer, b"graph")[:-4]
    parsed = ctr.parse_container(_with_crc(body + b"future fields"))
    assert parsed.graph == b"graph" and parsed.metadata.writer_version == (2, 3)


def test_version_zero_is_rejected():
    body = bytearray(ctr.build_container(METADATA, b"graph")[:-4])
    body[4:6] = b"\x00\x09"
    with pytest.raises(ContainerError, match="does not exist"):
        ctr.parse_container(_with_crc(bytes(body)))


def test_graph_length_past_the_end_is_rejected():
    body = bytearray(ctr.build_container(METADATA, b"graph")[:-4])
    body[64:68] = struct.pack(">I", 1 << 30)
    with pytest.raises(ContainerError, match="malformed"):
        ctr.parse_container(_with_crc(bytes(body)))


# Byte offsets of single-byte codes and float32 fields in the version 1.0 body.
@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (9, b"\x07", "residual_kind"),
        (10, b"\x05", "residual_domain"),
        (11, b"\x09", "activation"),
        (12, b"\x11", "hidden_width"),
        (13, b"\x0b", "frequencies"),
        (14, b"\x00", "base_transfer"),
        (15, b"\x09", "base_primaries"),
        (16, b"\x00\x00\x00\x00", "width"),
        (20, b"\x00\x02\x00\x00", "height"),
        (24, b"\x7f\xc0\x00\x00", "epsilon"),
        (28, b"\x00\x00\x00\x00", "sdr_white_luminance"),
        (32, b"\x7f\x80\x00\x00", "input_mean"),
        (36, b"\xbf\x80\x00\x00", "input_range"),
        (40, b"\xff\x80\x00\x00", "residual_mean"),
        (44, b"\x00\x00\x00\x00", "residual_range"),
        (52, b"\x00\x00\x00\x00", "base_headroom"),
        (60, b"\x00\x00\x00\x00", "alternate_headroom"),
        (56, b"\x7f\x00\x00\x00", r"alternate_headroom is .* stops, outside \[0, 14\]"),
    ],
)
def test_bad_field_values_are_rejected(offset, value, message):
    body = bytearray(ctr.build_container(METADATA, b"graph")[:-4])
    body[offset : offset + len(value)] = value
    with pytest.raises(ContainerError, match=message):
        ctr.parse_container(_with_crc(bytes(body)))


#: Spec §4.3 table 3: offsets of the f32 fields.
FLOAT_OFFSETS = {"epsilon": 24, "sdr_white_luminance": 28, "input_mean": 32, "input_range": 36, "residual_mean": 40,
                 "residual_range": 44}


def _next(value: float, toward: float) -> float:
    return float(np.nextafter(np.float32(value), np.float32(toward)))


@pytest.mark.parametrize("name", sorted(ctr.FIELD_RANGES))
def test_every_field_is_read_at_its_bounds_and_rejected_just_outside(name):
    """Spec §4.6: each f32 field at both inclusive bounds, and the binary32 value beyond each."""
    low, high = ctr.FIELD_RANGES[name]
    for value in (low, high):
        data = ctr.build_container(dataclasses.replace(METADATA, **{name: value}), b"g")
        assert getattr(ctr.parse_container(data).metadata, name) == value
    for value in (_next(low, -np.inf), _next(high, np.inf), float("nan")):
        body = bytearray(ctr.build_container(METADATA, b"g")[:-4])
        struct.pack_into(">f", body, FLOAT_OFFSETS[name], value)
        with pytest.raises(ContainerError, match=rf"container field {name} is {re.escape(repr(value))}, outside"):
            ctr.parse_container(_with_crc(bytes(body)))
        with pytest.raises(ContainerError, match=f"field {name}"):
            ctr.build_container(dataclasses.replace(METADATA, **{name: value}), b"g")


def test_the_issues_subnormal_sdr_white_is_rejected():
    """Issue 10 item 3: SDR white 1e-45 cd/m² passed every 1.0 check and decoded to +inf."""
    body = bytearray(ctr.build_container(METADATA, b"g")[:-4])
    struct.pack_into(">f", body, 28, 1e-45)
    with pytest.raises(ContainerError, match=r"sdr_white_luminance is 1\.401298464324817e-45, outside \[1, 10000\]"):
        ctr.parse_container(_with_crc(bytes(body)))


@pytest.mark.parametrize("field", ["base_headroom", "alternate_headroom"])
def test_headrooms_are_read_up_to_14_stops(field):
    both = dataclasses.replace(METADATA, base_headroom=0.0, alternate_headroom=ctr.MAX_HEADROOM)
    assert ctr.parse_container(ctr.build_container(both, b"g")).metadata.alternate_headroom == 14.0
    body = bytearray(ctr.build_container(METADATA, b"g")[:-4])
    offset = 48 if field == "base_headroom" else 56
    struct.pack_into(">II", body, offset, 140_001, 10_000)
    with pytest.raises(ContainerError, match=rf"{field} is 14\.0001 stops, outside \[0, 14\]"):
        ctr.parse_container(_with_crc(bytes(body)))


def test_headroom_below_base_is_rejected():
    with pytest.raises(ContainerError, match="below base headroom"):
        ctr.build_container(dataclasses.replace(METADATA, base_headroom=4.0), b"g")


def _layout(segments):
    return JpegLayout(tuple(segments), b"")


def test_single_and_multi_segment_carriage():
    small = ctr.build_container(METADATA, b"g" * 100)
    (only,) = ctr.to_segments(small)
    assert only.marker == 0xEF and only.payload.startswith(b"GainMLP\x00\x01\x01")
    large = ctr.build_container(METADATA, bytes(range(256)) * 800)
    pieces = ctr.to_segments(large)
    assert len(pieces) == 4
    assert all(len(p.payload) <= 65533 for p in pieces)
    assert ctr.from_layout(_layout(pieces)) == large
    assert ctr.from_layout(_layout(reversed(pieces))) == large
    assert ctr.from_layout(_layout([Segment(0xE1, b"Exif")])) is None


def _piece(sequence, count, chunk=b"x"):
    return Segment(0xEF, structs.SEGMENT_PAYLOAD.build({"sequence": sequence, "count": count, "chunk": chunk}))


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([_piece(1, 2)], r"missing piece\(s\) \[2\]"),
        ([_piece(1, 2), _piece(1, 2)], "duplicates sequence number 1"),
        ([_piece(1, 2), _piece(2, 3)], "says count 3"),
        ([_piece(0, 1)], "sequence 0 of count 1"),
        ([_piece(3, 2)], "sequence 3 of count 2"),
        ([_piece(1, 0)], "count 0"),
        ([Segment(0xEF, b"GainMLP\x00\x01")], "too short"),
    ],
)
def test_bad_carriage_is_rejected(segments, message):
    with pytest.raises(ContainerError, match=message):
        ctr.from_layout(_layout(segments))


def test_reassembly_stops_at_the_size_bound():
    chunk = b"x" * 65000
    segments = [_piece(i, 20, chunk) for i in range(1, 21)]
    with pytest.raises(ContainerError, match="byte bound"):
        ctr.from_layout(_layout(segments))


def test_oversized_graph_is_refused_by_the_writer():
    with pytest.raises(ContainerError, match="bound"):
        ctr.build_container(METADATA, b"\x00" * (ctr.MAX_GRAPH_BYTES + 1))


# ---- spec §4.7 (version 2.1): the placement record ----

SOURCE = Placement.identity((METADATA.width, METADATA.height))


def _placed(placement: Placement) -> bytes:
    metadata = dataclasses.replace(METADATA, width=placement.size[0], height=placement.size[1])
    return ctr.build_container(metadata, b"graph", placement)


def test_identity_placement_writes_the_same_bytes_as_none():
    assert ctr.build_container(METADATA, b"graph", SOURCE) == ctr.build_container(METADATA, b"graph")
    parsed = ctr.parse_container(ctr.build_container(METADATA, b"graph"))
    assert parsed.placement == SOURCE and parsed.placement.is_identity


@pytest.mark.parametrize("edit", [lambda p: p.crop((10, 20, 330, 260)), lambda p: p.rotate(37, expand=True),
                                  lambda p: p.transpose(2).resize((120, 160))])
def test_placement_round_trips_and_needs_version_2_1(edit):
    placement = edit(SOURCE)
    data = _placed(placement)
    assert data[4:8] == b"\x02\x01\x02\x01"
    assert len(data) == len(ctr.build_container(METADATA, b"graph")) + structs.PLACEMENT_SIZE
    parsed = ctr.parse_container(data)
    assert parsed.placement == placement  # binary64 on disk: the matrix comes back exactly
    assert (parsed.metadata.width, parsed.metadata.height) == placement.size


def test_a_2_0_reader_refuses_a_placed_container(monkeypatch):
    data = _placed(SOURCE.crop((0, 0, 100, 100)))
    monkeypatch.setattr(ctr, "FORMAT_VERSION", (2, 0))
    with pytest.raises(UnsupportedVersionError, match="needs format version 2.1.*up to 2.0"):
        ctr.parse_container(data)


def test_with_placement_repacks_and_undoing_the_edit_restores_the_bytes():
    original = ctr.parse_container(ctr.build_container(METADATA, b"graph"))
    cropped = original.with_placement(original.placement.crop((5, 6, 105, 56)))
    assert (cropped.metadata.width, cropped.metadata.height) == (100, 50)
    assert cropped.size == len(cropped.to_bytes())
    assert ctr.parse_container(cropped.to_bytes()).placement == cropped.placement
    joined = b"".join(s.payload[structs.SEGMENT_HEADER_SIZE :] for s in cropped.segments())
    assert joined == cropped.to_bytes()
    flipped = original.placement.transpose(0).transpose(0)
    assert original.with_placement(flipped).to_bytes() == ctr.build_container(METADATA, b"graph")


def test_with_placement_refuses_another_source():
    original = ctr.parse_container(ctr.build_container(METADATA, b"graph"))
    with pytest.raises(ContainerError, match="fitted on"):
        original.with_placement(Placement.identity((10, 10)))


def test_placement_for_another_base_size_is_not_written():
    with pytest.raises(ContainerError, match="placement describes"):
        ctr.build_container(METADATA, b"graph", SOURCE.crop((0, 0, 10, 10)))


def _record_patched(offset: int, value: bytes) -> bytes:
    body = bytearray(_placed(SOURCE.crop((1, 2, 30, 40)))[:-4])
    start = len(body) - structs.PLACEMENT_SIZE
    body[start + offset : start + offset + len(value)] = value
    return _with_crc(bytes(body))


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, struct.pack(">I", 0), "source_width is 0"),
        (4, struct.pack(">I", 70_000), "source_height is 70000"),
        (8, struct.pack(">d", float("nan")), "entry a is nan"),
        (16, struct.pack(">d", 2.0**16 + 1), "entry b is"),
        (24, struct.pack(">d", float("inf")), "entry c is inf"),
        (48, struct.pack(">d", -(2.0**33)), "entry f is"),
    ],
)
def test_placement_values_out_of_bounds_are_rejected(offset, value, message):
    with pytest.raises(ContainerError, match=message):
        ctr.parse_container(_record_patched(offset, value))


def test_missing_or_extra_placement_bytes_are_rejected():
    body = _placed(SOURCE.crop((1, 2, 30, 40)))[:-4]
    with pytest.raises(ContainerError, match="too few for its 56-byte placement record"):
        ctr.parse_container(_with_crc(body[:-8]))
    with pytest.raises(ContainerError, match="3 unexpected bytes"):
        ctr.parse_container(_with_crc(body + b"xyz"))


def test_out_of_bounds_placement_is_not_written():
    huge = SOURCE.affine((10, 10), (1e6, 0.0, 0.0, 0.0, 1.0, 0.0))
    with pytest.raises(ContainerError, match="entry a"):
        _placed(huge)


WRITTEN = sorted(
    folder for folder in (Path(__file__).resolve().parents[1] / "conformance" / "vectors").glob("valid-*")
    if '"writer_checks": true' in (folder / "case.json").read_text()
)


@pytest.mark.parametrize("folder", WRITTEN, ids=lambda folder: folder.name)
def test_files_without_a_placement_are_written_as_before_byte_for_byte(folder):
    """Spec §5.2 [CON-46]: the 2.0 writer's stored containers come out of this writer unchanged."""
    from gainmap_format.jpeg import parse_jpeg

    stored = ctr.from_layout(parse_jpeg((folder / "input.jpg").read_bytes()))
    parsed = ctr.parse_container(stored)
    assert parsed.placement.is_identity and stored[4:8] == b"\x01\x00\x02\x00"
    assert ctr.build_container(parsed.metadata, parsed.graph) == stored
    assert parsed.to_bytes() == stored
