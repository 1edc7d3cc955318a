"""The SDR rendition of an HDR image: the base a plain viewer shows (spec appendix A).

Three tone maps, chosen by name:

- ``"reinhard"`` (the default): Reinhard et al.'s extended operator, L (1 + L / Lw²) / (1 + L),
  applied to max(R, G, B) in the base's primaries, with Lw the image's peak, so the brightest
  light lands exactly at SDR white and nothing clips. The curve's slope at black is 1 (shadows
  keep their light); its unit (L = 1, which lands near half of SDR white's light) is
  :data:`REINHARD_UNIT_LUMINANCE`, a quarter stop above HDR reference white, one value for all
  images, chosen by measuring bases against cameras' own SDR renditions of their HDR (appendix
  A has the figures).
- ``"bt2390"``: ITU-R BT.2390's EETF applied to max(R, G, B). HDR reference white (ITU-R
  BT.2408's 203 cd/m²) lands at SDR white; below the EETF's knee light is kept as it is, above
  it a Hermite spline in the PQ domain rolls the image's peak off to SDR white. For HDR mastered
  with diffuse white at 203 cd/m² and little above it.
- ``"paper"``: the paper's stand-in for DaVinci Resolve's default conversion (it fits the
  authors' LUT to 0.002). Per BT.2020 channel with luminance L in cd/m²: x = L / 1000,
  y = min((1 + b) x / (1 + b x), 1) with b = 0.9662; then to the base's primaries and clipped.
  The evaluation's paper protocol renders its SDR with it (:func:`default_sdr`).

The two photographic maps scale all three channels of a pixel by one factor, which keeps hue
and saturation; first they bring colours that the base's primaries cannot show into their gamut
by mixing them with grey of the same luminance, instead of clipping each channel. They compute
in float32, a block of rows at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from .colour import (
    PRIMARIES,
    PrimariesName,
    TransferName,
    convert_primaries,
    luminance_weights,
    pq_decode,
    pq_encode,
    transfer_encode,
)
from .limits import map_rows

ToneMapName = Literal["reinhard", "bt2390", "paper"]
TONE_MAPS: tuple[ToneMapName, ...] = ("reinhard", "bt2390", "paper")
DEFAULT_TONE_MAP: ToneMapName = "reinhard"

#: cd/m² of HDR reference white (ITU-R BT.2408): SDR white for "bt2390".
REFERENCE_WHITE_LUMINANCE = 203.0

#: cd/m² of the Reinhard curve's unit: a quarter stop above reference white (see the module notes).
REINHARD_UNIT_LUMINANCE = REFERENCE_WHITE_LUMINANCE * 2.0**0.25

CURVE_B = 0.9662
CURVE_PEAK_LUMINANCE = 1000.0

#: Norms below this are black: their scale factor is never used.
_TINY = 1e-12

Curve = Callable[[np.ndarray, float], np.ndarray]


def tone_curve(luminance: np.ndarray) -> np.ndarray:
    """The paper's per-channel curve: cd/m² to relative SDR linear light in [0, 1]."""
    x = np.clip(luminance, 0.0, None) / CURVE_PEAK_LUMINANCE
    relative: np.ndarray = np.minimum((1.0 + CURVE_B) * x / (1.0 + CURVE_B * x), 1.0)
    return relative


def bt2390_eetf(relative: np.ndarray, peak: float, target: float = REFERENCE_WHITE_LUMINANCE) -> np.ndarray:
    """ITU-R BT.2390-10 §5.4's EETF, from a source peak down to a target peak, black level 0.

    Args:
        relative: float32 or float64 array, linear light with 1.0 = the target peak.
        peak: the source's peak on the same scale; at or below 1 the EETF is the identity.
        target: cd/m² of 1.0 (the target peak): the spline works on PQ code values, so it
            depends on absolute light; SDR white at HDR reference white (203 cd/m²) by default.

    Returns:
        Same shape and dtype, in [0, 1], 1 at ``peak``.
    """
    if peak <= 1.0:
        unchanged: np.ndarray = np.clip(relative, 0.0, 1.0)
        return unchanged
    source_peak = float(pq_encode(np.array(peak * target)))
    e1 = np.clip(pq_encode(relative * target) / source_peak, 0.0, 1.0)
    max_lum = float(pq_encode(np.array(target))) / source_peak
    knee = 1.5 * max_lum - 0.5
    t = np.clip((e1 - knee) / (1.0 - knee), 0.0, 1.0)
    t2, t3 = t * t, t * t * t
    spline = (2 * t3 - 3 * t2 + 1) * knee + (t3 - 2 * t2 + t) * (1.0 - knee) + (-2 * t3 + 3 * t2) * max_lum
    e2 = np.where(e1 < knee, e1, spline)
    out: np.ndarray = np.clip(pq_decode(e2 * source_peak) / target, 0.0, 1.0)
    return out


def extended_reinhard(relative: np.ndarray, peak: float) -> np.ndarray:
    """Reinhard et al. 2002, eq. 4: L (1 + L / Lw²) / (1 + L), with Lw the peak (at least 1).

    Args:
        relative: float32 or float64 array, L >= 0 in the curve's unit.
        peak: Lw, the brightest L of the image.

    Returns:
        Same shape and dtype, in [0, 1]; 1 at ``peak`` and above.
    """
    white = max(peak, 1.0)
    out: np.ndarray = np.minimum(relative * (1.0 + relative / (white * white)) / (1.0 + relative), 1.0)
    return out


def peak_luminance(hdr_pq: np.ndarray) -> float:
    """cd/m² of the brightest channel of BT.2020 PQ code values (one cheap pass, no decode)."""
    return float(pq_decode(np.array(np.max(hdr_pq), np.float64)))


def cap_peak(hdr_pq: np.ndarray, peak_luminance_cap: float) -> np.ndarray:
    """Tone-map HDR whose brightest channel exceeds ``peak_luminance_cap`` down to it; other HDR is returned as is.

    :func:`bt2390_eetf` on max(R, G, B) in BT.2020, so hue is kept and light below the EETF's
    knee is unchanged. For files meant for displays of known capability (``max_headroom``).

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.
        peak_luminance_cap: cd/m², > 0: the brightest light the result may hold.

    Returns:
        float32 (H, W, 3), BT.2020 PQ code values; ``hdr_pq`` itself when nothing exceeds the peak.
    """
    peak = peak_luminance(hdr_pq) / peak_luminance_cap
    if peak <= 1.0:
        return hdr_pq

    def block(rows: np.ndarray) -> np.ndarray:
        luminance = pq_decode(rows)
        brightest = _largest(luminance) * np.float32(1.0 / peak_luminance_cap)
        scale = bt2390_eetf(brightest, peak, peak_luminance_cap) / np.maximum(brightest, np.float32(_TINY))
        capped: np.ndarray = pq_encode(luminance * scale[..., None])
        return capped

    return map_rows(block, np.empty(hdr_pq.shape, np.float32), hdr_pq)


def render_sdr(
    hdr_pq: np.ndarray,
    tone_map: ToneMapName = DEFAULT_TONE_MAP,
    *,
    exposure: float = 0.0,
    transfer: TransferName = "srgb",
    primaries: PrimariesName = "bt709",
) -> np.ndarray:
    """Render an SDR base from HDR with a named tone map.

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.
        tone_map: "reinhard", "bt2390" or "paper" (see the module's notes).
        exposure: stops added to the HDR before the map (positive brightens).
        transfer: the base's transfer ("srgb" or "gamma2.4").
        primaries: the base's primaries ("bt709", "display-p3" or "bt2020").

    Returns:
        uint8 (H, W, 3), code values in ``primaries`` and ``transfer``.
    """
    gain = 2.0**exposure
    out = np.empty(hdr_pq.shape, np.uint8)
    if tone_map == "paper":
        return map_rows(lambda rows: _paper_block(rows, gain, transfer, primaries), out, hdr_pq)
    unit = (REINHARD_UNIT_LUMINANCE if tone_map == "reinhard" else REFERENCE_WHITE_LUMINANCE) / gain
    curve: Curve = extended_reinhard if tone_map == "reinhard" else lambda norm, peak: bt2390_eetf(norm, peak, unit)
    # The roll-off ends at the image's peak: its brightest BT.2020 channel, which one pass over
    # the code values finds. Colours brought into a smaller gamut may exceed it a little; their
    # norm lands at SDR white.
    peak = peak_luminance(hdr_pq) / unit
    weights = luminance_weights(PRIMARIES[primaries]).astype(np.float32)

    def block(rows: np.ndarray) -> np.ndarray:
        return _photographic_block(rows, unit, primaries, weights, curve, peak, transfer)

    return map_rows(block, out, hdr_pq)


def default_sdr(hdr_pq: np.ndarray) -> np.ndarray:
    """The paper's SDR rendition, as its evaluation protocol uses it.

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.

    Returns:
        uint8 (H, W, 3), BT.709 primaries, pure gamma 2.4 code values.
    """
    return render_sdr(hdr_pq, "paper", transfer="gamma2.4", primaries="bt709")


def _photographic_block(
    hdr_pq: np.ndarray,
    unit: float,
    primaries: PrimariesName,
    weights: np.ndarray,
    curve: Curve,
    peak: float,
    transfer: TransferName,
) -> np.ndarray:
    """A hue-preserving map of float32 (rows, W, 3) PQ: uint8 (rows, W, 3) code values.

    ``curve`` maps max(R, G, B) of the in-gamut light (1.0 = ``unit`` cd/m²) to SDR light; all
    three channels are scaled by the same factor.
    """
    light = pq_decode(hdr_pq) * np.float32(1.0 / unit)
    rgb = _in_gamut(convert_primaries(light, PRIMARIES["bt2020"], PRIMARIES[primaries]), weights)
    norm = _largest(rgb)
    scale = curve(norm, peak) / np.maximum(norm, np.float32(_TINY))
    return _code(rgb * scale[..., None], transfer)


def _in_gamut(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mix colours with a negative channel with grey of their luminance until none is negative.

    Args:
        rgb: float32 (..., 3), linear light; a negative channel is a colour outside the primaries.
        weights: float32 (3,), the primaries' luminance weights.

    Returns:
        float32 (..., 3), every channel >= 0, luminance kept (negative luminance becomes black).
    """
    luminance = np.maximum(rgb @ weights, 0.0)[..., None]
    lowest = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])[..., None]
    keep = np.where(lowest < 0.0, luminance / np.maximum(luminance - lowest, np.float32(_TINY)), np.float32(1.0))
    mixed: np.ndarray = np.maximum(luminance + keep * (rgb - luminance), 0.0)
    return mixed


def _largest(rgb: np.ndarray) -> np.ndarray:
    """max(R, G, B) of (..., 3) as (...); channel by channel, several times faster than ``max(axis=-1)``."""
    largest: np.ndarray = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    return largest


def _code(linear: np.ndarray, transfer: TransferName) -> np.ndarray:
    """uint8 code values of relative linear light in [0, 1]."""
    return np.clip(np.round(transfer_encode(linear, transfer) * 255.0), 0, 255).astype(np.uint8)


def _paper_block(hdr_pq: np.ndarray, gain: float, transfer: TransferName, primaries: PrimariesName) -> np.ndarray:
    """The paper's map of float32 (rows, W, 3) PQ: uint8 (rows, W, 3) code values."""
    linear_bt2020 = tone_curve(pq_decode(hdr_pq.astype(np.float64)) * gain)
    linear = np.clip(convert_primaries(linear_bt2020, PRIMARIES["bt2020"], PRIMARIES[primaries]), 0.0, 1.0)
    return _code(linear, transfer)
