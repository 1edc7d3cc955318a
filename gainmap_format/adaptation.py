"""Display adaptation as ISO 21496-1 defines it: how much of the HDR a display is shown.

Our files record their headrooms the way ISO 21496-1 does, so that one weight serves both our
maps (``codec.decode(display_headroom=...)``, spec §7.5) and the standard ones
(:mod:`.standard`); this module holds it apart from both.
"""

from __future__ import annotations

import math

from .errors import InputError


def iso21496_weight(display_headroom: float, base_headroom: float, alternate_headroom: float) -> float:
    """ISO 21496-1's weight for a display: how far to go from the base toward the alternate.

    The same formula serves both directions: when the base is the HDR rendition (base headroom
    above the alternate's), a brighter display gets a smaller weight.

    Args:
        display_headroom: log2 of the display's peak over SDR white (0 for an SDR display).
        base_headroom: log2 headroom of the base rendition.
        alternate_headroom: log2 headroom of the alternate rendition.

    Returns:
        w in [0, 1]: 0 shows the base, 1 the full alternate rendition.
    """
    if not math.isfinite(display_headroom):
        raise InputError(f"display headroom {display_headroom} is not finite")
    if alternate_headroom == base_headroom:
        return 1.0
    return min(1.0, max(0.0, (display_headroom - base_headroom) / (alternate_headroom - base_headroom)))
