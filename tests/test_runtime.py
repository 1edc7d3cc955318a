import numpy as np
import pytest

from gainmap_format import network, residual, runtime
from gainmap_format.container import GainMapMetadata
from tests.test_network import random_weights


def test_strips_cover_the_image_and_denormalise(monkeypatch):
    monkeypatch.setattr(runtime, "STRIP_PIXELS", 50)  # width 8: 100 pixels, 7 rows a strip, 3 strips
    weights = random_weights(8, seed=4)
    code = np.random.default_rng(1).integers(0, 256, (17, 13, 3), dtype=np.uint8)
    metadata = GainMapMetadata(
        residual="gain", activation="relu", hidden_width=8, width=13, height=17, base_transfer="srgb",
        base_primaries="display-p3", input_mean=0.3, input_range=0.7, residual_mean=1.5, residual_range=4.0,
    )
    out = runtime.predict_residual(weights, metadata, code)
    levels = network.positional_encoding(network.normalised_levels(0.3, 0.7))
    rows = network.positional_encoding(network.coordinates(17))
    cols = network.positional_encoding(network.coordinates(13))
    expected = network.forward(weights, "relu", code, levels, rows, cols) * 2.0 + 1.5
    assert out.shape == (17, 13, 3) and out.dtype == np.float32
    assert np.allclose(out, expected, atol=1e-4)


def test_decode_path_does_not_import_torch():
    import subprocess
    import sys

    script = (
        "import sys, gainmap_format, gainmap_format.codec, gainmap_format.runtime, gainmap_format.cli;"
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 0


@pytest.mark.parametrize("kind", ["gamma", "gain"])
@pytest.mark.parametrize("weight", [1.0, 0.4, 0.0])
@pytest.mark.parametrize(("transfer", "primaries"), [("gamma2.4", "bt709"), ("srgb", "display-p3")])
def test_fused_decode_equals_the_numpy_equations(kind, weight, transfer, primaries):
    weights = random_weights(16, seed=9, scale=0.2)
    code = np.random.default_rng(2).integers(0, 256, (23, 31, 3), dtype=np.uint8)
    metadata = GainMapMetadata(
        residual=kind, activation="sine", hidden_width=16, width=31, height=23, base_transfer=transfer,
        base_primaries=primaries, input_mean=0.4, input_range=0.8,
        residual_mean=0.7 if kind == "gamma" else 1.6, residual_range=0.5,
    )
    rendition = runtime.render(weights, metadata, code, weight)
    f = residual.weight_residual(runtime.predict_residual(weights, metadata, code), kind, weight)
    sdr_pq = residual.sdr_to_pq(code, transfer, primaries)
    expected = residual.apply_residual(sdr_pq, f, kind)
    assert np.allclose(rendition.pq, expected, atol=3e-5)  # float32 rounding, about 90 dB
    assert np.allclose(rendition.absolute, residual.pq_to_linear(rendition.pq, 1.0), rtol=1e-4, atol=1e-4)


def test_overflowing_weights_never_give_nan():
    weights = random_weights(16, seed=1, scale=1e18)
    code = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    metadata = GainMapMetadata(
        residual="gamma", activation="relu", hidden_width=16, width=8, height=8, base_transfer="srgb",
        base_primaries="bt709", input_mean=0.5, input_range=1.0, residual_mean=0.0, residual_range=2.0,
    )
    rendition = runtime.render(weights, metadata, code)
    assert np.all(np.isfinite(rendition.pq)) and np.all(np.isfinite(rendition.absolute))
    assert rendition.pq.min() >= 0.0 and rendition.pq.max() <= 1.0
