"""Standard gain-map JPEGs: ISO 21496-1, Ultra HDR / Adobe hdrgm XMP and Apple HDRGainMap.

Phones and editors store an HDR photo as an SDR JPEG followed by a second, smaller JPEG, the
gain map. Three dialects say how to apply it:

- ISO 21496-1: binary metadata in an APP2 segment of the gain-map image. The primary image's
  APP2 segment may hold only the version, to announce the gain map.
- Adobe / Google Ultra HDR: the same quantities as XMP properties in the ``hdrgm`` namespace of
  the gain-map image; the primary's XMP carries ``hdrgm:Version`` and a GContainer directory.
- Apple HDRGainMap: a one-channel map marked by ``apdi:AuxiliaryImageType``, with its own
  formula and a headroom from XMP or the primary's maker note.

The data flow, one module per step:

1. :mod:`.locate` finds the secondary image: the primary's MPF index (CIPA DC-007), or its
   XMP GContainer directory when MPF fails. It also writes MPF for :func:`attach_gain_map`.
2. :mod:`.find` reads the metadata with ISO > XMP > Apple precedence, from :mod:`.iso`,
   :mod:`.xmp` and :mod:`.apple`, each converting its dialect into ISO 21496-1's terms
   (:mod:`.metadata`), checks it, and reads the images' primaries from their ICC profiles
   (:mod:`.icc`). The result is a :class:`StandardGainMap`; no pixels are decoded yet.
3. :meth:`StandardGainMap.render` (:mod:`.gain_map`) decodes the base and the map
   (:mod:`.decode`), resamples the map to the base's size (:mod:`.resample`) and applies the
   gain with the ISO or the Apple formula (:mod:`.apply`).

Binary structures shared by these steps (TIFF IFDs, construct structs) are read by
:mod:`.binary`.
"""

from .find import find_gain_map
from .gain_map import StandardGainMap
from .iso import iso_metadata_payload
from .locate import MpfImage, append_image, attach_gain_map, is_gain_map_image, mpf_images
from .metadata import StandardGainMapMetadata, StandardKind
from .xmp import HDRGM_NS, xmp_mentions

__all__ = [
    "HDRGM_NS",
    "MpfImage",
    "StandardGainMap",
    "StandardGainMapMetadata",
    "StandardKind",
    "append_image",
    "attach_gain_map",
    "find_gain_map",
    "is_gain_map_image",
    "iso_metadata_payload",
    "mpf_images",
    "xmp_mentions",
]
