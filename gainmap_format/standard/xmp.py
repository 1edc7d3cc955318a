"""XMP: parsing packets safely, reading hdrgm gain-map metadata, writing the announcing packet.

Adobe's Gain Map specification 1.0 (used by Ultra HDR) puts the gain map's parameters in the
``hdrgm`` namespace of the gain-map image's XMP; the primary's XMP carries ``hdrgm:Version``
and a GContainer directory that lists the images. Apple's HDRGainMap properties are read here
too, and interpreted in :mod:`.apple`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from xml.parsers import expat

from .. import structs
from ..errors import StandardGainMapError
from ..jpeg import JpegLayout
from .metadata import StandardGainMapMetadata, float_triple

#: Largest XMP packet parsed, in bytes.
MAX_XMP_BYTES = 1 << 20

#: XMP namespaces.
HDRGM_NS = "http://ns.adobe.com/hdr-gain-map/1.0/"
CONTAINER_NS = "http://ns.google.com/photos/1.0/container/"
ITEM_NS = "http://ns.google.com/photos/1.0/container/item/"
APDI_NS = "http://ns.apple.com/pixeldatainfo/1.0/"
APPLE_NS = "http://ns.apple.com/HDRGainMap/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

#: Adobe's Gain Map specification 1.0: the default offsets when XMP leaves them out.
DEFAULT_XMP_OFFSET = 1.0 / 64.0

#: hdrgm properties that may hold one value per channel; any rdf:Seq among them makes the map
#: three-channel.
_XMP_CHANNEL_FIELDS = ("GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR")


def read_xmp(layout: JpegLayout, where: str) -> dict | None:
    """The gain-map properties of an image's XMP packet, or None when it has none.

    Only packets that mention a gain-map namespace are parsed. They are parsed with expat after
    refusing any DOCTYPE, so no entity is ever expanded or fetched.

    Args:
        layout: one image's layout.
        where: the image's location, for error messages.

    Returns:
        {"{namespace}Name": "value" or ["value", ...]} for the hdrgm, Apple and apdi
        properties of every rdf:Description, attributes and child elements alike, plus
        "items": the GContainer directory as a list of {"Semantic": ..., "Length": ...}.

    Raises:
        StandardGainMapError: the packet is oversized, declares a DOCTYPE or entity, or is not
            well-formed XML.
    """
    namespaces = (HDRGM_NS, APPLE_NS, APDI_NS, CONTAINER_NS)
    for segment in layout.app_payloads(1, structs.XMP_IDENTIFIER):
        packet = segment.payload[len(structs.XMP_IDENTIFIER) :]
        if any(ns.encode() in packet for ns in namespaces):
            return _parse_xmp(packet, f"{where}, XMP APP1 segment at offset {segment.offset}")
    return None


def primary_xmp(layout: JpegLayout) -> dict | None:
    """:func:`read_xmp` of the primary image.

    Args:
        layout: the primary image's layout.

    Returns:
        The properties, or None.
    """
    return read_xmp(layout, "primary image")


def _parse_xmp(packet: bytes, where: str) -> dict:
    if len(packet) > MAX_XMP_BYTES:
        raise StandardGainMapError(f"{where}: XMP packet of {len(packet)} bytes is over {MAX_XMP_BYTES}")
    _refuse_dtd(packet, where)
    try:
        root = ET.fromstring(packet.rstrip(b"\x00 \t\r\n"))
    except ET.ParseError as exc:
        raise StandardGainMapError(f"{where}: XMP is not well-formed XML ({exc})") from exc
    wanted = (HDRGM_NS, APPLE_NS, APDI_NS)
    properties: dict = {}
    for description in root.iter(f"{{{RDF_NS}}}Description"):
        for key, value in description.attrib.items():
            if key.startswith(tuple(f"{{{ns}}}" for ns in wanted)):
                properties.setdefault(key, value.strip())
        for child in description:
            if child.tag.startswith(tuple(f"{{{ns}}}" for ns in wanted)):
                properties.setdefault(child.tag, _xmp_value(child))
    properties["items"] = _container_items_of(root)
    return properties


class _DtdFoundError(Exception):
    """Raised from inside expat to stop at the first DTD declaration."""


def _refuse_dtd(packet: bytes, where: str) -> None:
    """Refuse any DOCTYPE or entity declaration, which XMP never needs (entity expansion attacks).

    A byte search would miss a DTD in UTF-16; expat reads the packet in the encoding it declares,
    so this scan sees every declaration the real parse would.
    """
    scanner = expat.ParserCreate()

    def refuse(*_args: object) -> None:
        raise _DtdFoundError

    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    try:
        scanner.Parse(packet.rstrip(b"\x00 \t\r\n"), True)
    except _DtdFoundError:
        refusal = f"{where}: XMP declares a DOCTYPE or entity, which XMP never needs; refused"
        raise StandardGainMapError(refusal) from None
    except expat.ExpatError as exc:
        raise StandardGainMapError(f"{where}: XMP is not well-formed XML ({exc})") from exc


def _xmp_value(element: ET.Element) -> str | list[str]:
    """A simple property's text, or the items of an rdf:Seq, rdf:Bag or rdf:Alt."""
    for kind in ("Seq", "Bag", "Alt"):
        array = element.find(f"{{{RDF_NS}}}{kind}")
        if array is not None:
            return [(li.text or "").strip() for li in array.findall(f"{{{RDF_NS}}}li")]
    return (element.text or "").strip()


def _container_items_of(root: ET.Element) -> list[dict[str, str]]:
    """GContainer directory items, Item properties as attributes or child elements."""
    items = []
    for element in root.iter(f"{{{CONTAINER_NS}}}Item"):
        item = {
            key[len(ITEM_NS) + 2 :]: value for key, value in element.attrib.items() if key.startswith(f"{{{ITEM_NS}}}")
        }
        for child in element:
            if child.tag.startswith(f"{{{ITEM_NS}}}"):
                item[child.tag[len(ITEM_NS) + 2 :]] = (child.text or "").strip()
        items.append(item)
    return items


def container_items(xmp: dict) -> list[dict[str, str]]:
    """The GContainer directory of properties that :func:`read_xmp` returned.

    Args:
        xmp: the properties.

    Returns:
        The items in directory order, each {"Semantic": ..., "Length": ..., ...}.
    """
    return xmp.get("items", [])


def xmp_metadata(xmp: dict, primary: dict | None, where: str) -> StandardGainMapMetadata:
    """Adobe's Gain Map specification 1.0 in ISO terms; an HDR base flips the direction.

    Args:
        xmp: the gain-map image's properties.
        primary: the primary image's properties, whose ``hdrgm:Version`` stands in when the
            gain-map image has none.
        where: the gain-map image's location, for error messages.

    Returns:
        The metadata; its values are not range-checked here.

    Raises:
        StandardGainMapError: an unsupported version, or a missing or malformed property.
    """
    where = f"{where}, hdrgm XMP"
    version = xmp.get(f"{{{HDRGM_NS}}}Version") or (primary or {}).get(f"{{{HDRGM_NS}}}Version")
    if version != "1.0":
        raise StandardGainMapError(f"{where}: hdrgm:Version {version!r} is not the supported '1.0'")

    def triple(name: str, default: float | None) -> tuple[float, float, float]:
        return _xmp_triple(xmp, name, default, where)

    gain_min = triple("GainMapMin", 0.0)
    gain_max = triple("GainMapMax", None)
    capacity_min = triple("HDRCapacityMin", 0.0)[0]
    capacity_max = triple("HDRCapacityMax", max(gain_max))[0]
    offset_sdr = triple("OffsetSDR", DEFAULT_XMP_OFFSET)
    offset_hdr = triple("OffsetHDR", DEFAULT_XMP_OFFSET)
    base_is_hdr = _xmp_bool(xmp, "BaseRenditionIsHDR", where)
    channels = 3 if any(isinstance(xmp.get(f"{{{HDRGM_NS}}}{n}"), list) for n in _XMP_CHANNEL_FIELDS) else 1
    common = {"kind": "ultrahdr-xmp", "version": version, "gamma": triple("Gamma", 1.0), "channels": channels}
    if base_is_hdr:
        # hdrgm maps always hold log2(HDR / SDR); ISO's hold log2(alternate / base), so with an
        # HDR base the log gains change sign and the headrooms and offsets swap roles.
        return StandardGainMapMetadata(
            base_headroom=capacity_max,
            alternate_headroom=capacity_min,
            gain_map_min=float_triple(-v for v in gain_min),
            gain_map_max=float_triple(-v for v in gain_max),
            base_offset=offset_hdr,
            alternate_offset=offset_sdr,
            **common,
        )
    return StandardGainMapMetadata(
        base_headroom=capacity_min,
        alternate_headroom=capacity_max,
        gain_map_min=gain_min,
        gain_map_max=gain_max,
        base_offset=offset_sdr,
        alternate_offset=offset_hdr,
        **common,
    )


def _xmp_triple(xmp: dict, name: str, default: float | None, where: str) -> tuple[float, float, float]:
    """A per-channel hdrgm property: one value for all channels, or an rdf:Seq of three."""
    raw = xmp.get(f"{{{HDRGM_NS}}}{name}")
    if raw is None:
        if default is None:
            raise StandardGainMapError(f"{where}: required property hdrgm:{name} is missing")
        return (default, default, default)
    values = raw if isinstance(raw, list) else [raw]
    if len(values) not in (1, 3):
        raise StandardGainMapError(f"{where}: hdrgm:{name} has {len(values)} values, not 1 or 3")
    numbers = [parse_float(v, f"hdrgm:{name}", where) for v in values]
    return float_triple(numbers * 3 if len(numbers) == 1 else numbers)


def _xmp_bool(xmp: dict, name: str, where: str) -> bool:
    raw = xmp.get(f"{{{HDRGM_NS}}}{name}", "False")
    if not isinstance(raw, str) or raw.strip().lower() not in ("true", "false"):
        raise StandardGainMapError(f"{where}: hdrgm:{name} is {raw!r}, not True or False")
    return raw.strip().lower() == "true"


def parse_float(text: object, name: str, where: str) -> float:
    """An XMP property's text as a finite float.

    Args:
        text: the property's value.
        name: the property's name, for the error message.
        where: the packet's location, for the error message.

    Returns:
        The number.

    Raises:
        StandardGainMapError: not a number, or not finite.
    """
    try:
        value = float(str(text).strip())
    except ValueError:
        raise StandardGainMapError(f"{where}: {name} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise StandardGainMapError(f"{where}: {name} is {value}; it must be finite")
    return value


def announcing_xmp(gain_map_length: int) -> bytes:
    """The smallest XMP packet that announces an Ultra HDR gain map (hdrgm + GContainer).

    Args:
        gain_map_length: the gain-map JPEG's size in bytes, for its Item:Length.

    Returns:
        The packet, without the APP1 identifier.
    """
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}">'
        f'<rdf:Description rdf:about="" xmlns:hdrgm="{HDRGM_NS}" xmlns:Container="{CONTAINER_NS}" '
        f'xmlns:Item="{ITEM_NS}" hdrgm:Version="1.0"><Container:Directory><rdf:Seq>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" '
        'Item:Mime="image/jpeg"/></rdf:li>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" '
        f'Item:Mime="image/jpeg" Item:Length="{gain_map_length}"/></rdf:li>'
        "</rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()
