"""Image quality metrics for HDR reconstructions."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def pq_psnr(reference_pq: np.ndarray, test_pq: np.ndarray) -> float:
    """PSNR in dB between two images in BT.2020 PQ code values, peak 1 (the paper's PQ-PSNR).

    Args:
        reference_pq: float (H, W, 3), PQ code values in [0, 1].
        test_pq: float (H, W, 3), same shape.

    Returns:
        10 log10(1 / MSE) over all pixels and channels; inf when the images are equal.
    """
    if reference_pq.shape != test_pq.shape:
        raise InputError(f"images differ in shape: {reference_pq.shape} and {test_pq.shape}")
    mse = float(np.mean((reference_pq.astype(np.float64) - test_pq.astype(np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(1.0 / mse)
