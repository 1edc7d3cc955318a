"""The plugin's options: module constants, each with its default, set through ``register(**options)``.

``pillow_plugin.register(read_standard=False)`` sets :data:`READ_STANDARD`, and so on: option
names are these constants in lower case. Unknown names warn and are ignored.
"""

from __future__ import annotations

READ_STANDARD: bool = True
"""Read the standard gain maps (ISO 21496-1, Ultra HDR / Adobe hdrgm XMP, Apple HDRGainMap)
as well as GainMLP ones. With False, only GainMLP files get an ``im.hdr``; the others open as
plain JPEGs do. Default True."""

STANDARD_SDR_WHITE: float = 203.0
"""cd/m² of SDR reference white for standard gain maps, used by ``im.hdr.absolute()`` and
``im.hdr.pq()``. Standard gain maps are relative (1.0 = SDR white) and record no luminance;
203 cd/m² is ITU-R BT.2408's reference white, which libultrahdr uses too. GainMLP files record
their own (100 cd/m²) and ignore this. Default 203."""

KEEP_ON_SAVE: bool = True
"""When an image opened from a gain-map JPEG is saved as JPEG with its pixels unchanged, put
the gain map back into the new file. With False such saves drop it, with a
:class:`~pillow_plugin.errors.HdrDroppedWarning`. Default True."""

#: Option names as ``register`` takes them, with the type each must have.
TYPES: dict[str, type | tuple[type, ...]] = {
    "read_standard": bool,
    "standard_sdr_white": (int, float),
    "keep_on_save": bool,
}
