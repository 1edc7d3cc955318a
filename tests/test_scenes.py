import numpy as np
import pytest

from gainmap_format.errors import InputError
from gainmap_format.scenes import hdr_scene


def test_scene_is_hdr_and_reproducible():
    scene = hdr_scene(60, 90, seed=4)
    assert scene.shape == (60, 90, 3) and scene.dtype == np.float32
    assert scene.min() >= 0 and scene.max() > 1000  # far above SDR white
    assert np.array_equal(scene, hdr_scene(60, 90, seed=4))
    assert not np.array_equal(scene, hdr_scene(60, 90, seed=5))


def test_tiny_and_invalid_sizes():
    assert hdr_scene(1, 1).shape == (1, 1, 3)
    with pytest.raises(InputError):
        hdr_scene(0, 5)
