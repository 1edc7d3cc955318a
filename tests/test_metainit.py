import hashlib
import io
import json
import warnings

import numpy as np
import pytest

from gainmap_format import codec, initweights
from gainmap_format.cli import EXIT_OK, EXIT_USAGE, main
from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import InputError
from gainmap_format.fitting import fit
from gainmap_format.graph import check_graph
from gainmap_format.hdrio import write_exr
from gainmap_format.initweights import (
    MissingInitWarning,
    load_initial_weights,
    read_initial_weights,
    write_initial_weights,
)
from gainmap_format.metainit.training import (
    MetaInitOptions,
    average_weights,
    derived_seed,
    fit_options,
    meta_initialise,
    noise_images,
    random_weights,
    reptile_order,
    reptile_step,
)
from gainmap_format.network import PARAMETER_NAMES, MlpWeights, parameter_shapes
from gainmap_format.scenes import hdr_scene

TINY = MetaInitOptions(images=2, height=24, width=32, steps=8, inner_steps=4, device="cpu")


def _random_weights(seed: int, width: int = 8) -> MlpWeights:
    rng = np.random.default_rng(seed)
    return MlpWeights(**{n: rng.standard_normal(s).astype(np.float32) for n, s in parameter_shapes(width).items()})


def _assert_weights_equal(a: MlpWeights, b: MlpWeights, **tolerance) -> None:
    for name in PARAMETER_NAMES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), **tolerance)


def _distance(a: MlpWeights, b: MlpWeights) -> float:
    return float(np.sqrt(sum(np.sum((getattr(a, n) - getattr(b, n)) ** 2) for n in PARAMETER_NAMES)))


def _fit(inputs, options, init):
    return fit(inputs.code, inputs.target, inputs.input_norm.mean, inputs.input_norm.range, options, init=init)


def test_average_is_the_element_wise_mean():
    a, b = _random_weights(1), _random_weights(2)
    mean = average_weights([a, b])
    for name in PARAMETER_NAMES:
        assert getattr(mean, name).dtype == np.float32
        np.testing.assert_allclose(getattr(mean, name), (getattr(a, name) + getattr(b, name)) / 2, rtol=1e-6)
    with pytest.raises(InputError):
        average_weights([])
    with pytest.raises(InputError):
        average_weights([a, _random_weights(3, width=16)])


def test_reptile_step_moves_toward_the_adapted_weights():
    meta, adapted = _random_weights(4), _random_weights(5)
    moved = reptile_step(meta, adapted, 0.25)
    assert _distance(moved, adapted) == pytest.approx(0.75 * _distance(meta, adapted), rel=1e-5)
    assert _distance(moved, meta) == pytest.approx(0.25 * _distance(meta, adapted), rel=1e-5)
    _assert_weights_equal(reptile_step(meta, adapted, 1.0), adapted, rtol=0, atol=1e-6)


def test_average_method_averages_one_fit_per_image_from_a_shared_start():
    result = meta_initialise(TINY)
    images = noise_images(TINY)
    start = random_weights(TINY)
    fits = [_fit(inputs, fit_options(TINY, TINY.steps, derived_seed(TINY.seed, 1, i)), start)
            for i, inputs in enumerate(images)]
    _assert_weights_equal(result.weights, average_weights([f.weights for f in fits]), rtol=1e-5, atol=1e-6)
    assert result.losses == pytest.approx([f.loss for f in fits], rel=1e-4)


def test_reptile_moves_the_meta_weights_toward_each_inner_fit():
    options = MetaInitOptions(method="reptile", images=1, height=24, width=32, steps=10, inner_steps=10,
                              step_size=0.5, device="cpu")
    assert options.rounds == 1 and reptile_order(options) == [0]
    (inputs,) = noise_images(options)
    start = random_weights(options)
    inner = _fit(inputs, fit_options(options, 10, derived_seed(options.seed, 2, 0)), start).weights
    result = meta_initialise(options)
    _assert_weights_equal(result.weights, reptile_step(start, inner, 0.5), rtol=1e-5, atol=1e-6)
    assert _distance(result.weights, inner) < _distance(start, inner)


def test_reptile_order_visits_every_image_each_pass():
    options = MetaInitOptions(method="reptile", images=3, steps=4, inner_steps=2, device="cpu")
    order = reptile_order(options)
    assert len(order) == options.rounds == 6
    assert sorted(order[:3]) == sorted(order[3:]) == [0, 1, 2]
    assert options.total_steps == 12 == MetaInitOptions(images=3, steps=4).total_steps


@pytest.mark.parametrize(
    "bad",
    [{"method": "maml"}, {"residual": "ratio"}, {"hidden_width": 12}, {"images": 0}, {"steps": 0},
     {"step_size": 0.0}, {"step_size": 1.5}, {"method": "reptile", "images": 1, "steps": 5, "inner_steps": 10}],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(InputError):
        MetaInitOptions(**bad)


def test_weights_file_round_trip_and_record(tmp_path):
    weights = _random_weights(6)
    record_path = write_initial_weights(tmp_path / "gamma-relu-8.npz", weights, {"command": "test"})
    _assert_weights_equal(read_initial_weights(tmp_path / "gamma-relu-8.npz"), weights, rtol=0)
    _assert_weights_equal(load_initial_weights("gamma", "relu", 8, folder=tmp_path), weights, rtol=0)
    assert load_initial_weights("gamma", "sine", 8, folder=tmp_path) is None
    record = json.loads(record_path.read_text())
    assert record["command"] == "test" and len(record["weights_sha256"]) == 64


def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _damaged(kind: str) -> bytes:
    arrays = _random_weights(7).arrays()
    if kind == "not-npz":
        return b"PK\x03\x04 not really a zip"
    if kind == "npy":
        buffer = io.BytesIO()
        np.save(buffer, arrays["W2"])
        return buffer.getvalue()
    if kind == "missing":
        del arrays["W3"]
    elif kind == "extra":
        arrays["W4"] = arrays["W3"]
    elif kind == "dtype":
        arrays["W2"] = arrays["W2"].astype(np.float64)
    elif kind == "shape":
        arrays["Wy"] = arrays["Wy"][:-1]
    elif kind == "nan":
        arrays["b2"] = arrays["b2"].copy()
        arrays["b2"][0] = np.nan
    elif kind == "object":
        arrays["b3"] = np.array([None, None, None], dtype=object)
    return _npz(arrays)


@pytest.mark.parametrize("kind", ["not-npz", "npy", "missing", "extra", "dtype", "shape", "nan", "object"])
def test_loader_rejects_damaged_files(tmp_path, kind):
    (tmp_path / "gamma-sine-8.npz").write_bytes(_damaged(kind))
    with pytest.raises(InputError):
        load_initial_weights("gamma", "sine", 8, folder=tmp_path)


def test_loader_rejects_a_width_other_than_the_name_says(tmp_path):
    (tmp_path / "gamma-sine-16.npz").write_bytes(_npz(_random_weights(8, width=8).arrays()))
    with pytest.raises(InputError, match="expected float32"):
        load_initial_weights("gamma", "sine", 16, folder=tmp_path)


def test_cli_meta_init_writes_a_loadable_file_with_its_record(tmp_path, capsys):
    output = tmp_path / "gain-relu-8.npz"
    args = ["meta-init", "-o", str(output), "--method", "reptile", "--residual", "gain", "--activation", "relu",
            "--hidden", "8", "--images", "2", "--size", "32x24", "--steps", "10", "--inner-steps", "5",
            "--seed", "3", "--device", "cpu"]
    assert main(args) == EXIT_OK
    assert "wrote" in capsys.readouterr().out
    weights = load_initial_weights("gain", "relu", 8, folder=tmp_path)
    assert weights is not None and weights.hidden_width == 8
    record = json.loads(output.with_suffix(".json").read_text())
    assert record["command"].startswith(f"gainmap meta-init -o {output} --method reptile --residual gain")
    assert record["configuration"] == "gain-relu-8"
    assert record["options"]["images"] == 2 and record["options"]["seed"] == 3
    assert (record["options"]["width"], record["options"]["height"], record["options"]["steps"]) == (32, 24, 10)
    assert set(record["versions"]) == {"python", "numpy", "torch", "gainmap_format"}
    assert record["date"] and "git_commit" in record and len(record["final_losses"]) == 2
    assert record["weights_sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()


def test_cli_meta_init_rejects_a_step_size_over_one(tmp_path, capsys):
    args = ["meta-init", "-o", str(tmp_path / "x.npz"), "--method", "reptile", "--step-size", "2", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == EXIT_USAGE
    assert "step size" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A shipped-weights folder holding only gamma-sine-16, made by a tiny meta-init."""
    weights = meta_initialise(MetaInitOptions(images=1, height=16, width=16, steps=2, device="cpu")).weights
    write_initial_weights(tmp_path / "gamma-sine-16.npz", weights, {"command": "test"})
    monkeypatch.setattr(initweights, "INIT_FOLDER", tmp_path)
    return weights


def _start_weights(init: str, residual: str = "gamma") -> MlpWeights:
    """The weights an encode starts from: a fit of zero steps ends where it starts."""
    scene = hdr_scene(16, 20, seed=2)
    options = codec.EncodeOptions(init=init, residual=residual, fit=codec.FitOptions(iterations=0, device="cpu"))
    result = codec.encode(scene, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, options=options)
    return check_graph(codec.read_container(result.jpeg).graph, "sine", 16)


def test_encode_starts_from_the_shipped_weights_by_default(shipped):
    assert codec.EncodeOptions().init == "meta"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _assert_weights_equal(_start_weights("meta"), shipped, rtol=0)
    assert not [w for w in caught if issubclass(w.category, MissingInitWarning)]


def test_encode_starts_from_random_weights_when_asked_or_when_none_ship(shipped):
    random = _start_weights("random")
    assert _distance(random, shipped) > 0.1
    with pytest.warns(MissingInitWarning, match="gain-sine-16"):
        fallback = _start_weights("meta", residual="gain")
    _assert_weights_equal(fallback, random, rtol=0)
    with pytest.raises(InputError):
        codec.EncodeOptions(init="learned")


def test_cli_encode_init_option(tmp_path, shipped, monkeypatch):
    exr = tmp_path / "scene.exr"
    write_exr(exr, hdr_scene(16, 20, seed=2), chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)
    chosen = []
    real_encode = codec.encode

    def spy(*args, **kwargs):
        chosen.append(kwargs["options"].init)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(codec, "encode", spy)
    for init in ("random", "meta"):
        assert main(["encode", str(exr), "-o", str(tmp_path / f"{init}.jpg"), "--iterations", "1", "--quiet",
                     "--device", "cpu", "--init", init]) == EXIT_OK
    assert main(["encode", str(exr), "-o", str(tmp_path / "default.jpg"), "--iterations", "1", "--quiet"]) == EXIT_OK
    assert chosen == ["random", "meta", "meta"]
