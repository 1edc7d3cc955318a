import numpy as np
import pytest

from gainmap_format.errors import InputError
from gainmap_format.metrics import pq_psnr


def test_pq_psnr_reference_values():
    reference = np.zeros((4, 4, 3), np.float32)
    assert pq_psnr(reference, reference) == float("inf")
    assert pq_psnr(reference, reference + 0.01) == pytest.approx(40.0, abs=1e-4)
    assert pq_psnr(reference, reference + 0.1) == pytest.approx(20.0, abs=1e-4)


def test_pq_psnr_shape_mismatch():
    with pytest.raises(InputError, match="shape"):
        pq_psnr(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))
