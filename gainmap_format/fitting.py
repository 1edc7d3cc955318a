"""Per-image fitting of the network with torch (the ``train`` extra; decoding never imports this).

The model here has exactly the parameters of ``network.MlpWeights`` and computes the same
function, so export is a copy. Training samples a fresh batch of random pixels every step,
which keeps the cost of a step independent of the image size.

Three ways to evaluate a step give the same fit to float32 rounding: "dense" (the textbook
120-wide first layer), "tables" (the first layer as five lookups, see ``network.py``) and
"native" (the C kernel of ``native.py``: forward and backward fused per pixel, on all CPU
threads; torch only turns the tables' gradients into the weights' and runs Adam). "auto"
takes "native" on the CPU when the extension is built, "tables" otherwise (CUDA).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import native
from .container import HIDDEN_WIDTHS, Activation
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

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the train extra
    raise ImportError(
        "fitting needs torch: install the 'train' extra (pip install 'gainmap-format[train]')"
    ) from exc

#: Called as progress(step, total_steps, loss) every few steps.
ProgressCallback = Callable[[int, int, float], None]

_PROGRESS_EVERY = 10


@dataclass(frozen=True)
class FitOptions:
    """How to fit one image.

    Attributes:
        iterations: optimisation steps (paper: 1,000).
        batch_size: random pixels per step (paper: 65,536).
        learning_rate: Adam's learning rate (paper: 1e-2).
        hidden_width: neurons per hidden layer: 8, 16, 32, 64 or 128.
        activation: "sine" (the authors' released configs) or "relu" (the paper's text).
        seed: seeds the initial weights and the pixel sampling.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        method: "native" runs the fused C kernel (CPU only); "tables" evaluates the first
            layer as five table lookups in torch; "dense" as the textbook 120-wide product.
            All give the same fit to float32 rounding; "dense" is the reference the
            benchmarks compare with. "auto" picks "native" on the CPU when the extension
            is built, else "tables".
    """

    iterations: int = 1000
    batch_size: int = 65536
    learning_rate: float = 1e-2
    hidden_width: int = 16
    activation: Activation = "sine"
    seed: int = 0
    device: str = "auto"
    method: Literal["auto", "native", "tables", "dense"] = "auto"

    def __post_init__(self) -> None:
        """Reject options no fit can use, before any work starts."""
        if self.hidden_width not in HIDDEN_WIDTHS:
            raise InputError(f"hidden width {self.hidden_width} is not one of {HIDDEN_WIDTHS}")
        if self.activation not in ("sine", "relu"):
            raise InputError(f"activation {self.activation!r} is not 'sine' or 'relu'")
        if self.iterations < 0 or self.batch_size < 1 or not self.learning_rate > 0:
            raise InputError(
                f"iterations {self.iterations}, batch size {self.batch_size} and learning rate "
                f"{self.learning_rate} must be >= 0, >= 1 and > 0"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device {self.device!r} is not 'auto', 'cpu' or 'cuda'")
        if self.method not in ("auto", "native", "tables", "dense"):
            raise InputError(f"fit method {self.method!r} is not 'auto', 'native', 'tables' or 'dense'")


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

    def backward_native(
        self, step: int, size: int, sampler: _PixelSampler, encodings: Encodings, scratch: np.ndarray | None = None
    ) -> torch.Tensor:
        """A step's mean squared error from the C kernel, which also leaves the gradients in ``.grad``.

        The kernel draws the step's ``size`` pixels itself (the same as ``sampler.indices``);
        ``scratch`` (``native.scratch_for``) is its working memory, kept across steps.

        The kernel returns the gradients of the lookup tables and of the later layers; the
        first layer's weight gradients follow by the chain rule through the tables' products
        (table = encodings @ weights), here in numpy. Torch's autograd is not involved: for a
        network this small its bookkeeping would cost more than the products.

        Returns:
            float32 scalar tensor, the loss.
        """
        weights = {name: getattr(self, name).detach().numpy() for name in PARAMETER_NAMES}
        levels, rows, cols = (t.numpy() for t in (encodings.levels, encodings.rows, encodings.cols))
        tables = native.Tables(
            np.matmul(levels[None], weights["Wc"]), rows @ weights["Wy"] + weights["b1"], cols @ weights["Wx"],
            weights["W2"], weights["b2"], weights["W3"], weights["b3"], relu=self.activation == "relu",
        )
        loss, tables_grad = native.fit_gradients(tables, sampler.seed, step, size, sampler.code_flat,
                                                 sampler.target_flat, sampler.width, scratch)
        gradients = {
            "Wc": np.matmul(levels.T[None], tables_grad.colour),
            "Wy": rows.T @ tables_grad.row,
            "Wx": cols.T @ tables_grad.col,
            "b1": tables_grad.row.sum(axis=0),
            "W2": tables_grad.W2, "b2": tables_grad.b2, "W3": tables_grad.W3, "b3": tables_grad.b3,
        }
        for name, gradient in gradients.items():
            getattr(self, name).grad = torch.from_numpy(np.ascontiguousarray(gradient, dtype=np.float32))
        return torch.tensor(loss, dtype=torch.float32)


class _Lookup(torch.autograd.Function):
    """table[index] whose gradient is one ``index_add_``, faster than autograd's default."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        table_grad = torch.zeros(ctx.rows, grad.shape[1], dtype=grad.dtype, device=grad.device)
        return table_grad.index_add_(0, index, grad), None


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return _Lookup.apply(table, index)


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


class _PixelSampler:
    """Draws batches of random pixels from one image, uniformly with replacement.

    A step's batch depends only on the seed and the step number: every method draws the same
    pixels (``native.draw_indices``, which the C kernel uses inside; torch's generator where
    the extension is not built), so that they fit the same way.
    """

    def __init__(self, code: np.ndarray, target: np.ndarray, device: torch.device, seed: int) -> None:
        height, width, _ = code.shape
        self.width = width
        self.count = height * width
        self.device = device
        self.seed = seed
        self.code_flat = np.ascontiguousarray(code.reshape(-1, 3), dtype=np.uint8)
        self.target_flat = np.ascontiguousarray(target.reshape(-1, 3), dtype=np.float32)
        self._code: torch.Tensor | None = None
        self._target: torch.Tensor | None = None

    def indices(self, size: int, step: int, generator: torch.Generator) -> torch.Tensor:
        """int64 (size,) flat pixel indices of a step's batch, on the CPU."""
        if native.available():
            return torch.from_numpy(native.draw_indices(self.seed, step, size, self.count))
        return torch.randint(0, self.count, (size,), generator=generator)

    def gather(self, index: torch.Tensor) -> PixelBatch:
        """The batch at ``index`` as torch tensors on the sampler's device."""
        if self._code is None:
            # Made only for the torch methods: int64 codes take 8 times the image's bytes.
            self._code = torch.from_numpy(self.code_flat.astype(np.int64)).to(self.device)
            self._target = torch.from_numpy(self.target_flat).to(self.device)
        index = index.to(self.device)
        return PixelBatch(self._code[index], index // self.width, index % self.width, self._target[index])


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
    gradient_step = _gradient_step(model, method, sampler, encodings, batch, generator)
    # The fused update is one kernel for all parameters: a third of the for-loop's time on the CPU.
    optimiser = torch.optim.Adam(model.parameters(), lr=options.learning_rate, fused=True)
    start = time.perf_counter()
    loss_value = float("nan")
    with _torch_threads(1 if method == "native" else torch.get_num_threads()):
        for step in range(1, options.iterations + 1):
            optimiser.zero_grad(set_to_none=True)
            loss = gradient_step(step)
            optimiser.step()
            if progress is not None and (step % _PROGRESS_EVERY == 0 or step == options.iterations):
                loss_value = float(loss)
                progress(step, options.iterations, loss_value)
    if options.iterations:
        loss_value = float(loss)
    seconds = time.perf_counter() - start
    return FitResult(model.export(), loss_value, seconds, str(device), method)


def _gradient_step(
    model: GainMlp, method: str, sampler: _PixelSampler, encodings: Encodings, size: int, generator: torch.Generator
) -> Callable[[int], torch.Tensor]:
    """A function of the step number that fills the gradients of that step's batch and returns its loss."""
    if method == "native":
        scratch = native.scratch_for(model.b1.shape[0], sampler.count // sampler.width, sampler.width)
        return lambda step: model.backward_native(step, size, sampler, encodings, scratch)
    forward = model.forward_tables if method == "tables" else model.forward_dense

    def gradient_step(step: int) -> torch.Tensor:
        pixels = sampler.gather(sampler.indices(size, step, generator))
        loss = torch.mean((forward(pixels, encodings) - pixels.target) ** 2)
        loss.backward()
        return loss.detach()

    return gradient_step


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch on ``count`` threads for a while.

    With the C kernel, torch's share of a step is a few small products; its own thread pool,
    which keeps spinning after each operation, would then fight the kernel's threads for the
    cores and make a step several times slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
