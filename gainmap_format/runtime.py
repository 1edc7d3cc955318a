"""Evaluate a checked network with ONNX Runtime over a base image (spec §6.3, §7).

This is the decode path: it imports numpy, onnx and onnxruntime, never torch. ONNX Runtime runs
a graph this module builds: the canonical network rebuilt from the checked weights (so the
file's own graph bytes never reach the runtime), with its colour lookup done per channel, which
gives the same sums without the (h, w, 3, W) intermediate, then the decode equations of spec §7
(SDR to PQ, denormalisation with the display weight folded in, the residual, PQ to cd/m²).
Running those in the same session makes them vectorised and multi-threaded, where numpy would
take one core and several passes. ``residual.py`` holds the same equations in numpy; the tests
check that the two agree.

The image is processed in horizontal strips so that memory stays bounded whatever its size.

When the C extension is built (``native.py``), :func:`render` runs the same function as one
fused kernel instead, several times faster; ``engine="onnxruntime"`` asks for the graph.
Both take their constants from the same functions here, and the tests check that they agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

from . import graph as graph_contract
from . import native
from .colour import PQ_C1, PQ_C2, PQ_C3, PQ_M1, PQ_M2, PQ_PEAK_LUMINANCE, PRIMARIES, conversion_matrix, transfer_decode
from .container import GainMapMetadata, check_metadata
from .errors import InputError
from .geometry import Placement
from .network import (
    ENCODING_WIDTH,
    LEVELS,
    MlpWeights,
    coordinates,
    doubling_encoding,
    first_layer_tables,
    normalised_levels,
    positional_encoding,
    source_coordinates,
)
from .residual import pq_to_linear, sdr_to_pq

#: How to evaluate the network: the fused C kernel, ONNX Runtime, or the first of them available.
Engine = Literal["auto", "native", "onnxruntime"]

#: Pixels per strip at hidden width 16; wider networks get proportionally fewer, so that the
#: graph's largest intermediate, (h, w, 3, W) floats, stays near 48 MiB at any width.
STRIP_PIXELS = 1 << 18
_REFERENCE_WIDTH = 16
#: Pixels per strip where every pixel has its own position (a rotation by other than a multiple
#: of 90 degrees): its encodings and their binary64 phases take about 400 bytes a pixel.
PIXEL_STRIP_PIXELS = 1 << 16

_PQ = "pq"
_LINEAR = "linear"


@dataclass(frozen=True)
class Rendition:
    """A decoded HDR rendition.

    Attributes:
        pq: float32 (H, W, 3), BT.2020 PQ code values in [0, 1]; None when ``render`` was told
            ``with_pq=False``.
        linear: float32 (H, W, 3), linear BT.2020 in units of ``render``'s ``linear_unit`` cd/m².
    """

    pq: np.ndarray | None
    linear: np.ndarray


def _constant(name: str, value: object, dtype: type[np.generic] = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


#: Spec §6.4 table 6: the canonical nodes that look up R, G and B in one stacked table.
_STACKED_LOOKUP_OUTPUTS = frozenset({"t", "j", "g", "c"})


def _per_channel_lookup(model: ModelProto) -> None:
    """Replace the stacked colour lookup by three lookups and two adds (same value of "c")."""
    make = helper.make_node
    per_channel = [
        make("Split", ["i", "k_split"], ["i_r", "i_g", "i_b"], axis=2),
        make("Squeeze", ["i_r", "a2"], ["j_r"]),
        make("Squeeze", ["i_g", "a2"], ["j_g"]),
        make("Squeeze", ["i_b", "a2"], ["j_b"]),
        make("Gather", ["t3", "k_ch0"], ["t_r"], axis=0),
        make("Gather", ["t3", "k_ch1"], ["t_g"], axis=0),
        make("Gather", ["t3", "k_ch2"], ["t_b"], axis=0),
        make("Gather", ["t_r", "j_r"], ["g_r"], axis=0),
        make("Gather", ["t_g", "j_g"], ["g_g"], axis=0),
        make("Gather", ["t_b", "j_b"], ["g_b"], axis=0),
        make("Add", ["g_r", "g_g"], ["g_rg"]),
        make("Add", ["g_rg", "g_b"], ["c"]),
    ]
    kept = [node for node in model.graph.node if node.output[0] not in _STACKED_LOOKUP_OUTPUTS]
    # The new nodes read "t3" and "i", so they go right after the Cast that makes "i".
    insert_at = next(index for index, node in enumerate(kept) if node.output[0] == "i") + 1
    del model.graph.node[:]
    model.graph.node.extend(kept[:insert_at] + per_channel + kept[insert_at:])
    model.graph.initializer.extend(
        [
            _constant("k_split", [1, 1, 1], np.int64),
            _constant("k_ch0", 0, np.int64),
            _constant("k_ch1", 1, np.int64),
            _constant("k_ch2", 2, np.int64),
        ]
    )


def sdr_constants(metadata: GainMapMetadata) -> tuple[np.ndarray, np.ndarray]:
    """Spec §7.1's constants: linear light / 10000 of each code value, and the primaries matrix.

    Returns:
        float64 (256,) table and float64 (3, 3) matrix from the base's primaries to BT.2020.
    """
    levels = np.arange(LEVELS, dtype=np.float64) / 255.0
    # Scaling commutes with the primaries matrix, so the table already holds L / 10000.
    table = transfer_decode(levels, metadata.base_transfer) * (metadata.sdr_white_luminance / PQ_PEAK_LUMINANCE)
    return table, conversion_matrix(PRIMARIES[metadata.base_primaries], PRIMARIES["bt2020"])


def residual_affine(metadata: GainMapMetadata, weight: float) -> tuple[float, float]:
    """Spec §7.4-7.5: the affine map f = o · scale + offset from the network's output o.

    For a gamma map the display adaptation 1 + w (f - 1) is affine in the network's output,
    so it folds into the denormalisation's scale and offset; a gain map needs f^w afterwards.

    Returns:
        (scale, offset).
    """
    scale = metadata.residual_range / 2.0
    offset = metadata.residual_mean
    if metadata.residual == "gamma":
        return weight * scale, weight * offset + 1.0 - weight
    return scale, offset


def _sdr_to_pq_nodes(metadata: GainMapMetadata) -> tuple[list[NodeProto], list[TensorProto]]:
    """Spec §7.1: code values to BT.2020 PQ, as a 256-entry table, a matrix and the PQ curve."""
    table, matrix = sdr_constants(metadata)
    make = helper.make_node
    nodes = [
        make("Gather", ["k_lut", "i"], ["d_lin"], axis=0),
        make("MatMul", ["d_lin", "k_mat"], ["d_2020"]),
        make("Clip", ["d_2020", "k_zero", "k_one"], ["d_y"]),
        make("Pow", ["d_y", "k_m1"], ["d_ym1"]),
        make("Mul", ["d_ym1", "k_c2"], ["d_n1"]),
        make("Add", ["d_n1", "k_c1"], ["d_num"]),
        make("Mul", ["d_ym1", "k_c3"], ["d_d1"]),
        make("Add", ["d_d1", "k_one"], ["d_den"]),
        make("Div", ["d_num", "d_den"], ["d_ratio"]),
        make("Pow", ["d_ratio", "k_m2"], ["d_s"]),
    ]
    constants = [
        _constant("k_lut", table),
        _constant("k_mat", matrix.T),
        _constant("k_zero", 0.0),
        _constant("k_one", 1.0),
        _constant("k_m1", PQ_M1),
        _constant("k_m2", PQ_M2),
        _constant("k_c1", PQ_C1),
        _constant("k_c2", PQ_C2),
        _constant("k_c3", PQ_C3),
    ]
    return nodes, constants


def _residual_nodes(metadata: GainMapMetadata, weight: float) -> tuple[list[NodeProto], list[TensorProto]]:
    """Spec §7.4, §7.5, §7.3: denormalise, adapt to the display, apply, clip to [0, 1]."""
    scale, offset = residual_affine(metadata, weight)
    make = helper.make_node
    nodes = [make("Add", ["d_s", "k_eps"], ["d_base"])]
    constants = [_constant("k_eps", metadata.epsilon), _constant("k_scale", scale), _constant("k_offset", offset)]
    if metadata.residual == "gamma":
        nodes += [
            make("Mul", [graph_contract.OUTPUT, "k_scale"], ["d_fs"]),
            make("Add", ["d_fs", "k_offset"], ["d_f"]),
            make("Log", ["d_base"], ["d_lb"]),
            make("Mul", ["d_f", "d_lb"], ["d_t"]),
            make("Exp", ["d_t"], ["d_h"]),
        ]
    else:
        constants += [_constant("k_w", weight)]
        nodes += [
            make("Mul", [graph_contract.OUTPUT, "k_scale"], ["d_fs"]),
            make("Add", ["d_fs", "k_offset"], ["d_fu"]),
            make("Relu", ["d_fu"], ["d_fp"]),
            make("Pow", ["d_fp", "k_w"], ["d_f"]),
            make("Mul", ["d_base", "d_f"], ["d_h"]),
        ]
    # Overflowing weights (finite but huge) can make NaN, which Clip keeps; spec §7.3 maps it to 0.
    nodes += [
        make("Sub", ["d_h", "k_eps"], ["d_hraw"]),
        make("IsNaN", ["d_hraw"], ["d_nan"]),
        make("Where", ["d_nan", "k_zero", "d_hraw"], ["d_hnum"]),
        make("Clip", ["d_hnum", "k_zero", "k_one"], [_PQ]),
    ]
    return nodes, constants


def _pq_decode_nodes(linear_unit: float) -> tuple[list[NodeProto], list[TensorProto]]:
    """Spec §7.6: PQ code values to linear light in units of ``linear_unit`` cd/m² (ST 2084 EOTF)."""
    make = helper.make_node
    nodes = [
        make("Pow", [_PQ, "k_inv_m2"], ["d_e"]),
        make("Sub", ["d_e", "k_c1"], ["d_en"]),
        make("Relu", ["d_en"], ["d_enp"]),
        make("Mul", ["d_e", "k_c3"], ["d_ec3"]),
        make("Sub", ["k_c2", "d_ec3"], ["d_ed"]),
        make("Div", ["d_enp", "d_ed"], ["d_q"]),
        make("Pow", ["d_q", "k_inv_m1"], ["d_l"]),
        make("Mul", ["d_l", "k_peak"], [_LINEAR]),
    ]
    constants = [
        _constant("k_inv_m1", 1.0 / PQ_M1),
        _constant("k_inv_m2", 1.0 / PQ_M2),
        _constant("k_peak", PQ_PEAK_LUMINANCE / linear_unit),
    ]
    return nodes, constants


def _per_pixel_positions(model: ModelProto, weights: MlpWeights) -> None:
    """Make the column input carry each pixel's column and row encodings side by side.

    "col" becomes (n, 48) and "Wx" the stack of Wx over Wy, so that col · Wx is each pixel's
    whole position term; fed a zero row encoding (1, 24), the row term is b1 alone. The image is
    then laid out as one row of n pixels.
    """
    stacked = _stacked_positions(weights)
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == "Wx":
            model.graph.initializer[index].CopyFrom(_constant("Wx", stacked))
    for value in model.graph.input:
        if value.name == graph_contract.INPUT_COLS:
            value.type.tensor_type.shape.dim[1].dim_value = stacked.shape[0]


def decode_model(
    weights: MlpWeights,
    metadata: GainMapMetadata,
    weight: float = 1.0,
    linear_unit: float = 1.0,
    per_pixel: bool = False,
) -> bytes:
    """The graph this decoder runs: the canonical network, then the decode equations.

    Args:
        weights: checked parameters (from ``graph.check_graph``).
        metadata: the container's metadata.
        weight: the display weight w in [0, 1] (spec §7.5); 1 is the full rendition.
        linear_unit: cd/m² of 1.0 in the linear output.
        per_pixel: take every pixel's position encodings through "col", (n, 48): the column's
            then the row's, with a zero (1, 24) "row" and the image as one row of n pixels.

    Returns:
        ONNX model bytes with inputs as in spec §6.4 table 5 and outputs "pq" and "linear".
    """
    model = graph_contract.canonical_model(weights, metadata.activation)
    _per_channel_lookup(model)
    if per_pixel:
        _per_pixel_positions(model, weights)
    parts = [_sdr_to_pq_nodes(metadata), _residual_nodes(metadata, weight), _pq_decode_nodes(linear_unit)]
    for nodes, constants in parts:
        model.graph.node.extend(nodes)
        model.graph.initializer.extend(constants)
    del model.graph.output[:]
    for name in (_PQ, _LINEAR):
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["h", "w", 3]))
    return model.SerializeToString()


def _session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _strip_rows(width: int, hidden_width: int) -> int:
    """Rows per strip: about STRIP_PIXELS pixels at hidden width 16, fewer for wider networks."""
    return max(1, STRIP_PIXELS * _REFERENCE_WIDTH // hidden_width // width)


def _strips(height: int, strip: int) -> Iterator[tuple[int, int]]:
    for top in range(0, height, strip):
        yield top, min(top + strip, height)


def _feeds(
    levels: np.ndarray, rows: np.ndarray, cols: np.ndarray, code: np.ndarray, top: int, bottom: int
) -> dict[str, np.ndarray]:
    return {
        graph_contract.INPUT_LEVELS: levels,
        graph_contract.INPUT_ROWS: rows[top:bottom],
        graph_contract.INPUT_COLS: cols,
        graph_contract.INPUT_SDR: np.ascontiguousarray(code[top:bottom]),
    }


def _levels(metadata: GainMapMetadata) -> np.ndarray:
    """E_lv of spec §6.1: float32 (256, 24)."""
    return positional_encoding(normalised_levels(metadata.input_mean, metadata.input_range))


@dataclass(frozen=True)
class _Separable:
    """Position encodings of a placement whose row and column inputs each follow one output axis.

    Attributes:
        rows: float32 (H, 24), one encoding per output row.
        cols: float32 (W, 24), one encoding per output column.
        swapped: the output rows give the network's column input and the columns its row input
            (a quarter turn or a transpose): Wx and Wy trade places.
    """

    rows: np.ndarray
    cols: np.ndarray
    swapped: bool

    def oriented(self, weights: MlpWeights) -> MlpWeights:
        """The weights with Wx and Wy where these encodings need them."""
        return dataclasses.replace(weights, Wx=weights.Wy, Wy=weights.Wx) if self.swapped else weights


def _identity_positions(height: int, width: int) -> _Separable:
    """Spec §6.1's own coordinates: the base is the image the network was fitted on."""
    return _Separable(positional_encoding(coordinates(height)), positional_encoding(coordinates(width)), False)


def _separable(placement: Placement) -> _Separable | None:
    """Spec §6.1: the encodings per output row and column, or None when they vary per pixel.

    The identity keeps §6.1's coordinates exactly; other placements map each output pixel centre
    into the source and take the coordinate there (:func:`~gainmap_format.network.source_coordinates`).
    """
    width, height = placement.size
    if placement.is_identity:
        return _identity_positions(height, width)
    source_width, source_height = placement.source_size
    a, b, c, d, e, f = placement.matrix
    across, down = np.arange(width) + 0.5, np.arange(height) + 0.5
    if placement.is_axis_aligned:
        rows, cols = source_coordinates(e * down + f, source_height), source_coordinates(a * across + c, source_width)
    elif placement.is_swapped:
        rows, cols = source_coordinates(b * down + c, source_width), source_coordinates(d * across + f, source_height)
    else:
        return None
    return _Separable(positional_encoding(rows), positional_encoding(cols), placement.is_swapped)


def _pixel_encodings(placement: Placement, top: int, bottom: int) -> np.ndarray:
    """Spec §6.1: each pixel's column and row encodings side by side, for output rows top..bottom - 1.

    Returns:
        float32 ((bottom - top) W, 48), Fortran order: γ(v_ij) then γ(u_ij), pixels in row order; times the stack
        of Wx over Wy (:func:`_stacked_positions`) it is each pixel's position term.
    """
    source_width, source_height = placement.source_size
    x, y = placement.source_positions(top, bottom)
    cols = source_coordinates(x, source_width).ravel()
    rows = source_coordinates(y, source_height).ravel()
    # Two encodings a pixel: the sines' cost is what matters here, hence the doubling form.
    # Feature-major, so that each frequency is written contiguously; matmul takes the transpose as is.
    by_feature = np.empty((2 * ENCODING_WIDTH, cols.shape[0]), dtype=np.float32)
    doubling_encoding(cols, out=by_feature[:ENCODING_WIDTH].T)
    doubling_encoding(rows, out=by_feature[ENCODING_WIDTH:].T)
    by_pixel: np.ndarray = by_feature.T
    return by_pixel


def _stacked_positions(weights: MlpWeights) -> np.ndarray:
    """Wx over Wy: float32 (48, W_h), the first layer's block for :func:`_pixel_encodings`."""
    return np.concatenate([weights.Wx, weights.Wy], axis=0)


def resolve_engine(engine: Engine) -> Literal["native", "onnxruntime"]:
    """The engine "auto" stands for; checks that "native" is available."""
    if engine not in ("auto", "native", "onnxruntime"):
        raise InputError(f"engine {engine!r} is not 'auto', 'native' or 'onnxruntime'")
    if engine == "auto":
        return "native" if native.available() else "onnxruntime"
    if engine == "native" and not native.available():
        raise InputError("engine 'native' needs the C extension, which was not built at install time")
    return engine


def render(
    weights: MlpWeights,
    metadata: GainMapMetadata,
    code: np.ndarray,
    weight: float = 1.0,
    engine: Engine = "auto",
    linear_unit: float = 1.0,
    with_pq: bool = True,
    placement: Placement | None = None,
) -> Rendition:
    """Decode the HDR rendition of a base image (spec §8).

    Args:
        weights: checked parameters (from ``graph.check_graph``).
        metadata: the container's metadata.
        code: uint8 (H, W, 3), the decoded base image.
        weight: the display weight w in [0, 1]; 1 is the full rendition.
        engine: "native" (the fused C kernel), "onnxruntime" (the graph), or "auto" (native
            when the extension is built).
        linear_unit: cd/m² of 1.0 in the linear output: 1 for cd/m², SDR white's luminance for
            relative light (the scale is folded into the decode, not applied afterwards).
        with_pq: return the PQ code values too; False saves their memory (with ONNX Runtime, all
            but one strip's).
        placement: where the base's pixels lie in the image the network was fitted on (spec
            §4.7), of size (W, H); None for the identity, the base the network was fitted on.

    Returns:
        The rendition in BT.2020 PQ and in linear light: finite, PQ in [0, 1], linear light in
        [0, 10000 / linear_unit] (spec §7.7). Pixels outside the source (an editor's fill) hold
        the base itself, S of spec §7.1 (§7.3 [RES-22]).

    Raises:
        ContainerError: ``metadata`` holds a value that a reader rejects (spec §4.6); the
            finiteness of the output rests on those ranges.
        InputError: a weight outside [0, 1], a linear unit outside [1, 10000] cd/m², an unknown
            or unavailable engine, or a placement for another size than the base's.
    """
    check_metadata(metadata)
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"display weight {weight!r} is outside [0, 1]")
    # Spec §7.7: 10000 cd/m² in units of at least 1 cd/m² stays finite even in binary16.
    if not 1.0 <= linear_unit <= PQ_PEAK_LUMINANCE:
        raise InputError(f"linear unit {linear_unit!r} cd/m² is outside [1, {PQ_PEAK_LUMINANCE:g}]")
    height, width, _ = code.shape
    placement = placement or Placement.identity((width, height))
    if placement.size != (width, height):
        raise InputError(f"placement describes a {placement.size} image, the base is {(width, height)}")
    native_engine = resolve_engine(engine) == "native"
    separable = _separable(placement)
    if separable is None:
        rendition = _render_per_pixel(weights, metadata, code, weight, linear_unit, with_pq, placement, native_engine)
    elif native_engine:
        rendition = _render_native(separable.oriented(weights), metadata, code, weight, linear_unit, with_pq, separable)
    else:
        session = _session(decode_model(separable.oriented(weights), metadata, weight, linear_unit))
        levels = _levels(metadata)
        strips = (
            (top, bottom, _feeds(levels, separable.rows, separable.cols, code, top, bottom))
            for top, bottom in _strips(height, _strip_rows(width, metadata.hidden_width))
        )
        rendition = _run_strips(session, strips, code.shape, _strip_rows(width, metadata.hidden_width), with_pq)
    if placement.reaches_outside:
        _neutral_outside(rendition, code, metadata, linear_unit, placement)
    return rendition


def _neutral_outside(
    rendition: Rendition, code: np.ndarray, metadata: GainMapMetadata, linear_unit: float, placement: Placement
) -> None:
    """Spec §7.3 [RES-22]: H' = S at the pixels outside the source, in place, strip by strip.

    Both engines evaluate every pixel; this overwrites the few outside, whatever the network
    gave there, with the base placed in the PQ domain (§7.1), so the editor's fill shows as itself.
    """
    height, width, _ = code.shape
    for top, bottom in _strips(height, max(1, PIXEL_STRIP_PIXELS // width)):
        outside = placement.outside_source(top, bottom)
        if not outside.any():
            continue
        sdr, linear = _base_renditions(code[top:bottom][outside], metadata, linear_unit)
        rendition.linear[top:bottom][outside] = linear
        if rendition.pq is not None:
            rendition.pq[top:bottom][outside] = sdr


def _base_renditions(
    codes: np.ndarray, metadata: GainMapMetadata, linear_unit: float
) -> tuple[np.ndarray, np.ndarray]:
    """S of spec §7.1 and its linear light for some pixels' code values.

    An editor fills with one colour, so most of these pixels share the first one's code values:
    its colour conversion (two powers a sample each way) is done once for all of them.

    Args:
        codes: uint8 (n, 3), n > 0.
        metadata: the container's metadata (the base's transfer, primaries and white).
        linear_unit: cd/m² of 1.0 in the linear output.

    Returns:
        float32 (n, 3) PQ code values and float32 (n, 3) linear light in units of ``linear_unit`` cd/m².
    """
    fill = (codes == codes[0]).all(axis=1)
    unique = np.concatenate([codes[:1], codes[~fill]])
    sdr = sdr_to_pq(unique, metadata.base_transfer, metadata.base_primaries, metadata.sdr_white_luminance)
    linear = pq_to_linear(sdr, linear_unit)
    # Row 0 serves the fill, rows 1.. the other pixels in their order.
    index = np.zeros(codes.shape[0], dtype=np.intp)
    index[~fill] = np.arange(1, unique.shape[0])
    return sdr[index], linear[index]


def _run_strips(
    session: ort.InferenceSession,
    strips: Iterator[tuple[int, int, dict[str, np.ndarray]]],
    shape: tuple[int, ...],
    strip_rows: int,
    with_pq: bool,
) -> Rendition:
    """Run the decode graph over strips of rows, writing straight into the rendition's arrays.

    Args:
        session: a session of :func:`decode_model`.
        strips: (top, bottom, feeds) for rows top..bottom - 1; the outputs take the shape of
            the feeds' "sdr" input (one row of pixels for a per-pixel model).
        shape: (H, W, 3), the rendition's.
        strip_rows: the most rows in one strip.
        with_pq: keep the PQ output.
    """
    height, width, _ = shape
    # Without with_pq the graph's PQ output goes to one strip's scratch, overwritten strip by strip.
    pq = np.empty((height if with_pq else min(height, strip_rows), width, 3), dtype=np.float32)
    linear = np.empty((height, width, 3), dtype=np.float32)
    for top, bottom, feeds in strips:
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        out_shape = feeds[graph_contract.INPUT_SDR].shape
        # Row strips of C-contiguous arrays are contiguous: the runtime writes straight into them.
        pq_strip = pq[top:bottom] if with_pq else pq[: bottom - top]
        for name, out in ((_PQ, pq_strip), (_LINEAR, linear[top:bottom])):
            binding.bind_output(name, "cpu", 0, np.float32, out_shape, out.ctypes.data)
        session.run_with_iobinding(binding)
    return Rendition(pq if with_pq else None, linear)


def _decode_constants(metadata: GainMapMetadata, weight: float, linear_unit: float) -> native.DecodeConstants:
    table, matrix = sdr_constants(metadata)
    scale, offset = residual_affine(metadata, weight)
    return native.DecodeConstants(
        table, matrix, scale, offset, weight, metadata.epsilon, gamma=metadata.residual == "gamma",
        linear_scale=PQ_PEAK_LUMINANCE / linear_unit,
    )


def _render_native(
    weights: MlpWeights,
    metadata: GainMapMetadata,
    code: np.ndarray,
    weight: float,
    linear_unit: float,
    with_pq: bool,
    positions: _Separable,
) -> Rendition:
    colour, row, col = first_layer_tables(weights, _levels(metadata), positions.rows, positions.cols)
    tables = native.Tables(colour, row, col, weights.W2, weights.b2, weights.W3, weights.b3,
                           relu=metadata.activation == "relu")
    pq, linear = native.decode(tables, _decode_constants(metadata, weight, linear_unit), code, with_pq)
    return Rendition(pq, linear)


def _render_per_pixel(
    weights: MlpWeights,
    metadata: GainMapMetadata,
    code: np.ndarray,
    weight: float,
    linear_unit: float,
    with_pq: bool,
    placement: Placement,
    native_engine: bool,
) -> Rendition:
    """:func:`render` where every pixel has its own source position (spec §6.3's first layer per pixel).

    Each strip of rows is laid out as one row of n pixels: the row term is b1 alone and the
    column term carries each pixel's whole position term, so both engines run unchanged.
    """
    height, width, _ = code.shape
    strip_rows = max(1, PIXEL_STRIP_PIXELS // width)
    levels = _levels(metadata)
    if not native_engine:
        session = _session(decode_model(weights, metadata, weight, linear_unit, per_pixel=True))
        zero_row = np.zeros((1, levels.shape[1]), dtype=np.float32)
        strips = (
            (top, bottom, _pixel_feeds(levels, zero_row, placement, code, top, bottom))
            for top, bottom in _strips(height, strip_rows)
        )
        return _run_strips(session, strips, code.shape, strip_rows, with_pq)
    colour = first_layer_tables(weights, levels, levels[:0], levels[:0])[0]
    constants = _decode_constants(metadata, weight, linear_unit)
    stacked = _stacked_positions(weights)
    pq = np.empty(code.shape, dtype=np.float32) if with_pq else None
    linear = np.empty(code.shape, dtype=np.float32)
    for top, bottom in _strips(height, strip_rows):
        position = _pixel_encodings(placement, top, bottom) @ stacked
        tables = native.Tables(colour, weights.b1[None, :], position, weights.W2, weights.b2, weights.W3, weights.b3,
                               relu=metadata.activation == "relu")
        strip_pq, strip_linear = native.decode(tables, constants, code[top:bottom].reshape(1, -1, 3), with_pq)
        linear[top:bottom] = strip_linear.reshape(bottom - top, width, 3)
        if pq is not None and strip_pq is not None:
            pq[top:bottom] = strip_pq.reshape(bottom - top, width, 3)
    return Rendition(pq, linear)


def _pixel_feeds(
    levels: np.ndarray, zero_row: np.ndarray, placement: Placement, code: np.ndarray, top: int, bottom: int
) -> dict[str, np.ndarray]:
    """The per-pixel model's inputs for rows top..bottom - 1 (see :func:`_per_pixel_positions`)."""
    return {
        graph_contract.INPUT_LEVELS: levels,
        graph_contract.INPUT_ROWS: zero_row,
        graph_contract.INPUT_COLS: np.ascontiguousarray(_pixel_encodings(placement, top, bottom)),
        graph_contract.INPUT_SDR: np.ascontiguousarray(code[top:bottom]).reshape(1, -1, 3),
    }


def predict_residual(weights: MlpWeights, metadata: GainMapMetadata, code: np.ndarray) -> np.ndarray:
    """The denormalised residual map f alone (spec §6.3, §7.4), for tests and tools.

    Returns:
        float32 (H, W, 3).
    """
    session = _session(graph_contract.build_graph(weights, metadata.activation))
    height, width, _ = code.shape
    levels = _levels(metadata)
    positions = _identity_positions(height, width)
    out = np.empty((height, width, 3), dtype=np.float32)
    for top, bottom in _strips(height, _strip_rows(width, metadata.hidden_width)):
        feeds = _feeds(levels, positions.rows, positions.cols, code, top, bottom)
        (out[top:bottom],) = session.run([graph_contract.OUTPUT], feeds)
    out *= np.float32(metadata.residual_range / 2.0)
    out += np.float32(metadata.residual_mean)
    return out
