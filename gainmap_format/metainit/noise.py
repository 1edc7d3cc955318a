"""Chromatic noise after Daly et al.: synthetic HDR images with natural-image statistics.

Meta-initialisation fits the network to these instead of to photographs, so that the
initial weights carry the spatial and chromatic correlations of natural images but no
content. Each image is made from three fields of uniform noise whose spectrum is divided by
f² and which are normalised to [0, 1]; the fields become CIELAB lightness and the two
opponent axes:

    L* = 105 sigmoid(4 (2 x - 1)),  a* = 150 (x_a - mean x_a),  b* = 150 (x_b - mean x_b)

then linear BT.2020 under D65, clipped to the real, displayable range. Relative value 1.0
(CIELAB white) is placed at the default tone curve's peak, 1000 cd/m², so that the images
use the whole curve, from its toe to the shoulder where it clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..codec import EncodeOptions, FitInputs, prepare_fit_inputs
from ..colour import PRIMARIES, lab_to_xyz, rgb_to_xyz_matrix
from ..errors import InputError
from ..registries import ResidualKind
from ..tonemap import CURVE_PEAK_LUMINANCE

#: cd/m² of CIELAB white (relative 1.0), and the highest value a channel may take.
NOISE_WHITE_LUMINANCE = CURVE_PEAK_LUMINANCE

Seed = int | Sequence[int]


def spectral_field(rng: np.random.Generator, height: int, width: int) -> NDArray[np.float64]:
    """One field of uniform noise with its spectrum divided by f², normalised to [0, 1].

    Args:
        rng: the random source.
        height: rows, >= 1.
        width: columns, >= 1.

    Returns:
        float64 (height, width), minimum 0 and maximum 1 (all 0.5 for a single pixel).
    """
    spectrum = np.fft.rfft2(rng.uniform(0.0, 1.0, (height, width)))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f_squared = fy**2 + fx**2
    # f = 0 is the mean: it carries no structure and the normalisation below removes it anyway.
    f_squared[0, 0] = np.inf
    field = np.fft.irfft2(spectrum / f_squared, s=(height, width))
    low, high = float(field.min()), float(field.max())
    if high - low <= 0.0:
        return np.full((height, width), 0.5)
    return (field - low) / (high - low)


def noise_lab(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Three spectral fields mapped to CIELAB.

    Returns:
        float64 (height, width, 3): L* in [1.9, 103.1], a* and b* in [-150, 150] with mean 0.
    """
    lightness, a, b = (spectral_field(rng, height, width) for _ in range(3))
    sigmoid = 1.0 / (1.0 + np.exp(-4.0 * (2.0 * lightness - 1.0)))
    return np.stack([105.0 * sigmoid, 150.0 * (a - a.mean()), 150.0 * (b - b.mean())], axis=-1)


def chromatic_noise(height: int, width: int, seed: Seed = 0) -> NDArray[np.float32]:
    """A chromatic-noise HDR image.

    Args:
        height: rows, >= 1.
        width: columns, >= 1.
        seed: seeds numpy's generator; an int or a sequence of ints (e.g. (seed, index)).

    Returns:
        float32 (height, width, 3), linear BT.2020 in cd/m², in [0, 1000]: colours outside
        BT.2020 are clipped per channel, as the authors' procedure does.
    """
    if height < 1 or width < 1:
        raise InputError(f"noise size {width}x{height} must be at least 1x1")
    rng = np.random.default_rng(seed)
    to_xyz = rgb_to_xyz_matrix(PRIMARIES["bt2020"])
    xyz = lab_to_xyz(noise_lab(rng, height, width), to_xyz.sum(axis=1))  # RGB (1, 1, 1) is D65 white.
    relative = np.clip(xyz @ np.linalg.inv(to_xyz).T, 0.0, 1.0)
    image: NDArray[np.float32] = (relative * NOISE_WHITE_LUMINANCE).astype(np.float32)
    return image


def noise_fit_inputs(height: int, width: int, seed: Seed, residual: ResidualKind) -> FitInputs:
    """A chromatic-noise image prepared for fitting exactly as ``codec.encode`` prepares a photo.

    The SDR counterpart is the default tone mapping, encoded as the base JPEG that ``encode``
    would write and decoded again, so that the fit sees the same kind of input as in use.

    Args:
        height: rows, >= 1.
        width: columns, >= 1.
        seed: seeds the noise (see :func:`chromatic_noise`).
        residual: "gamma" or "gain".

    Returns:
        The base's code values, the normalised residual and the normalisations.
    """
    hdr = chromatic_noise(height, width, seed)
    # The bases the shipped initial weights were trained on: the paper's curve, gamma 2.4.
    options = EncodeOptions(residual=residual, tone_map="paper", sdr_transfer="gamma2.4")
    return prepare_fit_inputs(hdr, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, options=options)
