"""The C kernels' own contract: sizes checked, indices checked, threads configurable.

What they compute is checked against torch (tests/test_fitting.py) and ONNX Runtime and the
numpy equations (tests/test_runtime.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gainmap_format import native

pytestmark = pytest.mark.skipif(not native.available(), reason="the C extension was not built")


def _tables(width=8, height=5, columns=7, seed=0, relu=False):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.3

    return native.Tables(normal(3, 256, width), normal(height, width), normal(columns, width), normal(width, width),
                         normal(width), normal(width, 3), normal(3), relu)


def _image(height=5, columns=7, seed=1):
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 256, (height * columns, 3), dtype=np.uint8)
    return code, rng.standard_normal((height * columns, 3)).astype(np.float32)


def _numpy_loss(tables, index, code, target, columns):
    y, x = np.divmod(index, columns)
    activation = (lambda v: np.maximum(v, 0.0)) if tables.relu else np.sin
    pixel = code[index].astype(np.int64)
    z = tables.colour[0][pixel[:, 0]] + tables.colour[1][pixel[:, 1]] + tables.colour[2][pixel[:, 2]]
    z = z + tables.row[y] + tables.col[x]
    hidden = activation(activation(z) @ tables.W2 + tables.b2)
    return float(np.mean((hidden @ tables.W3 + tables.b3 - target[index]) ** 2))


@pytest.mark.parametrize("relu", [False, True])
def test_loss_matches_numpy_and_batches_of_any_length_work(relu):
    tables = _tables(relu=relu)
    code, target = _image()
    for count in (1, 3, 4, 5, 9, 35, 3000):
        index = native.draw_indices(5, count, count, 35)
        loss, gradients = native.fit_gradients(tables, 5, count, count, code, target, 7)
        assert loss == pytest.approx(_numpy_loss(tables, index, code, target, 7), rel=1e-5)
        assert gradients.W3.shape == (8, 3) and gradients.row.shape == (5, 8)


def test_gradient_of_a_table_entry_is_a_finite_difference():
    tables = _tables(seed=3)
    code, target = _image(seed=4)
    index = native.draw_indices(0, 0, 200, 35)
    _, gradients = native.fit_gradients(tables, 0, 0, 200, code, target, 7)
    step = 1e-2
    for name, position in (("col", (2, 5)), ("W2", (1, 4)), ("b3", (2,))):
        values = {field: getattr(tables, field).astype(np.float64) for field in ("colour", "row", "col", "W2", "b2",
                                                                                   "W3", "b3")}
        losses = []
        for sign in (1.0, -1.0):
            changed = values[name].copy()
            changed[position] += sign * step
            shifted = native.Tables(**(values | {name: changed}), relu=False)
            losses.append(_numpy_loss(shifted, index, code, target, 7))
        assert getattr(gradients, name)[position] == pytest.approx((losses[0] - losses[1]) / (2 * step), rel=1e-3)


def test_wrong_sizes_raise_value_error():
    tables = _tables()
    code, target = _image()
    with pytest.raises(ValueError, match="target"):
        native.fit_gradients(tables, 0, 0, 10, code, target[:-1], 7)
    with pytest.raises(ValueError, match="col"):
        native.fit_gradients(tables, 0, 0, 10, code[:30], target[:30], 6)
    with pytest.raises(ValueError, match="batch"):
        native.fit_gradients(tables, 0, 0, 0, code, target, 7)


def test_decode_checks_its_arrays():
    tables = _tables()
    code = np.zeros((5, 7, 3), dtype=np.uint8)
    constants = native.DecodeConstants(np.zeros(256), np.eye(3), 1.0, 0.0, 1.0, 1 / 64, True, 1e4)
    pq, absolute = native.decode(tables, constants, code)
    assert pq.shape == absolute.shape == (5, 7, 3)
    with pytest.raises(ValueError, match="row"):
        native.decode(tables, constants, np.zeros((6, 7, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="lut"):
        native.decode(tables, native.DecodeConstants(np.zeros(255), np.eye(3), 1.0, 0.0, 1.0, 1 / 64, True, 1e4), code)


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.delenv("GAINMAP_THREADS", raising=False)
    default = native.thread_count()
    monkeypatch.setenv("GAINMAP_THREADS", "3")
    assert native.thread_count() == 3
    for ignored in ("0", "-2", "many", ""):
        monkeypatch.setenv("GAINMAP_THREADS", ignored)
        assert native.thread_count() == default


# Decodes and one fitting step's loss and gradients with whichever build the module picked; run
# in a child process so that GAINMAP_KERNEL is read when the module loads.
_BUILD_PROBE = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_native import _image, _tables
from gainmap_format import native
tables = _tables(width=16, height=5, columns=7)
code, target = _image()
constants = native.DecodeConstants(np.linspace(0, 0.01, 256), np.eye(3), 0.7, 0.1, 1.0, 1 / 64, True, 1e4)
pq, absolute = native.decode(tables, constants, code.reshape(5, 7, 3))
loss, gradients = native.fit_gradients(tables, 5, 0, 64, code, target, 7)
np.savez(sys.argv[1], variant=native.variant(), pq=pq, absolute=absolute, loss=loss, W2=gradients.W2)
"""


def _probe_build(tmp_path, environment):
    output = tmp_path / f"{environment.get('GAINMAP_KERNEL', 'auto')}.npz"
    inherited = {name: value for name, value in os.environ.items() if name != "GAINMAP_KERNEL"}
    env = {**inherited, **environment}
    subprocess.run([sys.executable, "-c", _BUILD_PROBE, str(output), str(Path(__file__).parent)], check=True, env=env)
    return np.load(output)


def test_older_builds_can_be_forced_and_agree_with_the_default(tmp_path):
    baseline = _probe_build(tmp_path, {"GAINMAP_KERNEL": "baseline"})
    avx2 = _probe_build(tmp_path, {"GAINMAP_KERNEL": "x86-64-v3"})
    default = _probe_build(tmp_path, {})
    assert str(baseline["variant"]) == "baseline"
    assert str(default["variant"]) in ("baseline", "x86-64-v3", "x86-64-v4")
    # Asking for the AVX2 build gives it wherever the CPU runs a build at least that new.
    expected = "baseline" if str(default["variant"]) == "baseline" else "x86-64-v3"
    assert str(avx2["variant"]) == expected
    # The builds differ in FMA contraction and vector width only: float32 rounding, not results.
    for build in (avx2, default):
        for name in ("pq", "absolute", "W2"):
            np.testing.assert_allclose(baseline[name], build[name], rtol=1e-4, atol=1e-6)
        assert float(baseline["loss"]) == pytest.approx(float(build["loss"]), rel=1e-5)


def test_missing_kernels_warn_once_with_what_they_cost(monkeypatch):
    import warnings

    monkeypatch.setattr(native, "_kernels", None)
    monkeypatch.setattr(native, "_warned_missing", False)
    with pytest.warns(native.NoKernelsWarning, match=r"torch \(about 6x slower\).*ONNX Runtime \(about 4x slower\)"):
        assert not native.available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not native.available() and native.variant() is None
