"""Residual maps in the BT.2020 PQ domain (spec §7): from SDR and HDR to a map and back.

Both images are compared as BT.2020 PQ code values in [0, 1], the SDR placed with its white
at ``sdr_white_luminance`` (100 cd/m², PQ 0.508). With e = 1/64:

- gamma map (exponential residual, the default): f = ln(H + e) / ln(S + e), H = (S + e)^f - e
- gain map (multiplicative residual): f = (H + e) / (S + e), H = (S + e) f - e

The map is normalised per image over all pixels and channels to z = 2 (f - mean) / range,
range = max - min, before the network learns it; the container records mean and range.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .colour import (
    PRIMARIES,
    Chromaticities,
    PrimariesName,
    TransferName,
    convert_primaries,
    pq_decode,
    pq_encode,
    transfer_decode,
)
from .errors import InputError
from .network import LEVELS
from .registries import ResidualKind

EPSILON = 1.0 / 64.0
SDR_WHITE_LUMINANCE = 100.0

#: The range recorded for a flat map, so that normalising never divides by zero.
_MIN_RANGE = 1e-6

#: float32 (256,): each 8-bit code value over 255, as the SDR's normalised input and its EOTF see it.
CODE_VALUES = np.arange(LEVELS, dtype=np.float32) / np.float32(255.0)
CODE_VALUES.flags.writeable = False

#: Samples per bincount call in :meth:`Normalisation.of_levels`.
_HISTOGRAM_SLICE = 1 << 20


def sdr_to_pq(
    code: np.ndarray,
    transfer: TransferName,
    primaries: PrimariesName,
    sdr_white_luminance: float = SDR_WHITE_LUMINANCE,
) -> np.ndarray:
    """Place an 8-bit SDR image in the BT.2020 PQ domain (spec §7.1).

    Args:
        code: uint8 (H, W, 3), the base's code values.
        transfer: the base's transfer ("srgb" or "gamma2.4").
        primaries: the base's primaries.
        sdr_white_luminance: cd/m² of code value 255.

    Returns:
        float32 (H, W, 3), BT.2020 PQ code values.
    """
    linear = np.take(transfer_levels(transfer), code)
    bt2020 = convert_primaries(linear, PRIMARIES[primaries], PRIMARIES["bt2020"])
    np.clip(bt2020, 0.0, None, out=bt2020)
    bt2020 *= np.float32(sdr_white_luminance)
    return pq_encode(bt2020).astype(np.float32, copy=False)


@functools.cache
def transfer_levels(transfer: TransferName) -> np.ndarray:
    """The transfer's EOTF at each 8-bit code value: float32 (256,), relative linear, read-only.

    The same float32 values that decoding ``code / 255`` pixel by pixel gives, looked up
    instead of computed (a power per sample).
    """
    levels = transfer_decode(CODE_VALUES, transfer)
    table: np.ndarray = levels.astype(np.float32)
    table.flags.writeable = False
    return table


def hdr_to_pq(pixels: np.ndarray, chromaticities: Chromaticities, white_luminance: float) -> np.ndarray:
    """Put linear HDR pixels in the BT.2020 PQ domain (spec §7.1).

    Args:
        pixels: float (H, W, 3), linear light in ``chromaticities``; value 1.0 is
            ``white_luminance`` cd/m².
        chromaticities: primaries and white of ``pixels``.
        white_luminance: cd/m² of RGB (1, 1, 1).

    Returns:
        float32 (H, W, 3), BT.2020 PQ code values; colours outside BT.2020 and luminances
        outside [0, 10000] cd/m² are clipped.
    """
    if not (np.isfinite(white_luminance) and white_luminance > 0.0):
        raise InputError(f"white luminance {white_luminance} cd/m² must be finite and > 0")
    bt2020 = convert_primaries(pixels, chromaticities, PRIMARIES["bt2020"])
    bt2020 *= white_luminance
    np.clip(bt2020, 0.0, None, out=bt2020)
    return pq_encode(bt2020).astype(np.float32, copy=False)


def pq_to_linear(pq: np.ndarray, scale: float) -> np.ndarray:
    """BT.2020 PQ code values to linear BT.2020, in cd/m² divided by ``scale``.

    Args:
        pq: float (H, W, 3).
        scale: cd/m² that the output value 1.0 stands for (1 for absolute, 100 for
            SDR-white-relative).

    Returns:
        float32 (H, W, 3).
    """
    return (pq_decode(pq) / scale).astype(np.float32)


def residual_map(hdr_pq: np.ndarray, sdr_pq: np.ndarray, kind: ResidualKind, epsilon: float = EPSILON) -> np.ndarray:
    """The residual f that takes ``sdr_pq`` to ``hdr_pq`` (spec §7.2).

    Computed in float32, like its inputs: within 1e-7 of the exact map for a gamma map (whose
    ln(S + e) <= ln(0.53) never nears 0), within a few float32 roundings for a gain map.

    Args:
        hdr_pq: float32 (H, W, 3), BT.2020 PQ.
        sdr_pq: float32 (H, W, 3), BT.2020 PQ; SDR stays below 0.52, so ln(S + e) < 0.
        kind: "gamma" or "gain".
        epsilon: the offset e.

    Returns:
        float32 (H, W, 3), a new array.
    """
    e = np.float32(epsilon)
    h = np.add(hdr_pq, e, dtype=np.float32)
    s = np.add(sdr_pq, e, dtype=np.float32)
    if kind == "gamma":
        np.log(h, out=h)
        np.log(s, out=s)
    f: np.ndarray = np.divide(h, s, out=h)
    return f


def apply_residual(sdr_pq: np.ndarray, f: np.ndarray, kind: ResidualKind, epsilon: float = EPSILON) -> np.ndarray:
    """Invert :func:`residual_map`: the HDR that ``f`` predicts from ``sdr_pq`` (spec §7.3).

    Returns:
        float32 (H, W, 3), BT.2020 PQ clipped to [0, 1]; NaN (from a crafted map whose
        values overflow) becomes 0, so no input can make the output non-finite.
    """
    s = sdr_pq.astype(np.float32) + np.float32(epsilon)
    if kind == "gamma":
        hdr = np.power(s, f.astype(np.float32))
    else:
        hdr = s * f.astype(np.float32)
    finite: np.ndarray = np.nan_to_num(hdr - np.float32(epsilon), nan=0.0, posinf=1.0, neginf=0.0)
    clipped: np.ndarray = np.clip(finite, 0.0, 1.0)
    return clipped.astype(np.float32)


def weight_residual(f: np.ndarray, kind: ResidualKind, weight: float) -> np.ndarray:
    """Scale a residual map for a display, as ISO 21496-1 scales a log-encoded gain (spec §7.5).

    Both kinds interpolate ln(H + e) linearly between ln(S + e) (weight 0) and the full
    rendition (weight 1): for a gamma map the exponent becomes 1 + w (f - 1), for a gain map
    the gain becomes f^w.

    Args:
        f: float32 (H, W, 3), the denormalised residual.
        kind: "gamma" or "gain".
        weight: w in [0, 1] from :func:`~gainmap_format.adaptation.iso21496_weight`.

    Returns:
        float32 (H, W, 3), the residual to apply instead of ``f``.
    """
    w = np.float32(weight)
    weighted: np.ndarray = 1.0 + w * (f - 1.0) if kind == "gamma" else np.power(np.maximum(f, 0.0), w)
    return weighted.astype(np.float32)


@dataclass(frozen=True)
class Normalisation:
    """z = 2 (v - mean) / range, over all pixels and channels (spec §7.4)."""

    mean: float
    range: float

    @classmethod
    def of(cls, values: np.ndarray) -> Normalisation:
        """The normalisation of an array; a flat array gets a tiny positive range."""
        mean = float(np.mean(values, dtype=np.float64))
        return cls._of_statistics(float(np.min(values)), float(np.max(values)), mean)

    @classmethod
    def of_levels(cls, code: np.ndarray, levels: np.ndarray) -> Normalisation:
        """``Normalisation.of(levels[code])``, from a histogram of ``code`` instead of that image-sized array.

        Args:
            code: uint8 array of any shape.
            levels: float (256,), the value of each code.

        Returns:
            The same normalisation up to the float64 rounding of the mean's sum (then rounded to float32).
        """
        flat = code.reshape(-1)
        counts = np.zeros(LEVELS, np.int64)
        # In slices: bincount widens its input to intp, eight bytes a sample.
        for start in range(0, flat.size, _HISTOGRAM_SLICE):
            counts += np.bincount(flat[start:start + _HISTOGRAM_SLICE], minlength=LEVELS)
        used = np.asarray(levels, np.float64)[counts > 0]
        mean = float(counts @ np.asarray(levels, np.float64)) / flat.size
        return cls._of_statistics(float(used.min()), float(used.max()), mean)

    @classmethod
    def _of_statistics(cls, low: float, high: float, mean: float) -> Normalisation:
        value_range = max(high - low, _MIN_RANGE)
        # Rounded to float32 first, so that the numbers used here are the ones the container holds.
        return cls(float(np.float32(mean)), float(np.float32(value_range)))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Normalise: float32, about [-1, 1]."""
        normalised: np.ndarray = np.subtract(values, self.mean, dtype=np.float32)
        normalised *= 2.0
        normalised /= self.range
        return normalised

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Denormalise: float32."""
        values: np.ndarray = z * np.float32(self.range / 2.0) + np.float32(self.mean)
        return values.astype(np.float32)
