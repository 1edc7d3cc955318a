"""XMP: parsing packets safely, reading hdrgm gain-map metadata, writing the announcing packet.

Adobe's Gain Map specification 1.0 (used by Ultra HDR) puts the gain map's parameters in the
``hdrgm`` namespace of the gain-map image's XMP; the primary's XMP carries ``hdrgm:Version``
and a GContainer directory that lists the images. Apple's HDRGainMap properties are read here
too, and interpreted in :mod:`.apple`.

A packet is decoded here, not by expat: UTF-8, or UTF-16 or UTF-32 as its first bytes show (XMP
allows the three; JPEG writers use UTF-8), and an XML declaration that names any other encoding
is refused. Every failure, a DOCTYPE, malformed XML or a malformed value is a
``StandardGainMapError`` naming the segment.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from .. import structs
from ..errors import StandardGainMapError
from ..jpeg import JpegLayout
from .metadata import StandardGainMapMetadata, float_triple

#: An XMP packet's properties that this library reads, keyed "{namespace}name": a text value,
#: an rdf:Seq as a list of texts, and under "items" the GContainer directory's items.
XmpProperties = dict[str, Any]

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

#: The encodings an XMP packet may use (XMP Part 1, the packet wrapper: UTF-8, UTF-16 or UTF-32),
#: as Python codecs. XMP Part 3 puts UTF-8 in JPEG; the others are read because XMP allows them.
XMP_CODECS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")

#: XML 1.0 Appendix F: a packet's first bytes, a byte-order mark or its opening "<", name its
#: encoding: (first bytes, codec, length of the byte-order mark). UTF-32's come first because
#: they start with UTF-16's.
_ENCODING_SIGNATURES = (
    (b"\x00\x00\xfe\xff", "utf-32-be", 4),
    (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\x00\x00\x00<", "utf-32-be", 0),
    (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\xfe\xff", "utf-16-be", 2),
    (b"\xff\xfe", "utf-16-le", 2),
    (b"\x00<", "utf-16-be", 0),
    (b"<\x00", "utf-16-le", 0),
    (b"\xef\xbb\xbf", "utf-8", 3),
)

#: The encoding names an XML declaration may give for each codec, lower case without "-" and "_".
_DECLARABLE = {
    "utf-8": {"utf8"},
    "utf-16-le": {"utf16", "utf16le"},
    "utf-16-be": {"utf16", "utf16be"},
    "utf-32-le": {"utf32", "utf32le"},
    "utf-32-be": {"utf32", "utf32be"},
}

#: An XML declaration's encoding name (XML 1.0 §2.8 and §4.3.3), at the start of the text.
_DECLARED_ENCODING = re.compile(r"<\?xml\s[^>]*?\bencoding\s*=\s*([\"'])(.*?)\1")

#: A real number as XML Schema writes one (xsd:double without INF and NaN), in ASCII digits.
_XSD_REAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")

#: Characters of a malformed value that an error message shows.
_SHOWN = 60

#: hdrgm properties that may hold one value per channel; any rdf:Seq among them makes the map
#: three-channel.
_XMP_CHANNEL_FIELDS = ("GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR")


def read_xmp(layout: JpegLayout, where: str) -> XmpProperties | None:
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
        StandardGainMapError: the packet is oversized, is not valid UTF-8, UTF-16 or UTF-32 (or
            its XML declaration names another encoding), declares a DOCTYPE or entity, or is not
            well-formed XML.
    """
    namespaces = (HDRGM_NS, APPLE_NS, APDI_NS, CONTAINER_NS)
    for segment in layout.app_payloads(1, structs.XMP_IDENTIFIER):
        packet = segment.payload[len(structs.XMP_IDENTIFIER) :]
        if any(xmp_mentions(packet, ns) for ns in namespaces):
            return _parse_xmp(packet, f"{where}, XMP APP1 segment at offset {segment.offset}")
    return None


def xmp_mentions(packet: bytes, text: str) -> bool:
    """Whether an XMP packet holds ``text`` in any encoding XMP allows, without decoding it.

    A cheap test that decides which packets to parse; the parse then checks the encoding.

    Args:
        packet: the packet's bytes (an APP1 payload, with or without its identifier).
        text: what to look for, e.g. a namespace URI.
    """
    return any(form in packet for form in xmp_forms(text))


def xmp_forms(text: str) -> tuple[bytes, ...]:
    """``text`` in each encoding an XMP packet may use (:data:`XMP_CODECS`).

    Args:
        text: e.g. a namespace URI.

    Returns:
        Its bytes in UTF-8, UTF-16LE, UTF-16BE, UTF-32LE and UTF-32BE.
    """
    return tuple(text.encode(codec) for codec in XMP_CODECS)


def primary_xmp(layout: JpegLayout) -> XmpProperties | None:
    """:func:`read_xmp` of the primary image.

    Args:
        layout: the primary image's layout.

    Returns:
        The properties, or None.
    """
    return read_xmp(layout, "primary image")


def _parse_xmp(packet: bytes, where: str) -> XmpProperties:
    if len(packet) > MAX_XMP_BYTES:
        raise StandardGainMapError(f"{where}: XMP packet of {len(packet)} bytes is over {MAX_XMP_BYTES}")
    text = _decode_packet(packet, where)
    refuse_dtd(text, where)
    try:
        # expat parses a str as the UTF-8 it encodes it to, whatever encoding a declaration names.
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise StandardGainMapError(f"{where}: XMP is not well-formed XML ({exc})") from exc
    wanted = (HDRGM_NS, APPLE_NS, APDI_NS)
    properties: XmpProperties = {}
    for description in root.iter(f"{{{RDF_NS}}}Description"):
        for key, value in description.attrib.items():
            if key.startswith(tuple(f"{{{ns}}}" for ns in wanted)):
                properties.setdefault(key, value.strip())
        for child in description:
            if child.tag.startswith(tuple(f"{{{ns}}}" for ns in wanted)):
                properties.setdefault(child.tag, _xmp_value(child))
    properties["items"] = _container_items_of(root)
    return properties


def _decode_packet(packet: bytes, where: str) -> str:
    """The packet as text, in the encoding its first bytes give (UTF-8 when they give none).

    expat itself would look up whatever encoding an XML declaration names, and fail with
    ``LookupError`` or ``ValueError`` on names it cannot use (``x-bogus``, ``shift_jis``,
    ``utf-32``). Decoding here first keeps that choice to the encodings XMP allows and lets
    every failure say which segment it is in.

    Args:
        packet: the packet's bytes, after the APP1 identifier.
        where: the segment's location, for the error message.

    Returns:
        The text, without a byte-order mark or trailing padding (NUL and white space).

    Raises:
        StandardGainMapError: the bytes are not valid in that encoding, or an XML declaration
            names another one.
    """
    codec, mark = next(((c, n) for first, c, n in _ENCODING_SIGNATURES if packet.startswith(first)), ("utf-8", 0))
    name = codec.upper()
    try:
        text = packet[mark:].decode(codec)
    except UnicodeDecodeError as exc:
        raise StandardGainMapError(
            f"{where}: XMP is not valid {name} at packet byte {mark + exc.start} ({exc.reason})"
        ) from None
    declared = _DECLARED_ENCODING.match(text)
    if declared is not None and declared[2].lower().replace("-", "").replace("_", "") not in _DECLARABLE[codec]:
        raise StandardGainMapError(
            f"{where}: XMP declares encoding {shown(declared[2])} but its bytes are {name}; XMP packets are "
            "UTF-8, UTF-16 or UTF-32 (XMP Part 1), and in JPEG UTF-8 (XMP Part 3)"
        )
    return text.rstrip("\x00 \t\r\n")


class _DtdFoundError(Exception):
    """Raised from inside expat to stop at the first DTD declaration."""


def refuse_dtd(text: str, where: str) -> None:
    """Refuse any DOCTYPE or entity declaration, which XMP never needs (entity expansion attacks).

    expat scans the same text that the real parse reads, so it sees every declaration that
    parse would, however it is spelled.
    """
    scanner = expat.ParserCreate()

    def refuse(*_args: object) -> None:
        raise _DtdFoundError

    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    try:
        scanner.Parse(text, True)
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


def container_items(xmp: XmpProperties) -> list[dict[str, str]]:
    """The GContainer directory of properties that :func:`read_xmp` returned.

    Args:
        xmp: the properties.

    Returns:
        The items in directory order, each {"Semantic": ..., "Length": ..., ...}.
    """
    items: list[dict[str, str]] = xmp.get("items", [])
    return items


def xmp_metadata(xmp: XmpProperties, primary: XmpProperties | None, where: str) -> StandardGainMapMetadata:
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
        raise StandardGainMapError(f"{where}: hdrgm:Version {shown(version)} is not the supported '1.0'")

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


def _xmp_triple(xmp: XmpProperties, name: str, default: float | None, where: str) -> tuple[float, float, float]:
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


def _xmp_bool(xmp: XmpProperties, name: str, where: str) -> bool:
    raw = xmp.get(f"{{{HDRGM_NS}}}{name}", "False")
    if not isinstance(raw, str) or raw.strip().lower() not in ("true", "false"):
        raise StandardGainMapError(f"{where}: hdrgm:{name} is {shown(raw)}, not True or False")
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
        StandardGainMapError: not a decimal number (XML Schema's lexical form: ASCII digits, no
            "_", "NaN" or "INF", all of which Python's float() would take), or not finite.
    """
    if not isinstance(text, str) or _XSD_REAL.fullmatch(text.strip()) is None:
        raise StandardGainMapError(f"{where}: {name} is {shown(text)}, not a number")
    value = float(text)
    if not math.isfinite(value):
        raise StandardGainMapError(f"{where}: {name} is {value}; it must be finite")
    return value


def shown(value: object) -> str:
    """A metadata value for an error message, cut short: a hostile one can be thousands of characters.

    Args:
        value: the value as read.

    Returns:
        Its repr, or the start of it and its length.
    """
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


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
