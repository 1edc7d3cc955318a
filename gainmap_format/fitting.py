"""Per-image fitting of the network (the ``train`` extra: torch; decoding never imports this).

The model here has exactly the parameters of ``network.MlpWeights`` and computes the same
function, so export is a copy. Training samples a fresh batch of random pixels every step,
which keeps the cost of a step independent of the image size; a step's batch depends only on
the seed and the step number, so every method below sees the same pixels.

Three ways to evaluate a step give the same fit to float32 rounding: "dense" (the textbook
120-wide first layer, torch), "tables" (the first layer as five lookups, see ``network.py``;
torch, CPU or CUDA) and "native" (the C kernel of ``native.py``: sampling, forward and backward
fused per pixel on all CPU threads; numpy does the chain rule through the tables and Adam).
"auto" takes "native" on the CPU when the extension is built, "tables" otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

try:
    import torch
    from threadpoolctl import threadpool_limits
except ImportError as exc:  # pragma: no cover - exercised only without the train extra
    raise ImportError(
        "fitting needs torch: install the 'train' extra (pip install 'gainmap-format[train]')"
    ) from exc

#: Called as progress(step, total_steps, loss) every few steps.
ProgressCallback = Callable[[int, int, float], None]

_PROGRESS_EVERY = 10


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes:
        weights: the fitted network, float32 numpy arrays.
        loss: mean squared error of the last step, on the normalised residual.
        seconds: wall time of the optimisation loop.
        device: the torch device it ran on.
        method: how the steps were evaluated: "native", "tables" or "dense".
    """

    weights: MlpWeights
    loss: float
    seconds: float
    device: str
    method: str


def resolve_method(name: str, device: torch.device) -> str:
    """The evaluation method "auto" stands for on ``device``; checks that "native" can run."""
    if name == "auto":
        return "native" if device.type == "cpu" and native.available() else "tables"
    if name == "native" and device.type != "cpu":
        raise InputError(f"fit method 'native' runs on the CPU, not on {device}")
    if name == "native" and not native.available():
        raise InputError("fit method 'native' needs the C extension, which was not built at install time")
    return name


def resolve_device(name: str) -> torch.device:
    """The torch device for "auto", "cpu" or "cuda"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(name)


class GainMlp(torch.nn.Module):
    """The network of spec §6 as a torch module, parameters named as in the graph."""

    # Registered by name in __init__; declared so that the type checker knows they are tensors.
    Wc: torch.nn.Parameter
    Wy: torch.nn.Parameter
    Wx: torch.nn.Parameter
    b1: torch.nn.Parameter
    W2: torch.nn.Parameter
    b2: torch.nn.Parameter
    W3: torch.nn.Parameter
    b3: torch.nn.Parameter

    def __init__(self, width: int, activation: Activation, generator: torch.Generator) -> None:
        """Initialise like torch's ``nn.Linear`` on the 120-wide input (uniform, 1/sqrt(fan-in))."""
        super().__init__()
        self.activation = activation
        fan_in = {"Wc": 5 * ENCODING_WIDTH, "Wy": 5 * ENCODING_WIDTH, "Wx": 5 * ENCODING_WIDTH,
                  "b1": 5 * ENCODING_WIDTH, "W2": width, "b2": width, "W3": width, "b3": width}
        for name, shape in parameter_shapes(width).items():
            bound = 1.0 / np.sqrt(fan_in[name])
            value = (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound
            self.register_parameter(name, torch.nn.Parameter(value))

    def load(self, weights: MlpWeights) -> None:
        """Start from given weights (a meta-initialisation or an earlier fit)."""
        with torch.no_grad():
            for name, array in weights.arrays().items():
                getattr(self, name).copy_(torch.from_numpy(np.asarray(array, dtype=np.float32)))

    def export(self) -> MlpWeights:
        """The current parameters as float32 numpy arrays."""
        return MlpWeights(**{name: getattr(self, name).detach().cpu().numpy().copy() for name in PARAMETER_NAMES})

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) if self.activation == "sine" else torch.relu(x)

    def _tail(self, first: torch.Tensor) -> torch.Tensor:
        hidden = self._act(first)
        hidden = self._act(hidden @ self.W2 + self.b2)
        return hidden @ self.W3 + self.b3

    def forward_dense(self, batch: PixelBatch, encodings: Encodings) -> torch.Tensor:
        """The textbook evaluation: gather the 120 encoded inputs, then one product.

        Returns:
            float32 (N, 3), the predicted normalised residual.
        """
        features = torch.cat(
            [
                encodings.levels[batch.code[:, 0]],
                encodings.levels[batch.code[:, 1]],
                encodings.levels[batch.code[:, 2]],
                encodings.rows[batch.row],
                encodings.cols[batch.col],
            ],
            dim=1,
        )
        first = torch.cat([self.Wc[0], self.Wc[1], self.Wc[2], self.Wy, self.Wx], dim=0)
        return self._tail(features @ first + self.b1)

    def forward_tables(self, batch: PixelBatch, encodings: Encodings) -> torch.Tensor:
        """The same function with the first layer as five table lookups (see ``network.py``).

        Returns:
            float32 (N, 3), the predicted normalised residual.
        """
        colour = torch.matmul(encodings.levels, self.Wc)
        row = encodings.rows @ self.Wy + self.b1
        col = encodings.cols @ self.Wx
        first = (
            _lookup(colour[0], batch.code[:, 0])
            + _lookup(colour[1], batch.code[:, 1])
            + _lookup(colour[2], batch.code[:, 2])
            + _lookup(row, batch.row)
            + _lookup(col, batch.col)
        )
        return self._tail(first)


def native_gradients(
    weights: dict[str, np.ndarray],
    activation: Activation,
    step: int,
    size: int,
    sampler: _PixelSampler,
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
        encodings: the image's encodings (on the CPU).
        scratch: the kernel's working memory (``native.scratch_for``), kept across steps.

    Returns:
        The batch's mean squared error, and float32 gradients by parameter name.
    """
    levels, rows, cols = (t.numpy() for t in (encodings.levels, encodings.rows, encodings.cols))
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


class _Lookup(torch.autograd.Function):
    """table[index] whose gradient is one ``index_add_``, faster than autograd's default."""

    @staticmethod
    def forward(ctx: Any, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        table_grad = torch.zeros(ctx.rows, grad.shape[1], dtype=grad.dtype, device=grad.device)
        return table_grad.index_add_(0, index, grad), None


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    # torch leaves Function.apply unannotated; it returns what forward returns.
    gathered: torch.Tensor = _Lookup.apply(table, index)  # type: ignore[no-untyped-call]
    return gathered


@dataclass(frozen=True)
class Encodings:
    """The encoded inputs every pixel draws from, computed once per image.

    Attributes:
        levels: float32 (256, 24), encodings of the normalised code levels.
        rows: float32 (H, 24), encodings of the row coordinates.
        cols: float32 (W, 24), encodings of the column coordinates.
    """

    levels: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor


@dataclass(frozen=True)
class PixelBatch:
    """Randomly drawn pixels: code int64 (N, 3), row and col int64 (N,), target float32 (N, 3)."""

    code: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    target: torch.Tensor


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


class _PixelSampler:
    """Draws batches of random pixels from one image, uniformly with replacement.

    A step's batch depends only on the seed and the step number (:func:`draw_indices`), so every
    method draws the same pixels, with or without the C extension, and fits the same way.
    """

    def __init__(self, code: np.ndarray, target: np.ndarray, device: torch.device, seed: int) -> None:
        height, width, _ = code.shape
        self.width = width
        self.count = height * width
        self.device = device
        self.seed = seed
        self.code_flat = np.ascontiguousarray(code.reshape(-1, 3), dtype=np.uint8)
        self.target_flat = np.ascontiguousarray(target.reshape(-1, 3), dtype=np.float32)
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None

    def indices(self, size: int, step: int) -> torch.Tensor:
        """int64 (size,) flat pixel indices of a step's batch, on the CPU."""
        return torch.from_numpy(draw_indices(self.seed, step, size, self.count))

    def gather(self, index: torch.Tensor) -> PixelBatch:
        """The batch at ``index`` as torch tensors on the sampler's device."""
        if self._tensors is None:
            # Made only for the torch methods: int64 codes take 8 times the image's bytes.
            self._tensors = (
                torch.from_numpy(self.code_flat.astype(np.int64)).to(self.device),
                torch.from_numpy(self.target_flat).to(self.device),
            )
        code, target = self._tensors
        index = index.to(self.device)
        return PixelBatch(code[index], index // self.width, index % self.width, target[index])


def image_encodings(shape: tuple[int, ...], input_mean: float, input_range: float,
                    device: torch.device) -> Encodings:
    """The encodings of spec §6.1 for an image of ``shape`` (H, W, ...), as torch tensors."""
    levels = positional_encoding(normalised_levels(input_mean, input_range))
    return Encodings(
        torch.from_numpy(levels).to(device),
        torch.from_numpy(positional_encoding(coordinates(shape[0]))).to(device),
        torch.from_numpy(positional_encoding(coordinates(shape[1]))).to(device),
    )


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
        init: weights to start from; None starts from the seeded random initialisation.
        progress: called every few steps with (step, total, loss).

    Returns:
        The fitted weights and how the fit went.
    """
    if code.shape != target.shape or code.ndim != 3 or code.shape[2] != 3 or code.dtype != np.uint8:
        raise InputError(f"code {code.shape} {code.dtype} and target {target.shape} must be matching (H, W, 3)")
    device = resolve_device(options.device)
    generator = torch.Generator().manual_seed(options.seed)
    model = GainMlp(options.hidden_width, options.activation, generator)
    if init is not None:
        if init.hidden_width != options.hidden_width:
            raise InputError(f"initial weights have width {init.hidden_width}, options ask for {options.hidden_width}")
        model.load(init)
    model.to(device)
    method = resolve_method(options.method, device)
    sampler = _PixelSampler(code, target, device, options.seed)
    encodings = image_encodings(code.shape, input_mean, input_range, device)
    batch = min(options.batch_size, sampler.count)
    start = time.perf_counter()
    if method == "native":
        loss_value = _optimise_native(model, sampler, encodings, batch, options, progress)
    else:
        loss_value = _optimise_torch(model, method, sampler, encodings, batch, options, progress)
    seconds = time.perf_counter() - start
    return FitResult(model.export(), loss_value, seconds, str(device), method)


def _report(progress: ProgressCallback | None, step: int, total: int, loss: float | torch.Tensor) -> None:
    # Only every few steps: reading a CUDA loss waits for the device.
    if progress is not None and (step % _PROGRESS_EVERY == 0 or step == total):
        progress(step, total, float(loss))


def _optimise_native(
    model: GainMlp, sampler: _PixelSampler, encodings: Encodings, size: int, options: FitOptions,
    progress: ProgressCallback | None,
) -> float:
    """The C kernel's optimisation loop, on numpy arrays; returns the last step's loss."""
    names = PARAMETER_NAMES
    shapes = [tuple(getattr(model, name).shape) for name in names]
    flat = np.concatenate([getattr(model, name).detach().numpy().ravel() for name in names]).astype(np.float32)
    offsets = np.cumsum([0] + [int(np.prod(shape)) for shape in shapes])
    weights = {name: flat[offsets[i]:offsets[i + 1]].reshape(shapes[i]) for i, name in enumerate(names)}
    scratch = native.scratch_for(model.b1.shape[0], sampler.count // sampler.width, sampler.width)
    adam = _Adam(flat.size, options.learning_rate)
    loss = float("nan")
    # numpy's BLAS computes the small products of each step; its threads, spinning between
    # them, would fight the kernel's threads for the cores.
    with threadpool_limits(1, user_api="blas"):
        for step in range(1, options.iterations + 1):
            loss, gradients = native_gradients(weights, model.activation, step, size, sampler, encodings, scratch)
            adam.update(flat, np.concatenate([gradients[name].ravel() for name in names]))
            _report(progress, step, options.iterations, loss)
    model.load(MlpWeights(**weights))
    return loss


def _optimise_torch(
    model: GainMlp, method: str, sampler: _PixelSampler, encodings: Encodings, size: int, options: FitOptions,
    progress: ProgressCallback | None,
) -> float:
    """The torch methods' optimisation loop; returns the last step's loss."""
    forward = model.forward_tables if method == "tables" else model.forward_dense
    # The fused update is one kernel for all parameters: a third of the for-loop's time on the CPU.
    optimiser = torch.optim.Adam(model.parameters(), lr=options.learning_rate, fused=True)
    loss = torch.tensor(float("nan"))
    for step in range(1, options.iterations + 1):
        optimiser.zero_grad(set_to_none=True)
        pixels = sampler.gather(sampler.indices(size, step))
        loss = torch.mean((forward(pixels, encodings) - pixels.target) ** 2)
        loss.backward()
        optimiser.step()
        _report(progress, step, options.iterations, loss.detach())
    return float(loss.detach())
