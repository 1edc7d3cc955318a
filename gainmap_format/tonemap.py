"""The SDR rendition of an HDR image: the base a plain viewer shows (spec appendix A).

Three tone maps, chosen by name:

- ``"bt2390"`` (the default): ITU-R BT.2390's EETF applied to max(R, G, B) in the base's
  primaries. HDR reference white (ITU-R BT.2408's 203 cd/m², shifted by the exposure) lands at SDR
  white; below the EETF's knee light is kept as it is, above it a Hermite spline in the PQ domain
  rolls the image's own peak off to SDR white. Scaling all three channels by one factor keeps
  hue and saturation, and nothing clips.
- ``"reinhard"``: Reinhard et al.'s extended operator on luminance, white point at the image's
  peak; channels that still exceed 1 are desaturated towards their luminance.
- ``"paper"``: the paper's stand-in for DaVinci Resolve's default conversion (it fits the
  authors' LUT to 0.002). Per BT.2020 channel with luminance L in cd/m²: x = L / 1000,
  y = min((1 + b) x / (1 + b x), 1) with b = 0.9662; then to the base's primaries and clipped.
  The evaluation's paper protocol renders its SDR with it (:func:`default_sdr`).

The hue-preserving maps first bring colours that the base's primaries cannot show into their
gamut by mixing them with grey of the same luminance, instead of clipping each channel.
"""

from __future__ import annotations

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

ToneMapName = Literal["bt2390", "reinhard", "paper"]
TONE_MAPS: tuple[ToneMapName, ...] = ("bt2390", "reinhard", "paper")
DEFAULT_TONE_MAP: ToneMapName = "bt2390"

#: cd/m² of HDR reference white (ITU-R BT.2408), placed at SDR white by the photographic maps.
REFERENCE_WHITE_LUMINANCE = 203.0

CURVE_B = 0.9662
CURVE_PEAK_LUMINANCE = 1000.0


def tone_curve(luminance: np.ndarray) -> np.ndarray:
    """The paper's per-channel curve: cd/m² to relative SDR linear light in [0, 1]."""
    x = np.clip(luminance, 0.0, None) / CURVE_PEAK_LUMINANCE
    relative: np.ndarray = np.minimum((1.0 + CURVE_B) * x / (1.0 + CURVE_B * x), 1.0)
    return relative


def bt2390_eetf(relative: np.ndarray, peak: float, target: float = REFERENCE_WHITE_LUMINANCE) -> np.ndarray:
    """ITU-R BT.2390-10 §5.4's EETF, from a source peak down to a target peak, black level 0.

    Args:
        relative: float64 array, linear light with 1.0 = the target peak.
        peak: the source's peak on the same scale; at or below 1 the EETF is the identity.
        target: cd/m² of 1.0 (the target peak): the spline works on PQ code values, so it
            depends on absolute light; SDR white at HDR reference white (203 cd/m²) by default.

    Returns:
        float64, same shape, in [0, 1], 1 at ``peak``.
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


def cap_peak(hdr_pq: np.ndarray, peak_luminance: float) -> np.ndarray:
    """Tone-map HDR whose brightest channel exceeds ``peak_luminance`` down to it; other HDR is returned as is.

    :func:`bt2390_eetf` on max(R, G, B) in BT.2020, so hue is kept and light below the EETF's
    knee is unchanged. For files meant for displays of known capability (``max_headroom``).

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.
        peak_luminance: cd/m², > 0: the brightest light the result may hold.

    Returns:
        float32 (H, W, 3), BT.2020 PQ code values; ``hdr_pq`` itself when nothing exceeds the peak.
    """
    peak = float(pq_decode(np.array(np.max(hdr_pq), np.float64))) / peak_luminance
    if peak <= 1.0:
        return hdr_pq

    def block(rows: np.ndarray) -> np.ndarray:
        luminance = pq_decode(rows.astype(np.float64))
        brightest = luminance.max(axis=-1) / peak_luminance
        scale = bt2390_eetf(brightest, peak, peak_luminance) / np.maximum(brightest, 1e-12)
        capped: np.ndarray = pq_encode(luminance * scale[..., None])
        return capped

    return map_rows(block, np.empty(hdr_pq.shape, np.float32), hdr_pq)


def extended_reinhard(relative: np.ndarray, peak: float) -> np.ndarray:
    """Reinhard et al. 2002, eq. 4: L (1 + L / Lw²) / (1 + L), with Lw the image's peak (at least 1)."""
    white = max(peak, 1.0)
    out: np.ndarray = np.clip(relative * (1.0 + relative / (white * white)) / (1.0 + relative), 0.0, 1.0)
    return out


def render_sdr(
    hdr_pq: np.ndarray,
    tone_map: ToneMapName = DEFAULT_TONE_MAP,
    *,
    exposure: float = 0.0,
    transfer: TransferName = "srgb",
    primaries: PrimariesName = "bt709",
) -> np.ndarray:
    """Render an SDR base from HDR with a named tone map.

    The maps work in float64 (several image-sized temporaries at 8 bytes a sample), so they
    run a block of rows at a time; the output is the same as in one pass.

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.
        tone_map: "bt2390", "reinhard" or "paper" (see the module's notes).
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
    weights = luminance_weights(PRIMARIES[primaries])
    use_max = tone_map == "bt2390"
    curve = bt2390_eetf if use_max else extended_reinhard

    def light_and_norm(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = _in_gamut(_relative_light(rows, gain, primaries), weights)
        return rgb, rgb.max(axis=-1) if use_max else rgb @ weights

    # Two passes over the rows: the roll-off depends on the whole image's peak.
    peak = float(map_rows(lambda rows: light_and_norm(rows)[1], np.empty(hdr_pq.shape[:2]), hdr_pq).max())

    def block(rows: np.ndarray) -> np.ndarray:
        rgb, norm = light_and_norm(rows)
        scale = curve(norm, peak) / np.maximum(norm, 1e-12)
        return _code(_desaturate_overflow(rgb * scale[..., None], weights), transfer)

    return map_rows(block, out, hdr_pq)


def default_sdr(hdr_pq: np.ndarray) -> np.ndarray:
    """The paper's SDR rendition, as its evaluation protocol uses it.

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ code values.

    Returns:
        uint8 (H, W, 3), BT.709 primaries, pure gamma 2.4 code values.
    """
    return render_sdr(hdr_pq, "paper", transfer="gamma2.4", primaries="bt709")


def _relative_light(hdr_pq: np.ndarray, gain: float, primaries: PrimariesName) -> np.ndarray:
    """float64 (..., 3) linear light in ``primaries``, 1.0 = HDR reference white times ``gain``."""
    relative = pq_decode(hdr_pq.astype(np.float64)) * (gain / REFERENCE_WHITE_LUMINANCE)
    converted = convert_primaries(relative, PRIMARIES["bt2020"], PRIMARIES[primaries])
    return converted.astype(np.float64)


def _in_gamut(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mix colours with a negative channel with grey of their luminance until none is negative.

    Args:
        rgb: float64 (..., 3), linear light; a negative channel is a colour outside the primaries.
        weights: float64 (3,), the primaries' luminance weights.

    Returns:
        float64 (..., 3), every channel >= 0, luminance kept (negative luminance becomes black).
    """
    luminance = np.maximum(rgb @ weights, 0.0)[..., None]
    lowest = rgb.min(axis=-1, keepdims=True)
    keep = np.where(lowest < 0.0, luminance / np.maximum(luminance - lowest, 1e-12), 1.0)
    mixed: np.ndarray = np.maximum(luminance + keep * (rgb - luminance), 0.0)
    return mixed


def _desaturate_overflow(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mix colours with a channel above 1 with grey of their luminance (at most 1) until none is.

    Args:
        rgb: float64 (..., 3), linear light, channels >= 0.
        weights: float64 (3,), the primaries' luminance weights (they sum to 1).

    Returns:
        float64 (..., 3) in [0, 1].
    """
    luminance = np.minimum(rgb @ weights, 1.0)[..., None]
    highest = rgb.max(axis=-1, keepdims=True)
    keep = np.where(highest > 1.0, (1.0 - luminance) / np.maximum(highest - luminance, 1e-12), 1.0)
    mixed: np.ndarray = np.clip(luminance + keep * (rgb - luminance), 0.0, 1.0)
    return mixed


def _code(linear: np.ndarray, transfer: TransferName) -> np.ndarray:
    """uint8 code values of relative linear light in [0, 1]."""
    return np.clip(np.round(transfer_encode(linear, transfer) * 255.0), 0, 255).astype(np.uint8)


def _paper_block(hdr_pq: np.ndarray, gain: float, transfer: TransferName, primaries: PrimariesName) -> np.ndarray:
    """The paper's map of float32 (rows, W, 3) PQ: uint8 (rows, W, 3) code values."""
    linear_bt2020 = tone_curve(pq_decode(hdr_pq.astype(np.float64)) * gain)
    linear = np.clip(convert_primaries(linear_bt2020, PRIMARIES["bt2020"], PRIMARIES[primaries]), 0.0, 1.0)
    return _code(linear, transfer)
