"""Apple HDRGainMap: a one-channel map whose headroom comes from XMP or the maker note.

The map is marked by ``apdi:AuxiliaryImageType`` and applied as HDR = SDR (1 + (headroom - 1) g)
in linear light. The headroom is ``HDRGainMapHeadroom`` in the map's XMP (version 2) or derives
from tags 33 and 48 of the primary's Apple maker note (version 1).
"""

from __future__ import annotations

import math

from .. import structs
from ..errors import StandardGainMapError
from ..jpeg import JpegLayout
from .binary import ifd_entries, parse_struct, u32
from .metadata import StandardGainMapMetadata
from .xmp import APPLE_NS, XmpProperties, parse_float

#: Apple's auxiliary image type of an HDR gain map.
APPLE_AUX_TYPE = "urn:com:apple:photo:2020:aux:hdrgainmap"

#: Largest Apple headroom (linear) accepted.
MAX_APPLE_HEADROOM = 2.0**16

#: Exif 2.32 §4.6.3: the Exif IFD pointer and the MakerNote tag.
_EXIF_IFD_TAG = 0x8769
_MAKER_NOTE_TAG = 0x927C

#: Offset of the big-endian IFD in an Apple maker note, after its signature, version and byte order.
_APPLE_IFD_START = 14


def apple_metadata(xmp: XmpProperties, layout: JpegLayout, where: str) -> StandardGainMapMetadata:
    """Apple's map: headroom from XMP (version 2) or the primary's maker note (version 1).

    Args:
        xmp: the gain-map image's XMP properties.
        layout: the primary image's layout, whose Exif may hold the maker note.
        where: the gain-map image's location, for error messages.

    Returns:
        The metadata, with ``apple_headroom`` set and its ISO description from 0 to log2 of it.

    Raises:
        StandardGainMapError: the headroom is unknown, malformed or out of range.
    """
    where = f"{where}, Apple HDRGainMap"
    version = str(xmp.get(f"{{{APPLE_NS}}}HDRGainMapVersion", "")).strip()
    raw = xmp.get(f"{{{APPLE_NS}}}HDRGainMapHeadroom")
    if raw is not None:
        headroom = parse_float(raw, "HDRGainMap:HDRGainMapHeadroom", where)
    else:
        stops = _apple_maker_note_stops(layout)
        if stops is None:
            raise StandardGainMapError(
                f"{where}: no HDRGainMapHeadroom in the map's XMP and no maker-note tag 33 in the "
                "primary's Exif, so the headroom is unknown"
            )
        if stops > math.log2(MAX_APPLE_HEADROOM):
            raise StandardGainMapError(
                f"{where}: the primary's maker-note tags 33 and 48 give {stops:g} stops of headroom, "
                f"over the {math.log2(MAX_APPLE_HEADROOM):g} accepted"
            )
        headroom = 2.0**stops
    if not 1.0 <= headroom <= MAX_APPLE_HEADROOM:
        raise StandardGainMapError(f"{where}: headroom {headroom} is outside [1, {MAX_APPLE_HEADROOM:g}]")
    stops = math.log2(headroom)
    return StandardGainMapMetadata(
        kind="apple",
        version=version,
        base_headroom=0.0,
        alternate_headroom=stops,
        gain_map_min=(0.0, 0.0, 0.0),
        gain_map_max=(stops, stops, stops),
        apple_headroom=headroom,
    )


def _apple_maker_note_stops(layout: JpegLayout) -> float | None:
    """Apple's headroom in stops from maker-note tags 33 and 48 (Apple's "Applying Apple HDR effect").

    Returns:
        log2 of the headroom, at least 0, or None when the Exif has no Apple maker note with tag
        33. A malformed Exif block counts as absent: it is not the gain map's own data. Tags of
        any value give a finite result; the caller bounds it before raising 2 to it.
    """
    for segment in layout.app_payloads(1, structs.EXIF_IDENTIFIER):
        tiff = segment.payload[len(structs.EXIF_IDENTIFIER) :]
        try:
            tags = _apple_maker_tags(tiff)
        except StandardGainMapError:
            return None
        if 33 not in tags:
            return None
        maker33, maker48 = tags[33], tags.get(48, 0.0)
        if maker33 < 1.0:
            stops = -20.0 * maker48 + 1.8 if maker48 <= 0.01 else -0.101 * maker48 + 1.601
        else:
            stops = -70.0 * maker48 + 3.0 if maker48 <= 0.01 else -0.303 * maker48 + 2.303
        return max(stops, 0.0)
    return None


def _apple_maker_tags(tiff: bytes) -> dict[int, float]:
    """Rational tags 33 and 48 of the Apple maker note inside an Exif TIFF block."""
    order = bytes(tiff[:2])
    if order not in structs.TIFF_HEADER:
        raise StandardGainMapError(f"Exif byte order {order!r} is neither II nor MM")
    header = parse_struct(structs.TIFF_HEADER[order], tiff, "Exif header")
    ifd0 = ifd_entries(tiff, header.ifd_offset, order, "Exif IFD0")
    if _EXIF_IFD_TAG not in ifd0:
        return {}
    exif_ifd = ifd_entries(tiff, u32(ifd0[_EXIF_IFD_TAG].value, order), order, "Exif IFD")
    if _MAKER_NOTE_TAG not in exif_ifd:
        return {}
    entry = exif_ifd[_MAKER_NOTE_TAG]
    start = u32(entry.value, order)
    note = tiff[start : start + entry.count]
    if not note.startswith(b"Apple iOS\x00"):
        return {}
    parse_struct(structs.APPLE_MAKER_NOTE, note, "Apple maker note")
    entries = ifd_entries(note, _APPLE_IFD_START, b"MM", "Apple maker note")
    tags: dict[int, float] = {}
    for tag in (33, 48):
        if tag in entries and entries[tag].type in structs.TIFF_RATIONAL:
            at = u32(entries[tag].value, b"MM")
            rational = parse_struct(
                structs.TIFF_RATIONAL[entries[tag].type], note[at : at + 8], f"maker-note tag {tag}"
            )
            if rational.denominator != 0:
                tags[tag] = rational.numerator / rational.denominator
    return tags
