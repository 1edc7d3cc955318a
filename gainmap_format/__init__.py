"""HDR photos as ordinary JPEGs whose gain map is a tiny neural network (Gain-MLP / Gamma-MLP).

A file is an SDR JPEG that every viewer shows, plus a small network (about 10 KB of ONNX weights
in APP15 segments) that maps each SDR pixel and its position to the HDR. The data flow, one
module per step:

Encoding (``encode``, ``encode_file``; fitting needs the ``train`` extra, torch):

1. :mod:`.hdrio` reads the HDR (OpenEXR, Radiance); :mod:`.colour` moves it to BT.2020 PQ.
2. :mod:`.tonemap` makes the default SDR base, unless the caller gives one; :mod:`.codec`
   encodes it as the base JPEG.
3. :mod:`.residual` computes the map the network learns (gamma or gain) and its normalisation.
4. :mod:`.fitting` fits the network of :mod:`.network`, on the fused kernels of :mod:`.native`
   or on torch, from the shipped weights of :mod:`.initweights`.
5. :mod:`.graph` exports it as the canonical ONNX graph; :mod:`.container` packs graph and
   metadata (binary layouts in :mod:`.structs`, codes in :mod:`.registries`) and :mod:`.jpeg`
   inserts the APP15 segments into the base.

Decoding (``decode``, ``decode_file``) runs the same steps back: :mod:`.jpeg` finds the
segments, :mod:`.container` checks them and :mod:`.graph` checks the graph against the spec's
contract, and :mod:`.runtime` evaluates the network over the decoded base (the C kernel, or ONNX
Runtime), turning the map back into HDR. Decoding never imports torch.

Beside the codec: :mod:`.standard` reads and writes the gain-map JPEGs that phones write
(ISO 21496-1, Ultra HDR, Apple); ``pillow_plugin`` gives both kinds to ``Image.open``;
:mod:`.cli` is the ``gainmap`` command; :mod:`.metainit` trains the shipped initial weights and
:mod:`.evaluation` is the benchmark (both offline; the codec imports neither).

The public API: :func:`encode`, :func:`encode_file`, :func:`decode`, :func:`decode_file`,
:func:`read_container`, :func:`decode_pixels` with :class:`Placement` (:mod:`.geometry`) for an
edited base, their options and results, and the exceptions of :mod:`.errors`, all subclasses of
:class:`GainmapError`; the warnings :class:`InputRepairWarning`, :class:`MissingInitWarning` and
:class:`NoKernelsWarning`. Many files: :mod:`.batch`; edits of any gain-map JPEG: :mod:`.edit`.
"""

from __future__ import annotations

from .codec import (
    DecodedImage,
    EncodeOptions,
    EncodeResult,
    decode,
    decode_file,
    decode_pixels,
    encode,
    encode_file,
    read_container,
)
from .colour import PRIMARIES
from .container import FORMAT_VERSION, Container, GainMapMetadata
from .errors import (
    ContainerError,
    GainmapError,
    GraphContractError,
    InputError,
    InputRepairWarning,
    JpegError,
    NoGainMapError,
    StandardGainMapError,
    UnsupportedVersionError,
)
from .geometry import Placement
from .initweights import MissingInitWarning
from .native import NoKernelsWarning
from .options import FitOptions
from .runtime import Engine

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "PRIMARIES",
    "Container",
    "ContainerError",
    "DecodedImage",
    "EncodeOptions",
    "EncodeResult",
    "Engine",
    "FitOptions",
    "GainMapMetadata",
    "GainmapError",
    "GraphContractError",
    "InputError",
    "InputRepairWarning",
    "JpegError",
    "MissingInitWarning",
    "NoGainMapError",
    "NoKernelsWarning",
    "Placement",
    "StandardGainMapError",
    "UnsupportedVersionError",
    "__version__",
    "decode",
    "decode_file",
    "decode_pixels",
    "encode",
    "encode_file",
    "read_container",
]
