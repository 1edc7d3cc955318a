"""HDR photos as ordinary JPEGs whose gain map is a tiny neural network (Gain-MLP / Gamma-MLP).

The public API:

- :func:`encode`, :func:`encode_file`: HDR in, one JPEG out.
- :func:`decode`, :func:`decode_file`: a gain-map JPEG in, HDR out.
- :func:`read_container`: what a file holds, without decoding it.
- the exceptions of :mod:`gainmap_format.errors`, all subclasses of :class:`GainmapError`.
- :class:`MissingInitWarning`: encoding asked for the shipped initialisation, but none ships.

Decoding needs numpy, Pillow, onnx, onnxruntime and construct; encoding also needs torch
(the ``train`` extra), which is imported only when ``encode`` runs.
"""

from __future__ import annotations

from .codec import (
    DecodedImage,
    EncodeOptions,
    EncodeResult,
    decode,
    decode_file,
    encode,
    encode_file,
    read_container,
)
from .container import FORMAT_VERSION, Container, GainMapMetadata
from .errors import (
    ContainerError,
    GainmapError,
    GraphContractError,
    InputError,
    JpegError,
    NoGainMapError,
    StandardGainMapError,
    UnsupportedVersionError,
)
from .initweights import MissingInitWarning

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "Container",
    "ContainerError",
    "DecodedImage",
    "EncodeOptions",
    "EncodeResult",
    "GainMapMetadata",
    "GainmapError",
    "GraphContractError",
    "InputError",
    "JpegError",
    "MissingInitWarning",
    "NoGainMapError",
    "StandardGainMapError",
    "UnsupportedVersionError",
    "__version__",
    "decode",
    "decode_file",
    "encode",
    "encode_file",
    "read_container",
]
