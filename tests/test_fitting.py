import numpy as np
import pytest
import torch

from gainmap_format import native, network, runtime
from gainmap_format.container import GainMapMetadata
from gainmap_format.errors import InputError
from gainmap_format.fitting import (
    FitOptions,
    GainMlp,
    _PixelSampler,
    draw_indices,
    fit,
    image_encodings,
    native_gradients,
)


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
    generator = torch.Generator().manual_seed(width)
    model = GainMlp(width, "sine", generator)
    encodings = image_encodings(code.shape, 0.5, 1.0, torch.device("cpu"))
    sampler = _PixelSampler(code, target, torch.device("cpu"), seed=width)
    weights = {name: parameter.detach().numpy() for name, parameter in model.named_parameters()}
    loss, kernel = native_gradients(weights, "sine", 7, 301, sampler, encodings)
    pixels = sampler.gather(sampler.indices(301, 7))
    reference = torch.mean((model.forward_dense(pixels, encodings) - pixels.target) ** 2)
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
    model = GainMlp(16, activation, torch.Generator().manual_seed(0))
    model.load(result.weights)
    encodings = image_encodings(code.shape, 0.45, 0.9, torch.device("cpu"))
    sampler = _PixelSampler(code, target, torch.device("cpu"), seed=0)
    batch = sampler.gather(torch.arange(sampler.count))
    with torch.no_grad():
        expected = model.forward_tables(batch, encodings).numpy().reshape(40, 52, 3)
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
