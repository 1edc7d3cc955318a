"""Writing standard gain-map JPEGs, and taking a standard gain map out of a JPEG.

The writer is the reader's counterpart in :mod:`gainmap_format.standard`: it writes what current
Android writes, so that this library's reader, libultrahdr and phones open the file:

- the primary image, its entropy-coded data untouched, with a version-only ISO 21496-1 APP2
  segment, an hdrgm XMP packet (``hdrgm:Version`` and a GContainer directory) when asked, and an
  MPF index (CIPA DC-007);
- the gain-map JPEG appended after the primary's EOI, with the full ISO 21496-1 metadata in APP2
  and, when asked, the same values as hdrgm XMP attributes (libultrahdr 1.4 cannot read the
  ``rdf:Seq`` form, so only single-channel metadata is written in XMP).

:func:`gain_map_from_renditions` makes the map from an HDR rendition and the base as ISO readers
linearise it; :func:`strip_standard` removes a standard gain map's markings from a primary image
while keeping the user's own metadata (Exif, ICC, IPTC and XMP properties of other namespaces).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .. import structs
from ..errors import InputError, StandardGainMapError
from ..jpeg import APP0, JpegLayout, Segment, parse_jpeg, replace_segments
from .iso import announcing_iso_payload, iso_metadata_payload
from .locate import append_image
from .metadata import StandardGainMapMetadata, check_metadata
from .xmp import CONTAINER_NS, HDRGM_NS, ITEM_NS, RDF_NS, announcing_xmp, refuse_dtd, xmp_mentions

#: ISO 21496-1 k_base and k_alt as libultrahdr and Android write them.
ISO_OFFSET = 1.0 / 64.0

#: Default gain-map JPEG quality and downscale factor of :func:`gain_map_from_renditions`,
#: chosen by measurement (README, "Convert and export"): a full-resolution three-channel map at
#: quality 95 is libultrahdr's default; a half-size map costs about a quarter of the bytes.
DEFAULT_MAP_QUALITY = 95
DEFAULT_MAP_SCALE = 1

#: Largest downscale factor of the map on each side.
MAX_MAP_SCALE = 16

#: The XMP namespaces that describe a standard gain map in a primary image.
_GAIN_MAP_NAMESPACES = (HDRGM_NS, CONTAINER_NS, ITEM_NS)

#: An XML name's characters after its prefix (XMP uses ASCII names).
_NAME = r"[A-Za-z_][\w.\-]*"

#: An rdf:Description start tag: its attributes, and "/" when it is empty.
_DESCRIPTION = re.compile(r"<rdf:Description\b([^>]*?)(/?)>")

#: Most gain-map elements a primary's XMP may hold for them to be removed (a GContainer directory
#: has two or three); each removal searches the rest of the packet, so this bounds the time.
_MAX_GAIN_MAP_ELEMENTS = 64


@dataclass(frozen=True)
class GainMapImage:
    """A gain-map image ready to be written.

    Attributes:
        jpeg: the map's JPEG, without metadata segments.
        metadata: what its code values mean, in ISO 21496-1's terms.
        size: (width, height) of the map.
    """

    jpeg: bytes
    metadata: StandardGainMapMetadata
    size: tuple[int, int]


def gain_map_from_renditions(
    hdr: np.ndarray,
    base: np.ndarray,
    alternate_headroom: float,
    *,
    scale: int = DEFAULT_MAP_SCALE,
    quality: int = DEFAULT_MAP_QUALITY,
) -> GainMapImage:
    """An ISO 21496-1 gain map that takes ``base`` to ``hdr``: log2((hdr + k) / (base + k)) per channel.

    The three channels share one range, so that the metadata has one channel and can be written
    as hdrgm XMP attributes too; the map image keeps three components, so colour is kept.

    Args:
        hdr: float32 (H, W, 3), the HDR rendition in the base's primaries, linear, 1.0 = SDR white.
        base: float32 (H, W, 3), the base as ISO readers linearise it (sRGB transfer), 1.0 = white.
        alternate_headroom: log2 headroom recorded for the HDR rendition, in [0, 32].
        scale: the map is this many times smaller than the base on each side (1 to 16).
        quality: the map's JPEG quality (1 to 100).

    Returns:
        The map and its metadata.

    Raises:
        InputError: ``scale`` or ``quality`` out of range, or the shapes differ.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_MAP_SCALE:
        raise InputError(f"gain-map scale {scale!r} is not an integer from 1 to {MAX_MAP_SCALE}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InputError(f"gain-map quality {quality!r} is not an integer from 1 to 100")
    if hdr.shape != base.shape or hdr.ndim != 3 or hdr.shape[2] != 3:
        raise InputError(f"HDR {hdr.shape} and base {base.shape} must both be (H, W, 3)")
    gain = np.log2((np.clip(hdr, 0.0, None) + ISO_OFFSET) / (np.clip(base, 0.0, None) + ISO_OFFSET))
    gain = _downscale(gain.astype(np.float32), scale)
    low = min(0.0, float(gain.min()))
    high = max(float(gain.max()), low + 2.0**-10)
    codes = np.rint(255.0 * (gain - low) / (high - low)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(codes, "RGB").save(buffer, "JPEG", quality=quality, subsampling=0)
    metadata = StandardGainMapMetadata(
        kind="iso21496-1",
        version="0.0",
        base_headroom=0.0,
        alternate_headroom=min(max(alternate_headroom, 0.0), 32.0),
        gain_map_min=(low,) * 3,
        gain_map_max=(high,) * 3,
        base_offset=(ISO_OFFSET,) * 3,
        alternate_offset=(ISO_OFFSET,) * 3,
    )
    return GainMapImage(buffer.getvalue(), metadata, (codes.shape[1], codes.shape[0]))


def _downscale(values: np.ndarray, scale: int) -> np.ndarray:
    """Box-average float32 (H, W, 3) by ``scale`` on each side; the last partial block is averaged too."""
    if scale == 1:
        return values
    height, width, _ = values.shape
    out_h, out_w = -(-height // scale), -(-width // scale)
    padded = np.pad(values, ((0, out_h * scale - height), (0, out_w * scale - width), (0, 0)), mode="edge")
    blocks: np.ndarray = padded.reshape(out_h, scale, out_w, scale, 3).mean(axis=(1, 3), dtype=np.float32)
    return blocks


def write_gain_map_file(
    base_jpeg: bytes, map_jpeg: bytes, metadata: StandardGainMapMetadata, *, xmp: bool = True
) -> bytes:
    """A standard gain-map JPEG: the base, announced and indexed, then the map with its metadata.

    Args:
        base_jpeg: the primary image (SOI to EOI); its segments other than MPF and ISO APP2 are kept.
        map_jpeg: the gain-map image.
        metadata: what the map means; single-channel for ``xmp``.
        xmp: also write hdrgm XMP in both images (Android's layout); False writes ISO 21496-1
            only (libultrahdr's default layout). The primary's own XMP, when it has one, is kept
            and then the primary is announced by ISO only.

    Returns:
        The file.

    Raises:
        StandardGainMapError: metadata out of range, an Apple map, or multichannel metadata with
            ``xmp``.
        JpegError: ``base_jpeg`` or ``map_jpeg`` is malformed.
    """
    map_segments = [Segment(APP0 + 2, iso_metadata_payload(metadata))]
    if xmp:
        map_segments.insert(0, Segment(APP0 + 1, structs.XMP_IDENTIFIER + map_xmp(metadata)))
    secondary = replace_segments(parse_jpeg(map_jpeg), map_segments, _is_marking).to_bytes()
    announce = [Segment(APP0 + 2, announcing_iso_payload())]
    if xmp:
        base_jpeg = _announce_in_xmp(base_jpeg, len(secondary))
    return append_image(base_jpeg, secondary, announce)


def _announce_in_xmp(base_jpeg: bytes, map_length: int) -> bytes:
    """The base with hdrgm:Version and a GContainer directory in its XMP: a new packet, or its own.

    The announcement joins the first rdf:Description of a UTF-8 packet the base already has, so
    that the user's properties stay; a packet it cannot join (another encoding, no
    rdf:Description) is left alone and the ISO segment alone announces the map.
    """
    layout = parse_jpeg(base_jpeg)
    announcement = announcing_xmp(map_length).decode()
    found = _DESCRIPTION.search(announcement)
    if found is None:  # pragma: no cover - announcing_xmp always writes one
        raise AssertionError("announcing_xmp wrote no rdf:Description")
    attributes = found.group(1).replace(' rdf:about=""', "")
    children = announcement[found.end() : announcement.index("</rdf:Description>")]
    segments = list(layout.segments)
    for index, segment in enumerate(segments):
        if segment.is_app(1) and segment.payload.startswith(structs.XMP_IDENTIFIER):
            try:
                text = segment.payload[len(structs.XMP_IDENTIFIER) :].decode("utf-8")
            except UnicodeDecodeError:
                return base_jpeg
            own = _DESCRIPTION.search(text)
            if own is None:
                return base_jpeg
            closing = "</rdf:Description>" if own.group(2) else ""
            joined = f"{text[: own.start()]}<rdf:Description{own.group(1)}{attributes}>{children}{closing}"
            packet = joined + text[own.end() :]
            segments[index] = Segment(segment.marker, structs.XMP_IDENTIFIER + packet.encode())
            return JpegLayout(tuple(segments), layout.scan).to_bytes()
    added = Segment(APP0 + 1, structs.XMP_IDENTIFIER + announcement.encode())
    return replace_segments(layout, [added], lambda _: False).to_bytes()


def _is_marking(segment: Segment) -> bool:
    """XMP, ISO 21496-1 and MPF segments: what a map image must not carry over from elsewhere."""
    return (segment.is_app(1) and segment.payload.startswith(structs.XMP_IDENTIFIER)) or (
        segment.is_app(2) and segment.payload.startswith((structs.ISO_IDENTIFIER, structs.MPF_IDENTIFIER))
    )


def map_xmp(metadata: StandardGainMapMetadata) -> bytes:
    """The gain-map image's hdrgm XMP packet (Adobe Gain Map 1.0), values as attributes, in log2.

    Args:
        metadata: single-channel metadata with an SDR base (base headroom 0 or below the alternate's).

    Returns:
        The packet, without the APP1 identifier.

    Raises:
        StandardGainMapError: multichannel metadata, an HDR base, an Apple map, or values out of range.
    """
    check_metadata(metadata, "metadata to write")
    if metadata.apple_headroom is not None or metadata.base_is_hdr:
        raise StandardGainMapError("only an SDR-base ISO gain map is written as hdrgm XMP")
    values = {
        name: getattr(metadata, name)
        for name in ("gain_map_min", "gain_map_max", "gamma", "base_offset", "alternate_offset")
    }
    if any(len(set(v)) != 1 for v in values.values()):
        raise StandardGainMapError("multichannel gain-map metadata has no hdrgm attribute form")
    attributes = {
        "Version": "1.0",
        "GainMapMin": values["gain_map_min"][0],
        "GainMapMax": values["gain_map_max"][0],
        "Gamma": values["gamma"][0],
        "OffsetSDR": values["base_offset"][0],
        "OffsetHDR": values["alternate_offset"][0],
        "HDRCapacityMin": metadata.base_headroom,
        "HDRCapacityMax": metadata.alternate_headroom,
        "BaseRenditionIsHDR": "False",
    }
    shown = " ".join(f'hdrgm:{k}="{v if isinstance(v, str) else repr(float(v))}"' for k, v in attributes.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}">'
        f'<rdf:Description rdf:about="" xmlns:hdrgm="{HDRGM_NS}" {shown}/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def strip_standard(primary: bytes) -> bytes:
    """A primary image without its standard gain map's markings, everything else kept.

    Removes MPF and ISO 21496-1 APP2 segments and the hdrgm, GContainer and Item properties of
    the XMP packet; an XMP packet left with no property of its own is removed. Exif, ICC,
    IPTC, other APP segments, the user's XMP properties and the entropy-coded data stay as they are.

    Args:
        primary: the primary image, SOI to EOI.

    Returns:
        The image.

    Raises:
        JpegError: ``primary`` is malformed.
        StandardGainMapError: an XMP packet that names a gain-map namespace is not UTF-8 or
            would not be well-formed XML once the gain-map properties are removed.
    """
    layout = parse_jpeg(primary)
    segments: list[Segment] = []
    for segment in layout.segments:
        if segment.is_app(2) and segment.payload.startswith((structs.ISO_IDENTIFIER, structs.MPF_IDENTIFIER)):
            continue
        if segment.is_app(1) and segment.payload.startswith(structs.XMP_IDENTIFIER):
            packet = segment.payload[len(structs.XMP_IDENTIFIER) :]
            if any(xmp_mentions(packet, ns) for ns in _GAIN_MAP_NAMESPACES):
                where = f"primary image, XMP APP1 segment at offset {segment.offset}"
                kept = _without_gain_map_properties(packet, where)
                if kept is None:
                    continue
                segment = Segment(segment.marker, structs.XMP_IDENTIFIER + kept)
        segments.append(segment)
    return JpegLayout(tuple(segments), layout.scan).to_bytes()


def _without_gain_map_properties(packet: bytes, where: str) -> bytes | None:
    """The packet without hdrgm / GContainer / Item properties; None when nothing else is left."""
    try:
        text = packet.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StandardGainMapError(f"{where}: XMP with gain-map properties is not UTF-8 ({exc})") from exc
    for namespace in _GAIN_MAP_NAMESPACES:
        quoted = re.escape(namespace)
        for prefix in set(re.findall(rf"xmlns:({_NAME})\s*=\s*[\"']{quoted}[\"']", text)):
            p = re.escape(prefix)
            if len(re.findall(rf"<{p}:", text)) > _MAX_GAIN_MAP_ELEMENTS:
                raise StandardGainMapError(
                    f"{where}: XMP holds more than {_MAX_GAIN_MAP_ELEMENTS} elements of namespace {namespace}"
                )
            text = re.sub(rf"<{p}:{_NAME}\b[^>]*?/>", "", text)
            text = re.sub(rf"<({p}:{_NAME})\b[^>]*(?<!/)>.*?</\1\s*>", "", text, flags=re.DOTALL)
            text = re.sub(rf"\s+{p}:{_NAME}\s*=\s*(\"[^\"]*\"|'[^']*')", "", text)
            text = re.sub(rf"\s+xmlns:{p}\s*=\s*[\"']{quoted}[\"']", "", text)
    refuse_dtd(text, where)
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        problem = f"XMP is not well-formed once its gain-map properties are removed ({exc})"
        raise StandardGainMapError(f"{where}: {problem}") from exc
    return text.encode("utf-8") if _has_properties(root) else None


def _has_properties(root: ET.Element) -> bool:
    """Whether any rdf:Description holds a property (an attribute other than rdf:about, or a child)."""
    about = f"{{{RDF_NS}}}about"
    return any(
        len(description) > 0 or any(key != about for key in description.attrib)
        for description in root.iter(f"{{{RDF_NS}}}Description")
    )

