"""The gain-map container: metadata plus ONNX graph, its checks, and its APP15 carriage.

A container is self-contained bytes (spec §4) so that it can ride in a JPEG (spec §3), and
later in a PNG chunk or a HEIF item. This module turns :class:`GainMapMetadata` and graph
bytes into container bytes and back, validating every field a decoder relies on, and cuts
the container into APP15 segments and joins them again.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import construct as cs

from . import structs
from .colour import PrimariesName, TransferName
from .errors import ContainerError, UnsupportedVersionError
from .geometry import Placement
from .jpeg import APP0, MAX_SEGMENT_PAYLOAD, JpegLayout, Segment
from .registries import (
    ACTIVATION_CODES,
    DOMAIN_BT2020_PQ,
    FREQUENCIES,
    HIDDEN_WIDTHS,
    PRIMARIES_CODES,
    RESIDUAL_CODES,
    TRANSFER_CODES,
    Activation,
    ResidualKind,
)

#: A name of a code registry (spec §4.3).
Code = TypeVar("Code", bound=str)

#: Spec §5: the format version this library implements, as (major, minor): the newest
#: minimum_version it reads, and the writer_version of a container that uses its placement.
FORMAT_VERSION = (2, 1)
#: Spec §5 [VER-1]: the minimum_version this library writes for a container without a placement.
#: Version 2.0 only narrowed the value ranges of version 1.0, so such a container is a valid 1.0
#: container and says so.
MINIMUM_VERSION = (1, 0)
#: Spec §4.7: the version that introduced the placement record; a container with a placement
#: other than the identity needs it ([VER-1]), so that 1.x and 2.0 readers refuse it.
PLACEMENT_VERSION = (2, 1)
#: Spec §5 [VER-2]: the writer_version of a container without a placement. Such a container uses
#: nothing newer than 2.0, and writing 2.0 keeps it the same bytes as a 2.0 writer's.
PLAIN_WRITER_VERSION = (2, 0)

#: Spec §3.1: our segments are APP15.
APP_MARKER_INDEX = 15

#: Spec §4.6 bounds: a reader refuses anything larger before allocating for it.
MAX_GRAPH_BYTES = 1 << 20
MAX_IMAGE_SIDE = 0xFFFF
MAX_SEGMENTS = 255
#: Spec §4.5 [CON-42]: log2(10000 cd/m² / 1 cd/m²) = 13.29 stops, rounded up: no allowed SDR white
#: leaves PQ more headroom than that.
MAX_HEADROOM = 14.0
#: Fixed fields, graph and room for minor-version extensions (spec §4.6).
MAX_CONTAINER_BYTES = MAX_GRAPH_BYTES + 4096
#: Spec §4.7 table 7b: bounds on the placement matrix. A linear coefficient beyond 2^16 would
#: take one output pixel over more than the widest source; translations up to 2^32 leave room for
#: any composition of edits, and keep a x + b y + c finite and exact to 2^-20 pixel in binary64.
MAX_PLACEMENT_SCALE = 2.0**16
MAX_PLACEMENT_SHIFT = 2.0**32

#: Spec §4.6 table 7: the physically meaningful range of each f32 field, bounds included.
#: NaN lies in no range, so these checks also reject it.
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "epsilon": (2.0**-10, 0.5),
    "sdr_white_luminance": (1.0, 10_000.0),
    "input_mean": (0.0, 1.0),
    "input_range": (2.0**-20, 1.0),
    "residual_mean": (-(2.0**16), 2.0**16),
    "residual_range": (2.0**-20, 2.0**17),
}

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
        input_mean: mean of the base's code values / 255, over all pixels and channels, in [0, 1].
        input_range: max - min of the same, in [2^-20, 1].
        residual_mean: mean of the residual map over all pixels and channels, in [-2^16, 2^16].
        residual_range: max - min of the residual map, in [2^-20, 2^17].
        epsilon: the residual's offset e (1/64 by default), in [2^-10, 1/2].
        sdr_white_luminance: cd/m² at which base white is placed in the PQ domain (100), in
            [1, 10000].
        base_headroom: log2 of the base rendition's headroom over SDR white (0 for SDR), in [0, 14].
        alternate_headroom: log2 of the HDR rendition's peak over SDR white, in [base_headroom, 14].
        frequencies: sinusoidal encoding frequencies per input (12).
        writer_version: (major, minor) of the format version the writer knew; a container that
            carries a placement is written as 2.1 whatever this says.
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
    writer_version: tuple[int, int] = PLAIN_WRITER_VERSION

    @property
    def peak_luminance(self) -> float:
        """cd/m² of the HDR rendition's peak: SDR white times 2^alternate_headroom."""
        return float(self.sdr_white_luminance * 2.0**self.alternate_headroom)


@dataclass(frozen=True)
class Container:
    """A parsed, validated container: metadata and the ONNX graph bytes (not yet checked).

    Attributes:
        metadata: the checked fields.
        graph: the ONNX model bytes, to be checked with ``graph.check_graph`` before use.
        size: the container's length in bytes, checksum included.
        placement: where the base's pixels lie in the image the network was fitted on (spec
            §4.7); the identity of the base's size when the container has no placement record.
    """

    metadata: GainMapMetadata
    graph: bytes
    size: int
    placement: Placement

    def to_bytes(self) -> bytes:
        """The container serialised again (spec §4), with its placement record when it needs one."""
        return build_container(self.metadata, self.graph, self.placement)

    def with_placement(self, placement: Placement) -> Container:
        """The same network for an edited base: ``placement`` replaces the current one.

        Compose the edit onto :attr:`placement` first (``container.placement.crop(...)``); the
        result's ``width`` and ``height`` are the edited base's, ``placement.size``.

        Raises:
            ContainerError: a placement that a reader would reject (spec §4.7), or one fitted on
                another image than this container's.
        """
        if placement.source_size != self.placement.source_size:
            raise ContainerError(
                f"placement for a network fitted on {placement.source_size}, this one was fitted on "
                f"{self.placement.source_size}"
            )
        width, height = placement.size
        metadata = dataclasses.replace(self.metadata, width=width, height=height)
        return Container(metadata, self.graph, len(build_container(metadata, self.graph, placement)), placement)

    def segments(self) -> list[Segment]:
        """The APP15 segments that carry this container in a JPEG (spec §3.1)."""
        return to_segments(self.to_bytes())


def _version_code(version: tuple[int, int]) -> int:
    return (version[0] << 8) | version[1]


def _version_pair(code: int) -> tuple[int, int]:
    return code >> 8, code & 0xFF


def _rational(value: float) -> dict[str, int]:
    """Spec §4.5 [CON-20]: a headroom as round(h × 10,000) / 10,000; checked by check_metadata."""
    return {"numerator": round(value * _HEADROOM_DENOMINATOR), "denominator": _HEADROOM_DENOMINATOR}


def build_container(metadata: GainMapMetadata, graph: bytes, placement: Placement | None = None) -> bytes:
    """Serialise metadata and graph into container bytes (spec §4), CRC-32 included.

    Args:
        metadata: the fields; ``width`` and ``height`` are the base image's.
        graph: the ONNX model bytes.
        placement: where the base lies in the image the network was fitted on (spec §4.7); None
            or the identity writes no placement record, the same bytes as a 2.0 writer.

    Raises:
        ContainerError: a field outside its range (spec §4.6), a graph over the bound, or a
            placement out of bounds or for another base size; nothing a reader would reject is
            written ([CON-31]).
    """
    check_metadata(metadata)
    if len(graph) > MAX_GRAPH_BYTES:
        raise ContainerError(f"graph of {len(graph)} bytes is over the {MAX_GRAPH_BYTES}-byte bound")
    minimum, writer, extensions = MINIMUM_VERSION, metadata.writer_version, b""
    if placement is not None:
        if placement.size != (metadata.width, metadata.height):
            raise ContainerError(
                f"placement describes a {placement.size} image, the container's base is "
                f"{(metadata.width, metadata.height)}"
            )
        if not placement.is_identity:
            check_placement(placement)
            minimum, writer = PLACEMENT_VERSION, max(writer, FORMAT_VERSION)
            extensions = _placement_record(placement)
    body = structs.CONTAINER_BODY_V1.build(
        {
            "minimum_version": _version_code(minimum),
            "writer_version": _version_code(writer),
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
            "extensions": extensions,
        }
    )
    return bytes(body + structs.CHECKSUM.build(zlib.crc32(body)))


def _placement_record(placement: Placement) -> bytes:
    """Spec §4.7: the 56-byte placement record."""
    width, height = placement.source_size
    return bytes(structs.PLACEMENT.build({"source_width": width, "source_height": height, "matrix": placement.matrix}))


def _placement_problem(source_size: tuple[int, ...], matrix: tuple[float, ...]) -> str | None:
    """Spec §4.7 [CON-44]: what is wrong with a placement record's values, or None."""
    for name, side in zip(("source_width", "source_height"), source_size, strict=True):
        if not 1 <= side <= MAX_IMAGE_SIDE:
            return f"container placement field {name} is {side}, outside [1, {MAX_IMAGE_SIDE}]"
    for name, value in zip("abcdef", matrix, strict=True):
        bound = MAX_PLACEMENT_SHIFT if name in "cf" else MAX_PLACEMENT_SCALE
        # NaN fails the comparison, so it is reported here too.
        if not -bound <= value <= bound:
            return f"container placement matrix entry {name} is {value!r}, outside [-{bound:g}, {bound:g}]"
    return None


def check_placement(placement: Placement) -> None:
    """Spec §4.7: the bounds every reader and writer applies to a placement record.

    Raises:
        ContainerError: naming the first value out of bounds.
    """
    problem = _placement_problem(placement.source_size, placement.matrix)
    if problem:
        raise ContainerError(problem)


def _parse_placement(record: bytes, size: tuple[int, int]) -> Placement:
    """Spec §4.7: the placement record, checked; ``size`` is the base's (width, height)."""
    fields = structs.PLACEMENT.parse(record)
    source_size = (int(fields.source_width), int(fields.source_height))
    a, b, c, d, e, f = (float(v) for v in fields.matrix)
    problem = _placement_problem(source_size, (a, b, c, d, e, f))
    if problem:
        raise ContainerError(problem)
    return Placement(source_size, size, (a, b, c, d, e, f))


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
    minimum = _version_pair(prefix.minimum_version)
    _check_version(minimum)
    try:
        fields = structs.CONTAINER_BODY_V1.parse(body)
    except cs.ConstructError as exc:
        raise ContainerError(f"malformed container body: {exc}") from exc
    if len(fields.graph) > MAX_GRAPH_BYTES:
        raise ContainerError(f"graph of {len(fields.graph)} bytes is over the {MAX_GRAPH_BYTES}-byte bound")
    record, extensions = _split_extensions(bytes(fields.extensions), minimum)
    _check_extensions(extensions, _version_pair(fields.writer_version))
    metadata = _metadata_from_fields(fields)
    check_metadata(metadata)
    size = (metadata.width, metadata.height)
    placement = Placement.identity(size) if record is None else _parse_placement(record, size)
    return Container(metadata, bytes(fields.graph), len(data), placement)


def _split_extensions(extensions: bytes, minimum: tuple[int, int]) -> tuple[bytes | None, bytes]:
    """Spec §4.7 [CON-43]: from version 2.1 on, the extensions open with the placement record.

    Returns:
        The record (None below 2.1) and the bytes after it.
    """
    if minimum < PLACEMENT_VERSION:
        return None, extensions
    if len(extensions) < structs.PLACEMENT_SIZE:
        raise ContainerError(
            f"container of minimum version {minimum[0]}.{minimum[1]} has {len(extensions)} bytes after the graph, "
            f"too few for its {structs.PLACEMENT_SIZE}-byte placement record"
        )
    return extensions[: structs.PLACEMENT_SIZE], extensions[structs.PLACEMENT_SIZE :]


def _check_version(minimum: tuple[int, int]) -> None:
    """Spec §5: [VER-6] no major 0, [VER-14] no 1.x after 1.0, [VER-3] nothing newer than us."""
    if minimum[0] == 0:
        raise ContainerError(f"container minimum version {minimum[0]}.{minimum[1]} does not exist (the first is 1.0)")
    # Version 1.0 was followed by 2.0, so 1.1 and later are minor versions no reader knows.
    if minimum > FORMAT_VERSION or (minimum[0] == 1 and minimum[1] > 0):
        kind = "minor" if minimum[0] in (1, FORMAT_VERSION[0]) else "major"
        raise UnsupportedVersionError(
            f"container needs format version {minimum[0]}.{minimum[1]} (unknown {kind} version); "
            f"this reader supports 1.0 and up to {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
        )


def _check_extensions(extensions: bytes, written_by: tuple[int, int]) -> None:
    """Spec §5: bytes after the graph and placement record are a newer minor version's, skipped.

    A writer of this very version has no such fields, so from it they are damage.
    """
    if extensions and written_by <= FORMAT_VERSION:
        raise ContainerError(
            f"container written by version {written_by[0]}.{written_by[1]} has {len(extensions)} "
            "unexpected bytes after the graph"
        )


def _decode_code(registry: Mapping[Code, int], code: int, field: str) -> Code:
    for name, value in registry.items():
        if value == code:
            return name
    raise ContainerError(f"container field {field} has unknown code {code}")


def _headroom(rational: cs.Container, field: str) -> float:
    if rational.denominator == 0:
        raise ContainerError(f"container field {field} has a zero denominator")
    return float(rational.numerator / rational.denominator)


def _metadata_from_fields(fields: cs.Container) -> GainMapMetadata:
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


def check_metadata(m: GainMapMetadata) -> None:
    """Spec §4.6: the value checks every reader and writer applies.

    Within these ranges no base image decodes to a non-finite sample (spec §7.7).

    Raises:
        ContainerError: naming the first field outside its range, and its value.
    """
    if m.hidden_width not in HIDDEN_WIDTHS:
        raise ContainerError(f"container field hidden_width is {m.hidden_width}, not one of {HIDDEN_WIDTHS}")
    if m.frequencies != FREQUENCIES:
        raise ContainerError(f"container field frequencies is {m.frequencies}, expected {FREQUENCIES}")
    for name in ("width", "height"):
        side = getattr(m, name)
        if not 1 <= side <= MAX_IMAGE_SIDE:
            raise ContainerError(f"container field {name} is {side}, outside [1, {MAX_IMAGE_SIDE}]")
    for name, (low, high) in FIELD_RANGES.items():
        value = getattr(m, name)
        if not low <= value <= high:
            raise ContainerError(f"container field {name} is {value!r}, outside [{low:g}, {high:g}]")
    for name in ("base_headroom", "alternate_headroom"):
        value = getattr(m, name)
        if not 0.0 <= value <= MAX_HEADROOM:
            raise ContainerError(f"container field {name} is {value!r} stops, outside [0, {MAX_HEADROOM:g}]")
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
    count = 0  # until the first segment gives its count, which [CAR-11] keeps above 0
    for segment in ours:
        where = f"APP15 segment at offset {segment.offset}"
        if len(segment.payload) < structs.SEGMENT_HEADER_SIZE:
            raise ContainerError(f"{where} is too short to hold a sequence number and count")
        piece = structs.SEGMENT_PAYLOAD.parse(segment.payload)
        if piece.count == 0 or not 1 <= piece.sequence <= piece.count:
            raise ContainerError(f"{where} has sequence {piece.sequence} of count {piece.count}")
        if count and piece.count != count:
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
