"""Per-image fitting of the network (decoding never imports this).

The model here has exactly the parameters of ``network.MlpWeights`` and computes the same
function, so export is a copy. Training samples a fresh batch of random pixels every step,
which keeps the cost of a step independent of the image size; a step's batch depends only on
the seed and the step number, and the random initial weights only on the seed and the width
(both made here in numpy), so every method below starts from the same weights, sees the same
pixels and fits the same way.

Three ways to evaluate a step give the same fit to float32 rounding: "native" (the C kernel of
``native.py``: sampling, forward and backward fused per pixel on all CPU threads; numpy does
the chain rule through the tables and Adam), "tables" (the first layer as five lookups, see
``network.py``; torch, CPU or CUDA) and "dense" (the textbook 120-wide first layer, torch).
"auto" takes "native" on the CPU when the extension is built, "tables" otherwise.

Only the torch methods and the CUDA device import torch (the ``train`` extra), from
:mod:`.fitting_torch`; "native" on the CPU, the default, runs without it, which saves the two
seconds its import takes from every encode.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import SupportsFloat

import numpy as np
from numpy.typing import NDArray

from . import native
from .errors import InputError
from .network import (
    ENCODING_WIDTH,
    PARAMETER_NAMES,
    MlpWeights,
    coordinates,
    normalised_levels,
    parameter_shapes,
    positional_encoding,
)
from .options import FitOptions as FitOptions
from .registries import Activation

#: Called as progress(step, total_steps, loss) every few steps.
ProgressCallback = Callable[[int, int, float], None]

_PROGRESS_EVERY = 10

#: Paths whose presence says a GPU driver torch could reach is installed, on Linux: NVIDIA's
#: driver, WSL2's GPU bridge, and AMD's ROCm (whose torch builds answer as ``torch.cuda``).
_GPU_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes:
        weights: the fitted network, float32 numpy arrays.
        loss: mean squared error of the last step, on the normalised residual.
        seconds: wall time of the optimisation loop.
        device: the device it ran on: "cpu" or "cuda".
        method: how the steps were evaluated: "native", "tables" or "dense".
    """

    weights: MlpWeights
    loss: float
    seconds: float
    device: str
    method: str


def resolve_method(name: str, device: str) -> str:
    """The evaluation method "auto" stands for on ``device``; checks that "native" can run.

    Args:
        name: a ``FitOptions.method``.
        device: a device :func:`resolve_device` returned: "cpu" or "cuda".

    Raises:
        InputError: "native" asked for on CUDA, or without the C extension.
    """
    if name == "auto":
        return "native" if device == "cpu" and native.available() else "tables"
    if name == "native" and device != "cpu":
        raise InputError(f"fit method 'native' runs on the CPU, not on {device}")
    if name == "native" and not native.available():
        raise InputError("fit method 'native' needs the C extension, which was not built at install time")
    return name


def resolve_device(name: str) -> str:
    """The device "auto", "cpu" or "cuda" stands for: "cpu" or "cuda".

    "auto" is CUDA when torch sees a CUDA device. torch is imported to ask only where it could
    say yes (:func:`_cuda_possible`): its import takes seconds, and "cpu" never imports it.

    Raises:
        InputError: "cuda" asked for but torch sees no CUDA device.
        ImportError: "cuda" asked for without torch (the ``train`` extra).
    """
    if name == "auto":
        return "cuda" if _cuda_possible() and _torch_sees_cuda() else "cpu"
    if name == "cuda" and not _torch_sees_cuda():
        raise InputError("device 'cuda' was asked for but torch sees no CUDA device")
    return name


def _cuda_possible() -> bool:
    """Whether torch could see a CUDA device here, judged without importing torch.

    No when torch is not installed, or on macOS (no CUDA there); on Linux, yes only where a GPU
    driver shows itself (``_GPU_DRIVER_PATHS``); elsewhere (Windows) only torch can tell.
    """
    if sys.modules.get("torch") is not None:
        return True  # already imported: asking costs nothing
    # Read at run time, not narrowed by the type checker to the platform it checks on.
    platform: str = sys.platform
    if importlib.util.find_spec("torch") is None or platform == "darwin":
        return False
    if platform.startswith("linux"):
        return any(os.path.exists(path) for path in _GPU_DRIVER_PATHS)
    return True


def _torch_sees_cuda() -> bool:
    """Whether torch sees a CUDA device; imports it (ImportError naming the ``train`` extra without it)."""
    from .fitting_torch import cuda_available

    return cuda_available()


def random_initial_weights(hidden_width: int, seed: int) -> MlpWeights:
    """The seeded random start of a fit, as torch's ``nn.Linear`` initialises its layers.

    Every parameter is uniform in ±1/sqrt(fan-in), the fan-in being that of its layer: 120 (the
    five 24-wide encodings) for the first, ``hidden_width`` for the others. Drawn in float64 by
    numpy's PCG64 (the same numbers on every platform), then rounded to float32.

    Args:
        hidden_width: neurons per hidden layer.
        seed: 0 to 2**64 - 1.

    Returns:
        float32 weights of ``network.parameter_shapes(hidden_width)``.
    """
    rng = np.random.default_rng(seed)
    first = {"Wc", "Wy", "Wx", "b1"}
    arrays = {}
    for name, shape in parameter_shapes(hidden_width).items():
        bound = 1.0 / math.sqrt(5 * ENCODING_WIDTH if name in first else hidden_width)
        arrays[name] = ((rng.random(shape) * 2.0 - 1.0) * bound).astype(np.float32)
    return MlpWeights(**arrays)


@dataclass(frozen=True)
class Encodings:
    """The encoded inputs every pixel draws from, computed once per image.

    Attributes:
        levels: float32 (256, 24), encodings of the normalised code levels.
        rows: float32 (H, 24), encodings of the row coordinates.
        cols: float32 (W, 24), encodings of the column coordinates.
    """

    levels: NDArray[np.float32]
    rows: NDArray[np.float32]
    cols: NDArray[np.float32]


def image_encodings(shape: tuple[int, ...], input_mean: float, input_range: float) -> Encodings:
    """The encodings of spec §6.1 for an image of ``shape`` (H, W, ...)."""
    return Encodings(
        positional_encoding(normalised_levels(input_mean, input_range)),
        positional_encoding(coordinates(shape[0])),
        positional_encoding(coordinates(shape[1])),
    )


def draw_indices(seed: int, step: int, count: int, pixels: int) -> NDArray[np.int64]:
    """A step's batch: ``count`` pixel indices in [0, pixels), uniform with replacement.

    The same draws as the C kernel makes inside (``native.draw_indices``; the tests hold the two
    to each other): SplitMix64 of a per-step base plus the draw's number, scaled by the high half
    of a 64 × 64-bit product, here computed from 32-bit halves (exact for pixels < 2^32).

    Returns:
        int64 (count,).
    """
    if not 0 < pixels < 1 << 32:
        raise InputError(f"an image of {pixels} pixels cannot be sampled")
    base = _splitmix64(_splitmix64(np.array([seed], dtype=np.uint64)) + np.uint64(step))
    values = _splitmix64(base + np.arange(count, dtype=np.uint64))
    high, low = values >> np.uint64(32), values & np.uint64(0xFFFFFFFF)
    scale = np.uint64(pixels)
    indices: NDArray[np.int64] = ((high * scale + ((low * scale) >> np.uint64(32))) >> np.uint64(32)).astype(np.int64)
    return indices


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 arrays (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


class PixelSampler:
    """One image's pixels, from which every step draws its batch uniformly with replacement.

    A step's batch depends only on the seed and the step number (:func:`draw_indices`), so every
    method draws the same pixels, with or without the C extension, and fits the same way.

    Attributes:
        width: the image's width in pixels.
        count: its pixel count.
        seed: the fit's seed.
        code_flat: uint8 (count, 3), the code values in row-major pixel order.
        target_flat: float32 (count, 3), the normalised residual in the same order.
    """

    def __init__(self, code: np.ndarray, target: np.ndarray, seed: int) -> None:
        """Keep uint8 (H, W, 3) ``code`` and float32 (H, W, 3) ``target`` flat, for the fit of ``seed``."""
        height, width, _ = code.shape
        self.width = width
        self.count = height * width
        self.seed = seed
        self.code_flat = np.ascontiguousarray(code.reshape(-1, 3), dtype=np.uint8)
        self.target_flat = np.ascontiguousarray(target.reshape(-1, 3), dtype=np.float32)

    def indices(self, size: int, step: int) -> NDArray[np.int64]:
        """int64 (size,) flat pixel indices of a step's batch."""
        return draw_indices(self.seed, step, size, self.count)


def native_gradients(
    weights: dict[str, np.ndarray],
    activation: Activation,
    step: int,
    size: int,
    sampler: PixelSampler,
    encodings: Encodings,
    scratch: np.ndarray | None = None,
) -> tuple[float, dict[str, np.ndarray]]:
    """A step's loss and gradients from the C kernel, which draws the step's ``size`` pixels itself.

    The kernel returns the gradients of the lookup tables and of the later layers; the first
    layer's weight gradients follow by the chain rule through the tables' products (table =
    encodings @ weights), here in numpy. Neither torch nor its autograd is involved: for a
    network this small their bookkeeping would cost more than the products.

    Args:
        weights: float32 arrays by parameter name (``network.PARAMETER_NAMES``).
        activation: "sine" or "relu".
        step: the step number, which selects the batch (as ``sampler.indices`` does).
        size: pixels in the batch.
        sampler: the image's pixels.
        encodings: the image's encodings.
        scratch: the kernel's working memory (``native.scratch_for``), kept across steps.

    Returns:
        The batch's mean squared error, and float32 gradients by parameter name.
    """
    levels, rows, cols = encodings.levels, encodings.rows, encodings.cols
    tables = native.Tables(
        np.matmul(levels[None], weights["Wc"]), rows @ weights["Wy"] + weights["b1"], cols @ weights["Wx"],
        weights["W2"], weights["b2"], weights["W3"], weights["b3"], relu=activation == "relu",
    )
    loss, table_gradients = native.fit_gradients(
        tables, sampler.seed, step, size, sampler.code_flat, sampler.target_flat, sampler.width, scratch
    )
    gradients = {
        "Wc": np.matmul(levels.T[None], table_gradients.colour),
        "Wy": rows.T @ table_gradients.row,
        "Wx": cols.T @ table_gradients.col,
        "b1": table_gradients.row.sum(axis=0),
        "W2": table_gradients.W2,
        "b2": table_gradients.b2,
        "W3": table_gradients.W3,
        "b3": table_gradients.b3,
    }
    return loss, {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in gradients.items()}


class _Adam:
    """Adam (betas 0.9 and 0.999, eps 1e-8) on one flat float32 array, computed as torch's is.

    For the C kernel's fits: torch's optimiser spends more time dispatching its update than
    numpy takes to do it on 2,259 numbers.
    """

    def __init__(self, size: int, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.first = np.zeros(size, dtype=np.float32)
        self.second = np.zeros(size, dtype=np.float32)
        self.steps = 0

    def update(self, parameters: np.ndarray, gradient: np.ndarray) -> None:
        """One step: ``parameters`` is changed in place."""
        self.steps += 1
        self.first += (gradient - self.first) * np.float32(0.1)
        self.second *= np.float32(0.999)
        self.second += np.float32(0.001) * gradient * gradient
        step_size = self.learning_rate / (1.0 - 0.9**self.steps)
        denominator = np.sqrt(self.second) / np.float32(math.sqrt(1.0 - 0.999**self.steps)) + np.float32(1e-8)
        parameters -= np.float32(step_size) * self.first / denominator


def fit(
    code: np.ndarray,
    target: np.ndarray,
    input_mean: float,
    input_range: float,
    options: FitOptions,
    init: MlpWeights | None = None,
    progress: ProgressCallback | None = None,
) -> FitResult:
    """Fit the network to one image's normalised residual map.

    Args:
        code: uint8 (H, W, 3), the base's code values as a decoder will see them.
        target: float32 (H, W, 3), the normalised residual, about [-1, 1].
        input_mean: the input normalisation's mean (of code / 255).
        input_range: the input normalisation's range.
        options: iterations, batch size, width, activation, seed, device.
        init: weights to start from; None starts from :func:`random_initial_weights`.
        progress: called every few steps with (step, total, loss).

    Returns:
        The fitted weights and how the fit went.

    Raises:
        InputError: mismatched arrays, initial weights of another width, or a method or device
            this machine cannot run.
        ImportError: a torch method or the CUDA device asked for without torch (``train`` extra).
    """
    if code.shape != target.shape or code.ndim != 3 or code.shape[2] != 3 or code.dtype != np.uint8:
        raise InputError(f"code {code.shape} {code.dtype} and target {target.shape} must be matching (H, W, 3)")
    if init is not None and init.hidden_width != options.hidden_width:
        raise InputError(f"initial weights have width {init.hidden_width}, options ask for {options.hidden_width}")
    device = resolve_device(options.device)
    method = resolve_method(options.method, device)
    start_weights = init if init is not None else random_initial_weights(options.hidden_width, options.seed)
    sampler = PixelSampler(code, target, options.seed)
    encodings = image_encodings(code.shape, input_mean, input_range)
    batch = min(options.batch_size, sampler.count)
    start = time.perf_counter()
    if method == "native":
        weights, loss = _optimise_native(start_weights, sampler, encodings, batch, options, progress)
    else:
        from .fitting_torch import optimise

        weights, loss = optimise(start_weights, method, device, sampler, encodings, batch, options, progress)
    seconds = time.perf_counter() - start
    return FitResult(weights, loss, seconds, device, method)


def report_progress(progress: ProgressCallback | None, step: int, total: int, loss: SupportsFloat) -> None:
    """Call ``progress`` every few steps and at the last; ``loss`` is read only then.

    Only every few steps: reading a CUDA loss waits for the device.
    """
    if progress is not None and (step % _PROGRESS_EVERY == 0 or step == total):
        progress(step, total, float(loss))


def _optimise_native(
    start: MlpWeights, sampler: PixelSampler, encodings: Encodings, size: int, options: FitOptions,
    progress: ProgressCallback | None,
) -> tuple[MlpWeights, float]:
    """The C kernel's optimisation loop, on numpy arrays; returns the weights and last step's loss."""
    arrays = start.arrays()
    shapes = [np.shape(arrays[name]) for name in PARAMETER_NAMES]
    flat = np.concatenate([np.ravel(arrays[name]) for name in PARAMETER_NAMES]).astype(np.float32)
    offsets = np.cumsum([0] + [int(np.prod(shape)) for shape in shapes])
    # Views into ``flat``, which Adam updates in place.
    weights = {name: flat[offsets[i]:offsets[i + 1]].reshape(shapes[i]) for i, name in enumerate(PARAMETER_NAMES)}
    scratch = native.scratch_for(options.hidden_width, sampler.count // sampler.width, sampler.width)
    adam = _Adam(flat.size, options.learning_rate)
    loss = float("nan")
    with _one_blas_thread():
        for step in range(1, options.iterations + 1):
            loss, gradients = native_gradients(weights, options.activation, step, size, sampler, encodings, scratch)
            adam.update(flat, np.concatenate([gradients[name].ravel() for name in PARAMETER_NAMES]))
            report_progress(progress, step, options.iterations, loss)
    return MlpWeights(**{name: value.copy() for name, value in weights.items()}), loss


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Hold numpy's BLAS to one thread while the kernel's threads run.

    numpy's BLAS computes the small products of each step; its threads, spinning between them,
    would fight the kernel's threads for the cores. threadpoolctl comes with the ``train`` extra;
    without it the fit runs all the same, only slower where BLAS is multithreaded.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[object] = threadpool_limits(1, user_api="blas")
    return limits
