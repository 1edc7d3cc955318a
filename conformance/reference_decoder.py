"""An independent decoder of GainMLP JPEGs, written from spec/gainmap-mlp.md alone.

It shares no code with ``gainmap_format`` and needs neither onnx nor onnxruntime: the JPEG
segments, the container and the ONNX protobuf are read here byte by byte (the protobuf with a
minimal wire-format reader and the field numbers of the spec's Appendix C), the base image is
decoded with Pillow, and the network and the residual are evaluated with numpy from the
equations of spec §6 and §7. Agreeing with the ONNX Runtime decoder on every valid conformance
vector is what shows that the spec is enough to implement the format.

Every rejection names the requirement it enforces. Command line::

    python conformance/reference_decoder.py INPUT.jpg OUTPUT.npy [--display-headroom H]

writes float32 (H, W, 3) BT.2020 PQ code values. Exit status: 0 decoded, 1 rejected,
2 usage error, 3 the file carries no GainMLP gain map, 4 unsupported version. Nothing is
written unless the file decodes.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_NO_GAINMAP = 3
EXIT_UNSUPPORTED_VERSION = 4

#: The format version this decoder implements, coded as (major << 8) | minor (§5).
READER_VERSION = 0x0201

#: §4.7: the version that introduced the placement record, and the record's size.
PLACEMENT_VERSION = 0x0201
PLACEMENT_BYTES = 56
_PLACEMENT = struct.Struct(">II6d")
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

#: §3.1: segment identifier; §4.1: container magic.
SEGMENT_IDENTIFIER = b"GainMLP\x00"
MAGIC = b"GMLP"

#: §3.2 [CAR-18] and §4.6 bounds.
MAX_CONTAINER_BYTES = 1_052_672
MAX_GRAPH_BYTES = 1_048_576
MAX_SIDE = 65_535
MAX_HEADROOM = 14.0

#: §4.6 Table 7: the inclusive range of each f32 field, with the requirement that bounds it.
RANGES = {
    "input_range": ("CON-37", 2.0**-20, 1.0),
    "residual_mean": ("CON-38", -(2.0**16), 2.0**16),
    "residual_range": ("CON-39", 2.0**-20, 2.0**17),
    "epsilon": ("CON-40", 2.0**-10, 0.5),
    "sdr_white": ("CON-41", 1.0, 10_000.0),
}

#: [DEC-7]: this decoder's own image size limit, the same as the reference library's.
MAX_PIXELS = 1 << 27

#: Rows of pixels evaluated at once are bounded so that the hidden layer stays near 64 MiB.
STRIP_VALUES = 1 << 24

FREQUENCIES = 12
HIDDEN_WIDTHS = (8, 16, 32, 64, 128)

#: Table 4d and 4e codes.
TRANSFERS = {1: "srgb", 2: "gamma2.4"}
PRIMARIES = {
    1: ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    2: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    3: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
D65 = (0.3127, 0.3290)

#: SMPTE ST 2084 constants (§7.1).
M1 = 2610 / 16384
M2 = 2523 / 4096 * 128
C1 = 3424 / 4096
C2 = 2413 / 4096 * 32
C3 = 2392 / 4096 * 32

#: ITU-T T.81 table B.1: start-of-frame markers, and markers without a length field.
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
SOI, EOI, SOS, APP15 = 0xD8, 0xD9, 0xDA, 0xEF


class RejectedError(Exception):
    """The file is rejected as the spec demands ([GEN-1]); the message names the requirement."""

    exit_status = EXIT_REJECTED


class NoGainMapError(RejectedError):
    """The JPEG carries no GainMLP segment ([CAR-9]): not damage, just no gain map."""

    exit_status = EXIT_NO_GAINMAP


class UnsupportedVersionError(RejectedError):
    """The container needs a newer format version ([VER-3], [VER-4])."""

    exit_status = EXIT_UNSUPPORTED_VERSION


# ---- §3 and §8.1: JPEG marker segments and GainMLP carriage ----


@dataclass(frozen=True)
class Segment:
    """A marker segment between SOI and the first SOS: marker byte, file offset, payload."""

    marker: int
    offset: int
    payload: bytes


def read_segments(data: bytes) -> list[Segment]:
    """The marker segments from SOI to the first SOS (ITU-T T.81 annex B), checked as [DEC-1] demands."""
    return split_at_sos(data)[0]


def split_at_sos(data: bytes) -> tuple[list[Segment], int]:
    """The marker segments before the first SOS, and the offset of that SOS marker ([DEC-1])."""
    if data[:3] != b"\xff\xd8\xff":
        raise RejectedError("[DEC-1] the file does not start with FF D8 FF")
    segments: list[Segment] = []
    pos = 2
    while True:
        if pos >= len(data) or data[pos] != 0xFF:
            raise RejectedError(f"[DEC-1] no marker at offset {pos} before the first SOS")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1  # fill bytes (T.81 B.1.1.2)
        if pos >= len(data):
            raise RejectedError("[DEC-1] the file ends before the first SOS")
        marker, start = data[pos], pos - 1
        if marker == SOS:
            return segments, start
        if marker in (SOI, EOI):
            raise RejectedError(f"[DEC-1] marker FF {marker:02X} at offset {start} before the first SOS")
        if marker in STANDALONE:
            pos += 1
            continue
        if start + 4 > len(data):
            raise RejectedError(f"[DEC-1] segment FF {marker:02X} at offset {start} has no length field")
        length = int.from_bytes(data[start + 2 : start + 4], "big")
        end = start + 2 + length
        if length < 2 or end > len(data):
            raise RejectedError(f"[DEC-1] [GEN-5] segment FF {marker:02X} at offset {start} has length {length}")
        segments.append(Segment(marker, start, data[start + 4 : end]))
        pos = end


def is_gainmlp(segment: Segment) -> bool:
    """[CAR-6], [CAR-7]: APP15 whose payload starts with the identifier, byte for byte."""
    return segment.marker == APP15 and segment.payload[:8] == SEGMENT_IDENTIFIER


def reassemble(segments: Sequence[Segment]) -> bytes:
    """Check the GainMLP segments and join their chunks into the container (§3.2)."""
    ours = [s for s in segments if is_gainmlp(s)]
    if not ours:
        raise NoGainMapError("[CAR-9] the file carries no GainMLP gain map")
    chunks: dict[int, bytes] = {}
    count = 0  # until the first segment gives its count, which [CAR-11] keeps above 0
    total = 0
    for segment in ours:
        where = f"GainMLP segment at offset {segment.offset}"
        if len(segment.payload) < 10:
            raise RejectedError(f"[CAR-10] {where} has a {len(segment.payload)}-byte payload")
        sequence, seg_count = segment.payload[8], segment.payload[9]
        if seg_count == 0:
            raise RejectedError(f"[CAR-11] {where} has count 0")
        if sequence == 0:
            raise RejectedError(f"[CAR-12] {where} has sequence 0")
        if sequence > seg_count:
            raise RejectedError(f"[CAR-13] {where} has sequence {sequence} above count {seg_count}")
        if count and seg_count != count:
            raise RejectedError(f"[CAR-14] {where} has count {seg_count}, an earlier one {count}")
        if sequence in chunks:
            raise RejectedError(f"[CAR-15] {where} repeats sequence {sequence}")
        count = seg_count
        chunks[sequence] = segment.payload[10:]
        total += len(segment.payload) - 10
        if total > MAX_CONTAINER_BYTES:
            raise RejectedError(f"[CAR-18] the chunks exceed {MAX_CONTAINER_BYTES} bytes at {where}")
    missing = [n for n in range(1, count + 1) if n not in chunks]
    if missing:
        raise RejectedError(f"[CAR-16] sequence numbers {missing} of {count} are missing")
    return b"".join(chunks[n] for n in range(1, count + 1))  # [CAR-17]


# ---- §4 and §5: the container ----


@dataclass(frozen=True)
class Header:
    """The container's fields (Table 3), values checked."""

    minimum_version: int
    writer_version: int
    residual_kind: int
    activation: int
    hidden_width: int
    base_transfer: int
    base_primaries: int
    width: int
    height: int
    epsilon: float
    sdr_white: float
    input_mean: float
    input_range: float
    residual_mean: float
    residual_range: float
    base_headroom: float
    alternate_headroom: float
    source_width: int = 0
    source_height: int = 0
    matrix: tuple = IDENTITY

    @property
    def placed(self) -> bool:
        """Whether the placement (§4.7) is other than the identity."""
        return (self.source_width, self.source_height, self.matrix) != (self.width, self.height, IDENTITY)


#: Table 3 from offset 4 to offset 68: big-endian, 64 bytes.
_FIELDS = struct.Struct(">HHBBBBBBBBIIffffffIIIII")


def check_crc(body: bytes, stored: int) -> None:
    """[CON-15]: the trailer is the CRC-32/ISO-HDLC of every byte before it."""
    if zlib.crc32(body) != stored:
        raise RejectedError(f"[CON-15] CRC-32 mismatch: stored 0x{stored:08X}, computed 0x{zlib.crc32(body):08X}")


def check_version(minimum: int, reader: int = READER_VERSION) -> None:
    """§5: [VER-6] no version below 1.0; [VER-14] no 1.x after 1.0; [VER-3] nothing newer than ``reader``."""
    if minimum >> 8 == 0:
        raise RejectedError(f"[VER-6] minimum_version {minimum >> 8}.{minimum & 0xFF} does not exist")
    if minimum >> 8 == 1 and minimum & 0xFF:
        raise UnsupportedVersionError(f"[VER-14] minimum_version 1.{minimum & 0xFF}: no version after 1.0 but 2.0")
    if minimum > reader:
        raise UnsupportedVersionError(f"[VER-3] the container needs format version {minimum >> 8}.{minimum & 0xFF}")


def parse_container(data: bytes, reader: int = READER_VERSION) -> tuple[Header, bytes]:
    """Check a container in the order of §4.6 and return its header and graph bytes.

    ``reader`` is the version whose rules decide which minimum_version is refused ([VER-3]):
    READER_VERSION, or an earlier one to act as an older reader would.
    """
    if len(data) < 12:
        raise RejectedError(f"[CON-2] container of {len(data)} bytes")
    if data[:4] != MAGIC:
        raise RejectedError(f"[CON-3] container magic {data[:4].hex(' ')}")
    check_crc(data[:-4], int.from_bytes(data[-4:], "big"))
    minimum, writer = struct.unpack(">HH", data[4:8])
    check_version(minimum, reader)
    if len(data) < 72:
        raise RejectedError(f"[GEN-5] container of {len(data)} bytes cannot hold the version 1.0 fields")
    fields = _FIELDS.unpack(data[4:68])
    graph_length = fields[-1]
    if graph_length > len(data) - 72:
        raise RejectedError(f"[CON-13] graph_length {graph_length} runs past the container's {len(data)} bytes")
    if graph_length > MAX_GRAPH_BYTES:
        raise RejectedError(f"[CON-21] graph_length {graph_length} is over {MAX_GRAPH_BYTES}")
    extensions = data[68 + graph_length : -4]
    record = b""
    if minimum >= PLACEMENT_VERSION:  # [CON-45]: below 2.1 the extensions hold no placement
        if len(extensions) < PLACEMENT_BYTES:
            raise RejectedError(f"[CON-43] {len(extensions)} bytes after the graph, the placement record needs 56")
        record, extensions = extensions[:PLACEMENT_BYTES], extensions[PLACEMENT_BYTES:]
    if extensions and writer <= READER_VERSION:
        raise RejectedError(f"[CON-34] bytes after the graph from a writer of version {writer >> 8}.{writer & 0xFF}")
    header = _header(fields)
    return (_placed(header, record) if record else header), data[68 : 68 + graph_length]


def _placed(header: Header, record: bytes) -> Header:
    """§4.7: the header with its placement record, checked ([CON-44])."""
    source_width, source_height, *matrix = _PLACEMENT.unpack(record)
    if not (1 <= source_width <= MAX_SIDE and 1 <= source_height <= MAX_SIDE):
        raise RejectedError(f"[CON-44] placement source size {source_width}x{source_height}")
    for name, value, bound in zip("abcdef", matrix, (2.0**16, 2.0**16, 2.0**32) * 2, strict=True):
        if not -bound <= value <= bound:  # NaN fails too
            raise RejectedError(f"[CON-44] placement matrix entry {name} is {value!r}, outside ±{bound:g}")
    return replace(header, source_width=source_width, source_height=source_height, matrix=tuple(matrix))


def _header(fields: tuple) -> Header:
    (minimum, writer, _flags, kind, domain, activation, width_h, frequencies, transfer, primaries, width, height,
     epsilon, white, in_mean, in_range, res_mean, res_range, hb_num, hb_den, ha_num, ha_den, _length) = fields
    for requirement, name, value, known in (
        ("CON-8", "residual_kind", kind, (0, 1)),
        ("CON-9", "residual_domain", domain, (1,)),
        ("CON-10", "activation", activation, (0, 1)),
        ("CON-11", "base_transfer", transfer, tuple(TRANSFERS)),
        ("CON-12", "base_primaries", primaries, tuple(PRIMARIES)),
    ):
        if value not in known:
            raise RejectedError(f"[{requirement}] {name} has unknown code {value}")
    if hb_den == 0 or ha_den == 0:
        raise RejectedError("[CON-16] a headroom has denominator 0")
    base_headroom, alternate_headroom = hb_num / hb_den, ha_num / ha_den  # [CON-17] binary64
    header = Header(minimum, writer, kind, activation, width_h, transfer, primaries, width, height, epsilon, white,
                    in_mean, in_range, res_mean, res_range, base_headroom, alternate_headroom, width, height)
    check_values(header, frequencies)
    return header


def check_values(h: Header, frequencies: int) -> None:
    """§4.6 value checks [CON-18], [CON-22] to [CON-28], [CON-30], [CON-37] to [CON-42]."""
    checks = (
        (h.alternate_headroom >= h.base_headroom, "CON-18", "H_alt is below H_base"),
        (max(h.base_headroom, h.alternate_headroom) <= MAX_HEADROOM, "CON-42", "a headroom is above 14"),
        (h.hidden_width in HIDDEN_WIDTHS, "CON-22", f"hidden_width {h.hidden_width}"),
        (frequencies == FREQUENCIES, "CON-23", f"frequencies {frequencies}"),
        (1 <= h.width <= MAX_SIDE and 1 <= h.height <= MAX_SIDE, "CON-24", f"size {h.width}x{h.height}"),
        (math.isfinite(h.input_mean) and math.isfinite(h.residual_mean), "CON-25", "a mean is not finite"),
        (all(math.isfinite(v) and v > 0 for v in (h.input_range, h.residual_range, h.epsilon, h.sdr_white)),
         "CON-26", "a range, epsilon or SDR white is not finite and positive"),
        (0.0 <= h.input_mean <= 1.0, "CON-27", f"input_mean {h.input_mean}"),
        (h.input_range <= 1.0, "CON-28", f"input_range {h.input_range}"),
        (h.sdr_white <= 10_000.0, "CON-30", f"sdr_white_luminance {h.sdr_white}"),
        *((low <= getattr(h, name) <= high, requirement, f"{name} {getattr(h, name)!r} outside [{low:g}, {high:g}]")
          for name, (requirement, low, high) in RANGES.items()),
    )
    for passed, requirement, reason in checks:
        if not passed:
            raise RejectedError(f"[{requirement}] {reason}")


# ---- Appendix C: a minimal protobuf wire-format reader ----


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise RejectedError("[GRA-4] a protobuf varint runs past the end of its message")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
    raise RejectedError("[GRA-4] a protobuf varint is longer than 10 bytes")


def _signed(value: int) -> int:
    """int64 and int32 fields are two's complement in 64 bits on the wire."""
    return value - (1 << 64) if value >> 63 else value


def wire_fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (field number, wire type, value) in wire order."""
    fields: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number >= 1 << 29:
            raise RejectedError(f"[GRA-4] protobuf field number {number}")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if length > len(data) - pos:
                raise RejectedError("[GRA-4] a protobuf field runs past the end of its message")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if size > len(data) - pos:
                raise RejectedError("[GRA-4] a protobuf field runs past the end of its message")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise RejectedError(f"[GRA-4] protobuf wire type {wire} (groups are not part of ONNX)")
        fields.append((number, wire, value))
    return fields


#: Field kinds: "int" (varint), "ints" (repeated varint, packed or not), "str" and "strs"
#: (length-delimited), "free" (free text: any length-delimited value, ignored [GRA-19]),
#: "freeint" (a free varint), or a message name ("*Name" when repeated).
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "Model": {1: ("ir_version", "int"), 2: ("producer_name", "free"), 3: ("producer_version", "free"),
              4: ("domain", "free"), 5: ("model_version", "freeint"), 6: ("doc_string", "free"),
              7: ("graph", "Graph"), 8: ("opset_import", "*OpSet"), 14: ("metadata_props", "free")},
    "OpSet": {1: ("domain", "str"), 2: ("version", "int")},
    "Graph": {1: ("node", "*Node"), 2: ("name", "free"), 5: ("initializer", "*Tensor"), 10: ("doc_string", "free"),
              11: ("input", "*ValueInfo"), 12: ("output", "*ValueInfo"), 16: ("metadata_props", "free")},
    "Node": {1: ("input", "strs"), 2: ("output", "strs"), 3: ("name", "free"), 4: ("op_type", "str"),
             5: ("attribute", "*Attribute"), 6: ("doc_string", "free"), 7: ("domain", "str")},
    "Attribute": {1: ("name", "str"), 3: ("i", "int"), 20: ("type", "int")},
    "ValueInfo": {1: ("name", "str"), 2: ("type", "Type")},
    "Type": {1: ("tensor_type", "TensorType")},
    "TensorType": {1: ("elem_type", "int"), 2: ("shape", "Shape")},
    "Shape": {1: ("dim", "*Dim")},
    "Dim": {1: ("dim_value", "int"), 2: ("dim_param", "str")},
    "Tensor": {1: ("dims", "ints"), 2: ("data_type", "int"), 8: ("name", "str"), 9: ("raw_data", "str"),
               12: ("doc_string", "free"), 14: ("data_location", "int")},
}

#: Fields outside the canonical model that have their own requirement.
FORBIDDEN = {
    ("Model", 25): "[GRA-7] the model defines functions",
    ("Model", 20): "[GRA-8] the model has training_info",
    ("Graph", 15): "[GRA-9] the graph has sparse initializers",
    ("Graph", 13): "[GRA-10] the graph has value_info",
    ("Graph", 14): "[GRA-11] the graph has quantization annotations",
    ("Tensor", 13): "[GRA-24] an initializer has external_data",
    **{("Tensor", n): f"[GRA-27] an initializer holds values outside raw_data (field {n})"
       for n in (3, 4, 5, 6, 7, 10, 11)},
}


def read_message(data: bytes, kind: str) -> dict:
    """Parse a message of SCHEMA ``kind`` into a dict, rejecting every field outside the contract.

    Singular scalars follow protobuf's rule (the last occurrence wins) and singular messages
    are merged (parsed from the concatenation of their occurrences), so that this reader sees
    what any protobuf library would.
    """
    schema = SCHEMA[kind]
    out: dict = {}
    merged: dict[str, list[bytes]] = {}
    for number, wire, value in wire_fields(data):
        if (kind, number) in FORBIDDEN:
            raise RejectedError(FORBIDDEN[kind, number])
        if number not in schema:
            raise RejectedError(f"[GRA-21] field {number} of {kind} is outside the canonical model")
        name, field_kind = schema[number]
        expected_wire = 0 if field_kind in ("int", "ints", "freeint") else 2
        if field_kind == "ints" and wire == 2:
            out.setdefault(name, []).extend(_packed(cast(bytes, value)))
            continue
        if wire != expected_wire:
            raise RejectedError(f"[GRA-4] field {name} of {kind} has wire type {wire}")
        if field_kind in ("free", "freeint"):
            continue
        if field_kind in ("int", "str"):
            out[name] = _signed(cast(int, value)) if field_kind == "int" else value
        elif field_kind in ("ints", "strs"):
            out.setdefault(name, []).append(_signed(cast(int, value)) if field_kind == "ints" else value)
        elif field_kind.startswith("*"):
            out.setdefault(name, []).append(read_message(cast(bytes, value), field_kind[1:]))
        else:
            merged.setdefault(name, []).append(cast(bytes, value))
    for name, parts in merged.items():
        out[name] = read_message(b"".join(parts), schema_kind(kind, name))
    return out


def schema_kind(kind: str, name: str) -> str:
    """The message kind of field ``name`` of ``kind``."""
    return next(k for n, k in SCHEMA[kind].values() if n == name)


def _packed(data: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(_signed(value))
    return values


# ---- §6.4 and §6.5: the graph contract ----

FLOAT, UINT8, INT32, INT64, ATTRIBUTE_INT = 1, 2, 6, 7, 2


def canonical_nodes(activation: int) -> list[tuple[str, list[str], list[str], list[tuple[str, int]]]]:
    """Table 6: (op_type, inputs, outputs, INT attributes) of each node, in order."""
    act = "Sin" if activation == 0 else "Relu"
    return [
        ("MatMul", ["lv", "Wc"], ["t3"], []),
        ("Reshape", ["t3", "n"], ["t"], []),
        ("Cast", ["sdr"], ["i"], [("to", INT32)]),
        ("Add", ["i", "o"], ["j"], []),
        ("Gather", ["t", "j"], ["g"], [("axis", 0)]),
        ("ReduceSum", ["g", "a2"], ["c"], [("keepdims", 0)]),
        ("MatMul", ["row", "Wy"], ["ry"], []),
        ("Add", ["ry", "b1"], ["rb"], []),
        ("Unsqueeze", ["rb", "a1"], ["r"], []),
        ("MatMul", ["col", "Wx"], ["x"], []),
        ("Add", ["c", "r"], ["s1"], []),
        ("Add", ["s1", "x"], ["s2"], []),
        (act, ["s2"], ["h1"], []),
        ("MatMul", ["h1", "W2"], ["m2"], []),
        ("Add", ["m2", "b2"], ["s3"], []),
        (act, ["s3"], ["h2"], []),
        ("MatMul", ["h2", "W3"], ["m3"], []),
        ("Add", ["m3", "b3"], ["res"], []),
    ]


#: Table 5: (name, element type, shape); strings are dim_params.
INPUTS = [("lv", FLOAT, [256, 24]), ("row", FLOAT, ["h", 24]), ("col", FLOAT, ["w", 24]),
          ("sdr", UINT8, ["h", "w", 3])]
OUTPUTS = [("res", FLOAT, ["h", "w", 3])]


def initializer_table(width: int) -> dict[str, tuple[int, list[int]]]:
    """Tables 9 and 10: element type and dims of each initializer."""
    return {
        "Wc": (FLOAT, [3, 24, width]), "Wy": (FLOAT, [24, width]), "Wx": (FLOAT, [24, width]),
        "b1": (FLOAT, [width]), "W2": (FLOAT, [width, width]), "b2": (FLOAT, [width]),
        "W3": (FLOAT, [width, 3]), "b3": (FLOAT, [3]),
        "n": (INT64, [2]), "o": (INT32, [3]), "a2": (INT64, [1]), "a1": (INT64, [1]),
    }


def constants(width: int) -> dict[str, list[int]]:
    """Table 9: the constants' values."""
    return {"n": [768, width], "o": [0, 256, 512], "a2": [2], "a1": [1]}


_DTYPES: dict[int, np.dtype[Any]] = {FLOAT: np.dtype("<f4"), INT32: np.dtype("<i4"), INT64: np.dtype("<i8")}


def check_graph(graph: bytes, activation: int, width: int) -> dict[str, np.ndarray]:
    """Check the graph against §6.4 and §6.5 ([GRA-3]) and return the parameters of Table 8."""
    model = read_message(graph, "Model")
    if model.get("ir_version") != 8:
        raise RejectedError(f"[GRA-5] ir_version {model.get('ir_version', 0)}")
    opsets = [(o.get("domain", b""), o.get("version")) for o in model.get("opset_import", [])]
    if opsets != [(b"", 17)]:
        raise RejectedError(f"[GRA-6] opset_import {opsets}")
    body = model.get("graph", {})
    check_values_info(body.get("input", []), INPUTS, "[GRA-12] inputs")
    check_values_info(body.get("output", []), OUTPUTS, "[GRA-13] outputs")
    check_nodes(body.get("node", []), activation)
    return check_initializers(body.get("initializer", []), width)


def check_values_info(values: list[dict], expected: list, what: str) -> None:
    """[GRA-12], [GRA-13]: names, element types and shapes exactly as Table 5."""
    actual = [(v.get("name"), _tensor_type(v)) for v in values]
    wanted = [(name.encode(), (elem, [d.encode() if isinstance(d, str) else d for d in dims]))
              for name, elem, dims in expected]
    if actual != wanted:
        raise RejectedError(f"{what} differ from Table 5")


def _tensor_type(value: dict) -> tuple | None:
    tensor = value.get("type", {}).get("tensor_type")
    if tensor is None or "shape" not in tensor:
        return None
    dims = []
    for dim in tensor["shape"].get("dim", []):
        if len(dim) != 1:
            return None  # exactly one of dim_value and dim_param
        dims.append(dim.get("dim_value", dim.get("dim_param")))
    return tensor.get("elem_type"), dims


def check_nodes(nodes: list[dict], activation: int) -> None:
    """[GRA-14] to [GRA-16]: the 18 nodes of Table 6, in order."""
    expected = canonical_nodes(activation)
    if len(nodes) != len(expected):
        raise RejectedError(f"[GRA-14] the graph has {len(nodes)} nodes, not 18")
    for index, (node, (op, inputs, outputs, attributes)) in enumerate(zip(nodes, expected, strict=True)):
        got_attributes = [(a.get("name"), a.get("type"), a.get("i")) for a in node.get("attribute", [])]
        want_attributes = [(name.encode(), ATTRIBUTE_INT, value) for name, value in attributes]
        same = (
            node.get("domain", b"") == b""
            and node.get("op_type") == op.encode()
            and node.get("input", []) == [n.encode() for n in inputs]
            and node.get("output", []) == [n.encode() for n in outputs]
            and sorted(got_attributes, key=repr) == want_attributes
        )
        if not same:
            code = "GRA-16" if index in (12, 15) and node.get("op_type") in (b"Sin", b"Relu") else "GRA-15"
            raise RejectedError(f"[{code}] node {index} ({node.get('op_type', b'?').decode('latin-1')}) is not {op}")


def check_initializers(tensors: list[dict], width: int) -> dict[str, np.ndarray]:
    """[GRA-17], [GRA-18], [GRA-24] to [GRA-29]: the twelve initializers, from raw_data."""
    table = initializer_table(width)
    names = [t.get("name", b"").decode("latin-1") for t in tensors]
    if sorted(names) != sorted(table):
        raise RejectedError(f"[GRA-17] initializers {sorted(names)}")
    arrays = {}
    for name, tensor in zip(names, tensors, strict=True):
        dtype, dims = table[name]
        if tensor.get("data_location", 0) != 0:
            raise RejectedError(f"[GRA-24] initializer {name} has data_location {tensor['data_location']}")
        if tensor.get("data_type") != dtype:
            raise RejectedError(f"[GRA-25] initializer {name} has data_type {tensor.get('data_type')}")
        if tensor.get("dims", []) != dims:
            raise RejectedError(f"[GRA-26] initializer {name} has dims {tensor.get('dims', [])}")
        raw = tensor.get("raw_data")
        size = math.prod(dims) * _DTYPES[dtype].itemsize
        if raw is None or len(raw) != size:
            raise RejectedError(f"[GRA-27] initializer {name} needs {size} bytes of raw_data")
        arrays[name] = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(dims)  # [GRA-29]
    for name, value in constants(width).items():
        if arrays[name].tolist() != value:
            raise RejectedError(f"[GRA-18] constant {name} is {arrays[name].tolist()}")
    params = {name: arrays[name].astype(np.float32) for name in ("Wc", "Wy", "Wx", "b1", "W2", "b2", "W3", "b3")}
    for name, array in params.items():
        if not np.all(np.isfinite(array)):
            raise RejectedError(f"[GRA-28] parameter {name} holds NaN or infinity")
    return params


# ---- §8.1 steps 6: the base image ----


def frame_size(segments: Sequence[Segment]) -> tuple[int, int, int]:
    """(width, height, components) from the first start-of-frame segment."""
    for segment in segments:
        if segment.marker in SOF_MARKERS:
            if len(segment.payload) < 6:
                raise RejectedError("[DEC-1] [GEN-5] the frame header is truncated")
            height, width = struct.unpack(">HH", segment.payload[1:5])
            return width, height, segment.payload[5]
    raise RejectedError("[DEC-3] no frame header before the first SOS")


def decode_base(data: bytes, segments: Sequence[Segment], header: Header) -> np.ndarray:
    """Decode the primary image to uint8 (H, W, 3) in its coded orientation ([DEC-3] to [DEC-8])."""
    width, height, components = frame_size(segments)
    if components not in (1, 3):
        raise RejectedError(f"[DEC-8] the base image has {components} components")
    if (width, height) != (header.width, header.height):
        raise RejectedError(f"[DEC-6] the base is {width}x{height}, the container says {header.width}x{header.height}")
    if width * height > MAX_PIXELS:
        raise RejectedError(f"[DEC-7] the base's {width * height} pixels are over this decoder's limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
                if image.size != (width, height) or image.mode not in ("L", "RGB"):
                    raise RejectedError(f"[DEC-3] Pillow opens the base as {image.mode} {image.size}")
                return np.asarray(image.convert("RGB"))  # [DEC-4]: grey becomes R = G = B
    except (OSError, SyntaxError, ValueError) as exc:
        raise RejectedError(f"[DEC-3] the base image cannot be decoded: {exc}") from exc


# ---- §6.1 to §6.3: the network ----


def encode(values: np.ndarray) -> np.ndarray:
    """§6.1 γ: 12 sines then 12 cosines of 2^n π x, in binary64, rounded once to binary32."""
    phase = values[:, None] * (math.pi * 2.0 ** np.arange(FREQUENCIES, dtype=np.float64))[None, :]
    return np.concatenate([np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)


def coordinates(count: int) -> np.ndarray:
    """§6.1 [NET-2], [NET-3], [NET-7]: u_i = i s - 1, s = 2 / (count - 1), the last exactly 1."""
    if count == 1:
        return np.zeros(1)
    u = np.arange(count, dtype=np.float64) * (2.0 / (count - 1)) - 1.0
    u[-1] = 1.0
    return u


def placed_coordinates(count: int, positions: np.ndarray) -> np.ndarray:
    """§6.1 [NET-12], [NET-13]: source positions clamped to the pixel centres, then (p - ½) s - 1."""
    if count == 1:
        return np.zeros(positions.shape)
    return (np.clip(positions, 0.5, count - 0.5) - 0.5) * (2.0 / (count - 1)) - 1.0


def position_terms(params: dict[str, np.ndarray], header: Header, top: int, bottom: int) -> np.ndarray:
    """The first layer's position terms γ(u_ij) Wy + b1 + γ(v_ij) Wx of rows top..bottom - 1 (§6.3, dense form).

    Returns:
        float32 (bottom - top, W, W_h).
    """
    if not header.placed:
        rows = encode(coordinates(header.height)[top:bottom]) @ params["Wy"] + params["b1"]
        return rows[:, None, :] + (encode(coordinates(header.width)) @ params["Wx"])[None, :, :]
    a, b, c, d, e, f = header.matrix
    y, x = np.mgrid[top:bottom, 0 : header.width].astype(np.float64) + 0.5
    u = placed_coordinates(header.source_height, d * x + e * y + f).ravel()
    v = placed_coordinates(header.source_width, a * x + b * y + c).ravel()
    terms = encode(u) @ params["Wy"] + params["b1"] + encode(v) @ params["Wx"]
    return terms.reshape(bottom - top, header.width, -1)


def outside_source(header: Header) -> np.ndarray:
    """§6.1 [NET-14]: bool (H, W), the pixels whose centre maps outside [-m_x, W0 + m_x] × [-m_y, H0 + m_y].

    m_x = max(0, sqrt(a a + b b) - 1) / 2 and m_y = max(0, sqrt(d d + e e) - 1) / 2: half of what
    one output pixel steps beyond one source pixel, 0 unless the placement reduces.
    """
    a, b, c, d, e, f = header.matrix
    y, x = np.mgrid[0 : header.height, 0 : header.width].astype(np.float64) + 0.5
    x_s, y_s = a * x + b * y + c, d * x + e * y + f
    m_x, m_y = max(0.0, math.sqrt(a * a + b * b) - 1.0) / 2.0, max(0.0, math.sqrt(d * d + e * e) - 1.0) / 2.0
    return (x_s < -m_x) | (x_s > header.source_width + m_x) | (y_s < -m_y) | (y_s > header.source_height + m_y)


def levels(header: Header) -> np.ndarray:
    """§6.1 [NET-1]: z_k = (2 ((k / 255) - μ_in)) / ρ_in."""
    k = np.arange(256, dtype=np.float64)
    return (2.0 * ((k / 255.0) - header.input_mean)) / header.input_range


def activate(x: np.ndarray, activation: int) -> np.ndarray:
    """[NET-10]: sin for activation 0, max(x, 0) for 1."""
    return np.sin(x) if activation == 0 else np.maximum(x, np.float32(0.0))


def evaluate(params: dict[str, np.ndarray], header: Header, code: np.ndarray) -> np.ndarray:
    """§6.3 in table form, binary32 ([NET-9], [NET-11]): z for every pixel, float32 (H, W, 3)."""
    e_lv = encode(levels(header))
    tables = [e_lv @ params["Wc"][c] for c in range(3)]
    out = np.empty(code.shape, dtype=np.float32)
    strip = max(1, STRIP_VALUES // (header.width * header.hidden_width))
    with np.errstate(all="ignore"):  # a crafted file may overflow binary32 ([RES-20])
        for top in range(0, header.height, strip):
            block = code[top : top + strip]
            a1 = tables[0][block[..., 0]] + tables[1][block[..., 1]] + tables[2][block[..., 2]]
            a1 += position_terms(params, header, top, top + block.shape[0])
            h1 = activate(a1, header.activation)
            h2 = activate(h1 @ params["W2"] + params["b2"], header.activation)
            out[top : top + strip] = h2 @ params["W3"] + params["b3"]
    return out


# ---- §7: residual and reconstruction ----


def pq(luminance: np.ndarray) -> np.ndarray:
    """PQ inverse EOTF of luminance in cd/m² (§7.1)."""
    y = np.clip(luminance / 10_000.0, 0.0, 1.0) ** M1
    return ((C1 + C2 * y) / (1.0 + C3 * y)) ** M2


def npm(primaries: tuple) -> np.ndarray:
    """SMPTE RP 177 normalised primary matrix: linear RGB to XYZ, white at Y = 1."""
    xyz = np.array([[x / y, 1.0, (1.0 - x - y) / y] for x, y in primaries]).T
    white = np.array([D65[0] / D65[1], 1.0, (1.0 - D65[0] - D65[1]) / D65[1]])
    return xyz * np.linalg.solve(xyz, white)


def base_to_pq(code: np.ndarray, header: Header) -> np.ndarray:
    """§7.1 steps 1 to 6 ([RES-1] to [RES-4]), in binary64."""
    c = code.astype(np.float64) / 255.0
    if TRANSFERS[header.base_transfer] == "srgb":
        linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    else:
        linear = c**2.4
    matrix = np.linalg.inv(npm(PRIMARIES[3])) @ npm(PRIMARIES[header.base_primaries])
    bt2020 = np.maximum(linear @ matrix.T, 0.0)
    return pq(bt2020 * header.sdr_white)


def display_weight(header: Header, display_headroom: float | None) -> float:
    """§7.5 [RES-11] to [RES-13]."""
    if display_headroom is None or header.alternate_headroom == header.base_headroom:
        return 1.0
    w = (display_headroom - header.base_headroom) / (header.alternate_headroom - header.base_headroom)
    return min(max(w, 0.0), 1.0)


def reconstruct(z: np.ndarray, s: np.ndarray, header: Header, weight: float) -> np.ndarray:
    """§7.3 to §7.5: denormalise, weight, apply the residual, clip; NaN becomes 0 ([RES-20])."""
    with np.errstate(all="ignore"):
        f = z.astype(np.float64) * (header.residual_range / 2.0) + header.residual_mean  # [RES-10]
        e = header.epsilon
        if header.residual_kind == 0:
            f = 1.0 + weight * (f - 1.0)  # [RES-14]
            h = (s + e) ** f - e  # [RES-5]
        else:
            f = np.maximum(f, 0.0) ** weight  # [RES-15]; numpy's 0 ** 0 is 1
            h = (s + e) * f - e  # [RES-6]
        h = np.where(np.isnan(h), 0.0, h)
    return np.clip(h, 0.0, 1.0).astype(np.float32)  # [RES-7]


def decode(data: bytes, display_headroom: float | None = None, reader: int = READER_VERSION) -> np.ndarray:
    """Decode a GainMLP JPEG (§8.1) to float32 (H, W, 3) BT.2020 PQ code values.

    ``reader`` makes it refuse versions as a reader of that (earlier) version would ([VER-3]).

    Raises:
        RejectedError: the file is rejected; NoGainMapError and UnsupportedVersionError are the distinguishable cases.
    """
    segments = read_segments(data)
    header, graph = parse_container(reassemble(segments), reader)
    params = check_graph(graph, header.activation, header.hidden_width)
    code = decode_base(data, segments, header)
    z = evaluate(params, header, code)
    s = base_to_pq(code, header)
    h = reconstruct(z, s, header, display_weight(header, display_headroom))
    if header.placed:
        outside = outside_source(header)
        h[outside] = s[outside]  # [RES-22]: the neutral residual, H' = S
    return h


def write_atomically(path: Path, array: np.ndarray) -> None:
    """Write the .npy under a temporary name and rename it, so a failure leaves no output."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None, decoder: Callable[..., np.ndarray] | None = None) -> int:
    """Command line: decode INPUT to OUTPUT.npy; returns the exit status."""
    parser = argparse.ArgumentParser(description="Independent numpy reference decoder for GainMLP JPEGs.")
    parser.add_argument("input", type=Path, help="a GainMLP JPEG")
    parser.add_argument("output", type=Path, help="output .npy: float32 (H, W, 3) BT.2020 PQ code values")
    parser.add_argument("--display-headroom", type=float, default=None, help="log2 display headroom (§7.5)")
    parser.add_argument("--reader-version", choices=("1.0", "2.0", "2.1"), default="2.1",
                        help="refuse newer minimum versions as a reader of this version would (default 2.1)")
    args = parser.parse_args(argv)
    major, minor = (int(n) for n in args.reader_version.split("."))
    try:
        data = args.input.read_bytes()
    except OSError as exc:
        print(f"reference_decoder: cannot read {args.input}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        pixels = decoder(data, args.display_headroom) if decoder else decode(data, args.display_headroom,
                                                                             (major << 8) | minor)
    except RejectedError as exc:
        print(f"reference_decoder: rejected: {exc}", file=sys.stderr)
        return exc.exit_status
    write_atomically(args.output, pixels)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
