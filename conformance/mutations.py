"""Byte surgery on valid files: the helpers that alter a file or its container into another vector.

Every helper works on bytes with integer arithmetic, IEEE-exact operations and lossless steps only,
so a vector made with them is the same bytes on every CPU. Where the point of a vector is not the
checksum, the helpers recompute the CRC-32 so that the reader meets the intended fault.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import onnx

from gainmap_format import container as ctr
from gainmap_format.graph import check_graph
from gainmap_format.jpeg import JpegLayout, Segment, parse_jpeg, replace_segments
from gainmap_format.network import MlpWeights

#: Table 3 of the spec: offset and big-endian struct format of each container field.
FIELDS = {
    "minimum_version": (4, ">H"), "writer_version": (6, ">H"), "flags": (8, ">B"), "residual_kind": (9, ">B"),
    "residual_domain": (10, ">B"), "activation": (11, ">B"), "hidden_width": (12, ">B"), "frequencies": (13, ">B"),
    "base_transfer": (14, ">B"), "base_primaries": (15, ">B"), "width": (16, ">I"), "height": (20, ">I"),
    "epsilon": (24, ">f"), "sdr_white_luminance": (28, ">f"), "input_mean": (32, ">f"), "input_range": (36, ">f"),
    "residual_mean": (40, ">f"), "residual_range": (44, ">f"), "base_headroom_numerator": (48, ">I"),
    "base_headroom_denominator": (52, ">I"), "alternate_headroom_numerator": (56, ">I"),
    "alternate_headroom_denominator": (60, ">I"), "graph_length": (64, ">I"),
}


def without_gainmlp(jpeg: bytes) -> bytes:
    """A file without its GainMLP segments before the first SOS: what the writer started from."""
    return replace_segments(parse_jpeg(jpeg), [], ctr.is_our_segment).to_bytes()


def crc(body: bytes) -> bytes:
    """The CRC-32 trailer of spec §4.4 for ``body``."""
    return struct.pack(">I", zlib.crc32(body))


def container_of(jpeg: bytes) -> bytes:
    """The reassembled container of a file."""
    carried = ctr.from_layout(parse_jpeg(jpeg))
    assert carried is not None
    return carried


def with_segments(jpeg: bytes, segments: list[Segment]) -> bytes:
    """Replace a file's GainMLP segments with ``segments``, where the writer puts them."""
    return replace_segments(parse_jpeg(jpeg), segments, ctr.is_our_segment).to_bytes()


def with_container(jpeg: bytes, container: bytes) -> bytes:
    """Carry ``container`` instead of the file's own, cut as the writer cuts it."""
    return with_segments(jpeg, ctr.to_segments(container))


def patch(container: bytes, fix_crc: bool = True, **values) -> bytes:
    """Set fields of Table 3; recompute the CRC so that only the field is at fault."""
    data = bytearray(container)
    for name, value in values.items():
        offset, fmt = FIELDS[name]
        struct.pack_into(fmt, data, offset, value)
    body = bytes(data[:-4])
    return body + (crc(body) if fix_crc else bytes(data[-4:]))


def graph_of(container: bytes) -> bytes:
    """The graph bytes of a container."""
    (length,) = struct.unpack_from(">I", container, 64)
    return container[68 : 68 + length]


def with_graph(container: bytes, graph: bytes) -> bytes:
    """The container with another graph (graph_length and CRC follow)."""
    length = len(graph_of(container))
    body = container[:64] + struct.pack(">I", len(graph)) + graph + container[68 + length : -4]
    return body + crc(body)


def edit_model(container: bytes, edit: Callable[[onnx.ModelProto], None]) -> bytes:
    """The container with its graph edited through the onnx package."""
    model = onnx.load_model_from_string(graph_of(container))
    edit(model)
    return with_graph(container, model.SerializeToString())


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    """The initializer called ``name``."""
    return next(t for t in model.graph.initializer if t.name == name)


def weights_of(container: bytes) -> MlpWeights:
    """The checked weights of a container's graph."""
    metadata = ctr.parse_container(container).metadata
    return check_graph(graph_of(container), metadata.activation, metadata.hidden_width)


def ours(jpeg: bytes) -> list[Segment]:
    """A file's GainMLP segments, in file order."""
    return [s for s in parse_jpeg(jpeg).segments if ctr.is_our_segment(s)]


def segment(sequence: int, count: int, chunk: bytes) -> Segment:
    """A GainMLP segment with any sequence and count."""
    return Segment(0xEF, b"GainMLP\x00" + bytes((sequence, count)) + chunk)


def raw_segment(marker: int, payload: bytes) -> bytes:
    """A marker segment as bytes in a file."""
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def insert_after_app0(jpeg: bytes, raw: bytes) -> bytes:
    """Insert raw bytes right after the APP0 segment that follows SOI."""
    end = 4 + struct.unpack_from(">H", jpeg, 4)[0]
    return jpeg[:end] + raw + jpeg[end:]


def sos_offset(jpeg: bytes) -> int:
    """Offset of the first SOS marker."""
    layout = parse_jpeg(jpeg)
    return len(jpeg) - len(layout.scan)


def flip(data: bytes, offset: int) -> bytes:
    """``data`` with the low bit of the byte at ``offset`` flipped."""
    flipped = bytearray(data)
    flipped[offset] ^= 1
    return bytes(flipped)


def too_large(jpeg: bytes, container: bytes) -> bytes:
    """The file with its SOF and its container both declaring 65535x65535."""
    layout = parse_jpeg(with_container(jpeg, patch(container, width=65_535, height=65_535)))
    segments = []
    for s in layout.segments:
        if s.marker == 0xC0:
            s = Segment(s.marker, s.payload[:1] + struct.pack(">HH", 65_535, 65_535) + s.payload[5:])
        segments.append(s)
    return JpegLayout(tuple(segments), layout.scan).to_bytes()


def fixed_icc(profile: bytes) -> bytes:
    """An ICC profile with a fixed creation date (ICC.1 §7.2.8) and no profile ID (§7.2.18), for reproducibility."""
    data = bytearray(profile)
    data[24:36] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    data[84:100] = bytes(16)
    return bytes(data)
