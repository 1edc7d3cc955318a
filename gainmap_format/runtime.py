"""Evaluate a checked graph with ONNX Runtime over a base image (spec §6.3, §7.3).

This is the decode path: it imports numpy and onnxruntime, never torch. The image is processed
in horizontal strips so that memory stays bounded whatever the image size.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from . import graph as graph_contract
from .container import GainMapMetadata
from .network import MlpWeights, coordinates, normalised_levels, positional_encoding

#: Pixels per strip: bounds the graph's largest intermediate (h, w, 3, W) floats to
#: about 48 MiB at width 16.
STRIP_PIXELS = 1 << 18


def _session(graph: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])


def predict_residual(weights: MlpWeights, metadata: GainMapMetadata, code: np.ndarray) -> np.ndarray:
    """Run the network over a base image and denormalise its output (spec §6.3, §7.4).

    The session runs the canonical graph rebuilt from ``weights`` (as returned by
    :func:`graph.check_graph`), never a file's own graph bytes.

    Args:
        weights: the network's parameters.
        metadata: the container's metadata (activation, normalisations).
        code: uint8 (H, W, 3), the decoded base image.

    Returns:
        float32 (H, W, 3), the residual map f (denormalised).
    """
    session = _session(graph_contract.build_graph(weights, metadata.activation))
    height, width, _ = code.shape
    levels = positional_encoding(normalised_levels(metadata.input_mean, metadata.input_range))
    rows = positional_encoding(coordinates(height))
    cols = positional_encoding(coordinates(width))
    strip = max(1, STRIP_PIXELS // width)
    out = np.empty((height, width, 3), dtype=np.float32)
    for top in range(0, height, strip):
        bottom = min(top + strip, height)
        feeds = {
            graph_contract.INPUT_LEVELS: levels,
            graph_contract.INPUT_ROWS: rows[top:bottom],
            graph_contract.INPUT_COLS: cols,
            graph_contract.INPUT_SDR: np.ascontiguousarray(code[top:bottom]),
        }
        (out[top:bottom],) = session.run([graph_contract.OUTPUT], feeds)
    scale = np.float32(metadata.residual_range / 2.0)
    out *= scale
    out += np.float32(metadata.residual_mean)
    return out
