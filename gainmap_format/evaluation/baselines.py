"""The traditional gain-map pipeline the paper compares against: downsample, 8-bit, JPEG.

The residual map (gamma or gain, as in ``residual.py``) is computed at full resolution against
the same base the MLP sees, shrunk by ``scale`` in each direction with an area filter,
quantised to 8 bits (gain maps in log2, as Ultra HDR does; gamma maps directly), JPEG-encoded,
then decoded, upsampled bilinearly and applied. The steps are separate functions so that the
evaluation (``evaluation/``) can code the same 8-bit map with another codec or at a quality
chosen for a byte budget; :func:`traditional_map` runs them all with JPEG. Only the JPEG bytes
count toward its size, which flatters it by the few dozen bytes of metadata a real file would add.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import InputError
from ..registries import ResidualKind
from ..residual import EPSILON, apply_residual, residual_map

#: The range given to a flat map, so that quantising never divides by zero.
_MIN_MAP_RANGE = 1e-6


@dataclass(frozen=True)
class QuantisedMap:
    """A residual map shrunk and quantised to 8 bits, ready for an image codec.

    Code value c stands for low + (high - low) c / 255, as ISO 21496-1 reads a gain map.

    Attributes:
        code: uint8 (h, w, 3), the shrunk map's code values.
        low: the value code 0 stands for.
        high: the value code 255 stands for.
    """

    code: np.ndarray
    low: float
    high: float


@dataclass(frozen=True)
class TraditionalMap:
    """A traditionally coded residual map and what it decodes to.

    Attributes:
        jpeg: the map's JPEG bytes.
        hdr_pq: float32 (H, W, 3), BT.2020 PQ, the HDR it reconstructs.
        low: the value code 0 stands for (log2 of the gain for gain maps).
        high: the value code 255 stands for.
    """

    jpeg: bytes
    hdr_pq: np.ndarray
    low: float
    high: float


def resize_planes(channels: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """Resize each channel of a float32 (H, W, C) array to ``size`` (width, height) with Pillow.

    Returns:
        float32 (height, width, C).
    """
    planes = [np.asarray(Image.fromarray(channels[..., c], "F").resize(size, method)) for c in range(channels.shape[2])]
    return np.stack(planes, axis=-1)


def quantise_map(values: np.ndarray, scale: int) -> QuantisedMap:
    """Shrink a map by ``scale`` per axis with an area filter and quantise it over its own range.

    Args:
        values: float32 (H, W, 3), the map at full resolution (log2 gain, or gamma).
        scale: downsampling factor per axis (4: a sixteenth of the pixels).

    Returns:
        The 8-bit map and the range its code values span.
    """
    if scale < 1:
        raise InputError(f"map scale {scale} must be >= 1")
    height, width, _ = values.shape
    small_size = (max(1, round(width / scale)), max(1, round(height / scale)))
    small = resize_planes(values.astype(np.float32), small_size, Image.Resampling.BOX)
    low = float(small.min())
    span = max(float(small.max()) - low, _MIN_MAP_RANGE)
    code = np.clip(np.round((small - low) * (255.0 / span)), 0, 255).astype(np.uint8)
    return QuantisedMap(code, low, low + span)


def dequantise_map(decoded: np.ndarray, low: float, high: float, size: tuple[int, int]) -> np.ndarray:
    """The values that decoded code values stand for, upsampled bilinearly to ``size``.

    Args:
        decoded: uint8 (h, w, 3), the code values after the codec's round trip.
        low: the value code 0 stands for.
        high: the value code 255 stands for.
        size: (width, height) of the base.

    Returns:
        float32 (height, width, 3).
    """
    values = decoded.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
    return resize_planes(values, size, Image.Resampling.BILINEAR)


def map_values(hdr_pq: np.ndarray, sdr_pq: np.ndarray, kind: ResidualKind) -> np.ndarray:
    """The residual map as it is quantised: log2 of the gain for gain maps, the gamma map as is.

    Returns:
        float32 (H, W, 3).
    """
    f = residual_map(hdr_pq, sdr_pq, kind, EPSILON)
    values: np.ndarray = np.log2(f) if kind == "gain" else f
    return values


def apply_map_values(sdr_pq: np.ndarray, values: np.ndarray, kind: ResidualKind) -> np.ndarray:
    """Invert :func:`map_values`: the HDR, float32 (H, W, 3) BT.2020 PQ, that the values predict."""
    f = np.exp2(values) if kind == "gain" else values
    hdr_pq: np.ndarray = apply_residual(sdr_pq, f, kind, EPSILON)
    return hdr_pq


def encode_map_jpeg(code: np.ndarray, quality: int) -> bytes:
    """Encode an 8-bit map as a baseline JPEG at 4:4:4 (each channel is its own map)."""
    if not 1 <= quality <= 100:
        raise InputError(f"JPEG quality {quality} is outside 1-100")
    buffer = io.BytesIO()
    Image.fromarray(code, "RGB").save(buffer, "JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def decode_map_jpeg(jpeg: bytes) -> np.ndarray:
    """Decode a map JPEG to uint8 (h, w, 3)."""
    with Image.open(io.BytesIO(jpeg)) as decoded:
        return np.asarray(decoded.convert("RGB"))


def traditional_map(
    hdr_pq: np.ndarray,
    sdr_pq: np.ndarray,
    kind: ResidualKind,
    scale: int = 4,
    quality: int = 95,
) -> TraditionalMap:
    """Code a residual map the traditional way and decode it again.

    Args:
        hdr_pq: float32 (H, W, 3), the HDR in BT.2020 PQ.
        sdr_pq: float32 (H, W, 3), the decoded base in BT.2020 PQ.
        kind: "gamma" or "gain".
        scale: downsampling factor per axis (4: a sixteenth of the pixels).
        quality: JPEG quality of the map.

    Returns:
        The map's bytes and the HDR it reconstructs.
    """
    if scale < 1 or not 1 <= quality <= 100:
        raise InputError(f"scale {scale} must be >= 1 and quality {quality} in 1-100")
    height, width, _ = hdr_pq.shape
    quantised = quantise_map(map_values(hdr_pq, sdr_pq, kind), scale)
    jpeg = encode_map_jpeg(quantised.code, quality)
    values = dequantise_map(decode_map_jpeg(jpeg), quantised.low, quantised.high, (width, height))
    return TraditionalMap(jpeg, apply_map_values(sdr_pq, values, kind), quantised.low, quantised.high)
