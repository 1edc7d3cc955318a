"""Image quality metrics for HDR reconstructions."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from ..colour import (
    PRIMARIES,
    Chromaticities,
    PrimariesName,
    conversion_matrix,
    pq_encode,
    rgb_to_xyz_matrix,
    xyz_to_lab,
)
from ..errors import InputError

if TYPE_CHECKING:
    import torch


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


def _require_same_shape(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.shape != test.shape:
        raise InputError(f"images differ in shape: {reference.shape} and {test.shape}")


#: skimage's Gaussian SSIM window: sigma 1.5 truncated at 3.5 sigma gives 11x11 (Wang et al. 2004).
_SSIM_WINDOW = 11


def pq_ssim(reference_pq: np.ndarray, test_pq: np.ndarray) -> float:
    """SSIM between two images in BT.2020 PQ code values, data range 1, mean over channels (the paper's SSIM).

    Uses Wang et al. (2004)'s settings: an 11x11 Gaussian window with sigma 1.5, population
    covariance, K1 = 0.01, K2 = 0.03, computed per channel by scikit-image and averaged.

    Args:
        reference_pq: float (H, W, C), PQ code values in [0, 1]; H and W at least 11.
        test_pq: float (H, W, C), same shape.

    Returns:
        Mean SSIM, dimensionless, at most 1 (1 when the images are equal).

    Raises:
        InputError: shapes differ, the images are not (H, W, C), or smaller than the 11x11 window.
        ImportError: scikit-image is not installed (it comes with the ``bench`` extra).
    """
    _require_same_shape(reference_pq, test_pq)
    if reference_pq.ndim != 3:
        raise InputError(f"pq_ssim expects (H, W, C) images, got shape {reference_pq.shape}")
    height, width = reference_pq.shape[:2]
    if min(height, width) < _SSIM_WINDOW:
        raise InputError(f"images of {height}x{width} are smaller than the {_SSIM_WINDOW}x{_SSIM_WINDOW} SSIM window")
    try:
        # scikit-image is a bench/test dependency only; the codec must not need it.
        from skimage.metrics import structural_similarity
    except ImportError as error:
        raise ImportError("pq_ssim needs scikit-image: pip install 'gainmap-format[bench]'") from error
    return float(
        structural_similarity(
            reference_pq.astype(np.float64),
            test_pq.astype(np.float64),
            channel_axis=-1,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def _resolve_primaries(primaries: PrimariesName | Chromaticities) -> Chromaticities:
    if isinstance(primaries, str):
        if primaries not in PRIMARIES:
            raise InputError(f"unknown primaries {primaries!r}; expected one of {sorted(PRIMARIES)}")
        return PRIMARIES[primaries]
    return primaries


def _to_bt2020(linear: np.ndarray, primaries: PrimariesName | Chromaticities) -> NDArray[np.float64]:
    """Linear RGB (..., 3) in ``primaries`` to float64 linear BT.2020 (D65, Bradford-adapted if needed)."""
    if linear.shape[-1:] != (3,):
        raise InputError(f"expected RGB images (..., 3), got shape {linear.shape}")
    matrix = conversion_matrix(_resolve_primaries(primaries), PRIMARIES["bt2020"])
    bt2020: NDArray[np.float64] = np.asarray(linear, dtype=np.float64) @ matrix.T
    return bt2020


def linear_to_lab(
    linear: np.ndarray, primaries: PrimariesName | Chromaticities, white_luminance: float = 100.0
) -> NDArray[np.float64]:
    """Absolute linear RGB to CIELAB under D65, with ``white_luminance`` cd/m² as L* = 100.

    CIELAB is a relative space, so HDR light needs an anchor: we divide by ``white_luminance``
    (default 100 cd/m², the paper's SDR diffuse white), so that highlights above it get L* > 100.

    Args:
        linear: float (..., 3), linear light in cd/m² in ``primaries``.
        primaries: a :data:`PRIMARIES` name or chromaticities; a non-D65 white is adapted to D65.
        white_luminance: cd/m² mapped to the white point (Y = 1), > 0.

    Returns:
        float64 (..., 3): L*, a*, b*.
    """
    if not white_luminance > 0.0:
        raise InputError(f"white_luminance must be > 0 cd/m², got {white_luminance}")
    to_xyz = rgb_to_xyz_matrix(PRIMARIES["bt2020"])
    xyz = _to_bt2020(linear, primaries) @ to_xyz.T / white_luminance
    return xyz_to_lab(xyz, to_xyz.sum(axis=1))  # RGB (1, 1, 1) is D65 white with Y = 1.


def _hue_degrees(b: NDArray[np.float64], a: NDArray[np.float64]) -> NDArray[np.float64]:
    # Sharma et al. 2005 eq. 4: hue is 0 when a' = b' = 0, else atan2 in [0, 360).
    return np.where((a == 0) & (b == 0), 0.0, np.degrees(np.arctan2(b, a)) % 360.0)


def _chroma_weight(c_bar: NDArray[np.float64]) -> NDArray[np.float64]:
    """sqrt(C̄^7 / (C̄^7 + 25^7)), shared by G (eq. 2) and R_C (eq. 21)."""
    c7 = c_bar**7
    return np.sqrt(c7 / (c7 + 25.0**7))


def _primed_chroma_hue(
    a1: NDArray[np.float64], b1: NDArray[np.float64], a2: NDArray[np.float64], b2: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sharma et al. 2005 eqs. 1-4: a' rescaled by G, then C' and h' (degrees) of both colours."""
    g = 0.5 * (1.0 - _chroma_weight((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    return np.hypot(a1p, b1), np.hypot(a2p, b2), _hue_degrees(b1, a1p), _hue_degrees(b2, a2p)


def _hue_difference(
    h1p: NDArray[np.float64], h2p: NDArray[np.float64], chroma_zero: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Sharma et al. 2005 eq. 10: Δh' wrapped into [-180, 180], 0 when either chroma is 0."""
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    return np.where(chroma_zero, 0.0, dh)


def _mean_hue(
    h1p: NDArray[np.float64], h2p: NDArray[np.float64], chroma_zero: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Sharma et al. 2005 eq. 14: the mean hue across the 0/360 wrap; the plain sum when a chroma is 0."""
    h_sum = h1p + h2p
    wrapped = np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0)
    h_bar = np.where(np.abs(h1p - h2p) <= 180.0, h_sum / 2.0, wrapped)
    return np.where(chroma_zero, h_sum, h_bar)


def _hue_t(h_bar: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sharma et al. 2005 eq. 15, the hue-dependent T term (h̄' in degrees)."""
    h = np.radians(h_bar)
    t: NDArray[np.float64] = (
        1.0
        - 0.17 * np.cos(h - np.radians(30.0))
        + 0.24 * np.cos(2.0 * h)
        + 0.32 * np.cos(3.0 * h + np.radians(6.0))
        - 0.20 * np.cos(4.0 * h - np.radians(63.0))
    )
    return t


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> NDArray[np.float64]:
    """CIEDE2000 colour difference (CIE 142-2001), as written out by Sharma, Wu and Dalal (2005).

    Parametric factors kL = kC = kH = 1. Mean hue and hue difference follow the paper's
    eqs. 10 and 14, including its conventions when a chroma is zero.

    Args:
        lab1: float (..., 3), CIELAB L*, a*, b*.
        lab2: float (..., 3), same shape (or broadcastable).

    Returns:
        float64 (...), ΔE00 per pixel, dimensionless.
    """
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    c1p, c2p, h1p, h2p = _primed_chroma_hue(a1, b1, a2, b2)
    chroma_zero = c1p * c2p == 0.0
    dl, dc = l2 - l1, c2p - c1p
    dh = 2.0 * np.sqrt(c1p * c2p) * np.sin(np.radians(_hue_difference(h1p, h2p, chroma_zero)) / 2.0)

    l_bar, c_bar, h_bar = (l1 + l2) / 2.0, (c1p + c2p) / 2.0, _mean_hue(h1p, h2p, chroma_zero)
    s_l = 1.0 + 0.015 * (l_bar - 50.0) ** 2 / np.sqrt(20.0 + (l_bar - 50.0) ** 2)
    s_c = 1.0 + 0.045 * c_bar
    s_h = 1.0 + 0.015 * c_bar * _hue_t(h_bar)
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    r_t = -np.sin(np.radians(2.0 * d_theta)) * 2.0 * _chroma_weight(c_bar)  # eqs. 20-22: the blue-region rotation.
    delta_e: NDArray[np.float64] = np.sqrt(
        (dl / s_l) ** 2 + (dc / s_c) ** 2 + (dh / s_h) ** 2 + r_t * (dc / s_c) * (dh / s_h)
    )
    return delta_e


def mean_delta_e_2000(
    reference_linear: np.ndarray,
    test_linear: np.ndarray,
    primaries: PrimariesName | Chromaticities,
    white_luminance: float = 100.0,
) -> float:
    """Mean CIEDE2000 between two absolute linear RGB images, via CIELAB under D65.

    Args:
        reference_linear: float (H, W, 3), linear light in cd/m² in ``primaries``.
        test_linear: float (H, W, 3), same shape and units.
        primaries: a :data:`PRIMARIES` name or chromaticities of both images.
        white_luminance: cd/m² that maps to L* = 100; the default 100 is the paper's SDR diffuse white.

    Returns:
        Mean ΔE00 over pixels, dimensionless; 0 when the images are equal.
    """
    _require_same_shape(reference_linear, test_linear)
    reference_lab = linear_to_lab(reference_linear, primaries, white_luminance)
    test_lab = linear_to_lab(test_linear, primaries, white_luminance)
    return float(np.mean(delta_e_2000(reference_lab, test_lab)))


#: ITU-R BT.2100-2 table 7: BT.2020 linear RGB to LMS, integers over 4096.
BT2100_LMS_MATRIX = np.array([[1688, 2146, 262], [683, 2951, 462], [99, 309, 3688]]) / 4096
#: ITU-R BT.2100-2 table 7: PQ-encoded L'M'S' to ICtCp, integers over 4096.
BT2100_ICTCP_MATRIX = np.array([[2048, 2048, 0], [6610, -13613, 7003], [17933, -17390, -543]]) / 4096


def _linear_to_itp(linear: np.ndarray, primaries: PrimariesName | Chromaticities) -> NDArray[np.float64]:
    """Absolute linear RGB (..., 3) to ITP (..., 3) per ITU-R BT.2124: T is half of Ct."""
    lms_pq = pq_encode(_to_bt2020(linear, primaries) @ BT2100_LMS_MATRIX.T)  # pq_encode divides by 10000.
    ictcp = lms_pq @ BT2100_ICTCP_MATRIX.T
    itp: NDArray[np.float64] = ictcp * np.array([1.0, 0.5, 1.0])
    return itp


def delta_e_itp(
    reference_linear: np.ndarray, test_linear: np.ndarray, primaries: PrimariesName | Chromaticities
) -> float:
    """Mean ΔE_ITP (ITU-R BT.2124) between two absolute linear RGB images.

    ΔE_ITP = 720 sqrt(ΔI² + ΔT² + ΔP²); the factor 720 makes 1 about one just-noticeable difference.
    Light above 10000 cd/m² or below 0 is clipped by the PQ encoding.

    Args:
        reference_linear: float (H, W, 3), linear light in cd/m² in ``primaries``.
        test_linear: float (H, W, 3), same shape and units.
        primaries: a :data:`PRIMARIES` name or chromaticities of both images.

    Returns:
        Mean ΔE_ITP over pixels, dimensionless; 0 when the images are equal.
    """
    _require_same_shape(reference_linear, test_linear)
    difference = _linear_to_itp(reference_linear, primaries) - _linear_to_itp(test_linear, primaries)
    return float(np.mean(720.0 * np.sqrt(np.sum(difference**2, axis=-1))))


#: ColorVideoVDP's display model for BT.2020 PQ input: a 1500 cd/m² HDR monitor in a 10 lux room.
CVVDP_DISPLAY = "standard_hdr_pq"


def cvvdp_jod(reference_pq: np.ndarray, test_pq: np.ndarray) -> float:
    """ColorVideoVDP (Mantiuk et al., SIGGRAPH 2024) quality of a still image, in JOD.

    The HDR visual metric used in place of the paper's HDR-VDP-3, which has no Python release:
    both predict visible differences on a modelled HDR display; ColorVideoVDP reports just-objectionable
    differences (10 is identical, one JOD less is preferred by 75% of observers).

    Args:
        reference_pq: float (H, W, 3), BT.2020 PQ code values in [0, 1].
        test_pq: float (H, W, 3), same shape.

    Returns:
        JOD, at most 10.

    Raises:
        ImportError: ColorVideoVDP (``pycvvdp``, the ``vdp`` extra) cannot be imported; the
            message says why.
    """
    _require_same_shape(reference_pq, test_pq)
    metric = cvvdp_metric()
    import torch  # pycvvdp depends on torch; imported only once it has loaded.

    quality, _ = metric.predict(
        torch.from_numpy(np.ascontiguousarray(test_pq, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(reference_pq, dtype=np.float32)),
        dim_order="HWC",
    )
    return float(quality)


class CvvdpMetric(Protocol):
    """What :func:`cvvdp_jod` uses of a ``pycvvdp.cvvdp`` metric object."""

    def predict(
        self, test_cont: torch.Tensor, reference_cont: torch.Tensor, dim_order: str = ...
    ) -> tuple[torch.Tensor, object]:
        """Quality of ``test_cont`` against ``reference_cont`` in JOD, and the metric's statistics."""
        ...


@functools.cache
def cvvdp_metric() -> CvvdpMetric:
    """The ColorVideoVDP metric object for :data:`CVVDP_DISPLAY`, loaded once.

    Raises:
        ImportError: ``pycvvdp`` is absent or fails to load; the message says why.
    """
    try:
        import pycvvdp
    # A torchvision built for another torch fails with RuntimeError or OSError, not ImportError.
    except (ImportError, RuntimeError, OSError) as error:
        raise ImportError(
            f"ColorVideoVDP is unavailable ({type(error).__name__}: {error}); "
            "pip install 'gainmap-format[vdp]' with a torchvision that matches torch"
        ) from error
    metric: CvvdpMetric = pycvvdp.cvvdp(display_name=CVVDP_DISPLAY, quiet=True)
    return metric
