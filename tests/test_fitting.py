import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gainmap_format import fitting, native, network, runtime
from gainmap_format.container import GainMapMetadata
from gainmap_format.errors import InputError
from gainmap_format.fitting import (
    FitOptions,
    PixelSampler,
    draw_indices,
    fit,
    image_encodings,
    native_gradients,
    random_initial_weights,
)
from gainmap_format.fitting_torch import GainMlp, TorchEncodings, TorchPixels

ROOT = Path(__file__).resolve().parents[1]


def _problem(height=24, width=32, seed=0):
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    target = np.tanh(code.astype(np.float32) / 128.0 - 1.0) * 0.8
    return code, target


def test_same_seed_same_weights_and_loss_decreases():
    code, target = _problem()
    options = FitOptions(iterations=60, batch_size=512, seed=5, hidden_width=8)
    first = fit(code, target, 0.5, 1.0, options)
    second = fit(code, target, 0.5, 1.0, options)
    for a, b in zip(first.weights.arrays().values(), second.weights.arrays().values(), strict=True):
        assert np.array_equal(a, b)
    untrained = fit(code, target, 0.5, 1.0, FitOptions(iterations=1, batch_size=512, seed=5, hidden_width=8))
    assert first.loss < untrained.loss / 2


needs_native = pytest.mark.skipif(not native.available(), reason="the C extension was not built")


@pytest.mark.parametrize(
    "method", ["tables", pytest.param("native", marks=needs_native)]
)
@pytest.mark.parametrize("activation", ["sine", "relu"])
def test_fast_methods_agree_with_dense_to_float32_rounding(method, activation):
    code, target = _problem()
    base = {"iterations": 30, "batch_size": 256, "seed": 2, "hidden_width": 16, "activation": activation}
    fast = fit(code, target, 0.5, 1.0, FitOptions(method=method, **base))
    dense = fit(code, target, 0.5, 1.0, FitOptions(method="dense", **base))
    assert fast.method == method and dense.method == "dense"
    for a, b in zip(fast.weights.arrays().values(), dense.weights.arrays().values(), strict=True):
        assert np.allclose(a, b, atol=1e-4)
    assert fast.loss == pytest.approx(dense.loss, rel=1e-3)


@needs_native
@pytest.mark.parametrize("width", [8, 32, 64, 128])
def test_native_gradients_equal_autograd_at_every_width(width):
    """One step's loss and gradients from the C kernel against torch autograd on the same batch."""
    code, target = _problem(20, 27, seed=width)
    start = random_initial_weights(width, width)
    model = GainMlp(start, "sine")
    encodings = image_encodings(code.shape, 0.5, 1.0)
    sampler = PixelSampler(code, target, seed=width)
    loss, kernel = native_gradients(start.arrays(), "sine", 7, 301, sampler, encodings)
    pixels = TorchPixels(sampler, torch.device("cpu")).step(301, 7)
    reference = torch.mean(
        (model.forward_dense(pixels, TorchEncodings.of(encodings, torch.device("cpu"))) - pixels.target) ** 2
    )
    reference.backward()
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-5)
    for name, parameter in model.named_parameters():
        scale = float(parameter.grad.abs().max()) + 1e-12
        assert torch.allclose(torch.from_numpy(kernel[name]), parameter.grad, atol=2e-5 * scale), name


def test_batches_depend_on_seed_and_step_only_and_cover_the_image():
    first = draw_indices(3, 10, 50000, 1000)
    assert np.array_equal(first, draw_indices(3, 10, 50000, 1000))
    assert not np.array_equal(first, draw_indices(3, 11, 50000, 1000))
    assert not np.array_equal(first, draw_indices(4, 10, 50000, 1000))
    assert first.min() >= 0 and first.max() < 1000
    counts = np.bincount(first, minlength=1000)
    assert 20 < counts.min() and counts.max() < 85  # about 50 each: uniform
    with pytest.raises(InputError):
        draw_indices(0, 0, 10, 0)


@needs_native
@pytest.mark.parametrize(("seed", "step", "pixels"), [(0, 1, 1), (7, 123, 1000), (2**40, 999, (1 << 27) - 3)])
def test_the_kernel_draws_the_same_pixels_as_numpy(seed, step, pixels):
    assert np.array_equal(native.draw_indices(seed, step, 5000, pixels), draw_indices(seed, step, 5000, pixels))


def test_native_needs_the_cpu_and_the_extension(monkeypatch):
    code, target = _problem()
    monkeypatch.setattr(native, "_kernels", None)
    with pytest.raises(InputError, match="C extension"):
        fit(code, target, 0.5, 1.0, FitOptions(iterations=1, method="native"))
    assert fit(code, target, 0.5, 1.0, FitOptions(iterations=1, batch_size=64)).method == "tables"


def test_zero_iterations_returns_the_given_initial_weights():
    code, target = _problem()
    options = FitOptions(iterations=3, batch_size=128, hidden_width=8)
    start = fit(code, target, 0.5, 1.0, options).weights
    again = fit(code, target, 0.5, 1.0, FitOptions(iterations=0, hidden_width=8), init=start)
    for a, b in zip(start.arrays().values(), again.weights.arrays().values(), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(InputError, match="width"):
        fit(code, target, 0.5, 1.0, FitOptions(iterations=0, hidden_width=16), init=start)


@pytest.mark.parametrize("activation", ["sine", "relu"])
def test_onnx_runtime_decode_matches_torch_prediction(activation):
    """The decoded map equals torch's own prediction on every pixel, to float32 rounding."""
    code, target = _problem(40, 52)
    result = fit(code, target, 0.45, 0.9, FitOptions(iterations=25, batch_size=1024, activation=activation))
    model = GainMlp(result.weights, activation)
    encodings = TorchEncodings.of(image_encodings(code.shape, 0.45, 0.9), torch.device("cpu"))
    pixels = TorchPixels(PixelSampler(code, target, seed=0), torch.device("cpu"))
    with torch.no_grad():
        expected = model.forward_tables(pixels.gather(torch.arange(40 * 52)), encodings).numpy().reshape(40, 52, 3)
    metadata = GainMapMetadata(
        residual="gamma", activation=activation, hidden_width=16, width=52, height=40,
        base_transfer="gamma2.4", base_primaries="bt709", input_mean=0.45, input_range=0.9,
        residual_mean=0.0, residual_range=2.0,
    )
    decoded = runtime.predict_residual(result.weights, metadata, code)
    assert np.allclose(decoded, expected, rtol=1e-5, atol=1e-5)
    levels = network.positional_encoding(network.normalised_levels(0.45, 0.9))
    rows = network.positional_encoding(network.coordinates(40))
    cols = network.positional_encoding(network.coordinates(52))
    assert np.allclose(network.forward(result.weights, activation, code, levels, rows, cols), expected, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"hidden_width": 12},
        {"activation": "tanh"},
        {"iterations": -1},
        {"batch_size": 0},
        {"learning_rate": 0.0},
        {"device": "tpu"},
        {"method": "fast"},
    ],
)
def test_bad_options_are_rejected(options):
    with pytest.raises(InputError):
        FitOptions(**options)


def test_mismatched_arrays_are_rejected():
    code, target = _problem()
    with pytest.raises(InputError, match="matching"):
        fit(code, target[:, :-1], 0.5, 1.0, FitOptions(iterations=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    code, target = _problem()
    with pytest.raises(InputError, match="CUDA"):
        fit(code, target, 0.5, 1.0, FitOptions(iterations=1, device="cuda"))


def test_random_initial_weights_are_seeded_and_uniform_within_each_layers_bound():
    weights = random_initial_weights(32, 9)
    again, other = random_initial_weights(32, 9), random_initial_weights(32, 10)
    for name, value in weights.arrays().items():
        bound = 1 / np.sqrt(120 if name in {"Wc", "Wy", "Wx", "b1"} else 32)
        assert value.dtype == np.float32 and np.array_equal(value, getattr(again, name)), name
        assert not np.array_equal(value, getattr(other, name)), name
        assert np.abs(value).max() <= bound, name
        if value.size >= 1000:  # Wc, Wy, Wx, W2: every part of the interval is drawn
            counts = np.histogram(value, bins=4, range=(-bound, bound))[0]
            assert counts.min() > value.size / 4 * 0.8, name


def test_random_start_is_random_initial_weights_for_every_method():
    code, target = _problem()
    options = FitOptions(iterations=0, seed=4, hidden_width=8, method="tables")
    start = random_initial_weights(8, 4)
    for method in ["tables", "dense", *(["native"] if native.available() else [])]:
        result = fit(code, target, 0.5, 1.0, FitOptions(iterations=0, seed=4, hidden_width=8, method=method))
        for a, b in zip(result.weights.arrays().values(), start.arrays().values(), strict=True):
            assert np.array_equal(a, b), method
    assert fit(code, target, 0.5, 1.0, options).device == "cpu"


@pytest.mark.parametrize(
    ("platform", "drivers", "possible"),
    [("darwin", True, False), ("linux", False, False), ("linux", True, True), ("win32", False, True)],
)
def test_auto_device_asks_torch_only_where_cuda_could_be(monkeypatch, tmp_path, platform, drivers, possible):
    monkeypatch.delitem(sys.modules, "torch")  # as if not yet imported; restored after the test
    monkeypatch.setattr(sys, "platform", platform)
    driver = tmp_path / "version"
    driver.write_text("NVRM")
    monkeypatch.setattr(fitting, "_GPU_DRIVER_PATHS", (str(driver) if drivers else str(tmp_path / "absent"),))
    assert fitting._cuda_possible() is possible
    monkeypatch.setattr(fitting.importlib.util, "find_spec", lambda name: None)
    assert fitting._cuda_possible() is False
    assert fitting.resolve_device("auto") == "cpu"


#: Encodes a small image with the default options on the CPU, then fits with torch made unimportable.
_WITHOUT_TORCH = """
import sys
import numpy as np
from gainmap_format import codec
from gainmap_format.options import EncodeOptions, FitOptions
hdr = np.linspace(0.0, 4.0, 24 * 32 * 3, dtype=np.float32).reshape(24, 32, 3)
result = codec.encode(hdr, options=EncodeOptions(fit=FitOptions(iterations=5, batch_size=256, device="cpu")))
assert result.jpeg[:2] == b"\\xff\\xd8" and "torch" not in sys.modules, sorted(sys.modules)
print("encoded without torch")
sys.modules["torch"] = None  # any import of torch now fails: as if the train extra were absent
try:
    codec.encode(hdr, options=EncodeOptions(fit=FitOptions(iterations=1, method="tables", device="cpu")))
except ImportError as error:
    assert "'train' extra" in str(error), error
    print("tables refused:", error)
"""


@needs_native
def test_the_native_fit_neither_imports_nor_needs_torch():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH], capture_output=True, text=True, env=env,
                               cwd=ROOT, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "encoded without torch" in completed.stdout and "tables refused" in completed.stdout
