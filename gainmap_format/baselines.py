"""The traditional gain-map pipeline the paper compares against: downsample, 8-bit, JPEG.

The residual map (gamma or gain, as in ``residual.py``) is computed at full resolution against
the same base the MLP sees, shrunk by ``scale`` in each direction with an area filter,
quantised to 8 bits (gain maps in log2, as Ultra HDR does; gamma maps directly), JPEG-encoded,
then decoded, upsampled bilinearly and applied. Only the JPEG bytes count toward its size,
which flatters it by the few dozen bytes of metadata a real file would add.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .container import ResidualKind
from .errors import InputError
from .residual import EPSILON, apply_residual, residual_map


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


def _resize(channels: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """Resize each channel of a float32 (H, W, C) array to ``size`` (width, height)."""
    planes = [np.asarray(Image.fromarray(channels[..., c], "F").resize(size, method)) for c in range(channels.shape[2])]
    return np.stack(planes, axis=-1)


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
    f = residual_map(hdr_pq, sdr_pq, kind, EPSILON)
    coded = np.log2(f) if kind == "gain" else f
    small_size = (max(1, round(width / scale)), max(1, round(height / scale)))
    small = _resize(coded, small_size, Image.Resampling.BOX)
    low, high = float(small.min()), float(small.max())
    step = max(high - low, 1e-6) / 255.0
    code = np.clip(np.round((small - low) / step), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(code, "RGB").save(buffer, "JPEG", quality=quality, subsampling=0)
    jpeg = buffer.getvalue()
    with Image.open(io.BytesIO(jpeg)) as decoded:
        restored = np.asarray(decoded.convert("RGB"), dtype=np.float32) * np.float32(step) + np.float32(low)
    full = _resize(restored, (width, height), Image.Resampling.BILINEAR)
    f_decoded = np.exp2(full) if kind == "gain" else full
    return TraditionalMap(jpeg, apply_residual(sdr_pq, f_decoded, kind, EPSILON), low, high)
