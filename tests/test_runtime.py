import numpy as np

from gainmap_format import network, runtime
from gainmap_format.container import GainMapMetadata
from tests.test_network import random_weights


def test_strips_cover_the_image_and_denormalise(monkeypatch):
    monkeypatch.setattr(runtime, "STRIP_PIXELS", 50)  # 50 // 13 = 3 rows a strip, 17 rows: 6 strips
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
