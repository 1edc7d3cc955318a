"""Shared fixtures: small generated scenes, a small encoded file, and the shared data folder.

The real-image tests read ``../shared/data`` beside the repository. The environment variable
``GAINMAP_SHARED_DATA`` names another folder instead; pointing it at an empty or missing folder
(``GAINMAP_SHARED_DATA=/nonexistent pytest``) runs the suite as a clean clone does, where those
tests skip and the generated standard gain-map files of ``tests/standard_fixtures.py`` stand in.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gainmap_format import codec
from gainmap_format.colour import PRIMARIES
from gainmap_format.scenes import hdr_scene

#: ../shared/data beside the repository, as CI and developers have it, unless GAINMAP_SHARED_DATA names another.
SHARED_DATA = Path(os.environ.get("GAINMAP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")

#: Few steps keep tests fast; quality tests that need a real fit ask for more.
QUICK = codec.EncodeOptions(fit=codec.FitOptions(iterations=40, seed=1))


def shared_data(subfolder: str) -> Path:
    """The shared data subfolder, or skip the test saying why."""
    folder = SHARED_DATA / subfolder
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the real-image tests need ../shared/data beside the repository")
    return folder


@pytest.fixture(scope="session")
def scene() -> np.ndarray:
    """float32 (48, 64, 3) linear BT.2020 cd/m²."""
    return hdr_scene(48, 64, seed=3)


@pytest.fixture(scope="session")
def encoded(scene: np.ndarray) -> codec.EncodeResult:
    """The scene encoded with quick options."""
    return codec.encode(scene, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, options=QUICK)


def jpeg_bytes(code: np.ndarray, **save_options) -> bytes:
    """Encode uint8 (H, W, 3) pixels as a JPEG with Pillow."""
    buffer = io.BytesIO()
    Image.fromarray(code, "RGB").save(buffer, "JPEG", **save_options)
    return buffer.getvalue()
