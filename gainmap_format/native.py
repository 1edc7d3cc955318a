"""The C kernels of ``_kernels.c``: fused fitting steps and fused decoding on the CPU.

ONNX Runtime and torch evaluate the network one operator at a time over (N, W) tensors; the
kernels keep each pixel's whole computation in registers and split the work over threads of
their own (started in C, with the GIL released). They compute the same function as the
canonical graph (spec §6.3) and the decode equations (spec §7) to float32 rounding;
``runtime.py`` falls back to ONNX Runtime and ``fitting.py`` to torch when the extension was not
built (no C compiler at install time), with a :class:`NoKernelsWarning` that says what it costs.

The extension builds with GCC or Clang on x86-64 and arm64 (Linux, macOS). Threads: one per CPU
by default; set ``GAINMAP_THREADS`` to use fewer. Builds on x86-64: the AVX-512 one
(``"x86-64-v4"``) or the AVX2+FMA one (``"x86-64-v3"``) where the CPU has it; set
``GAINMAP_KERNEL=baseline`` (or ``x86-64-v3``) to run that build instead.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from .network import LEVELS

try:
    from . import _kernels
except ImportError:  # pragma: no cover - exercised only where the extension could not be built
    _kernels = None  # type: ignore[assignment]  # optional: callers check available() first


class NoKernelsWarning(UserWarning):
    """The C kernels were not built, so fitting runs on torch and decoding on ONNX Runtime, several times slower.

    Given once per process, the first time the library looks for the kernels. Measured on a
    2-core x86-64 machine (``benchmarks/bench_speed.py``): a 1 MP fitting step 5.7x slower, a
    12 MP decode 4.3x slower. Install a C compiler (GCC or Clang) and reinstall the package to
    build them.
    """


#: Whether :class:`NoKernelsWarning` was given in this process.
_warned_missing = False


def available() -> bool:
    """Whether the C extension was built and imported.

    Warns:
        NoKernelsWarning: it was not, the first time this is asked in a process.
    """
    global _warned_missing
    built = _kernels is not None
    if not built and not _warned_missing:
        _warned_missing = True
        warnings.warn(
            "gainmap_format's C kernels were not built (no GCC or Clang when it was installed): fitting "
            "falls back to torch (about 6x slower) and decoding to ONNX Runtime (about 4x slower); install "
            "a C compiler and reinstall gainmap-format to build them",
            NoKernelsWarning,
            stacklevel=2,
        )
    return built


def variant() -> str | None:
    """Which build of the kernels runs: ``"x86-64-v4"`` (AVX-512), ``"x86-64-v3"`` (AVX2+FMA), ``"baseline"``.

    None without the kernels. The module picks the newest build the CPU runs when it loads,
    unless ``GAINMAP_KERNEL`` names an older one (``"baseline"``, or ``"x86-64-v3"``). On arm64
    and other CPUs there is one build, ``"baseline"``, compiled for the compiler's own target.
    """
    return None if _kernels is None else str(_kernels.variant)


def thread_count() -> int:
    """Threads the kernels use: ``GAINMAP_THREADS`` if set, else the CPUs this process may use."""
    configured = os.environ.get("GAINMAP_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


@dataclass(frozen=True)
class Tables:
    """A network with its first layer as lookup tables (see ``network.first_layer_tables``).

    Attributes:
        colour: float32 (3, 256, W).
        row: float32 (H, W), with b1 added.
        col: float32 (w, W).
        W2: float32 (W, W).
        b2: float32 (W,).
        W3: float32 (W, 3).
        b3: float32 (3,).
        relu: True for ReLU, False for sine.
    """

    colour: np.ndarray
    row: np.ndarray
    col: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray
    relu: bool

    @property
    def width(self) -> int:
        """Neurons per hidden layer."""
        return int(self.b2.shape[0])


@dataclass(frozen=True)
class Gradients:
    """Gradients of the mean squared error with respect to :class:`Tables`' arrays, same shapes."""

    colour: np.ndarray
    row: np.ndarray
    col: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray


def draw_indices(seed: int, step: int, count: int, pixels: int) -> np.ndarray:
    """The pixels :func:`fit_gradients` draws for a seed and a step.

    Counter-based (SplitMix64), so any part of a batch can be drawn on any thread; uniform with
    replacement. ``fitting.draw_indices`` computes the same draws in numpy for the torch methods,
    so every method fits on the same pixels.

    Returns:
        int64 (count,), flat indices in [0, pixels).
    """
    out = np.empty(count, dtype=np.int64)
    _kernels.draw_indices(seed, step, count, pixels, out)
    return out


def scratch_for(hidden_width: int, height: int, width: int) -> np.ndarray:
    """Working memory for :func:`fit_gradients`: one set of gradients per thread after the first.

    Keep it across the steps of a fit: allocating it per step costs page faults.

    Returns:
        float32, uninitialised (the kernel clears what it uses).
    """
    per_set = (3 * LEVELS + height + width) * hidden_width + hidden_width * hidden_width + 4 * hidden_width + 3
    return np.empty((thread_count() - 1) * per_set, dtype=np.float32)


def fit_gradients(
    tables: Tables,
    seed: int,
    step: int,
    count: int,
    code: np.ndarray,
    target: np.ndarray,
    image_width: int,
    scratch: np.ndarray | None = None,
) -> tuple[float, Gradients]:
    """Loss and gradients of one training batch: sampling, the forward and the backward pass fused.

    The batch is ``draw_indices(seed, step, count, H * image_width)``, split into one part per
    thread; each part accumulates its own gradients, summed at the end, so the result depends on
    the thread count only through float rounding.

    Args:
        tables: the network as lookup tables.
        seed: the fit's seed.
        step: the step number, which selects the batch.
        count: pixels in the batch.
        code: uint8 (H * image_width, 3), the base's code values.
        target: float32 (H * image_width, 3), the normalised residual.
        image_width: pixels per row.
        scratch: from :func:`scratch_for`; None allocates one for this call. A smaller one
            means fewer threads.

    Returns:
        The batch's mean squared error over count × 3 values, and its gradients.

    Raises:
        ValueError: arrays of the wrong size.
    """
    if count < 1:
        raise ValueError(f"a batch of {count} pixels")
    height = code.shape[0] // image_width
    if scratch is None:
        scratch = scratch_for(tables.width, height, image_width)
    gradients = Gradients(
        np.empty_like(tables.colour, dtype=np.float32),
        np.empty_like(tables.row, dtype=np.float32),
        np.empty_like(tables.col, dtype=np.float32),
        np.empty_like(tables.W2, dtype=np.float32),
        np.empty_like(tables.b2, dtype=np.float32),
        np.empty((3, tables.width), dtype=np.float32),  # transposed, as the kernel accumulates it
        np.empty(3, dtype=np.float32),
    )
    squared = _kernels.fit_batch(
        height, image_width, tables.width, tables.relu, 2.0 / (3.0 * count), thread_count(), seed, step, count,
        np.ascontiguousarray(code, dtype=np.uint8), _f32(target), _f32(tables.colour), _f32(tables.row),
        _f32(tables.col), _f32(tables.W2), _f32(tables.W2.T), _f32(tables.b2), _f32(tables.W3.T), _f32(tables.b3),
        gradients.colour, gradients.row, gradients.col, gradients.W2, gradients.b2, gradients.W3, gradients.b3,
        scratch,
    )
    transposed_w3 = gradients.W3.T.copy()
    return squared / (3.0 * count), Gradients(
        gradients.colour, gradients.row, gradients.col, gradients.W2, gradients.b2, transposed_w3, gradients.b3
    )


@dataclass(frozen=True)
class DecodeConstants:
    """Spec §7's constants as the kernel takes them.

    Attributes:
        lut: float32 (256,), base code value to linear light / 10000 (spec §7.1).
        matrix: float32 (3, 3), base primaries to BT.2020.
        scale: the network output's affine map f = o · scale + offset (display weight folded
            in for a gamma map).
        offset: see ``scale``.
        weight: the display weight, the exponent of a gain map's factor.
        epsilon: the residual's offset e.
        gamma: True for an exponential residual, False for a multiplicative one.
        linear_scale: the linear output for PQ's peak: 10000 cd/m² over the output's unit.
    """

    lut: np.ndarray
    matrix: np.ndarray
    scale: float
    offset: float
    weight: float
    epsilon: float
    gamma: bool
    linear_scale: float


def decode(
    tables: Tables, constants: DecodeConstants, code: np.ndarray, with_pq: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """The HDR rendition of a base image, in bands of rows over the threads.

    Args:
        tables: the network as lookup tables for this image's size.
        constants: the decode equations' constants.
        code: uint8 (H, W, 3), the base image.
        with_pq: also return the PQ code values (False saves their memory).

    Returns:
        float32 (H, W, 3) BT.2020 PQ code values in [0, 1] (None without ``with_pq``), and
        float32 (H, W, 3) linear BT.2020 in units of 10000 cd/m² / ``constants.linear_scale``.
    """
    if constants.lut.shape != (LEVELS,):
        raise ValueError(f"lut has shape {constants.lut.shape}, not ({LEVELS},)")
    height, width, _ = code.shape
    code = np.ascontiguousarray(code, dtype=np.uint8)
    pq = np.empty((height, width, 3), dtype=np.float32) if with_pq else None
    linear = np.empty((height, width, 3), dtype=np.float32)
    _kernels.decode(
        height, width, tables.width, tables.relu, constants.gamma, constants.scale, constants.offset,
        constants.weight, constants.epsilon, constants.linear_scale, thread_count(), code, _f32(tables.colour),
        _f32(tables.row), _f32(tables.col), _f32(tables.W2), _f32(tables.b2), _f32(tables.W3.T), _f32(tables.b3),
        _f32(constants.lut), _f32(constants.matrix), pq, linear,
    )
    return pq, linear
