"""The ONNX graph contract of spec §6: build the canonical graph, and check a stranger's.

A container carries an executable graph, so a reader never hands ONNX Runtime bytes it has not
checked. The contract is strict: the graph must be exactly the canonical graph of spec §6.4 for
some weights, node for node, so the allowlist is the spec's own list of nodes. That also means
the weights alone define the decode: the decoder runs the canonical graph rebuilt from the
checked weights, so ONNX Runtime never sees a byte of the file's own graph.
"""

from __future__ import annotations

import numpy as np
import onnx
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from onnx import TensorProto, helper, numpy_helper

from .container import MAX_GRAPH_BYTES
from .errors import GraphContractError
from .network import ENCODING_WIDTH, LEVELS, PARAMETER_NAMES, MlpWeights, parameter_shapes
from .registries import HIDDEN_WIDTHS, Activation

#: Spec §6.4: the model's IR version and its single operator set.
IR_VERSION = 8
OPSET_VERSION = 17

#: Spec §6.4: input and output names, kept short because every byte counts toward 10 KB.
INPUT_LEVELS = "lv"
INPUT_ROWS = "row"
INPUT_COLS = "col"
INPUT_SDR = "sdr"
OUTPUT = "res"

_ACTIVATION_OPS: dict[Activation, str] = {"sine": "Sin", "relu": "Relu"}

#: A node as the contract compares it: domain, operator, inputs, outputs, serialised attributes.
_NodeSignature = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[bytes, ...]]


def _constants(width: int) -> dict[str, np.ndarray]:
    """Spec §6.4: the non-parameter initializers (shapes, axes, table offsets)."""
    return {
        "n": np.array([3 * LEVELS, width], dtype=np.int64),
        "o": np.array([0, LEVELS, 2 * LEVELS], dtype=np.int32),
        "a2": np.array([2], dtype=np.int64),
        "a1": np.array([1], dtype=np.int64),
    }


def _nodes(activation: Activation) -> list[onnx.NodeProto]:
    """Spec §6.4 table 6: the canonical node list, in order."""
    act = _ACTIVATION_OPS[activation]
    make = helper.make_node
    return [
        make("MatMul", [INPUT_LEVELS, "Wc"], ["t3"]),
        make("Reshape", ["t3", "n"], ["t"]),
        make("Cast", [INPUT_SDR], ["i"], to=TensorProto.INT32),
        make("Add", ["i", "o"], ["j"]),
        make("Gather", ["t", "j"], ["g"], axis=0),
        make("ReduceSum", ["g", "a2"], ["c"], keepdims=0),
        make("MatMul", [INPUT_ROWS, "Wy"], ["ry"]),
        make("Add", ["ry", "b1"], ["rb"]),
        make("Unsqueeze", ["rb", "a1"], ["r"]),
        make("MatMul", [INPUT_COLS, "Wx"], ["x"]),
        make("Add", ["c", "r"], ["s1"]),
        make("Add", ["s1", "x"], ["s2"]),
        make(act, ["s2"], ["h1"]),
        make("MatMul", ["h1", "W2"], ["m2"]),
        make("Add", ["m2", "b2"], ["s3"]),
        make(act, ["s3"], ["h2"]),
        make("MatMul", ["h2", "W3"], ["m3"]),
        make("Add", ["m3", "b3"], [OUTPUT]),
    ]


def _io() -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
    """Spec §6.4 table 5: graph inputs and output with their dtypes and shapes."""
    value = helper.make_tensor_value_info
    e = ENCODING_WIDTH
    inputs = [
        value(INPUT_LEVELS, TensorProto.FLOAT, [LEVELS, e]),
        value(INPUT_ROWS, TensorProto.FLOAT, ["h", e]),
        value(INPUT_COLS, TensorProto.FLOAT, ["w", e]),
        value(INPUT_SDR, TensorProto.UINT8, ["h", "w", 3]),
    ]
    outputs = [value(OUTPUT, TensorProto.FLOAT, ["h", "w", 3])]
    return inputs, outputs


def build_graph(weights: MlpWeights, activation: Activation) -> bytes:
    """Serialise weights as the canonical ONNX graph of spec §6.4.

    Args:
        weights: float32 parameters with the shapes of :func:`network.parameter_shapes`.
        activation: "sine" or "relu".

    Returns:
        The ONNX model bytes, with no names, doc strings or metadata beyond the contract.
    """
    return canonical_model(weights, activation).SerializeToString()


def canonical_model(weights: MlpWeights, activation: Activation) -> onnx.ModelProto:
    """The canonical model of spec §6.4 as a protobuf message (see :func:`build_graph`)."""
    _check_shapes(weights.arrays(), weights.hidden_width)
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name)
        for name, array in weights.arrays().items()
    ]
    initializers += [
        numpy_helper.from_array(array, name) for name, array in _constants(weights.hidden_width).items()
    ]
    inputs, outputs = _io()
    graph = helper.make_graph(_nodes(activation), "g", inputs, outputs, initializers)
    model = helper.make_model(
        graph,
        ir_version=IR_VERSION,
        opset_imports=[helper.make_operatorsetid("", OPSET_VERSION)],
    )
    model.producer_name = ""
    return model


def _check_shapes(arrays: dict[str, np.ndarray], width: int) -> None:
    for name, shape in parameter_shapes(width).items():
        if tuple(arrays[name].shape) != shape:
            raise GraphContractError(f"parameter {name} has shape {arrays[name].shape}, expected {shape}")


def check_graph(data: bytes, activation: Activation, hidden_width: int) -> MlpWeights:
    """Check graph bytes against the contract of spec §6.4 and return its weights.

    Nothing here runs the graph: it is parsed as a protobuf message and compared field by field
    with the canonical graph for the container's activation and width.

    Args:
        data: the ONNX model bytes from a container.
        activation: the container's activation field.
        hidden_width: the container's hidden_width field.

    Returns:
        The weights, float32, finite.

    Raises:
        GraphContractError: anything outside the contract, with the offending field named.
    """
    if len(data) > MAX_GRAPH_BYTES:
        raise GraphContractError(f"graph of {len(data)} bytes is over the {MAX_GRAPH_BYTES}-byte bound")
    if hidden_width not in HIDDEN_WIDTHS:
        raise GraphContractError(f"hidden width {hidden_width} is not one of {HIDDEN_WIDTHS}")
    model = _parse_model(data)
    _check_model_fields(model)
    _check_allowed_fields(model, "model")
    graph = model.graph
    _check_io(graph)
    _check_nodes(graph, activation)
    return _check_initializers(graph, hidden_width)


def _parse_model(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise GraphContractError(f"graph is not a valid ONNX protobuf message: {exc}") from exc
    return model


def _check_model_fields(model: onnx.ModelProto) -> None:
    if model.ir_version != IR_VERSION:
        raise GraphContractError(f"graph ir_version is {model.ir_version}, the contract needs {IR_VERSION}")
    opsets = [(o.domain, o.version) for o in model.opset_import]
    if opsets != [("", OPSET_VERSION)]:
        raise GraphContractError(f"graph opset_import is {opsets}, the contract allows only [('', {OPSET_VERSION})]")
    if len(model.functions) or len(model.training_info):
        raise GraphContractError("graph defines functions or training info, which the contract forbids")
    graph = model.graph
    if len(graph.sparse_initializer) or len(graph.value_info) or len(graph.quantization_annotation):
        raise GraphContractError("graph has sparse initializers, value_info or quantization annotations")


#: Spec §6.4 [GRA-19] to [GRA-21]: the fields each message may set. Free-text fields (names, doc
#: strings, producer, metadata_props) are allowed; inputs and outputs are compared byte for byte
#: with the canonical ones instead, so their messages are not listed.
_ALLOWED_FIELDS: dict[str, frozenset[str]] = {
    "onnx.ModelProto": frozenset(
        {"ir_version", "opset_import", "producer_name", "producer_version", "domain", "model_version",
         "doc_string", "graph", "metadata_props"}
    ),
    "onnx.OperatorSetIdProto": frozenset({"domain", "version"}),
    "onnx.StringStringEntryProto": frozenset({"key", "value"}),
    "onnx.GraphProto": frozenset({"node", "name", "initializer", "doc_string", "input", "output"}),
    "onnx.NodeProto": frozenset({"input", "output", "name", "op_type", "domain", "attribute", "doc_string"}),
    "onnx.AttributeProto": frozenset({"name", "type", "i", "doc_string"}),
    "onnx.TensorProto": frozenset({"dims", "data_type", "name", "raw_data", "doc_string"}),
}
_COMPARED_WHOLE = frozenset({"input", "output"})


def _check_allowed_fields(message: Message, where: str) -> None:
    """Reject unknown protobuf fields and fields the contract does not name, recursively."""
    if len(UnknownFieldSet(message)):
        raise GraphContractError(f"graph {where} carries protobuf fields unknown to ONNX")
    allowed = _ALLOWED_FIELDS[message.DESCRIPTOR.full_name]
    for field, value in message.ListFields():
        if field.name not in allowed:
            raise GraphContractError(f"graph {where} sets field {field.name!r}, which the contract does not allow")
        if field.message_type is None or field.name in _COMPARED_WHOLE:
            continue
        children = value if field.is_repeated else [value]
        for index, child in enumerate(children):
            _check_allowed_fields(child, f"{where}.{field.name}[{index}]")


def _check_io(graph: onnx.GraphProto) -> None:
    expected_inputs, expected_outputs = _io()
    for kind, actual, expected in (
        ("input", graph.input, expected_inputs),
        ("output", graph.output, expected_outputs),
    ):
        actual_list = [v.SerializeToString(deterministic=True) for v in actual]
        expected_list = [v.SerializeToString(deterministic=True) for v in expected]
        if actual_list != expected_list:
            names = [v.name for v in actual]
            raise GraphContractError(
                f"graph {kind}s {names} do not have the names, dtypes and shapes of spec §6.4"
            )


def _node_signature(node: onnx.NodeProto) -> _NodeSignature:
    attributes = tuple(sorted(a.SerializeToString(deterministic=True) for a in node.attribute))
    return (node.domain, node.op_type, tuple(node.input), tuple(node.output), attributes)


def _check_nodes(graph: onnx.GraphProto, activation: Activation) -> None:
    expected = _nodes(activation)
    if len(graph.node) != len(expected):
        raise GraphContractError(f"graph has {len(graph.node)} nodes, the contract has {len(expected)}")
    for index, (node, want) in enumerate(zip(graph.node, expected, strict=True)):
        if _node_signature(node) != _node_signature(want):
            raise GraphContractError(
                f"graph node {index} ({node.op_type or '?'} in domain {node.domain!r}) differs from "
                f"the contract's node {index} ({want.op_type}); spec §6.4 table 6"
            )


def _check_initializers(graph: onnx.GraphProto, width: int) -> MlpWeights:
    by_name: dict[str, onnx.TensorProto] = {}
    for tensor in graph.initializer:
        if tensor.name in by_name:
            raise GraphContractError(f"graph initializer {tensor.name!r} appears twice")
        by_name[tensor.name] = tensor
    constants = _constants(width)
    shapes = parameter_shapes(width)
    expected_names = set(shapes) | set(constants)
    if set(by_name) != expected_names:
        extra = sorted(set(by_name) - expected_names)
        missing = sorted(expected_names - set(by_name))
        raise GraphContractError(f"graph initializers: unexpected {extra}, missing {missing}")
    for name, value in constants.items():
        array = _tensor_array(by_name[name], value.dtype, value.shape)
        if not np.array_equal(array, value):
            raise GraphContractError(f"graph constant {name!r} is {array.tolist()}, expected {value.tolist()}")
    arrays = {name: _tensor_array(by_name[name], np.dtype(np.float32), shapes[name]) for name in PARAMETER_NAMES}
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise GraphContractError(f"graph parameter {name!r} holds NaN or infinite values")
    return MlpWeights(**arrays)


_ONNX_DTYPES = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.int32): TensorProto.INT32,
}


def _tensor_array(tensor: onnx.TensorProto, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The initializer's values, after checking dtype, shape, size and storage (spec §6.5)."""
    # External data, segments and typed data fields were refused by _check_allowed_fields.
    name = tensor.name
    if tensor.data_type != _ONNX_DTYPES[dtype]:
        raise GraphContractError(f"graph initializer {name!r} has ONNX dtype {tensor.data_type}, expected {dtype}")
    if tuple(tensor.dims) != tuple(shape):
        raise GraphContractError(f"graph initializer {name!r} has shape {tuple(tensor.dims)}, expected {shape}")
    count = int(np.prod(shape))
    if not tensor.HasField("raw_data") or len(tensor.raw_data) != count * dtype.itemsize:
        raise GraphContractError(
            f"graph initializer {name!r} must hold exactly {count * dtype.itemsize} bytes of raw_data"
        )
    return np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
