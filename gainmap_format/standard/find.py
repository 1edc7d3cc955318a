"""Finding a standard gain map in a JPEG: locate the image, read its metadata, check both.

Precedence follows ISO 21496-1 (and libultrahdr): ISO metadata wins over XMP when a file has
both, and an ISO version this reader does not support falls back to the XMP when there is one.
XMP wins over Apple's marking. No pixels are decoded here.
"""

from __future__ import annotations

from ..errors import StandardGainMapError
from ..jpeg import JpegLayout, parse_jpeg
from .apple import APPLE_AUX_TYPE, apple_metadata
from .decode import frame_dimensions
from .gain_map import StandardGainMap
from .icc import icc_primaries
from .iso import UnsupportedIsoVersionError, check_primary_iso_version, full_iso_payload, iso_metadata
from .locate import Secondary, announcements, find_secondary
from .metadata import StandardGainMapMetadata, check_metadata
from .xmp import APDI_NS, HDRGM_NS, primary_xmp, read_xmp, xmp_metadata

#: Most times a gain map may be larger than its base on either side. Maps are usually the base's
#: size or smaller; the largest seen (a gainmap-js test file) is 2.67 times. Rendering decodes the
#: whole map and resamples it, so a map of 697 x 65367 over a 697 x 599 base (a one-field change
#: of a real file) took 15 s before this bound.
MAX_MAP_SCALE = 4


def find_gain_map(data: bytes) -> StandardGainMap | None:
    """Find and check a standard gain map in a JPEG; no pixels are decoded.

    Args:
        data: the whole file.

    Returns:
        The gain map, or None when the file has none (a plain JPEG, or an MPO whose other
        images are not gain maps).

    Raises:
        JpegError: the primary image is not a well-formed JPEG.
        StandardGainMapError: the file announces or carries a gain map that is damaged,
            inconsistent, oversized or of an unsupported version; the message names the
            segment, offset or field.
    """
    layout = parse_jpeg(data)
    announced = announcements(layout)
    secondary = find_secondary(data, layout, announced)
    if secondary is None:
        if announced:
            raise StandardGainMapError(
                f"the primary image announces a gain map ({', '.join(sorted(announced))}) but no "
                "gain-map image was found through MPF or the XMP GContainer directory"
            )
        return None
    return _build(data, layout, secondary, announced)


def _build(data: bytes, layout: JpegLayout, secondary: Secondary, announced: frozenset[str]) -> StandardGainMap:
    metadata = _metadata(layout, secondary)
    check_metadata(metadata, secondary.where)
    base_width, base_height, _ = frame_dimensions(layout, "primary image")
    map_width, map_height, components = frame_dimensions(secondary.layout, secondary.where)
    if map_width > MAX_MAP_SCALE * base_width or map_height > MAX_MAP_SCALE * base_height:
        raise StandardGainMapError(
            f"{secondary.where}: gain-map image of {map_width}x{map_height} is more than {MAX_MAP_SCALE} times "
            f"its {base_width}x{base_height} base on a side"
        )
    if components not in (1, 3):
        raise StandardGainMapError(f"{secondary.where}: gain-map image has {components} components, not 1 or 3")
    base_primaries = icc_primaries(layout) or "bt709"
    return StandardGainMap(
        metadata=metadata,
        base_size=(base_width, base_height),
        gain_map_size=(map_width, map_height),
        gain_map_channels=components,
        base_primaries=base_primaries,
        alternate_primaries=icc_primaries(secondary.layout) or base_primaries,
        gain_map_offset=secondary.offset,
        gain_map_jpeg=secondary.jpeg,
        announced_by=announced,
        data=bytes(data),
    )


def _metadata(layout: JpegLayout, secondary: Secondary) -> StandardGainMapMetadata:
    """The metadata, by precedence: ISO 21496-1, then hdrgm XMP, then Apple's marking."""
    xmp = read_xmp(secondary.layout, secondary.where)
    iso = full_iso_payload(secondary.layout) or full_iso_payload(layout)
    try:
        if iso is not None:
            return iso_metadata(iso, secondary.where)
        check_primary_iso_version(layout)
    except UnsupportedIsoVersionError:
        if xmp is None or f"{{{HDRGM_NS}}}Version" not in xmp:
            raise
    if xmp is not None and f"{{{HDRGM_NS}}}Version" in xmp:
        return xmp_metadata(xmp, primary_xmp(layout), secondary.where)
    if xmp is not None and xmp.get(f"{{{APDI_NS}}}AuxiliaryImageType") == APPLE_AUX_TYPE:
        return apple_metadata(xmp, layout, secondary.where)
    raise StandardGainMapError(f"{secondary.where}: no ISO 21496-1, hdrgm or Apple gain-map metadata")
