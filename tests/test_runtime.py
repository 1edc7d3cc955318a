import numpy as np
import pytest

from gainmap_format import native, network, residual, runtime
from gainmap_format.container import GainMapMetadata
from gainmap_format.errors import ContainerError, InputError
from tests.test_network import random_weights

needs_native = pytest.mark.skipif(not native.available(), reason="the C extension was not built")
ENGINES = ["onnxruntime", pytest.param("native", marks=needs_native)]


def _metadata(kind="gamma", activation="sine", width=16, size=(23, 31), **fields):
    values = {
        "residual": kind, "activation": activation, "hidden_width": width, "width": size[1], "height": size[0],
        "base_transfer": "srgb", "base_primaries": "display-p3", "input_mean": 0.4, "input_range": 0.8,
        "residual_mean": 0.7 if kind == "gamma" else 1.6, "residual_range": 0.5,
    }
    return GainMapMetadata(**(values | fields))


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


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["gamma", "gain"])
@pytest.mark.parametrize("weight", [1.0, 0.4, 0.0])
@pytest.mark.parametrize(("transfer", "primaries"), [("gamma2.4", "bt709"), ("srgb", "display-p3")])
def test_fused_decode_equals_the_numpy_equations(engine, kind, weight, transfer, primaries):
    weights = random_weights(16, seed=9, scale=0.2)
    code = np.random.default_rng(2).integers(0, 256, (23, 31, 3), dtype=np.uint8)
    metadata = GainMapMetadata(
        residual=kind, activation="sine", hidden_width=16, width=31, height=23, base_transfer=transfer,
        base_primaries=primaries, input_mean=0.4, input_range=0.8,
        residual_mean=0.7 if kind == "gamma" else 1.6, residual_range=0.5,
    )
    rendition = runtime.render(weights, metadata, code, weight, engine)
    f = residual.weight_residual(runtime.predict_residual(weights, metadata, code), kind, weight)
    sdr_pq = residual.sdr_to_pq(code, transfer, primaries)
    expected = residual.apply_residual(sdr_pq, f, kind)
    assert np.allclose(rendition.pq, expected, atol=3e-5)  # float32 rounding, about 90 dB
    assert np.allclose(rendition.linear, residual.pq_to_linear(rendition.pq, 1.0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["gamma", "gain"])
@pytest.mark.parametrize("activation", ["sine", "relu"])
def test_overflowing_weights_never_give_nan(engine, kind, activation):
    weights = random_weights(16, seed=1, scale=1e18)
    code = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    metadata = _metadata(kind, activation, size=(8, 8), residual_mean=0.0, residual_range=2.0)
    rendition = runtime.render(weights, metadata, code, engine=engine)
    assert np.all(np.isfinite(rendition.pq)) and np.all(np.isfinite(rendition.linear))
    assert rendition.pq.min() >= 0.0 and rendition.pq.max() <= 1.0


@needs_native
@pytest.mark.parametrize("width", [8, 16, 32, 64, 128])
@pytest.mark.parametrize("kind", ["gamma", "gain"])
@pytest.mark.parametrize("activation", ["sine", "relu"])
def test_native_kernel_equals_onnx_runtime(width, kind, activation):
    """Odd sizes exercise the kernel's partial blocks of pixels."""
    weights = random_weights(width, seed=width, scale=0.3)
    code = np.random.default_rng(width).integers(0, 256, (11, 29, 3), dtype=np.uint8)
    metadata = _metadata(kind, activation, width, size=(11, 29))
    for weight in (1.0, 0.3):
        fast = runtime.render(weights, metadata, code, weight, "native")
        graph = runtime.render(weights, metadata, code, weight, "onnxruntime")
        assert np.allclose(fast.pq, graph.pq, atol=3e-5)
        assert np.allclose(fast.linear, graph.linear, rtol=3e-4, atol=1e-3)


@needs_native
def test_native_sines_of_large_arguments_are_exact():
    """First-layer sums beyond the polynomial's range (8192) go to libm: same sines as numpy.

    Only b1 is non-zero in the first layer, so its sums are exactly b1 in every implementation
    and the comparison measures the sine alone, not the rounding of large sums.
    """
    rng = np.random.default_rng(4)
    weights = random_weights(16, seed=3, scale=0.2)
    large = np.array([3.0, -5e3, 8191.0, 8193.5, -2e4, 6e4, 1e5, -3e5, 1e6, 4e6, 1.5e7, 2e7, -1e8, 5e8, 1e9, 3e9])
    weights = type(weights)(**(weights.arrays() | {
        "Wc": np.zeros_like(weights.Wc), "Wy": np.zeros_like(weights.Wy), "Wx": np.zeros_like(weights.Wx),
        "b1": large.astype(np.float32),
    }))
    code = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    metadata = _metadata(size=(5, 6))
    fast = runtime.render(weights, metadata, code, engine="native")
    levels, rows, cols = runtime._encodings(metadata, 5, 6)
    f = network.forward(weights, "sine", code, levels, rows, cols) * 0.25 + 0.7
    expected = residual.apply_residual(residual.sdr_to_pq(code, "srgb", "display-p3"), f, "gamma")
    assert np.allclose(fast.pq, expected, atol=3e-5)


@needs_native
def test_native_decode_does_not_depend_on_the_thread_count(monkeypatch):
    weights = random_weights(16, seed=5, scale=0.3)
    code = np.random.default_rng(5).integers(0, 256, (70, 9, 3), dtype=np.uint8)
    metadata = _metadata(size=(70, 9))
    many = runtime.render(weights, metadata, code, engine="native")
    monkeypatch.setenv("GAINMAP_THREADS", "1")
    one = runtime.render(weights, metadata, code, engine="native")
    assert np.array_equal(many.pq, one.pq) and np.array_equal(many.linear, one.linear)


def test_engine_names_are_checked(monkeypatch):
    with pytest.raises(InputError, match="engine"):
        runtime.resolve_engine("cuda")
    monkeypatch.setattr(native, "_kernels", None)
    assert runtime.resolve_engine("auto") == "onnxruntime"
    with pytest.raises(InputError, match="C extension"):
        runtime.resolve_engine("native")


@pytest.mark.parametrize("engine", ENGINES)
def test_render_refuses_what_would_not_be_finite(engine):
    """Spec §7.7: the finite output rests on the container's ranges, so render checks them itself."""
    weights = random_weights(16, seed=2)
    code = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ContainerError, match=r"sdr_white_luminance is 1e-45, outside \[1, 10000\]"):
        runtime.render(weights, _metadata(size=(8, 8), sdr_white_luminance=1e-45), code, engine=engine)
    metadata = _metadata(size=(8, 8))
    with pytest.raises(InputError, match="linear unit 1e-45 cd/m²"):
        runtime.render(weights, metadata, code, engine=engine, linear_unit=1e-45)
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="display weight"):
            runtime.render(weights, metadata, code, weight, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_linear_only_rendering_matches_the_full_one(monkeypatch, engine):
    monkeypatch.setattr(runtime, "STRIP_PIXELS", 50)  # width 13: 3 rows a strip, the last strip 2 rows
    weights = random_weights(16, seed=6)
    code = np.random.default_rng(4).integers(0, 256, (17, 13, 3), dtype=np.uint8)
    metadata = _metadata(size=(17, 13))
    full = runtime.render(weights, metadata, code, engine=engine)
    lean = runtime.render(weights, metadata, code, engine=engine, with_pq=False)
    assert lean.pq is None and np.array_equal(lean.linear, full.linear)
