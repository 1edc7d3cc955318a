"""The paper's Table 1 metrics for one reconstruction, from ``metrics.py``.

HDR-VDP-3 has no Python release; ColorVideoVDP's JOD stands in for it when ``pycvvdp`` (the
``vdp`` extra) loads, and its column is left out, with the reason, when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..colour import pq_decode
from ..errors import InputError
from .metrics import cvvdp_jod, cvvdp_metric, delta_e_itp, mean_delta_e_2000, pq_psnr, pq_ssim


@dataclass(frozen=True)
class Metric:
    """One column of the report.

    Attributes:
        key: the CSV column.
        title: the table header.
        higher_is_better: which way is better.
        digits: decimals shown in the table.
    """

    key: str
    title: str
    higher_is_better: bool
    digits: int


METRICS: tuple[Metric, ...] = (
    Metric("pq_psnr", "PQ-PSNR", True, 2),
    Metric("delta_e00", "ΔE00", False, 2),
    Metric("ssim", "SSIM", True, 4),
    Metric("delta_e_itp", "ΔE_ITP", False, 2),
)
VDP_METRIC = Metric("cvvdp_jod", "JOD", True, 2)


def vdp_unavailable() -> str | None:
    """Why ColorVideoVDP cannot run here, or None when it can."""
    try:
        cvvdp_metric()
    except ImportError as error:
        return str(error)
    return None


def score(reference_pq: np.ndarray, test_pq: np.ndarray, vdp: bool) -> dict[str, float]:
    """Every metric of the report for one reconstruction.

    Args:
        reference_pq: float32 (H, W, 3), the HDR reference in BT.2020 PQ.
        test_pq: float32 (H, W, 3), the reconstruction.
        vdp: also compute ColorVideoVDP (only when :func:`vdp_unavailable` is None).

    Returns:
        Values by :class:`Metric` key: PQ-PSNR in dB; ΔE00 with 100 cd/m² as L* = 100; SSIM
        on PQ (NaN for images smaller than its 11x11 window); ΔE_ITP; JOD.
    """
    reference_linear, test_linear = pq_decode(reference_pq), pq_decode(test_pq)
    try:
        ssim = pq_ssim(reference_pq, test_pq)
    except InputError:
        ssim = float("nan")
    scores = {
        "pq_psnr": pq_psnr(reference_pq, test_pq),
        "delta_e00": mean_delta_e_2000(reference_linear, test_linear, "bt2020"),
        "ssim": ssim,
        "delta_e_itp": delta_e_itp(reference_linear, test_linear, "bt2020"),
    }
    if vdp:
        scores[VDP_METRIC.key] = cvvdp_jod(reference_pq, test_pq)
    return scores
