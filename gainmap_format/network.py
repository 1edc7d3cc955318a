"""The network of spec §6 in plain numpy: its weights, its input encoding, its forward pass.

The network maps a base pixel's code values (R, G, B) and position (row, column) to the
normalised residual of that pixel. Each of the five inputs is normalised to about [-1, 1]
and encoded as 12 sines and 12 cosines; the encodings feed two hidden layers and a linear
output layer of 3.

Because the first layer is linear in the encodings, it splits into one weight block per
input. R, G and B take only 256 values each, and rows and columns take one value per row
and column, so the first layer reduces to five table lookups and a sum: this is how both the
ONNX graph (``graph.py``) and this reference evaluate it, with the same result as the
textbook 120-wide product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .registries import FREQUENCIES, Activation

ENCODING_WIDTH = 2 * FREQUENCIES
LEVELS = 256


@dataclass(frozen=True)
class MlpWeights:
    """The network's parameters, float32, named as the graph's initializers (spec §6.2).

    Attributes:
        Wc: (3, 24, W) first-layer blocks for the R, G and B encodings.
        Wy: (24, W) first-layer block for the row encoding.
        Wx: (24, W) first-layer block for the column encoding.
        b1: (W,) first-layer bias.
        W2: (W, W) second layer.
        b2: (W,) second-layer bias.
        W3: (W, 3) output layer.
        b3: (3,) output bias.
    """

    Wc: np.ndarray
    Wy: np.ndarray
    Wx: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray

    @property
    def hidden_width(self) -> int:
        """Neurons per hidden layer."""
        return int(self.b1.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters by initializer name, in spec order."""
        return {name: getattr(self, name) for name in PARAMETER_NAMES}

    def parameter_count(self) -> int:
        """Total number of scalar parameters."""
        return sum(a.size for a in self.arrays().values())


PARAMETER_NAMES = ("Wc", "Wy", "Wx", "b1", "W2", "b2", "W3", "b3")


def parameter_shapes(width: int) -> dict[str, tuple[int, ...]]:
    """Spec §6.2: the shape of each parameter for a hidden width."""
    e = ENCODING_WIDTH
    return {
        "Wc": (3, e, width),
        "Wy": (e, width),
        "Wx": (e, width),
        "b1": (width,),
        "W2": (width, width),
        "b2": (width,),
        "W3": (width, 3),
        "b3": (3,),
    }


def positional_encoding(values: np.ndarray) -> np.ndarray:
    """Spec §6.1: encode each value v as sin(2^k π v) for k < 12, then cos(2^k π v).

    The products and sines are taken in float64 and rounded once to float32, so that every
    implementation gets the same encodings to within one float32 rounding.

    Args:
        values: float (n,), normalised inputs.

    Returns:
        float32 (n, 24).
    """
    frequencies = np.pi * np.exp2(np.arange(FREQUENCIES, dtype=np.float64))
    phase = np.asarray(values, dtype=np.float64)[:, None] * frequencies[None, :]
    return np.concatenate([np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)


def doubling_encoding(values: np.ndarray, out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """:func:`positional_encoding` by angle doubling: six times faster, for per-pixel coordinates.

    Takes sin and cos of π v once, then sin 2a = 2 sin a cos a and cos 2a = (cos a - sin a)(cos a + sin a)
    in binary64 for each higher frequency. The doublings' error (about 2^11 binary64 ulps at the
    highest frequency) is of the size of the binary64 phase's own rounding at that frequency, so the
    result agrees with :func:`positional_encoding` to one binary32 rounding (spec §6.1 [NET-7] note):
    it differs in about one value in a million, by one binary32 ulp.

    Args:
        values: float (n,), normalised inputs.
        out: float32 (n, 24) to write into, best the transpose of a C-contiguous (24, n) block so
            that each frequency's column is contiguous; None for a new array of that layout.

    Returns:
        float32 (n, 24): ``out`` when given; otherwise the transpose of a C-contiguous (24, n)
        array (Fortran order).
    """
    phase = np.pi * np.asarray(values, dtype=np.float64)
    sine, cosine = np.sin(phase), np.cos(phase)
    encoded = np.empty((ENCODING_WIDTH, phase.shape[0]), dtype=np.float32).T if out is None else out
    encoded[:, 0], encoded[:, FREQUENCIES] = sine, cosine
    for k in range(1, FREQUENCIES):
        sine, cosine = 2.0 * sine * cosine, (cosine - sine) * (cosine + sine)
        encoded[:, k], encoded[:, FREQUENCIES + k] = sine, cosine
    return encoded


def normalised_levels(input_mean: float, input_range: float) -> np.ndarray:
    """Spec §6.1: the normalised value of each 8-bit code k, 2 (k/255 - mean) / range.

    Returns:
        float64 (256,).
    """
    codes = np.arange(LEVELS, dtype=np.float64) / 255.0
    return 2.0 * (codes - float(input_mean)) / float(input_range)


def coordinates(count: int) -> np.ndarray:
    """Spec §6.1: row (or column) i of ``count`` maps to -1 + 2 i / (count - 1); 0 when count is 1.

    Returns:
        float64 (count,).
    """
    if count == 1:
        return np.zeros(1)
    return np.linspace(-1.0, 1.0, count)


def source_coordinates(positions: np.ndarray, count: int) -> np.ndarray:
    """Spec §6.1 (2.1): the coordinate of continuous positions along a source axis of ``count`` pixels.

    Position p (pixel i's centre is i + 0.5) maps to -1 + 2 (p - 0.5) / (count - 1), the
    coordinate the fit gave that point; positions outside the source's pixel centres are clamped
    to the edge ones (spec §4.7: the network was fitted on [-1, 1] only). 0 when count is 1.

    Args:
        positions: float64, any shape.
        count: the source's width (for columns) or height (for rows).

    Returns:
        float64, the shape of ``positions``, in [-1, 1].
    """
    if count == 1:
        return np.zeros(np.shape(positions))
    clamped = np.clip(np.asarray(positions, dtype=np.float64), 0.5, count - 0.5)
    coordinate: np.ndarray = (clamped - 0.5) * (2.0 / (count - 1)) - 1.0
    return coordinate


def activate(x: np.ndarray, activation: Activation) -> np.ndarray:
    """Spec §6.3: the hidden activation, sin(x) or max(x, 0)."""
    activated: np.ndarray = np.sin(x) if activation == "sine" else np.maximum(x, 0.0)
    return activated


def first_layer_tables(
    weights: MlpWeights, levels: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first layer as lookup tables (spec §6.3 steps 1-3).

    Args:
        weights: the network.
        levels: float32 (256, 24), encodings of the normalised code levels.
        rows: float32 (h, 24), encodings of the rows' coordinates.
        cols: float32 (w, 24), encodings of the columns' coordinates.

    Returns:
        colour float32 (3, 256, W), row float32 (h, W) with b1 added, col float32 (w, W).
    """
    colour = np.matmul(levels[None], weights.Wc)
    row = rows @ weights.Wy + weights.b1
    col = cols @ weights.Wx
    return colour, row, col


def forward(
    weights: MlpWeights,
    activation: Activation,
    code: np.ndarray,
    levels: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> NDArray[np.float32]:
    """Evaluate the network on a block of pixels, as spec §6.3 defines it.

    Args:
        weights: the network.
        activation: "sine" or "relu".
        code: uint8 (h, w, 3), the base's code values.
        levels: float32 (256, 24), :func:`positional_encoding` of :func:`normalised_levels`.
        rows: float32 (h, 24), encodings of the block's row coordinates.
        cols: float32 (w, 24), encodings of the block's column coordinates.

    Returns:
        float32 (h, w, 3), the normalised residual.
    """
    colour, row, col = first_layer_tables(weights, levels, rows, cols)
    hidden = colour[0][code[..., 0]] + colour[1][code[..., 1]] + colour[2][code[..., 2]]
    hidden = hidden + row[:, None, :] + col[None, :, :]
    hidden = activate(hidden, activation)
    hidden = activate(hidden @ weights.W2 + weights.b2, activation)
    residual: NDArray[np.float32] = (hidden @ weights.W3 + weights.b3).astype(np.float32)
    return residual
