"""A standard gain map's parameters in ISO 21496-1's terms, and the bounds every dialect must meet.

Each dialect's reader (``iso``, ``xmp``, ``apple``) converts what it finds into
:class:`StandardGainMapMetadata`, so that one renderer and one set of checks serve them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..errors import StandardGainMapError

StandardKind = Literal["iso21496-1", "ultrahdr-xmp", "apple"]

#: Largest magnitude of a log2 quantity (gain-map min and max, headrooms): 32 stops is far
#: beyond any display, and 2^32 still fits float32 comfortably.
MAX_LOG2 = 32.0

#: Largest magnitude of an offset; writers use about 1/64.
MAX_OFFSET = 8.0

#: Largest gain-map gamma.
MAX_GAMMA = 1000.0

#: Smallest gain-map gamma, the reciprocal of the largest: writers use about 1, and the renderer
#: raises samples to 1 / gamma in float32, which a gamma below about 3e-39 overflows.
MIN_GAMMA = 1.0 / MAX_GAMMA


@dataclass(frozen=True)
class StandardGainMapMetadata:
    """A standard gain map's parameters in ISO 21496-1's terms, whatever the dialect.

    Rendering at weight w gives, per channel, out = (base + base_offset) 2^(L w) -
    alternate_offset with L = gain_map_min + (gain_map_max - gain_map_min) g^(1 / gamma), g the
    gain-map sample in [0, 1] (ISO 21496-1 §7). Apple maps carry the nearest description in these
    terms (0 to log2 headroom) and render with their own formula from ``apple_headroom``.

    Attributes:
        kind: "iso21496-1", "ultrahdr-xmp" or "apple".
        version: ISO: "minimum_version.writer_version" (e.g. "0.0"); XMP: ``hdrgm:Version``
            ("1.0"); Apple: ``HDRGainMapVersion`` (e.g. "65536").
        base_headroom: log2 of the base rendition's headroom (0 for an SDR base).
        alternate_headroom: log2 of the alternate rendition's headroom.
        gain_map_min: log2 gain at map value 0, for R, G and B.
        gain_map_max: log2 gain at map value 1, for R, G and B.
        gamma: the map's encoding gamma for R, G and B, each > 0.
        base_offset: k_base for R, G and B, in relative linear light.
        alternate_offset: k_alt for R, G and B.
        use_base_colour_space: whether the gain applies in the base's colour space (else in the
            gain-map image's).
        channels: how many channels the metadata gives (1: the same for R, G and B).
        apple_headroom: Apple maps only: the linear headroom of HDR = SDR (1 + (h - 1) g).
    """

    kind: StandardKind
    version: str
    base_headroom: float
    alternate_headroom: float
    gain_map_min: tuple[float, float, float]
    gain_map_max: tuple[float, float, float]
    gamma: tuple[float, float, float] = (1.0, 1.0, 1.0)
    base_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    alternate_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    use_base_colour_space: bool = True
    channels: int = 1
    apple_headroom: float | None = None

    @property
    def base_is_hdr(self) -> bool:
        """Whether the base is the HDR rendition (ISO 21496-1's backward direction)."""
        return self.base_headroom > self.alternate_headroom

    @property
    def max_headroom(self) -> float:
        """log2 headroom of the file's fullest HDR rendition."""
        return max(self.base_headroom, self.alternate_headroom)


def float_triple(values: Iterable[float]) -> tuple[float, float, float]:
    """Exactly three values as a tuple of Python floats, one per channel.

    Args:
        values: three numbers, R, G and B.

    Returns:
        (r, g, b) as floats.
    """
    a, b, c = values
    return (float(a), float(b), float(c))


def check_metadata(meta: StandardGainMapMetadata, where: str) -> None:
    """Bounds on every value a renderer uses, so that nothing overflows or divides by zero.

    Args:
        meta: the parameters to check.
        where: what the parameters came from, for the error message.

    Raises:
        StandardGainMapError: a value is not finite or is out of its range.
    """
    for name in ("base_headroom", "alternate_headroom"):
        value = getattr(meta, name)
        if not (math.isfinite(value) and 0.0 <= value <= MAX_LOG2):
            raise StandardGainMapError(f"{where}: {name} {value} is outside [0, {MAX_LOG2:g}] stops")
    for name, low, high in (
        ("gain_map_min", -MAX_LOG2, MAX_LOG2),
        ("gain_map_max", -MAX_LOG2, MAX_LOG2),
        ("base_offset", -MAX_OFFSET, MAX_OFFSET),
        ("alternate_offset", -MAX_OFFSET, MAX_OFFSET),
    ):
        for channel, value in enumerate(getattr(meta, name)):
            if not (math.isfinite(value) and low <= value <= high):
                raise StandardGainMapError(f"{where}: {name}[{channel}] {value} is outside [{low:g}, {high:g}]")
    for channel, value in enumerate(meta.gamma):
        if not (math.isfinite(value) and MIN_GAMMA <= value <= MAX_GAMMA):
            raise StandardGainMapError(f"{where}: gamma[{channel}] {value} is outside [{MIN_GAMMA:g}, {MAX_GAMMA:g}]")
