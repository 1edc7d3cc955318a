"""ISO 21496-1 metadata: reading the binary APP2 payload, checking its version, writing it.

The gain-map image's APP2 segment holds the full metadata; the primary image's may hold only
the version, to announce the gain map (and to say which versions a reader needs).
"""

from __future__ import annotations

import math

from .. import structs
from ..errors import StandardGainMapError
from ..jpeg import JpegLayout
from .binary import parse_struct
from .metadata import StandardGainMapMetadata, check_metadata, float_triple

#: The per-channel fields of ISO 21496-1 §6, in :class:`StandardGainMapMetadata`'s names.
_ISO_CHANNEL_FIELDS = ("gain_map_min", "gain_map_max", "gamma", "base_offset", "alternate_offset")

#: The version this writer writes, and the only minimum_version this reader accepts.
_ISO_VERSION_ZERO = {"minimum_version": 0, "writer_version": 0}


class UnsupportedIsoVersionError(StandardGainMapError):
    """An ISO 21496-1 minimum_version newer than this reader's; XMP may stand in."""


def full_iso_payload(layout: JpegLayout) -> bytes | None:
    """An ISO 21496-1 payload holding more than the version, after the identifier.

    Args:
        layout: one image's layout.

    Returns:
        The payload of the first such APP2 segment, or None.
    """
    for segment in layout.app_payloads(2, structs.ISO_IDENTIFIER):
        payload = segment.payload[len(structs.ISO_IDENTIFIER) :]
        if len(payload) > structs.ISO_VERSION.sizeof():
            return payload
    return None


def check_primary_iso_version(layout: JpegLayout) -> None:
    """A version-only ISO segment in the primary still says which versions a reader needs.

    Args:
        layout: the primary image's layout.

    Raises:
        StandardGainMapError: a segment is truncated.
        UnsupportedIsoVersionError: a segment asks for a newer reader.
    """
    for segment in layout.app_payloads(2, structs.ISO_IDENTIFIER):
        where = f"ISO 21496-1 APP2 segment at offset {segment.offset}"
        version = parse_struct(structs.ISO_VERSION, segment.payload[len(structs.ISO_IDENTIFIER) :], where)
        _check_iso_version(version.minimum_version, where)


def _check_iso_version(minimum: int, where: str) -> None:
    if minimum != 0:
        raise UnsupportedIsoVersionError(
            f"{where}: ISO 21496-1 minimum_version {minimum} is newer than this reader (0)"
        )


def iso_metadata(payload: bytes, where: str) -> StandardGainMapMetadata:
    """ISO 21496-1 §6: parse, turn rationals into floats, spread one channel over three.

    Args:
        payload: the APP2 payload after the identifier.
        where: the segment's location, for error messages.

    Returns:
        The metadata; its values are not range-checked here.

    Raises:
        StandardGainMapError: truncated or malformed, or a zero denominator.
        UnsupportedIsoVersionError: minimum_version is newer than this reader.
    """
    where = f"{where}, ISO 21496-1 metadata"
    version = parse_struct(structs.ISO_VERSION, payload, where)
    _check_iso_version(version.minimum_version, where)
    fields = parse_struct(structs.ISO_METADATA, payload, where)
    body = fields.body
    if fields.flags.common_denominator:
        denominator = body.denominator

        def value(numerator: int, name: str) -> float:
            return _fraction(numerator, denominator, name, where)

        base = value(body.base_hdr_headroom, "base_hdr_headroom")
        alternate = value(body.alternate_hdr_headroom, "alternate_hdr_headroom")
        channels = [{k: value(c[k], f"{k}[{i}]") for k in _ISO_CHANNEL_FIELDS} for i, c in enumerate(body.channels)]
    else:
        base = _fraction(
            body.base_hdr_headroom.numerator, body.base_hdr_headroom.denominator, "base_hdr_headroom", where
        )
        alternate = _fraction(
            body.alternate_hdr_headroom.numerator,
            body.alternate_hdr_headroom.denominator,
            "alternate_hdr_headroom",
            where,
        )
        channels = [
            {k: _fraction(c[k].numerator, c[k].denominator, f"{k}[{i}]", where) for k in _ISO_CHANNEL_FIELDS}
            for i, c in enumerate(body.channels)
        ]
    per_channel = channels * 3 if len(channels) == 1 else channels
    return StandardGainMapMetadata(
        kind="iso21496-1",
        version=f"{fields.minimum_version}.{fields.writer_version}",
        base_headroom=base,
        alternate_headroom=alternate,
        gain_map_min=float_triple(c["gain_map_min"] for c in per_channel),
        gain_map_max=float_triple(c["gain_map_max"] for c in per_channel),
        gamma=float_triple(c["gamma"] for c in per_channel),
        base_offset=float_triple(c["base_offset"] for c in per_channel),
        alternate_offset=float_triple(c["alternate_offset"] for c in per_channel),
        use_base_colour_space=bool(fields.flags.use_base_colour_space),
        channels=len(channels),
    )


def _fraction(numerator: int, denominator: int, name: str, where: str) -> float:
    if denominator == 0:
        raise StandardGainMapError(f"{where}: field {name} has a zero denominator ({numerator}/0)")
    return numerator / denominator


def iso_metadata_payload(metadata: StandardGainMapMetadata) -> bytes:
    """Write metadata as an ISO 21496-1 APP2 payload (identifier included).

    Three channels are written unless all three agree; every value becomes a rational whose
    denominator is the largest power of two that keeps its numerator within 31 bits. Apple maps
    have no exact ISO form and are refused.

    Args:
        metadata: the parameters; checked as a reader checks them.

    Returns:
        The payload of one APP2 segment.

    Raises:
        StandardGainMapError: out-of-range values, or an Apple map.
    """
    check_metadata(metadata, "metadata to write")
    if metadata.apple_headroom is not None:
        raise StandardGainMapError("an Apple gain map has no exact ISO 21496-1 form")
    per_channel = [{name: getattr(metadata, name)[c] for name in _ISO_CHANNEL_FIELDS} for c in range(3)]
    multichannel = any(channel != per_channel[0] for channel in per_channel)
    channels = per_channel if multichannel else per_channel[:1]
    fields = {
        **_ISO_VERSION_ZERO,
        "flags": {
            "is_multichannel": multichannel,
            "use_base_colour_space": metadata.use_base_colour_space,
            "reserved_high": 0,
            "common_denominator": False,
            "reserved_low": 0,
        },
        "body": {
            "base_hdr_headroom": _rational(metadata.base_headroom),
            "alternate_hdr_headroom": _rational(metadata.alternate_headroom),
            "channels": [{name: _rational(value) for name, value in c.items()} for c in channels],
        },
    }
    body: bytes = structs.ISO_METADATA.build(fields)
    return structs.ISO_IDENTIFIER + body


def announcing_iso_payload() -> bytes:
    """A version-only ISO 21496-1 APP2 payload (identifier included), for the primary image.

    Returns:
        The payload of the APP2 segment that announces a gain map.
    """
    version: bytes = structs.ISO_VERSION.build(_ISO_VERSION_ZERO)
    return structs.ISO_IDENTIFIER + version


def _rational(value: float) -> dict[str, int]:
    """A float as numerator / 2^k with the numerator's magnitude below 2^30."""
    exponent = 30 - max(0, math.ceil(math.log2(abs(value) + 1.0)))
    denominator = 1 << min(exponent, 30)
    return {"numerator": round(value * denominator), "denominator": denominator}
