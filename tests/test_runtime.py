import io

import numpy as np
import pytest
from PIL import Image

from gainmap_format import codec, native, network, residual, runtime
from gainmap_format.container import GainMapMetadata
from gainmap_format.errors import ContainerError, InputError
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.geometry import Placement
from gainmap_format.hdrio import read_hdr
from tests.conftest import shared_data
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
    levels = network.positional_encoding(network.normalised_levels(metadata.input_mean, metadata.input_range))
    rows, cols = (network.positional_encoding(network.coordinates(n)) for n in (5, 6))
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


# ---- placements (spec §4.7, §6.1 of version 2.1) ----

SOURCE_SIZE = (31, 23)  # (width, height) the network was "fitted" on


def _placed_reference(weights, metadata, code, placement):
    """Spec §6.3's dense form per pixel, in numpy, at each output pixel's source position."""
    width0, height0 = placement.source_size
    levels = network.positional_encoding(network.normalised_levels(metadata.input_mean, metadata.input_range))
    colour = np.matmul(levels[None], weights.Wc)
    ys, xs = np.mgrid[0 : code.shape[0], 0 : code.shape[1]] + 0.5
    a, b, c, d, e, f = placement.matrix
    u = network.source_coordinates(d * xs + e * ys + f, height0).ravel()
    v = network.source_coordinates(a * xs + b * ys + c, width0).ravel()
    flat = code.reshape(-1, 3)
    hidden = colour[0][flat[:, 0]] + colour[1][flat[:, 1]] + colour[2][flat[:, 2]]
    hidden = hidden + network.positional_encoding(u) @ weights.Wy + weights.b1
    hidden = network.activate(hidden + network.positional_encoding(v) @ weights.Wx, metadata.activation)
    hidden = network.activate(hidden @ weights.W2 + weights.b2, metadata.activation)
    z = (hidden @ weights.W3 + weights.b3).reshape(code.shape)
    f_map = z * (metadata.residual_range / 2.0) + metadata.residual_mean
    sdr_pq = residual.sdr_to_pq(code, metadata.base_transfer, metadata.base_primaries)
    # Spec §6.1 [NET-14], §7.3 [RES-22]: a centre outside the closed source rectangle, grown by half
    # of what a pixel steps beyond one source pixel, keeps the base.
    mx, my = max(0.0, np.hypot(a, b) - 1) / 2, max(0.0, np.hypot(d, e) - 1) / 2
    outside = (a * xs + b * ys + c < -mx) | (a * xs + b * ys + c > width0 + mx) | (d * xs + e * ys + f < -my)
    outside |= d * xs + e * ys + f > height0 + my
    return np.where(outside[..., None], sdr_pq, residual.apply_residual(sdr_pq, f_map, metadata.residual))


PLACEMENTS = {
    "crop": lambda p: p.crop((4, 3, 27, 20)),
    "crop-outside": lambda p: p.crop((-5, -2, 36, 12)),
    "resize": lambda p: p.resize((13, 40)),
    "reduce": lambda p: p.reduce(3),
    "rotate-90": lambda p: p.rotate(90),
    "rotate-37-expand": lambda p: p.rotate(37, expand=True),
    "affine": lambda p: p.affine((17, 19), (0.7, 0.2, 1.5, -0.3, 0.9, 4.0)),
    **{f"transpose-{m}": (lambda p, m=m: p.transpose(m)) for m in range(7)},
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(PLACEMENTS))
def test_placed_render_equals_the_network_at_source_positions(engine, name):
    placement = PLACEMENTS[name](Placement.identity(SOURCE_SIZE))
    width, height = placement.size
    weights = random_weights(16, seed=5, scale=0.3)
    metadata = _metadata("gamma", "sine", size=(height, width))
    code = np.random.default_rng(6).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rendition = runtime.render(weights, metadata, code, engine=engine, placement=placement)
    assert np.allclose(rendition.pq, _placed_reference(weights, metadata, code, placement), atol=3e-5)
    # Outside the source: the base placed in PQ itself, bit for bit, in both representations.
    outside = placement.outside_source(0, height)
    sdr = residual.sdr_to_pq(code, metadata.base_transfer, metadata.base_primaries)
    assert np.array_equal(rendition.pq[outside], sdr[outside])
    assert np.array_equal(rendition.linear[outside], residual.pq_to_linear(sdr, 1.0)[outside])


def _index_of(edit, size):
    """Which source pixel Pillow's edit puts at each output pixel (via an index image, mode I)."""
    width, height = size
    index = Image.fromarray(np.arange(width * height, dtype=np.int32).reshape(height, width), mode="I")
    return np.asarray(edit(index))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "edit",
    [
        ("crop", lambda im: im.crop((4, 3, 27, 20)), lambda p: p.crop((4, 3, 27, 20))),
        ("rotate-90-expand", lambda im: im.rotate(90, expand=True), lambda p: p.rotate(90, expand=True)),
        *[(f"transpose-{m}", lambda im, m=m: im.transpose(m), lambda p, m=m: p.transpose(m)) for m in range(7)],
    ],
    ids=lambda edit: edit[0],
)
def test_moving_whole_pixels_moves_the_rendition_with_them(engine, edit):
    """A crop, quarter turn or flip of the base decodes to the same edit of the full rendition."""
    _, edit_image, edit_placement = edit
    weights = random_weights(16, seed=7, scale=0.3)
    width0, height0 = SOURCE_SIZE
    code = np.random.default_rng(8).integers(0, 256, (height0, width0, 3), dtype=np.uint8)
    full = runtime.render(weights, _metadata(size=(height0, width0)), code, engine=engine).pq
    index = _index_of(edit_image, SOURCE_SIZE)
    placement = edit_placement(Placement.identity(SOURCE_SIZE))
    edited_code = code.reshape(-1, 3)[index]
    metadata = _metadata(size=(index.shape[0], index.shape[1]))
    placed = runtime.render(weights, metadata, edited_code, engine=engine, placement=placement).pq
    assert np.allclose(placed, full.reshape(-1, 3)[index], atol=3e-5)


@pytest.mark.parametrize("engine", ENGINES)
def test_identity_placement_is_todays_decode_bit_for_bit(engine):
    weights = random_weights(16, seed=3, scale=0.3)
    code = np.random.default_rng(4).integers(0, 256, (23, 31, 3), dtype=np.uint8)
    metadata = _metadata(size=(23, 31))
    plain = runtime.render(weights, metadata, code, engine=engine)
    placed = runtime.render(weights, metadata, code, engine=engine, placement=Placement.identity((31, 23)))
    assert np.array_equal(plain.pq, placed.pq) and np.array_equal(plain.linear, placed.linear)


@pytest.mark.parametrize("engine", ENGINES)
def test_per_pixel_strips_equal_the_separable_path(monkeypatch, engine):
    monkeypatch.setattr(runtime, "PIXEL_STRIP_PIXELS", 40)  # width 23: one row a strip
    # Its first three output rows lie outside the source: the neutral residual, strip by strip.
    placement = Placement.identity(SOURCE_SIZE).crop((-3, 1, 20, 21)).transpose(2)
    width, height = placement.size
    weights = random_weights(8, seed=2, scale=0.3)
    metadata = _metadata("gain", "relu", 8, size=(height, width))
    code = np.random.default_rng(9).integers(0, 256, (height, width, 3), dtype=np.uint8)
    separable = runtime.render(weights, metadata, code, 0.6, engine, placement=placement)
    monkeypatch.setattr(runtime, "_separable", lambda placement: None)
    per_pixel = runtime.render(weights, metadata, code, 0.6, engine, placement=placement, with_pq=False)
    assert per_pixel.pq is None
    assert np.allclose(per_pixel.linear, separable.linear, rtol=3e-4, atol=1e-3)


def test_placement_of_another_size_is_refused():
    weights = random_weights(8, seed=2)
    code = np.zeros((5, 6, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="placement describes"):
        runtime.render(weights, _metadata(width=8, size=(5, 6)), code, placement=Placement.identity((5, 6)))


@pytest.fixture(scope="module")
def hall() -> bytes:
    """A real master (an indoor hall whose windows reach the image's edges) at 256x128, fitted briefly."""
    master = read_hdr(shared_data("hdr") / "ph_dancing_hall_1k.hdr")
    pixels = master.pixels.reshape(128, 4, 256, 4, 3).mean(axis=(1, 3), dtype=np.float32)
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=60, seed=1))
    luminance = master.white_luminance or codec.DEFAULT_WHITE_LUMINANCE
    return codec.encode(pixels, chromaticities=master.chromaticities, white_luminance=luminance, options=options).jpeg


def _edit_channels(pq: np.ndarray, edit) -> np.ndarray:
    """A Pillow edit of each PQ channel as a mode F image (fill 0)."""
    return np.stack([np.asarray(edit(Image.fromarray(pq[..., k], mode="F"))) for k in range(3)], axis=-1)


def test_rotated_base_decodes_like_the_rotated_rendition_and_its_fill_as_itself(hall):
    """Spec §7.3 [RES-22] on a fitted real image: rotate(37, expand=True) of the base against the same
    rotation of the full decode. Pillow's black corners decode to S exactly; measured 42.9 dB PQ-PSNR
    overall, 39.4 dB inside the source (8.7 dB when the network was evaluated in the corners, whose
    fill then decoded up to 10,000 cd/m² beside the bright windows)."""
    container = codec.read_container(hall)
    full = codec.decode(hall).pq
    base = Image.open(io.BytesIO(hall)).convert("RGB")
    rotated = np.asarray(base.rotate(37, Image.Resampling.NEAREST, expand=True))
    placement = container.placement.rotate(37, expand=True)
    decoded = codec.decode_pixels(rotated, container, placement=placement).pq
    outside = placement.outside_source(0, placement.size[1])
    metadata = container.metadata
    sdr = residual.sdr_to_pq(rotated, metadata.base_transfer, metadata.base_primaries, metadata.sdr_white_luminance)
    assert outside.mean() > 0.5 and np.array_equal(decoded[outside], sdr[outside])
    assert pq_psnr(_edit_channels(full, lambda im: im.rotate(37, Image.Resampling.NEAREST, expand=True)),
                   decoded) > 38.0


def test_reduced_base_keeps_the_residual_in_its_partial_last_block(hall):
    """Spec §6.1 [NET-14]: reduce(3) of the 256-pixel-wide base (256 = 3 × 85 + 1, the case of 64: the
    last column reduces source column 255 alone, its centre placed at x_s = 256.5, past the edge but
    within m_x = 1) decodes like reduce(3) of the full decode there too, not as the base. Measured:
    |ΔPQ| in the last column 0.0027 on average, 0.024 at most (46.6 dB; 39.2 dB over the image);
    the base alone is 0.080 PQ off there on average (21.2 dB)."""
    container = codec.read_container(hall)
    base = np.asarray(Image.open(io.BytesIO(hall)).convert("RGB").reduce(3))
    placement = container.placement.reduce(3)
    assert placement.size == (86, 43) and not placement.reaches_outside
    decoded = codec.decode_pixels(base, container, placement=placement).pq[:, -1]
    expected = _edit_channels(codec.decode(hall).pq, lambda im: im.reduce(3))[:, -1]
    metadata = container.metadata
    sdr = residual.sdr_to_pq(base, metadata.base_transfer, metadata.base_primaries, metadata.sdr_white_luminance)
    assert np.abs(decoded - sdr[:, -1]).mean() > 0.04  # HDR, not the base's SDR
    assert np.abs(decoded - expected).mean() < 0.006 and np.abs(decoded - expected).max() < 0.05
