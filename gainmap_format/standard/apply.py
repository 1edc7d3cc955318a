"""Applying a gain map to the linear base: ISO 21496-1's formula and Apple's.

Both formulas take the base as linear float32 (H, W, 3) and the map as its decoded uint8 code
values, resample the map to the base's size and work in place on the base.
"""

from __future__ import annotations

import functools

import numpy as np

from ..colour import bt709_inverse_oetf
from .metadata import StandardGainMapMetadata
from .resample import resample


def apply_iso(base: np.ndarray, codes: np.ndarray, meta: StandardGainMapMetadata, weight: float) -> np.ndarray:
    """ISO 21496-1 §7, in place on ``base``: (base + k_base) 2^(lerp(min, max, g^(1/gamma)) w) - k_alt.

    Channels that share a map plane and parameters share one gain plane. A map of the base's
    size is looked up in a 256-entry table; a resampled one, whose values fall between code
    values, is computed directly.

    Args:
        base: float32 (H, W, 3), linear light; overwritten.
        codes: uint8 (h, w, 1 or 3), the gain-map image's code values.
        meta: the parameters.
        weight: ISO 21496-1's weight w in [0, 1].

    Returns:
        ``base``, now the rendition at ``weight``.
    """
    height, width = base.shape[:2]
    planes: dict[int, np.ndarray] = {}
    gains: dict[tuple[int, float, float, float], np.ndarray] = {}
    keys = []
    for c in range(3):
        source = c if codes.shape[2] == 3 else 0
        key = (source, meta.gain_map_min[c], meta.gain_map_max[c], meta.gamma[c])
        keys.append(key)
        if key in gains:
            continue
        if codes.shape[:2] == (height, width):
            table = _iso_gain(np.linspace(0.0, 1.0, 256, dtype=np.float32), meta, c, weight)
            gains[key] = table[codes[..., source]]
            continue
        if source not in planes:
            unit = codes[..., source].astype(np.float32) / np.float32(255.0)
            planes[source] = resample(unit, (width, height))
        gains[key] = _iso_gain(planes[source], meta, c, weight)
    base += np.array(meta.base_offset, dtype=np.float32)
    if len(gains) == 1:
        base *= gains[keys[0]][..., None]
    else:
        for c, key in enumerate(keys):
            base[..., c] *= gains[key]
    base -= np.array(meta.alternate_offset, dtype=np.float32)
    return base


def _iso_gain(g: np.ndarray, meta: StandardGainMapMetadata, channel: int, weight: float) -> np.ndarray:
    """The linear gain 2^(lerp(min, max, g^(1/gamma)) w) for map values g in [0, 1]; g is kept."""
    low, high = np.float32(meta.gain_map_min[channel]), np.float32(meta.gain_map_max[channel])
    if meta.gamma[channel] != 1.0:
        log_gain = np.power(g, np.float32(1.0 / meta.gamma[channel]))
        log_gain *= high - low
    else:
        log_gain = g * (high - low)
    log_gain += low
    log_gain *= np.float32(weight)
    gain: np.ndarray = np.exp2(log_gain, out=log_gain)
    return gain


def apply_apple(base: np.ndarray, codes: np.ndarray, headroom: float, weight: float) -> np.ndarray:
    """Apple, in place on ``base``: HDR = SDR (1 + (headroom - 1) g), g the map through BT.709's inverse OETF.

    A display with less headroom gets the gain raised to the weight, which interpolates in log
    space as ISO 21496-1 does. The map is linearised before it is resampled, as Apple's
    description of it as linear data implies.

    Args:
        base: float32 (H, W, 3), linear light; overwritten.
        codes: uint8 (h, w, C), the gain-map image's code values; its first channel is used.
        headroom: Apple's linear headroom, >= 1.
        weight: ISO 21496-1's weight w in [0, 1].

    Returns:
        ``base``, now the rendition at ``weight``.
    """
    height, width = base.shape[:2]
    g = resample(_bt709_table()[codes[..., 0]], (width, height))
    gain = g * np.float32(headroom - 1.0)
    gain += np.float32(1.0)
    if weight != 1.0:
        np.power(gain, np.float32(weight), out=gain)
    base *= gain[..., None]
    return base


@functools.cache
def _bt709_table() -> np.ndarray:
    """float32 (256,): ITU-R BT.709's inverse OETF of each 8-bit code value (Apple maps)."""
    return bt709_inverse_oetf(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
