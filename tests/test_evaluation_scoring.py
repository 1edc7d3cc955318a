import math
import sys

import numpy as np

from gainmap_format.evaluation.scoring import METRICS, score, vdp_unavailable


def test_identical_images_score_perfectly():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.1, 0.7, (16, 16, 3)).astype(np.float32)
    scores = score(image, image, vdp=False)
    assert list(scores) == [m.key for m in METRICS]
    assert scores["pq_psnr"] == math.inf and scores["ssim"] == 1.0
    assert scores["delta_e00"] == 0.0 and scores["delta_e_itp"] == 0.0


def test_worse_images_score_worse():
    rng = np.random.default_rng(1)
    image = rng.uniform(0.1, 0.7, (16, 16, 3)).astype(np.float32)
    near, far = (score(image, image + offset, vdp=False) for offset in (0.001, 0.01))
    assert near["pq_psnr"] > far["pq_psnr"] and near["ssim"] > far["ssim"]
    assert near["delta_e00"] < far["delta_e00"] and near["delta_e_itp"] < far["delta_e_itp"]


def test_ssim_is_undefined_below_its_window():
    image = np.full((4, 4, 3), 0.5, np.float32)
    assert math.isnan(score(image, image, vdp=False)["ssim"])


def test_vdp_says_why_it_cannot_run(monkeypatch):
    from gainmap_format.evaluation.metrics import cvvdp_metric

    cvvdp_metric.cache_clear()
    monkeypatch.setitem(sys.modules, "pycvvdp", None)
    assert "ColorVideoVDP is unavailable" in vdp_unavailable()
