import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gainmap_format import graph, network
from gainmap_format.errors import GraphContractError
from tests.test_network import random_weights


def _run(model: bytes, code, levels, rows, cols):
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {"lv": levels, "row": rows, "col": cols, "sdr": code})[0]


@pytest.mark.parametrize("activation", ["sine", "relu"])
@pytest.mark.parametrize("width", [8, 16, 32])
def test_built_graph_passes_its_own_check_and_matches_numpy(activation, width):
    weights = random_weights(width, seed=width)
    model = graph.build_graph(weights, activation)
    extracted = graph.check_graph(model, activation, width)
    for name, array in weights.arrays().items():
        assert np.array_equal(getattr(extracted, name), array)
    onnx.checker.check_model(onnx.load_from_string(model), full_check=True)
    rng = np.random.default_rng(0)
    code = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    levels = network.positional_encoding(network.normalised_levels(0.5, 0.9))
    rows = network.positional_encoding(network.coordinates(9))
    cols = network.positional_encoding(network.coordinates(11))
    expected = network.forward(weights, activation, code, levels, rows, cols)
    assert np.allclose(_run(model, code, levels, rows, cols), expected, atol=2e-5)


def test_default_graph_size_budget():
    model = graph.build_graph(random_weights(16), "sine")
    assert 2259 * 4 < len(model) <= 9800


def _model(weights=None, activation="sine") -> onnx.ModelProto:
    return onnx.load_from_string(graph.build_graph(weights or random_weights(16), activation))


def _check(model: onnx.ModelProto, activation="sine", width=16):
    return graph.check_graph(model.SerializeToString(), activation, width)


def test_garbage_bytes_are_rejected():
    with pytest.raises(GraphContractError, match="not a valid ONNX"):
        graph.check_graph(b"\xff" * 50, "sine", 16)


def test_activation_and_width_must_match_the_container():
    model = _model()
    with pytest.raises(GraphContractError, match="differs from the contract"):
        _check(model, activation="relu")
    with pytest.raises(GraphContractError, match=r"expected \[768, 32\]"):
        _check(model, width=32)
    with pytest.raises(GraphContractError, match="not one of"):
        _check(model, width=12)


def test_disallowed_operator_is_rejected():
    model = _model()
    model.graph.node[12].op_type = "Cos"
    with pytest.raises(GraphContractError, match="node 12"):
        _check(model)


def test_custom_domain_is_rejected():
    model = _model()
    model.graph.node[0].domain = "com.evil"
    with pytest.raises(GraphContractError, match="domain 'com.evil'"):
        _check(model)


def test_extra_node_is_rejected():
    model = _model()
    model.graph.node.append(helper.make_node("Identity", ["res"], ["res2"]))
    with pytest.raises(GraphContractError, match="19 nodes"):
        _check(model)


def test_wrong_opset_and_ir_version_are_rejected():
    model = _model()
    model.opset_import[0].version = 21
    with pytest.raises(GraphContractError, match="opset_import"):
        _check(model)
    model = _model()
    model.ir_version = 10
    with pytest.raises(GraphContractError, match="ir_version"):
        _check(model)


def test_functions_are_rejected():
    model = _model()
    model.functions.append(onnx.FunctionProto(name="f", domain="x"))
    with pytest.raises(GraphContractError, match="functions"):
        _check(model)


def test_wrong_input_shape_is_rejected():
    model = _model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 512
    with pytest.raises(GraphContractError, match="inputs"):
        _check(model)
    model = _model()
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    with pytest.raises(GraphContractError, match="outputs"):
        _check(model)


def test_external_data_is_rejected():
    model = _model()
    tensor = model.graph.initializer[0]
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    with pytest.raises(GraphContractError, match="external"):
        _check(model)


def _replace_initializer(model, name, array):
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name == name:
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, name))


def test_oversized_or_mistyped_initializers_are_rejected():
    model = _model()
    _replace_initializer(model, "W2", np.zeros((16, 4096), dtype=np.float32))
    with pytest.raises(GraphContractError, match="shape"):
        _check(model)
    model = _model()
    _replace_initializer(model, "W2", np.zeros((16, 16), dtype=np.float64))
    with pytest.raises(GraphContractError, match="dtype"):
        _check(model)
    model = _model()
    _replace_initializer(model, "o", np.array([0, 1, 2], dtype=np.int32))
    with pytest.raises(GraphContractError, match="constant 'o'"):
        _check(model)


def test_typed_data_beside_raw_data_is_rejected():
    model = _model()
    model.graph.initializer[0].float_data.append(1.0)
    with pytest.raises(GraphContractError, match="float_data"):
        _check(model)


def test_duplicate_missing_or_extra_initializers_are_rejected():
    model = _model()
    model.graph.initializer.append(model.graph.initializer[0])
    with pytest.raises(GraphContractError, match="appears twice"):
        _check(model)
    model = _model()
    del model.graph.initializer[0]
    with pytest.raises(GraphContractError, match="missing"):
        _check(model)


def test_non_finite_weights_are_rejected():
    weights = random_weights(16)
    weights.W3[0, 0] = np.nan
    with pytest.raises(GraphContractError, match="NaN"):
        graph.check_graph(graph.build_graph(weights, "sine"), "sine", 16)


def test_oversized_graph_bytes_are_rejected_before_parsing():
    with pytest.raises(GraphContractError, match="bound"):
        graph.check_graph(b"\x00" * (graph.MAX_GRAPH_BYTES + 1), "sine", 16)


def test_fields_outside_the_contract_are_rejected():
    model = _model()
    model.graph.node[0].overload = "x"
    with pytest.raises(GraphContractError, match="'overload'"):
        _check(model)
    data = _model().SerializeToString() + b"\xf8\x07\x05"  # field 127, unknown to ONNX
    with pytest.raises(GraphContractError, match="unknown to ONNX"):
        graph.check_graph(data, "sine", 16)


def test_free_text_fields_are_allowed():
    model = _model()
    model.doc_string = "made by hand"
    model.graph.node[3].name = "add offsets"
    assert _check(model).hidden_width == 16
