"""Resampling a gain map to its base's size, the way libultrahdr, the reference decoder, does.

Sample 0 sits on pixel 0; integer upsampling factors use Shepard's inverse-distance weighting,
and everything else (smaller maps, maps larger than the base, odd ratios) is bilinear.
"""

from __future__ import annotations

import math

import numpy as np


def resample(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One float32 plane to (height, width) = size[::-1], the way libultrahdr samples gain maps.

    Base pixel (x, y) samples the map at (x w_map / w_base, y h_map / h_base): sample 0 sits
    on sample 0, the convention of libultrahdr, whose encoder also builds the map from the
    first pixel of each block. When the base is an integer multiple of the map on both axes,
    the four surrounding samples are blended by Shepard's inverse-distance weighting, as
    libultrahdr does; otherwise bilinearly, which also reduces maps larger than the base.
    Against libultrahdr's decode, centre-aligned bilinear measured 49.9 dB on a Pixel file's
    quarter-size map and 39.5 dB on a map larger than its base; this measures 75.4 dB and
    50.6 dB.

    Args:
        plane: float32 (rows, columns), the map's values.
        size: (width, height) of the base.

    Returns:
        float32 (height, width); ``plane`` itself when it already has that size.
    """
    width, height = size
    rows, columns = plane.shape
    if (rows, columns) == (height, width):
        return plane
    factor = width // columns
    if factor > 1 and (width, height) == (factor * columns, factor * rows):
        return _shepard_upsample(plane, factor)
    x0, x1, fx = _taps(width, columns)
    mixed = plane[:, x0] * (np.float32(1.0) - fx) + plane[:, x1] * fx
    y0, y1, fy = _taps(height, rows)
    fy = fy[:, None]
    resampled: np.ndarray = mixed[y0] * (np.float32(1.0) - fy) + mixed[y1] * fy
    return resampled


def _shepard_upsample(plane: np.ndarray, factor: int) -> np.ndarray:
    """Upsample by an integer factor with libultrahdr's inverse-distance weights.

    Each output pixel blends its block's sample and the samples to the right, below and
    diagonally, weighted by 1 / distance; on the last column and row the missing neighbours
    fold back onto the present ones, as libultrahdr's edge tables do.
    """
    rows, columns = plane.shape
    right = np.concatenate([plane[:, 1:], plane[:, -1:]], axis=1)
    below = np.concatenate([plane[1:], plane[-1:]], axis=0)
    diagonal = np.concatenate([right[1:], right[-1:]], axis=0)
    neighbours = (plane, below, right, diagonal)
    out = np.empty((rows * factor, columns * factor), dtype=np.float32)
    regions = [
        (slice(0, rows - 1), slice(0, columns - 1), 1, 1),
        (slice(0, rows - 1), slice(columns - 1, columns), 0, 1),
        (slice(rows - 1, rows), slice(0, columns - 1), 1, 0),
        (slice(rows - 1, rows), slice(columns - 1, columns), 0, 0),
    ]
    for dy in range(factor):
        for dx in range(factor):
            target = out[dy::factor, dx::factor]
            for row_slice, column_slice, step_right, step_down in regions:
                weights = _shepard_weights(dx / factor, dy / factor, step_right, step_down)
                target[row_slice, column_slice] = sum(
                    np.float32(w) * n[row_slice, column_slice] for w, n in zip(weights, neighbours, strict=True)
                )
    return out


def _shepard_weights(x: float, y: float, step_right: int, step_down: int) -> tuple[float, ...]:
    """Normalised 1 / distance weights of the block sample, the one below, right, diagonal."""
    distances = (
        math.hypot(x, y),
        math.hypot(x, y - step_down),
        math.hypot(x - step_right, y),
        math.hypot(x - step_right, y - step_down),
    )
    if distances[0] == 0.0:
        return (1.0, 0.0, 0.0, 0.0)
    inverse = [1.0 / d for d in distances]
    total = sum(inverse)
    return tuple(w / total for w in inverse)


def _taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one axis: lower index, upper index, float32 weight of the upper."""
    position = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
    lower = np.minimum(np.floor(position).astype(np.intp), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)
    return lower, upper, (position - lower).astype(np.float32)
