"""The torch fit methods, "tables" and "dense", on the CPU or CUDA (the ``train`` extra).

:mod:`.fitting` imports this only when a fit asks for a torch method or for CUDA: torch's import
takes seconds, and the default "native" method on the CPU needs none of it. Fits here start from
the weights :mod:`.fitting` gives (its numpy-seeded random start or a meta-initialisation) and
draw the same batches as the C kernel, so every method fits the same way to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .fitting import Encodings, PixelSampler, ProgressCallback, report_progress
from .network import PARAMETER_NAMES, MlpWeights
from .options import FitOptions
from .registries import Activation

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without the train extra
    raise ImportError(
        "the 'tables' and 'dense' fit methods and the 'cuda' device need torch: install the 'train' extra "
        "(pip install 'gainmap-format[train]')"
    ) from exc


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class TorchEncodings:
    """:class:`.fitting.Encodings` as float32 torch tensors on one device, same shapes."""

    levels: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor

    @classmethod
    def of(cls, encodings: Encodings, device: torch.device) -> TorchEncodings:
        """The same encodings, copied to ``device``."""
        return cls(*(torch.from_numpy(a).to(device) for a in (encodings.levels, encodings.rows, encodings.cols)))


@dataclass(frozen=True)
class PixelBatch:
    """Randomly drawn pixels: code int64 (N, 3), row and col int64 (N,), target float32 (N, 3)."""

    code: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    target: torch.Tensor


class TorchPixels:
    """A :class:`.fitting.PixelSampler`'s image as torch tensors on one device, for gathering batches."""

    def __init__(self, sampler: PixelSampler, device: torch.device) -> None:
        """Copy ``sampler``'s codes (as int64) and targets to ``device``."""
        self.sampler = sampler
        self.device = device
        # int64 codes take 8 times the image's bytes: made here, only for the torch methods.
        self.code = torch.from_numpy(sampler.code_flat.astype(np.int64)).to(device)
        self.target = torch.from_numpy(sampler.target_flat).to(device)

    def step(self, size: int, step: int) -> PixelBatch:
        """A step's batch of ``size`` pixels, the ones the C kernel draws for that step."""
        return self.gather(torch.from_numpy(self.sampler.indices(size, step)))

    def gather(self, index: torch.Tensor) -> PixelBatch:
        """The pixels at int64 flat ``index`` (N,)."""
        index = index.to(self.device)
        width = self.sampler.width
        return PixelBatch(self.code[index], index // width, index % width, self.target[index])


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

    def __init__(self, weights: MlpWeights, activation: Activation) -> None:
        """Start from ``weights`` (``fitting.random_initial_weights``, a meta-initialisation or a fit)."""
        super().__init__()
        self.activation = activation
        for name, array in weights.arrays().items():
            value = torch.from_numpy(np.array(array, dtype=np.float32))
            self.register_parameter(name, torch.nn.Parameter(value))

    def export(self) -> MlpWeights:
        """The current parameters as float32 numpy arrays."""
        return MlpWeights(**{name: getattr(self, name).detach().cpu().numpy().copy() for name in PARAMETER_NAMES})

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) if self.activation == "sine" else torch.relu(x)

    def _tail(self, first: torch.Tensor) -> torch.Tensor:
        hidden = self._act(first)
        hidden = self._act(hidden @ self.W2 + self.b2)
        return hidden @ self.W3 + self.b3

    def forward_dense(self, batch: PixelBatch, encodings: TorchEncodings) -> torch.Tensor:
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

    def forward_tables(self, batch: PixelBatch, encodings: TorchEncodings) -> torch.Tensor:
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


def optimise(
    start: MlpWeights, method: str, device: str, sampler: PixelSampler, encodings: Encodings, size: int,
    options: FitOptions, progress: ProgressCallback | None,
) -> tuple[MlpWeights, float]:
    """The torch methods' optimisation loop.

    Args:
        start: the weights to start from.
        method: "tables" or "dense".
        device: "cpu" or "cuda".
        sampler: the image's pixels.
        encodings: the image's encodings.
        size: pixels per step.
        options: iterations, learning rate and activation.
        progress: called every few steps with (step, total, loss).

    Returns:
        The fitted weights and the last step's loss.
    """
    torch_device = torch.device(device)
    model = GainMlp(start, options.activation).to(torch_device)
    pixels = TorchPixels(sampler, torch_device)
    tensors = TorchEncodings.of(encodings, torch_device)
    forward = model.forward_tables if method == "tables" else model.forward_dense
    # The fused update is one kernel for all parameters: a third of the for-loop's time on the CPU.
    optimiser = torch.optim.Adam(model.parameters(), lr=options.learning_rate, fused=True)
    loss = torch.tensor(float("nan"))
    for step in range(1, options.iterations + 1):
        optimiser.zero_grad(set_to_none=True)
        batch = pixels.step(size, step)
        loss = torch.mean((forward(batch, tensors) - batch.target) ** 2)
        loss.backward()
        optimiser.step()
        report_progress(progress, step, options.iterations, loss.detach())
    return model.export(), float(loss.detach())
