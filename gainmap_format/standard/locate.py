"""Locating the gain-map image after the primary (MPF index, GContainer directory), and attaching one.

The primary image's MPF segment (CIPA DC-007) indexes the images that follow it; the gain map
is the first of them that carries a gain-map marking. A file that announces a gain map (ISO
or hdrgm, see :func:`announcements`) may instead be read through its XMP GContainer
directory, because some writers get MPF offsets wrong while their Item:Length is right.
:func:`attach_gain_map` writes what a reader needs to find the map again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import construct as cs

from .. import structs
from ..errors import JpegError, StandardGainMapError
from ..jpeg import APP0, SOI, JpegLayout, Segment, parse_jpeg, replace_segments
from .apple import APPLE_AUX_TYPE
from .binary import ifd_entries, parse_struct, u32
from .gain_map import StandardGainMap
from .iso import announcing_iso_payload, full_iso_payload
from .xmp import HDRGM_NS, announcing_xmp, container_items, primary_xmp, shown, xmp_forms, xmp_mentions

#: MPF entries beyond this many are not looked at.
MAX_MPF_ENTRIES = 16

#: CIPA DC-007 §5.2.3: tags of the MP Index IFD, and the MP Entry attribute we write.
_MPF_VERSION_TAG = 0xB000
_MPF_COUNT_TAG = 0xB001
_MPF_ENTRY_TAG = 0xB002
_MP_ENTRY_SIZE = 16
_MP_PRIMARY_ATTRIBUTE = 0x20030000

#: Bytes of an image's start searched for a gain-map marking.
_PEEK = 1 << 16

#: Byte strings whose presence in a gain-map image's header marks it as one: the ISO identifier,
#: and the hdrgm namespace and Apple's type in every encoding XMP allows.
_GAIN_MAP_MARKS = (structs.ISO_IDENTIFIER, *xmp_forms(HDRGM_NS), *xmp_forms(APPLE_AUX_TYPE))

#: An XMP integer (xsd:integer in ASCII digits); Python's int() would also take "_" and other digits.
_XSD_INTEGER = re.compile(r"[+-]?[0-9]+")

#: Digits beyond which an Item:Length cannot be a file's length (and int() would refuse to parse).
_MAX_LENGTH_DIGITS = 20


@dataclass(frozen=True)
class MpfImage:
    """One image that an MPF index lists.

    Attributes:
        index: 0 for the primary image, then 1, 2, ...
        offset: absolute byte offset of the image's SOI in the file.
        size: the image's size in bytes.
        attribute: the MP Entry's attribute word (type code and flags).
    """

    index: int
    offset: int
    size: int
    attribute: int


@dataclass(frozen=True)
class Secondary:
    """A candidate gain-map image: where it is, its bytes and its parsed header.

    Attributes:
        offset: byte offset of its SOI in the file.
        jpeg: the image, SOI to its end.
        layout: its parsed header.
        where: how error messages name it.
    """

    offset: int
    jpeg: bytes
    layout: JpegLayout
    where: str


def mpf_images(layout: JpegLayout) -> list[MpfImage]:
    """The images that a JPEG's MPF segment lists, with absolute offsets.

    Args:
        layout: the primary image's layout, with segment offsets into the whole file.

    Returns:
        The images in index order (at most :data:`MAX_MPF_ENTRIES`); empty when there is no
        MPF segment. Offsets and sizes are not checked against the file here.

    Raises:
        StandardGainMapError: the MPF segment is malformed.
    """
    segments = layout.app_payloads(2, structs.MPF_IDENTIFIER)
    if not segments:
        return []
    segment = segments[0]
    where = f"MPF segment at offset {segment.offset}"
    tiff = segment.payload[len(structs.MPF_IDENTIFIER) :]
    # CIPA DC-007 §5.2.3.3.3: data offsets count from the TIFF header, after marker, length
    # and identifier.
    origin = segment.offset + 4 + len(structs.MPF_IDENTIFIER)
    order = bytes(tiff[:2])
    if order not in structs.TIFF_HEADER:
        raise StandardGainMapError(f"{where}: byte order {order!r} is neither II nor MM")
    header = parse_struct(structs.TIFF_HEADER[order], tiff, where)
    entries = ifd_entries(tiff, header.ifd_offset, order, where)
    if _MPF_ENTRY_TAG not in entries:
        raise StandardGainMapError(f"{where}: no MP Entry field (tag 0xB002)")
    entry = entries[_MPF_ENTRY_TAG]
    count = entry.count // _MP_ENTRY_SIZE
    if count < 1 or entry.count % _MP_ENTRY_SIZE:
        raise StandardGainMapError(f"{where}: MP Entry field of {entry.count} bytes is not a whole number of entries")
    count = min(count, MAX_MPF_ENTRIES)
    start = u32(entry.value, order)
    table = tiff[start : start + count * _MP_ENTRY_SIZE]
    mp_entries = parse_struct(cs.Array(count, structs.MP_ENTRY[order]), table, f"{where}, MP Entry table at {start}")
    return [MpfImage(i, 0 if i == 0 else origin + e.data_offset, e.size, e.attribute) for i, e in enumerate(mp_entries)]


def is_gain_map_image(header: bytes) -> bool:
    """Whether the first bytes of an image hold a gain-map marking (ISO, hdrgm or Apple).

    A cheap test for a caller that has only read the start of a secondary image; a True answer
    still needs :func:`~gainmap_format.standard.find_gain_map` to check the file.

    Args:
        header: the image's first bytes (its header segments).
    """
    return any(mark in header for mark in _GAIN_MAP_MARKS)


def announcements(layout: JpegLayout) -> frozenset[str]:
    """How the primary image says it has a gain map: "iso" and/or "xmp".

    A primary announces with a version-only ISO APP2 segment or an hdrgm XMP packet without
    gain-map values (the GContainer kind). Full ISO or hdrgm values belong in the gain-map image
    itself, so a JPEG that carries them and indexes no other image through MPF is a gain-map
    image on its own (an extracted one), not a file announcing one.

    Args:
        layout: the primary image's layout.

    Returns:
        The announcing dialects; empty when the primary announces nothing.
    """
    indexed = bool(layout.app_payloads(2, structs.MPF_IDENTIFIER))
    found = set()
    for segment in layout.app_payloads(2, structs.ISO_IDENTIFIER):
        if indexed or len(segment.payload) <= len(structs.ISO_IDENTIFIER) + structs.ISO_VERSION.sizeof():
            found.add("iso")
    for segment in layout.app_payloads(1, structs.XMP_IDENTIFIER):
        if xmp_mentions(segment.payload, HDRGM_NS) and (indexed or not xmp_mentions(segment.payload, "GainMapMax")):
            found.add("xmp")
    return frozenset(found)


def find_secondary(data: bytes, layout: JpegLayout, announced: frozenset[str]) -> Secondary | None:
    """The gain-map image: the first MPF image marked as one.

    A file that announces a gain map falls back to its GContainer directory when MPF fails,
    because some writers get MPF offsets wrong while their Item:Length is right.

    Args:
        data: the whole file.
        layout: the primary image's layout.
        announced: what :func:`announcements` found.

    Returns:
        The gain-map image, or None when the file has none.

    Raises:
        StandardGainMapError: a problem with an image that the file announces or marks as its
            gain map.
    """
    first: Secondary | None = None
    problem: StandardGainMapError | None = None
    for found in _mpf_secondaries(data, layout, announced):
        if isinstance(found, StandardGainMapError):
            if problem is None:
                problem = found
        elif is_gain_map_image(found.jpeg[: _header_length(found.layout)]):
            return found
        elif first is None:
            first = found
    if not announced:
        if problem is not None:
            raise problem
        return None
    if first is not None and full_iso_payload(layout):
        return first
    try:
        found_in_container = _container_secondary(data, layout)
    except StandardGainMapError:
        if problem is None:
            raise
        found_in_container = None
    if found_in_container is None and problem is not None:
        raise problem
    return found_in_container


def _mpf_secondaries(
    data: bytes, layout: JpegLayout, announced: frozenset[str]
) -> Iterator[Secondary | StandardGainMapError]:
    """The well-formed images that MPF lists after the primary, and the problems that matter.

    One at a time: each holds a copy of its bytes, and a hostile MPF index can list the same
    large image :data:`MAX_MPF_ENTRIES` times. A broken MPF entry matters when the primary
    announces a gain map or when the bytes it points at carry a gain-map marking; otherwise the
    file is some other MPO and is not ours to judge.
    """
    try:
        images = mpf_images(layout)
    except StandardGainMapError as exc:
        if announced:
            yield exc
        return
    for image in images[1:]:
        try:
            yield _secondary_at(data, image.offset, image.size, f"MPF image {image.index + 1}")
        except StandardGainMapError as exc:
            marked = 0 <= image.offset < len(data) and is_gain_map_image(data[image.offset : image.offset + _PEEK])
            if announced or marked:
                yield exc


def _header_length(layout: JpegLayout) -> int:
    """Bytes of an image before its first scan: where its markings can be."""
    last = layout.segments[-1] if layout.segments else None
    return 2 if last is None else last.offset + 4 + len(last.payload)


def _secondary_at(data: bytes, offset: int, size: int, where: str) -> Secondary:
    """Check bounds, then parse the image's header."""
    where = f"{where} at offset {offset}"
    if size < 4 or offset < 2:
        raise StandardGainMapError(f"{where}: size {size} or offset is impossible for a JPEG image")
    if offset + size > len(data):
        raise StandardGainMapError(
            f"{where}: {size} bytes run {offset + size - len(data)} bytes past the end of the "
            f"{len(data)}-byte file (truncated?)"
        )
    jpeg = bytes(data[offset : offset + size])
    if jpeg[0] != 0xFF or jpeg[1] != SOI:
        raise StandardGainMapError(f"{where}: no JPEG SOI marker there (found {jpeg[:2].hex(' ')})")
    try:
        layout = parse_jpeg(jpeg)
    except JpegError as exc:
        raise StandardGainMapError(f"{where}: {exc}") from exc
    return Secondary(offset, jpeg, layout, where)


def _container_secondary(data: bytes, layout: JpegLayout) -> Secondary | None:
    """Locate the gain map from the primary's GContainer directory, for files whose MPF fails.

    Secondary items follow the primary in directory order and each has Item:Length, so the
    GainMap item starts that many bytes, plus those of the items after it, before the end.
    """
    xmp = primary_xmp(layout)
    if xmp is None:
        return None
    items = container_items(xmp)
    semantics = [item.get("Semantic") for item in items]
    if "GainMap" not in semantics:
        return None
    index = semantics.index("GainMap")
    lengths = [
        _parse_int(item.get("Length"), f"primary image, XMP GContainer item {i + 1} Item:Length")
        for i, item in enumerate(items[index:], start=index)
    ]
    start = len(data) - sum(lengths)
    return _secondary_at(data, start, lengths[0], "GContainer GainMap item")


def _parse_int(text: object, name: str) -> int:
    digits = text.strip() if isinstance(text, str) else ""
    if _XSD_INTEGER.fullmatch(digits) is None or len(digits) > _MAX_LENGTH_DIGITS:
        raise StandardGainMapError(f"{name} is {shown(text)}, not an integer of at most {_MAX_LENGTH_DIGITS} digits")
    value = int(digits)
    if value <= 0:
        raise StandardGainMapError(f"{name} is {value}; it must be > 0")
    return value


def attach_gain_map(base_jpeg: bytes, gain_map: StandardGainMap) -> bytes:
    """Carry a gain map over to a new base JPEG: announce it, index it with MPF, append it.

    The primary gets what its dialect needs and nothing of the old file's other metadata: a
    version-only ISO 21496-1 APP2 segment when the old file had one, a minimal XMP packet
    (``hdrgm:Version`` and the GContainer directory) when the old file announced the gain map
    in XMP and the new base has no XMP of its own, and a new MPF segment. Any MPF or ISO
    segment already in ``base_jpeg`` is replaced.

    Args:
        base_jpeg: the new primary image, of the same size as the old one.
        gain_map: the gain map to carry, as :func:`~gainmap_format.standard.find_gain_map` found it.

    Returns:
        The new file.

    Raises:
        JpegError: ``base_jpeg`` is not a well-formed JPEG.
    """
    layout = parse_jpeg(base_jpeg)
    has_xmp = bool(layout.app_payloads(1, structs.XMP_IDENTIFIER))
    announce = []
    if "iso" in gain_map.announced_by or gain_map.metadata.kind == "iso21496-1":
        announce.append(Segment(APP0 + 2, announcing_iso_payload()))
    if "xmp" in gain_map.announced_by and not has_xmp:
        announce.append(Segment(APP0 + 1, structs.XMP_IDENTIFIER + announcing_xmp(len(gain_map.gain_map_jpeg))))
    return append_image(base_jpeg, gain_map.gain_map_jpeg, announce)


def append_image(base_jpeg: bytes, secondary_jpeg: bytes, announce: Sequence[Segment] = ()) -> bytes:
    """Append a second image to a JPEG and index both with a new MPF segment (CIPA DC-007).

    Any MPF or ISO 21496-1 segment already in ``base_jpeg`` is replaced; nothing else of it changes.

    Args:
        base_jpeg: the primary image.
        secondary_jpeg: the image to append, SOI to EOI.
        announce: segments to put in the primary before the MPF segment (a gain map's announcement).

    Returns:
        The new file.

    Raises:
        JpegError: ``base_jpeg`` is not a well-formed JPEG.
    """
    layout = parse_jpeg(base_jpeg)
    placeholder = Segment(APP0 + 2, _mpf_payload(0, 0, 0))
    primary = replace_segments(layout, [*announce, placeholder], _is_carriage_segment).to_bytes()
    mpf = next(s for s in parse_jpeg(primary).segments if s.payload == placeholder.payload)
    origin = mpf.offset + 4 + len(structs.MPF_IDENTIFIER)
    payload = _mpf_payload(len(primary), len(secondary_jpeg), len(primary) - origin)
    start = mpf.offset + 4
    return primary[:start] + payload + primary[start + len(payload) :] + secondary_jpeg


def _is_carriage_segment(segment: Segment) -> bool:
    """The segments that :func:`attach_gain_map` replaces: MPF and ISO 21496-1 APP2."""
    return segment.is_app(2) and segment.payload.startswith((structs.MPF_IDENTIFIER, structs.ISO_IDENTIFIER))


def _mpf_payload(primary_size: int, secondary_size: int, secondary_offset: int) -> bytes:
    """CIPA DC-007 §5.2: an MP Extensions payload indexing a primary and one secondary image."""
    order = b"MM"
    header = structs.TIFF_HEADER[order].build({"ifd_offset": 8})
    entry_table_offset = 8 + structs.IFD_OVERHEAD + 3 * structs.IFD_ENTRY_SIZE
    ifd = structs.TIFF_IFD[order].build(
        {
            "count": 3,
            "entries": [
                {"tag": _MPF_VERSION_TAG, "type": 7, "count": 4, "value": b"0100"},
                {"tag": _MPF_COUNT_TAG, "type": 4, "count": 1, "value": (2).to_bytes(4, "big")},
                {
                    "tag": _MPF_ENTRY_TAG,
                    "type": 7,
                    "count": 2 * _MP_ENTRY_SIZE,
                    "value": entry_table_offset.to_bytes(4, "big"),
                },
            ],
            "next_ifd": 0,
        }
    )
    entry = structs.MP_ENTRY[order]
    primary = entry.build(
        {
            "attribute": _MP_PRIMARY_ATTRIBUTE,
            "size": primary_size,
            "data_offset": 0,
            "dependent_image_1": 0,
            "dependent_image_2": 0,
        }
    )
    secondary = entry.build(
        {
            "attribute": 0,
            "size": secondary_size,
            "data_offset": secondary_offset,
            "dependent_image_1": 0,
            "dependent_image_2": 0,
        }
    )
    payload: bytes = structs.MPF_IDENTIFIER + header + ifd + primary + secondary
    return payload
