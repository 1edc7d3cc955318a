"""The default SDR rendition of an HDR image (spec appendix A).

A per-channel rational curve that stands in for DaVinci Resolve's default HDR-to-SDR
conversion, which the paper's SDR images were made with; it fits the authors' LUT to 0.002.
For each BT.2020 channel with luminance L in cd/m²: x = L / 1000,
y = min((1 + b) x / (1 + b x), 1) with b = 0.9662; then BT.2020 to BT.709, clip to [0, 1],
and encode with gamma 1/2.4.
"""

from __future__ import annotations

import numpy as np

from .colour import PRIMARIES, convert_primaries, gamma24_encode, pq_decode
from .limits import map_rows

CURVE_B = 0.9662
CURVE_PEAK_LUMINANCE = 1000.0


def tone_curve(luminance: np.ndarray) -> np.ndarray:
    """The per-channel curve: cd/m² to relative SDR linear light in [0, 1]."""
    x = np.clip(luminance, 0.0, None) / CURVE_PEAK_LUMINANCE
    relative: np.ndarray = np.minimum((1.0 + CURVE_B) * x / (1.0 + CURVE_B * x), 1.0)
    return relative


def default_sdr(hdr_pq: np.ndarray) -> np.ndarray:
    """Render the default SDR base from HDR.

    The curve works in float64 (several image-sized temporaries at 8 bytes a sample), so it
    runs a block of rows at a time; the output is the same as in one pass.

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.

    Returns:
        uint8 (H, W, 3), BT.709 primaries, pure gamma 2.4 code values.
    """
    return map_rows(_default_sdr_block, np.empty(hdr_pq.shape, np.uint8), hdr_pq)


def _default_sdr_block(hdr_pq: np.ndarray) -> np.ndarray:
    """:func:`default_sdr` of float32 (rows, W, 3) PQ: uint8 (rows, W, 3) code values."""
    linear_bt2020 = tone_curve(pq_decode(hdr_pq.astype(np.float64)))
    linear_bt709 = np.clip(convert_primaries(linear_bt2020, PRIMARIES["bt2020"], PRIMARIES["bt709"]), 0.0, 1.0)
    code = gamma24_encode(linear_bt709)
    return np.clip(np.round(code * 255.0), 0, 255).astype(np.uint8)
