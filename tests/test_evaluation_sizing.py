import numpy as np
import pytest

from gainmap_format.errors import InputError
from gainmap_format.evaluation.baselines import encode_map_jpeg
from gainmap_format.evaluation.sizing import fit_budget


def test_highest_quality_within_the_budget():
    tried = []

    def make(quality):
        tried.append(quality)
        return quality * 10

    sized = fit_budget(make, lambda size: size, 555)
    assert (sized.quality, sized.size, sized.fits, sized.value) == (55, 550, True, 550)
    assert len(tried) <= 7


def test_nothing_fits():
    sized = fit_budget(lambda quality: 1000 + quality, lambda size: size, 10)
    assert (sized.quality, sized.fits, sized.size) == (1, False, 1001)


def test_everything_fits():
    assert fit_budget(lambda q: q, lambda size: size, 10**6).quality == 100


def test_real_jpeg_maps_hit_their_budget():
    rng = np.random.default_rng(0)
    code = np.clip(rng.normal(128, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
    for budget in (2000, 5000, 9000):
        sized = fit_budget(lambda q: encode_map_jpeg(code, q), len, budget)
        assert sized.fits and sized.size <= budget
        assert sized.quality == 100 or len(encode_map_jpeg(code, sized.quality + 1)) > budget


def test_bad_budget():
    with pytest.raises(InputError):
        fit_budget(lambda q: q, lambda size: size, 0)
