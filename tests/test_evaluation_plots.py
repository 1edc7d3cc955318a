import numpy as np
import pytest

from gainmap_format.evaluation.plots import draw_crops, draw_rd_curves, matplotlib_unavailable, select_crop
from gainmap_format.evaluation.report import SummaryRow


def test_the_crop_is_where_the_maps_err_most():
    reference = np.zeros((300, 200, 3), np.float32)
    worse = reference.copy()
    worse[200:260, 20:90] = 0.1
    crop = select_crop("x", "real", reference, {"map": worse, "mlp": reference}, ["map"], ["map", "mlp"])
    assert crop.reference.shape == (128, 128, 3) and list(crop.panels) == ["map", "mlp"]
    assert crop.top <= 200 and crop.top + 128 >= 260 and crop.left <= 20 and crop.left + 128 >= 90
    assert crop.artefact_error == pytest.approx(0.1 * 60 * 70 / 128**2)


def test_small_images_give_their_shorter_side():
    reference = np.zeros((20, 50, 3), np.float32)
    crop = select_crop("x", "paper", reference, {"a": reference}, [], ["a"])
    assert crop.reference.shape == (20, 20, 3)


def test_figures_are_pngs(tmp_path):
    if matplotlib_unavailable():
        pytest.skip(matplotlib_unavailable())
    summary = [
        SummaryRow("paper", f"Gamma-JPEG ≤{k} KB", "Gamma-JPEG", 1, k * 1000.0, 0.1, 0.1, {"pq_psnr": 40.0 + k})
        for k in (5, 10)
    ] + [SummaryRow("real", "Gamma-MLP w16", "Gamma-MLP", 1, 9869.0, 1.0, 0.1, {"pq_psnr": 48.0})]
    draw_rd_curves(summary, tmp_path / "rd.png")
    reference = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    draw_crops(select_crop("x", "real", reference, {"a": reference * 0.9}, ["a"], ["a"]), tmp_path / "crops.png")
    for name in ("rd.png", "crops.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
