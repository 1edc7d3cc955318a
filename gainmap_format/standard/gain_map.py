"""The gain map that :func:`~gainmap_format.standard.find_gain_map` returns, and its rendering.

Conventions of the output of :meth:`StandardGainMap.render`:

- float32 (H, W, 3), linear light, relative: 1.0 is SDR reference white (base code value 255).
- The base is decoded with the sRGB transfer, as every writer assumes. Its primaries come from
  its ICC profile when that is recognisably sRGB/BT.709, Display P3 or BT.2020 (by the profile's
  ``cicp`` tag or its colorants), and are taken as BT.709 otherwise.
- The gain applies in the base's colour space when ``use_base_colour_space`` is set, otherwise in
  the gain-map image's (its ICC profile, as libultrahdr does); the output stays in that space,
  which :attr:`StandardGainMap.primaries` names. Converting back would push wide-gamut HDR
  colours negative.
- The base and the map are decoded (:mod:`.decode`) and the map resampled to the base's size
  (:mod:`.resample`) as libultrahdr, the reference decoder, does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..adaptation import iso21496_weight
from ..colour import PRIMARIES, PrimariesName, convert_primaries
from ..errors import StandardGainMapError
from ..limits import memory_guard
from .apply import apply_apple, apply_iso
from .decode import base_linear, decode_jpeg
from .metadata import StandardGainMapMetadata


@dataclass(frozen=True)
class StandardGainMap:
    """A standard gain map found in a JPEG, checked and ready to render.

    Attributes:
        metadata: the parameters, in ISO 21496-1's terms.
        base_size: (width, height) of the primary image.
        gain_map_size: (width, height) of the gain-map image.
        gain_map_channels: components of the gain-map JPEG, 1 or 3.
        base_primaries: the base's primaries, from its ICC profile ("bt709" when unrecognised).
        alternate_primaries: primaries of the gain-map image's ICC profile; the base's when it
            has none that is recognised.
        gain_map_offset: byte offset of the gain-map JPEG in the file.
        gain_map_jpeg: the gain-map JPEG as stored, SOI to EOI.
        announced_by: how the primary image announces the gain map: "iso" (a version-only ISO
            APP2 segment) and/or "xmp" (``hdrgm:Version``); empty for Apple's files.
        data: the whole file.
    """

    metadata: StandardGainMapMetadata
    base_size: tuple[int, int]
    gain_map_size: tuple[int, int]
    gain_map_channels: int
    base_primaries: PrimariesName
    alternate_primaries: PrimariesName
    gain_map_offset: int
    gain_map_jpeg: bytes = field(repr=False)
    announced_by: frozenset[str] = frozenset()
    data: bytes = field(default=b"", repr=False)

    @property
    def primaries(self) -> PrimariesName:
        """Primaries of :meth:`render`'s output: where the gain applies (see the module notes)."""
        return self.base_primaries if self.metadata.use_base_colour_space else self.alternate_primaries

    def weight(self, display_headroom: float | None = None) -> float:
        """ISO 21496-1's weight for a display, in either direction.

        Args:
            display_headroom: log2 of the display's peak over SDR white; None for the file's
                fullest rendition.

        Returns:
            w in [0, 1]: 0 renders the base, 1 the alternate.
        """
        meta = self.metadata
        headroom = meta.max_headroom if display_headroom is None else display_headroom
        return iso21496_weight(headroom, meta.base_headroom, meta.alternate_headroom)

    def render(self, display_headroom: float | None = None) -> np.ndarray:
        """Apply the gain map.

        Args:
            display_headroom: log2 of the display's peak over SDR white (0 for an SDR display);
                None (the default) renders the file's fullest HDR rendition.

        Returns:
            float32 (H, W, 3), linear light in :attr:`primaries`, 1.0 = SDR reference white.

        Raises:
            StandardGainMapError: the base or gain-map image cannot be decoded.
            InputError: ``display_headroom`` is not finite, or the images are too large for the
                memory available.
        """
        weight = self.weight(display_headroom)
        with memory_guard("standard gain map"):
            base = base_linear(self.data)
            if base.shape[:2] != (self.base_size[1], self.base_size[0]):
                raise StandardGainMapError(
                    f"the base decodes to {base.shape[1]}x{base.shape[0]}, its frame header says "
                    f"{self.base_size[0]}x{self.base_size[1]}"
                )
            if self.primaries != self.base_primaries:
                base = convert_primaries(base, PRIMARIES[self.base_primaries], PRIMARIES[self.primaries])
            codes = decode_jpeg(self.gain_map_jpeg, f"gain-map image at offset {self.gain_map_offset}")
            if self.metadata.apple_headroom is not None:
                return apply_apple(base, codes, self.metadata.apple_headroom, weight)
            return apply_iso(base, codes, self.metadata, weight)
