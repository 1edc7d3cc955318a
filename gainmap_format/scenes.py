"""A generated HDR scene, so that the demo and the tests need no image files.

The scene has what makes gain maps hard: a sky gradient, a sun far above SDR white, saturated
colours outside BT.709, specular highlights, smooth shading and fine texture.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .errors import InputError


def hdr_scene(height: int = 512, width: int = 768, seed: int = 0) -> NDArray[np.float32]:
    """Render the scene.

    Args:
        height: rows, >= 1.
        width: columns, >= 1.
        seed: seeds the texture.

    Returns:
        float32 (height, width, 3), linear BT.2020 in cd/m², peak about 4000.
    """
    if height < 1 or width < 1:
        raise InputError(f"scene size {width}x{height} must be at least 1x1")
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0.0, 1.0, height), np.linspace(0.0, 1.0, width), indexing="ij")
    horizon = 0.55
    sky = np.stack([60 + 140 * y, 90 + 160 * y, 250 + 150 * (1 - y)], axis=-1)
    ground_shade = 0.4 + 0.6 * x
    ground = np.stack([40 * ground_shade, 55 * ground_shade, 20 * ground_shade], axis=-1)
    texture = 1.0 + 0.25 * _smooth_noise(rng, height, width)
    image = np.where((y < horizon)[..., None], sky, ground * texture[..., None])
    sun = np.exp(-(((x - 0.75) ** 2 + (y - 0.2) ** 2) / 0.002))
    image = image + sun[..., None] * np.array([4000.0, 3600.0, 3000.0])
    for cx, colour in ((0.2, (300.0, 5.0, 5.0)), (0.4, (5.0, 260.0, 20.0)), (0.6, (10.0, 20.0, 280.0))):
        ball = np.clip(1.0 - ((x - cx) ** 2 + (y - 0.75) ** 2) / 0.006, 0.0, None)
        highlight = np.exp(-(((x - cx + 0.02) ** 2 + (y - 0.72) ** 2) / 0.0002)) * 1500.0
        mask = (ball > 0)[..., None]
        image = np.where(mask, ball[..., None] * np.array(colour) + highlight[..., None], image)
    scene: NDArray[np.float32] = np.clip(image, 0.0, None).astype(np.float32)
    return scene


def _smooth_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Noise with a 1/f amplitude spectrum, zero mean, unit peak."""
    noise = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    spectrum = np.fft.fft2(noise) / np.maximum(np.hypot(fy, fx), 1.0 / max(height, width))
    smooth = np.real(np.fft.ifft2(spectrum))
    smooth -= smooth.mean()
    peak = np.max(np.abs(smooth))
    return smooth / peak if peak > 0 else smooth
