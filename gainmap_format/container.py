"""The gain-map container: metadata plus ONNX graph, its checks, and its APP15 carriage.

A container is self-contained bytes (spec §4) so that it can ride in a JPEG (spec §3), and
later in a PNG chunk or a HEIF item. This module turns :class:`GainMapMetadata` and graph
bytes into container bytes and back, validating every field a decoder relies on, and cuts
the container into APP15 segments and joins them again.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Literal

import construct as cs

from . import structs
from .colour import PrimariesName, TransferName
from .errors import ContainerError, UnsupportedVersionError
from .jpeg import APP0, MAX_SEGMENT_PAYLOAD, JpegLayout, Segment

ResidualKind = Literal["gamma", "gain"]
Activation = Literal["sine", "relu"]

#: Spec §5: the version this library writes and the newest it reads, as (major, minor).
FORMAT_VERSION = (1, 0)

#: Spec §3.1: our segments are APP15.
APP_MARKER_INDEX = 15

#: Spec §4.6 bounds: a reader refuses anything larger before allocating for it.
MAX_GRAPH_BYTES = 1 << 20
MAX_IMAGE_SIDE = 0xFFFF
MAX_SEGMENTS = 255
MAX_HEADROOM = 64.0
#: Fixed fields, graph and room for minor-version extensions (spec §4.6).
MAX_CONTAINER_BYTES = MAX_GRAPH_BYTES + 4096

#: Spec §4.3 code registries.
RESIDUAL_CODES: dict[ResidualKind, int] = {"gamma": 0, "gain": 1}
ACTIVATION_CODES: dict[Activation, int] = {"sine": 0, "relu": 1}
TRANSFER_CODES: dict[TransferName, int] = {"srgb": 1, "gamma2.4": 2}
PRIMARIES_CODES: dict[PrimariesName, int] = {"bt709": 1, "display-p3": 2, "bt2020": 3}
DOMAIN_BT2020_PQ = 1
HIDDEN_WIDTHS = (8, 16, 32, 64, 128)
FREQUENCIES = 12

_HEADROOM_DENOMINATOR = 10_000


@dataclass(frozen=True)
class GainMapMetadata:
    """What a decoder needs besides the graph: spec §4.3, field by field.

    Attributes:
        residual: "gamma" (exponential residual) or "gain" (multiplicative residual).
        activation: hidden-layer activation, "sine" or "relu".
        hidden_width: neurons per hidden layer (8, 16, 32, 64 or 128).
        width: base image width in pixels that the map was fitted to.
        height: base image height in pixels.
        base_transfer: how the base's code values become linear light ("srgb", "gamma2.4").
        base_primaries: the base's primaries ("bt709", "display-p3", "bt2020").
        input_mean: mean of the base's code values / 255, over all pixels and channels.
        input_range: max - min of the same, > 0.
        residual_mean: mean of the residual map over all pixels and channels.
        residual_range: max - min of the residual map, > 0.
        epsilon: the residual's offset e (1/64 by default), > 0.
        sdr_white_luminance: cd/m² at which base white is placed in the PQ domain (100).
        base_headroom: log2 of the base rendition's headroom over SDR white (0 for SDR).
        alternate_headroom: log2 of the HDR rendition's peak over SDR white.
        frequencies: sinusoidal encoding frequencies per input (12).
        writer_version: (major, minor) of the format version the writer knew.
    """

    residual: ResidualKind
    activation: Activation
    hidden_width: int
    width: int
    height: int
    base_transfer: TransferName
    base_primaries: PrimariesName
    input_mean: float
    input_range: float
    residual_mean: float
    residual_range: float
    epsilon: float = 1.0 / 64.0
    sdr_white_luminance: float = 100.0
    base_headroom: float = 0.0
    alternate_headroom: float = 0.0
    frequencies: int = FREQUENCIES
    writer_version: tuple[int, int] = FORMAT_VERSION

    @property
    def peak_luminance(self) -> float:
        """cd/m² of the HDR rendition's peak: SDR white times 2^alternate_headroom."""
        return self.sdr_white_luminance * 2.0**self.alternate_headroom


@dataclass(frozen=True)
class Container:
    """A parsed, validated container: metadata and the ONNX graph bytes (not yet checked).

    Attributes:
        metadata: the checked fields.
        graph: the ONNX model bytes, to be checked with ``graph.check_graph`` before use.
        size: the container's length in bytes, checksum included.
    """

    metadata: GainMapMetadata
    graph: bytes
    size: int


def _version_code(version: tuple[int, int]) -> int:
    return (version[0] << 8) | version[1]


def _version_pair(code: int) -> tuple[int, int]:
    return code >> 8, code & 0xFF


def _rational(value: float) -> dict[str, int]:
    if not 0.0 <= value <= MAX_HEADROOM:
        raise ContainerError(f"headroom {value} is outside [0, {MAX_HEADROOM:g}] stops")
    return {"numerator": round(value * _HEADROOM_DENOMINATOR), "denominator": _HEADROOM_DENOMINATOR}


def build_container(metadata: GainMapMetadata, graph: bytes) -> bytes:
    """Serialise metadata and graph into container bytes (spec §4), CRC-32 included."""
    _check_metadata(metadata)
    if len(graph) > MAX_GRAPH_BYTES:
        raise ContainerError(f"graph of {len(graph)} bytes is over the {MAX_GRAPH_BYTES}-byte bound")
    body = structs.CONTAINER_BODY_V1.build(
        {
            "minimum_version": _version_code(FORMAT_VERSION),
            "writer_version": _version_code(metadata.writer_version),
            "flags": 0,
            "residual_kind": RESIDUAL_CODES[metadata.residual],
            "residual_domain": DOMAIN_BT2020_PQ,
            "activation": ACTIVATION_CODES[metadata.activation],
            "hidden_width": metadata.hidden_width,
            "frequencies": metadata.frequencies,
            "base_transfer": TRANSFER_CODES[metadata.base_transfer],
            "base_primaries": PRIMARIES_CODES[metadata.base_primaries],
            "width": metadata.width,
            "height": metadata.height,
            "epsilon": metadata.epsilon,
            "sdr_white_luminance": metadata.sdr_white_luminance,
            "input_mean": metadata.input_mean,
            "input_range": metadata.input_range,
            "residual_mean": metadata.residual_mean,
            "residual_range": metadata.residual_range,
            "base_headroom": _rational(metadata.base_headroom),
            "alternate_headroom": _rational(metadata.alternate_headroom),
            "graph": graph,
            "extensions": b"",
        }
    )
    return body + structs.CHECKSUM.build(zlib.crc32(body))


def parse_container(data: bytes) -> Container:
    """Parse and validate container bytes (spec §4, §5).

    Checks run in the order the spec gives: magic, checksum, version, then every field.

    Raises:
        ContainerError: bad magic, checksum mismatch, malformed or out-of-range field.
        UnsupportedVersionError: the minimum version is newer than :data:`FORMAT_VERSION`.
    """
    prefix_size = structs.CONTAINER_PREFIX.sizeof()
    if len(data) < prefix_size + structs.CHECKSUM_SIZE:
        raise ContainerError(f"container of {len(data)} bytes is too short to hold its header")
    if data[:4] != structs.CONTAINER_MAGIC:
        raise ContainerError(f"container magic is {bytes(data[:4])!r}, expected b'GMLP'")
    body, trailer = data[: -structs.CHECKSUM_SIZE], data[-structs.CHECKSUM_SIZE :]
    expected = structs.CHECKSUM.parse(trailer)
    actual = zlib.crc32(body)
    if actual != expected:
        raise ContainerError(
            f"container checksum mismatch: stored CRC-32 0x{expected:08X}, computed 0x{actual:08X} "
            f"over {len(body)} bytes; the gain map is damaged"
        )
    prefix = structs.CONTAINER_PREFIX.parse(body)
    _check_version(_version_pair(prefix.minimum_version))
    try:
        fields = structs.CONTAINER_BODY_V1.parse(body)
    except cs.ConstructError as exc:
        raise ContainerError(f"malformed container body: {exc}") from exc
    if len(fields.graph) > MAX_GRAPH_BYTES:
        raise ContainerError(f"graph of {len(fields.graph)} bytes is over the {MAX_GRAPH_BYTES}-byte bound")
    _check_extensions(fields)
    metadata = _metadata_from_fields(fields)
    _check_metadata(metadata)
    return Container(metadata, bytes(fields.graph), len(data))


def _check_version(minimum: tuple[int, int]) -> None:
    if minimum[0] == 0:
        raise ContainerError(f"container minimum version {minimum[0]}.{minimum[1]} does not exist (the first is 1.0)")
    if minimum > FORMAT_VERSION:
        kind = "major" if minimum[0] != FORMAT_VERSION[0] else "minor"
        raise UnsupportedVersionError(
            f"container needs format version {minimum[0]}.{minimum[1]} (unknown {kind} version); "
            f"this reader supports up to {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
        )


def _check_extensions(fields) -> None:
    """Spec §5: bytes after the graph are fields of a newer minor version, which we skip.

    A writer of this very version has no such fields, so from it they are damage.
    """
    written_by = _version_pair(fields.writer_version)
    if fields.extensions and written_by <= FORMAT_VERSION:
        raise ContainerError(
            f"container written by version {written_by[0]}.{written_by[1]} has {len(fields.extensions)} "
            "unexpected bytes after the graph"
        )


def _decode_code(registry: dict, code: int, field: str):
    for name, value in registry.items():
        if value == code:
            return name
    raise ContainerError(f"container field {field} has unknown code {code}")


def _headroom(rational, field: str) -> float:
    if rational.denominator == 0:
        raise ContainerError(f"container field {field} has a zero denominator")
    value = rational.numerator / rational.denominator
    if value > MAX_HEADROOM:
        raise ContainerError(f"container field {field} is {value} stops, over the {MAX_HEADROOM:g}-stop bound")
    return value


def _metadata_from_fields(fields) -> GainMapMetadata:
    if fields.residual_domain != DOMAIN_BT2020_PQ:
        raise ContainerError(f"container field residual_domain has unknown code {fields.residual_domain}")
    return GainMapMetadata(
        residual=_decode_code(RESIDUAL_CODES, fields.residual_kind, "residual_kind"),
        activation=_decode_code(ACTIVATION_CODES, fields.activation, "activation"),
        hidden_width=fields.hidden_width,
        width=fields.width,
        height=fields.height,
        base_transfer=_decode_code(TRANSFER_CODES, fields.base_transfer, "base_transfer"),
        base_primaries=_decode_code(PRIMARIES_CODES, fields.base_primaries, "base_primaries"),
        input_mean=fields.input_mean,
        input_range=fields.input_range,
        residual_mean=fields.residual_mean,
        residual_range=fields.residual_range,
        epsilon=fields.epsilon,
        sdr_white_luminance=fields.sdr_white_luminance,
        base_headroom=_headroom(fields.base_headroom, "base_headroom"),
        alternate_headroom=_headroom(fields.alternate_headroom, "alternate_headroom"),
        frequencies=fields.frequencies,
        writer_version=_version_pair(fields.writer_version),
    )


def _check_metadata(m: GainMapMetadata) -> None:
    """Spec §4.6: the value checks every reader and writer applies."""
    if m.hidden_width not in HIDDEN_WIDTHS:
        raise ContainerError(f"container field hidden_width is {m.hidden_width}, not one of {HIDDEN_WIDTHS}")
    if m.frequencies != FREQUENCIES:
        raise ContainerError(f"container field frequencies is {m.frequencies}, expected {FREQUENCIES}")
    for name in ("width", "height"):
        side = getattr(m, name)
        if not 1 <= side <= MAX_IMAGE_SIDE:
            raise ContainerError(f"container field {name} is {side}, outside [1, {MAX_IMAGE_SIDE}]")
    for name in ("input_mean", "residual_mean"):
        if not math.isfinite(getattr(m, name)):
            raise ContainerError(f"container field {name} is not finite")
    for name in ("input_range", "residual_range", "epsilon", "sdr_white_luminance"):
        value = getattr(m, name)
        if not (math.isfinite(value) and value > 0.0):
            raise ContainerError(f"container field {name} is {value}; it must be finite and > 0")
    if not 0.0 <= m.input_mean <= 1.0 or m.input_range > 1.0:
        raise ContainerError(
            f"container input normalisation (mean {m.input_mean}, range {m.input_range}) "
            "does not describe code values in [0, 1]"
        )
    if m.epsilon >= 1.0 or m.sdr_white_luminance > 10_000.0:
        raise ContainerError(
            f"container epsilon {m.epsilon} or SDR white {m.sdr_white_luminance} cd/m² out of range"
        )
    if m.alternate_headroom < m.base_headroom:
        raise ContainerError(
            f"alternate headroom {m.alternate_headroom} is below base headroom {m.base_headroom}"
        )


def to_segments(container: bytes) -> list[Segment]:
    """Cut container bytes into APP15 segments (spec §3.1), each at most one JPEG segment."""
    room = MAX_SEGMENT_PAYLOAD - structs.SEGMENT_HEADER_SIZE
    chunks = [container[i : i + room] for i in range(0, len(container), room)] or [b""]
    if len(chunks) > MAX_SEGMENTS:
        raise ContainerError(f"container of {len(container)} bytes needs more than {MAX_SEGMENTS} segments")
    marker = APP0 + APP_MARKER_INDEX
    return [
        Segment(marker, structs.SEGMENT_PAYLOAD.build({"sequence": i, "count": len(chunks), "chunk": c}))
        for i, c in enumerate(chunks, start=1)
    ]


def is_our_segment(segment: Segment) -> bool:
    """Whether a segment is one of ours: APP15 opening with the identifier (spec §3.1)."""
    return segment.is_app(APP_MARKER_INDEX) and segment.payload.startswith(structs.SEGMENT_IDENTIFIER)


def from_layout(layout: JpegLayout) -> bytes | None:
    """Reassemble the container carried in a JPEG's APP15 segments (spec §3.2).

    Returns:
        The container bytes, or None when the file has none of our segments.

    Raises:
        ContainerError: a missing, duplicate or inconsistent piece.
    """
    ours = [s for s in layout.segments if is_our_segment(s)]
    if not ours:
        return None
    pieces: dict[int, bytes] = {}
    count = None
    for segment in ours:
        where = f"APP15 segment at offset {segment.offset}"
        if len(segment.payload) < structs.SEGMENT_HEADER_SIZE:
            raise ContainerError(f"{where} is too short to hold a sequence number and count")
        piece = structs.SEGMENT_PAYLOAD.parse(segment.payload)
        if piece.count == 0 or not 1 <= piece.sequence <= piece.count:
            raise ContainerError(f"{where} has sequence {piece.sequence} of count {piece.count}")
        if count is not None and piece.count != count:
            raise ContainerError(f"{where} says count {piece.count}, an earlier segment said {count}")
        if piece.sequence in pieces:
            raise ContainerError(f"{where} duplicates sequence number {piece.sequence}")
        count = piece.count
        pieces[piece.sequence] = bytes(piece.chunk)
        if sum(len(p) for p in pieces.values()) > MAX_CONTAINER_BYTES:
            raise ContainerError(f"{where} takes the container over its {MAX_CONTAINER_BYTES}-byte bound")
    missing = sorted(set(range(1, count + 1)) - pieces.keys())
    if missing:
        raise ContainerError(f"container split over {count} APP15 segments is missing piece(s) {missing}")
    return b"".join(pieces[i] for i in range(1, count + 1))
