"""The catalogue of conformance vectors: which vectors exist and how each one is built.

Valid vectors are written by the reference encoder (``gainmap_format.codec``) from scenes made
with integer arithmetic only (:func:`integer_scene`), with a few iterations of a seeded fit on one
CPU thread. Some valid vectors and every invalid one are then made by byte surgery on those files
(:mod:`conformance.mutations`). Each builder registered with :func:`vector` returns one
:class:`Case` or several; :func:`build` runs them. Writing the folders is
:mod:`conformance.generate`'s job.

What is byte for byte the same on every x86-64 CPU, whatever its SIMD width and thread count, and
what is not:

- the scenes, the base images and every byte surgery use integer arithmetic, IEEE-exact
  operations (+, -, ×, /) and lossless encoders only, so they are the same everywhere;
- the fitted parameters are not (torch's and BLAS's kernels round differently on AVX2 and
  AVX-512), so they are fitted once and stored: unless ``SETTINGS.refit`` is set, the encoder's
  files are taken from the committed vectors (``SETTINGS.reference``), which stay the reference.

Every base image is built so that every ITU-T T.81 decoder decodes it to the same code values
(see :func:`exact_base`). A sine network turns a one-code difference of its input into an
unrelated output, so without this the expected outputs would test the JPEG decoder rather than
the gain map.
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageCms

from conformance.mutations import (
    container_of,
    crc,
    edit_model,
    fixed_icc,
    flip,
    graph_of,
    initializer,
    insert_after_app0,
    ours,
    patch,
    raw_segment,
    segment,
    sos_offset,
    too_large,
    weights_of,
    with_container,
    with_graph,
    with_segments,
    without_gainmlp,
)
from gainmap_format import codec, standard
from gainmap_format import container as ctr
from gainmap_format.geometry import EXIF_TRANSPOSES, Placement
from gainmap_format.graph import build_graph
from gainmap_format.jpeg import JpegLayout, Segment, parse_jpeg, replace_segments
from gainmap_format.network import MlpWeights, parameter_shapes
from gainmap_format.structs import PLACEMENT_SIZE

#: The committed vectors.
VECTORS = Path(__file__).resolve().parent / "vectors"

#: Fitting steps: the network's quality does not matter here, only that it is a real fit.
ITERATIONS = 30
#: Encoder options that make a refit the same bytes on every rerun on one machine: the seeded
#: random start (not the shipped meta-initialisation, which may be retrained) and torch's table
#: method (the fused C kernel sums in an order that depends on the thread count). Other CPUs round
#: torch's and BLAS's kernels differently, which is why the fits are stored (:func:`encoder_output`).
REPRODUCIBLE_ENCODE: dict[str, Any] = {"init": "random"}
REPRODUCIBLE_FIT: dict[str, Any] = {"device": "cpu", "method": "tables"}

#: Requirements every vector of a kind exercises, added to its own list.
VALID_COMMON = ["GEN-3", "GEN-4", "CAR-6", "CAR-8", "CAR-17", "NET-1", "NET-2", "NET-4", "NET-5",
                "NET-6", "NET-7", "NET-8", "NET-9", "NET-11", "GRA-1", "GRA-2", "GRA-3", "GRA-29", "RES-1", "RES-2",
                "RES-3", "RES-4", "RES-7", "RES-9", "RES-10", "RES-17", "RES-18", "RES-21", "DEC-2", "DEC-3",
                "DEC-5"]
REJECT_COMMON = ["GEN-1", "GEN-2"]

#: Requirements on writers that every file of the reference encoder demonstrates; the tests
#: verify them on each such vector with conformance/check_writer.py.
WRITER = ["CAR-1", "CAR-2", "CAR-3", "CAR-4", "CAR-5", "CAR-19", "CAR-20", "CAR-21", "CAR-22", "CON-1", "CON-4",
          "CON-6", "CON-7", "CON-14", "CON-20", "CON-31", "CON-46", "VER-1", "VER-2", "GRA-20", "GRA-22", "GRA-23",
          "ENC-1", "ENC-2", "ENC-6", "ENC-8"]


@dataclass
class Case:
    """One vector before it is written.

    Attributes:
        name: folder name, saying what the vector is.
        expected_result: "decode", "reject", "no_gainmap" or "unsupported_version".
        requirements: the spec identifiers it exercises.
        description: what it tests, one line.
        note: how it was made.
        data: the input file.
        level: "must", or "should" when the behaviour tested is a SHOULD.
        display_headroom: decode for this display headroom (spec §7.5), or None.
        extra_files: further files to store beside the input (writer input, source HDR).
        writer_checks: whether the file is the reference encoder's output, unchanged.
        needs_version: the format version a decoder needs to decode it, when later than 1.0 and
            the vector is for decoders of later versions only; an earlier decoder must refuse it as
            an unsupported version (the runner's --format-version).
    """

    name: str
    expected_result: str
    requirements: list[str]
    description: str
    note: str
    data: bytes
    level: str = "must"
    display_headroom: float | None = None
    extra_files: dict[str, bytes] = field(default_factory=dict)
    writer_checks: bool = False
    needs_version: str | None = None


# ---- bases that every JPEG decoder decodes alike ----


def _ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JFIF (ITU-T T.871) RGB to YCbCr, real-valued."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([0.299 * r + 0.587 * g + 0.114 * b,
                     -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0,
                     0.5 * r - 0.418688 * g - 0.081312 * b + 128.0], axis=-1)


def _chroma_terms(cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """JFIF's YCbCr to RGB terms added to Y, real-valued."""
    cb, cr = cb - 128.0, cr - 128.0
    return np.stack([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb], axis=-1)


def _jfif_rgb(ycc: np.ndarray) -> np.ndarray:
    """JFIF YCbCr to RGB code values, rounded to nearest."""
    ycc = ycc.astype(np.float64)
    rgb = ycc[..., :1] + _chroma_terms(ycc[..., 1], ycc[..., 2])
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(np.uint8)


_NUDGES = [(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1), (0, 2), (2, 0), (2, 2)]


def _safe_chroma(cb: np.ndarray, cr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nudge integer Cb, Cr so that no chroma term lies within 0.05 of a rounding tie.

    Integer decoders round each term before adding it to Y (libjpeg's tables), float decoders
    round the sum; away from ties, both give the same code value.
    """
    chosen = np.full(cb.shape, -1)
    for index, (dcb, dcr) in enumerate(_NUDGES):
        terms = _chroma_terms(np.clip(cb + dcb, 1, 254), np.clip(cr + dcr, 1, 254))
        safe = np.all(np.abs(terms - np.floor(terms) - 0.5) >= 0.05, axis=-1)
        chosen = np.where((chosen < 0) & safe, index, chosen)
    if np.any(chosen < 0):
        raise RuntimeError("no safe chroma found for some block")
    nudges = np.array(_NUDGES)[chosen]
    return np.clip(cb + nudges[..., 0], 1, 254), np.clip(cr + nudges[..., 1], 1, 254)


def exact_base(sdr: np.ndarray, *, grey: bool = False, subsampled: bool = False, progressive: bool = False,
               primaries: bool = False, **save_options) -> bytes:
    """Encode an SDR image as a JPEG that every T.81 decoder decodes to the same code values.

    Each 8x8 block is flat (so the IDCT of every block is its DC term, exact in any conforming
    decoder), quality 100 makes every quantiser 1, and each block's chroma is chosen away from
    the rounding ties of YCbCr to RGB. A subsampled base has one chroma for the whole image, so
    that every chroma upsampling filter gives the same samples.

    Args:
        sdr: uint8 (H, W, 3), the picture to approximate.
        grey: one-component (greyscale) JPEG.
        subsampled: 4:2:0 chroma subsampling instead of 4:4:4.
        progressive: progressive instead of baseline.
        primaries: paint the first three 8x8 blocks pure red, green and blue (saturated colours
            whose conversion to BT.2020 can go below 0, spec §7.1 step 4).
        save_options: passed to Pillow (exif, icc_profile, xmp).

    Returns:
        The JPEG bytes.
    """
    height, width, _ = sdr.shape
    rows, cols = -(-height // 8), -(-width // 8)
    padded = np.pad(sdr.astype(np.float64), ((0, rows * 8 - height), (0, cols * 8 - width), (0, 0)), mode="edge")
    if primaries:
        for block, colour in enumerate(np.eye(3) * 255.0):
            padded[:8, 8 * block : 8 * block + 8] = colour
    blocks = _ycbcr(padded.reshape(rows, 8, cols, 8, 3).mean(axis=(1, 3)))
    luma = np.clip(np.round(blocks[..., 0]), 0, 255)
    cb, cr = np.round(blocks[..., 1]), np.round(blocks[..., 2])
    if subsampled:
        cb, cr = np.full_like(cb, np.round(cb.mean())), np.full_like(cr, np.round(cr.mean()))
    cb, cr = _safe_chroma(cb, cr)
    ycc = np.stack([luma, cb, cr], axis=-1).astype(np.uint8)
    pixels = np.repeat(np.repeat(ycc, 8, axis=0), 8, axis=1)[:height, :width]
    if grey:
        image, expected = Image.fromarray(pixels[..., 0], "L"), np.repeat(pixels[..., :1], 3, axis=-1)
    else:
        image, expected = Image.fromarray(pixels, "YCbCr"), _jfif_rgb(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=100, subsampling=2 if subsampled else 0, progressive=progressive,
               **save_options)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as decoded:
        if not np.array_equal(np.asarray(decoded.convert("RGB")), expected):
            raise RuntimeError("the base does not decode to the intended code values")
    return data


# ---- scenes from integer arithmetic: the same bytes on every CPU ----

#: The scenes are 16-bit PQ code values: sample q stands for PQ q / 65535.
PQ_CODES = 65_535

#: Scene coordinates run over 0..COORDINATE (top to bottom, left to right) whatever the size.
COORDINATE = 1024


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea and Flood 2014) on uint64, wrapping modulo 2^64."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _noise(seed: int, rows: np.ndarray, cols: np.ndarray, amplitude: int) -> np.ndarray:
    """Integer noise in [-amplitude, amplitude], constant over blocks of 4x4 pixels.

    Returns:
        int64, the shape of ``rows`` and ``cols`` broadcast.
    """
    z = _splitmix64(np.uint64(seed) ^ _splitmix64((rows // 4).astype(np.uint64) << np.uint64(32)
                                                  | (cols // 4).astype(np.uint64)))
    return (z % np.uint64(2 * amplitude + 1)).astype(np.int64) - amplitude


def _disc(x: np.ndarray, y: np.ndarray, centre: tuple[int, int], radius: int) -> np.ndarray:
    """How far inside a disc each pixel is: radius² - distance², negative outside (int64)."""
    return radius * radius - (x - centre[0]) ** 2 - (y - centre[1]) ** 2


def integer_scene(height: int, width: int, seed: int) -> np.ndarray:
    """An HDR scene in 16-bit BT.2020 PQ code values, from integer arithmetic only.

    A sky gradient, a sun near 4,000 cd/m² with a halo, a textured ground and three saturated
    balls with specular highlights: what makes a gain map work, in integers, so that the source
    and every base made from it are the same bytes on every CPU.

    Returns:
        int64 (height, width, 3), PQ code values in 0..65535 (q / 65535 is the PQ value).
    """
    rows, cols = np.meshgrid(np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64), indexing="ij")
    y = rows * COORDINATE // max(height - 1, 1)
    x = cols * COORDINATE // max(width - 1, 1)
    sky = np.stack([31_000 + 7_000 * y // COORDINATE, 33_000 + 6_000 * y // COORDINATE,
                    42_000 - 3_000 * y // COORDINATE], axis=-1)
    shade = 4_000 * x // COORDINATE + _noise(seed, rows, cols, 1_500)
    ground = np.stack([24_000 + shade, 26_000 + shade, 17_000 + shade // 2], axis=-1)
    scene = np.where((y < 563)[..., None], sky, ground)
    halo = np.clip(_disc(x, y, (768, 205), 120), 0, None)
    scene = scene + (halo * 9_000 // (120 * 120))[..., None]
    scene = np.where((_disc(x, y, (768, 205), 60) >= 0)[..., None], np.array([59_000, 58_000, 56_000]), scene)
    for centre_x, colour in ((205, (48_000, 12_000, 12_000)), (410, (12_000, 47_000, 14_000)),
                             (614, (13_000, 15_000, 48_000))):
        ball = _disc(x, y, (centre_x, 768), 80)
        shading = np.clip(ball, 0, None) * 6_000 // (80 * 80)
        scene = np.where((ball >= 0)[..., None], np.array(colour) + shading[..., None], scene)
        highlight = _disc(x, y, (centre_x - 20, 738), 15) >= 0
        scene = np.where(highlight[..., None], np.array([56_000, 56_000, 56_000]), scene)
    return np.clip(scene, 0, PQ_CODES)


def source_pq(scene: np.ndarray) -> np.ndarray:
    """The encoder's HDR input: float32 PQ = q / 65535, one correctly rounded division each."""
    return scene.astype(np.float32) / np.float32(PQ_CODES)


def integer_sdr(scene: np.ndarray) -> np.ndarray:
    """An SDR rendition of an integer scene, by integer arithmetic alone.

    PQ codes 4,096 to 34,096 (about 0.1 to 110 cd/m²) spread linearly over 0..255; brighter
    values clip to 255, darker ones to 0.

    Returns:
        uint8, the shape of ``scene``.
    """
    return np.clip((scene - 4_096) * 255 // 30_000, 0, 255).astype(np.uint8)


# ---- the reference encoder's files: fitted once, stored in the committed vectors ----


@dataclass
class Settings:
    """How this run treats the fitted parameters and the expected outputs.

    Attributes:
        refit: fit every network again instead of taking the committed files.
        reference: the folder of the committed vectors, the reference for both.
    """

    refit: bool = False
    reference: Path = VECTORS


SETTINGS = Settings()


@dataclass(frozen=True)
class Scene:
    """A scene the reference encoder is run on, and the vector that holds its file.

    Attributes:
        vector: the valid vector whose input.jpg is the encoder's output.
        height, width, seed: of :func:`integer_scene`.
        base_options: :func:`exact_base` options for its base.
        options: EncodeOptions fields besides those of every vector.
        fit: FitOptions fields besides those of every vector.
    """

    vector: str
    height: int
    width: int
    seed: int
    base_options: dict[str, bool] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)

    def fit_fields(self) -> dict[str, Any]:
        """The FitOptions fields of this scene's fit."""
        return {"iterations": ITERATIONS, "seed": self.seed, **REPRODUCIBLE_FIT, **self.fit}

    def encode_fields(self) -> dict[str, Any]:
        """The EncodeOptions fields of this scene's encode, the fit's aside."""
        return {**REPRODUCIBLE_ENCODE, **self.options}

    def encode_options(self) -> codec.EncodeOptions:
        """The encoder's options for this scene."""
        return codec.EncodeOptions(**self.encode_fields(), fit=codec.FitOptions(**self.fit_fields()))


@dataclass(frozen=True)
class Encoded:
    """A file from the reference encoder, with what went into it."""

    jpeg: bytes
    base: bytes
    hdr_pq: np.ndarray


def matches_stored_fit(stored: bytes, writer_input: bytes, options: codec.EncodeOptions) -> bool:
    """Whether a stored file is the encoder's output for this input and these options, up to the fit."""
    if without_gainmlp(stored) != without_gainmlp(writer_input):
        return False
    m = ctr.parse_container(container_of(stored)).metadata
    wanted = (options.residual, options.fit.activation, options.fit.hidden_width, options.base_transfer,
              options.sdr_primaries)
    return (m.residual, m.activation, m.hidden_width, m.base_transfer, m.base_primaries) == wanted


def encoder_output(scene: Scene, writer_input: bytes, hdr_pq: np.ndarray) -> bytes:
    """The reference encoder's file for a scene: the committed one, or a new fit.

    The committed file is taken when it was made from the same writer input with the same
    options; with ``SETTINGS.refit``, or when it is missing or stale, the network is fitted
    again, on one thread (the same bytes on every rerun on one machine, not across CPUs).
    """
    options = scene.encode_options()
    stored = SETTINGS.reference / scene.vector / "input.jpg"
    if not SETTINGS.refit and stored.is_file() and matches_stored_fit(stored.read_bytes(), writer_input, options):
        return stored.read_bytes()
    import torch

    torch.set_num_threads(1)
    print(f"generate: fitting {scene.vector}")
    inputs = codec.fit_inputs(writer_input, codec.decode_base(writer_input), hdr_pq, options)
    return codec.encode_prepared(inputs, options).jpeg


@functools.cache
def encoded(name: str) -> Encoded:
    """The reference encoder's output for one of :data:`SCENES`, on its exact base."""
    scene = SCENES[name]
    levels = integer_scene(scene.height, scene.width, scene.seed)
    base = exact_base(integer_sdr(levels), **scene.base_options)
    hdr_pq = source_pq(levels)
    return Encoded(encoder_output(scene, base, hdr_pq), base, hdr_pq)


SCENES: dict[str, Scene] = {
    "default": Scene("valid-gamma-sine-w16", 48, 64, 1),
    "gain-relu-w8": Scene("valid-gain-relu-w8", 40, 56, 2, options={"residual": "gain"},
                          fit={"activation": "relu", "hidden_width": 8}),
    "gamma-relu-w32-srgb-p3": Scene("valid-gamma-relu-w32-srgb-p3", 32, 48, 3, {"primaries": True},
                                    {"sdr_transfer": "srgb", "sdr_primaries": "display-p3"},
                                    {"activation": "relu", "hidden_width": 32}),
    "gain-sine-w64-bt2020": Scene("valid-gain-sine-w64-bt2020", 24, 40, 4,
                                  options={"residual": "gain", "sdr_primaries": "bt2020"}, fit={"hidden_width": 64}),
    "w128": Scene("valid-w128-two-segments", 16, 24, 5, fit={"hidden_width": 128}),
    "1x1": Scene("valid-size-1x1", 1, 1, 6),
    "1x37": Scene("valid-size-1x37", 1, 37, 7),
    "29x1": Scene("valid-size-29x1", 29, 1, 8),
    "23x37": Scene("valid-size-23x37", 23, 37, 9),
    "progressive": Scene("valid-progressive-base", 32, 40, 10, {"progressive": True}),
    "subsampled": Scene("valid-subsampled-420-base", 32, 48, 11, {"subsampled": True}),
    "grey": Scene("valid-greyscale-base", 24, 32, 12, {"grey": True}),
    "neighbours": Scene("valid-metadata-neighbours", 40, 48, 13, options={"sdr_primaries": "bt2020"}),
    "beside-iso": Scene("valid-with-iso-gain-map", 48, 64, 1),
}


# ---- the vectors ----

BUILDERS: dict[str, Callable[[], Case | list[Case]]] = {}


def vector(function: Callable[[], Case | list[Case]]) -> Callable[[], Case | list[Case]]:
    """Register a builder; it may return one case or several."""
    BUILDERS[function.__name__] = function
    return function


def requirement_order(identifier: str) -> tuple[str, int]:
    """Sort key: by prefix, then by number (CAR-6 before CAR-17)."""
    prefix, _, number = identifier.partition("-")
    return prefix, int(number)


def valid(name: str, data: bytes, requirements: list[str], description: str, note: str, **kw) -> Case:
    """A vector that must decode."""
    return Case(name, "decode", sorted(set(requirements + VALID_COMMON), key=requirement_order), description, note,
                data, **kw)


def encoder_note(scene: Scene, base: str) -> str:
    """How the reference encoder made a scene's file, for case.json."""
    options = "".join(f"{k}={v!r}, " for k, v in scene.encode_fields().items())
    fit = ", ".join(f"{k}={v!r}" for k, v in scene.fit_fields().items())
    return (f"gainmap_format.codec.encode_prepared(fit_inputs(...)) of generate.integer_scene({scene.height}, "
            f"{scene.width}, seed={scene.seed}) as BT.2020 PQ with EncodeOptions({options}fit=FitOptions({fit})); "
            f"base: {base}")


def written(scene: str, name: str, requirements: list[str], description: str, **kw) -> Case:
    """A valid vector that is the reference encoder's output, unchanged."""
    base_options = SCENES[scene].base_options
    note = encoder_note(SCENES[scene], f"generate.exact_base of generate.integer_sdr {base_options or ''}".rstrip())
    return valid(name, encoded(scene).jpeg, requirements + WRITER, description, note, writer_checks=True, **kw)


def reject(name: str, data: bytes, requirements: list[str], description: str, note: str,
           result: str = "reject", **kw) -> Case:
    """A vector that must be rejected (or found to carry no gain map)."""
    return Case(name, result, sorted(set(requirements + REJECT_COMMON), key=requirement_order), description, note,
                data, **kw)


def default_container() -> bytes:
    """The container of the default vector, the source of most surgery."""
    return container_of(encoded("default").jpeg)


def on_default(container: bytes) -> bytes:
    """The default vector carrying another container."""
    return with_container(encoded("default").jpeg, container)


@vector
def writer_vectors() -> list[Case]:
    """Every feature of the format as the reference encoder writes it."""
    return [
        written("default", "valid-gamma-sine-w16", ["RES-5", "RES-11", "NET-10", "ENC-3", "ENC-4", "ENC-5", "ENC-7"],
                "the default network: gamma map, sine, W_h 16, gamma 2.4, BT.709, 48x64",
                extra_files={"source.npy": npy_bytes(encoded("default").hdr_pq)}),
        written("gain-relu-w8", "valid-gain-relu-w8", ["RES-6", "NET-10", "CON-22"],
                "gain map, ReLU, W_h 8"),
        written("gamma-relu-w32-srgb-p3", "valid-gamma-relu-w32-srgb-p3", ["RES-3", "RES-5", "NET-10", "CON-22"],
                "gamma map, ReLU, W_h 32, sRGB transfer, Display P3 primaries; a pure red block goes below 0 in "
                "BT.2020 blue"),
        written("gain-sine-w64-bt2020", "valid-gain-sine-w64-bt2020", ["RES-6", "CON-22"],
                "gain map, sine, W_h 64, BT.2020 primaries (identity matrix)"),
        written("w128", "valid-w128-two-segments", ["CON-22", "CAR-3", "CAR-4", "CAR-5", "CAR-17"],
                "W_h 128: a 130,384-byte container split over two APP15 segments"),
        written("1x1", "valid-size-1x1", ["NET-3"], "a 1x1 image: both coordinates are 0"),
        written("1x37", "valid-size-1x37", ["NET-3"], "a single row (H = 1), width not a multiple of 8"),
        written("29x1", "valid-size-29x1", ["NET-3"], "a single column (W = 1), height not a multiple of 8"),
        written("23x37", "valid-size-23x37", [], "23x37: neither side a multiple of 8 or 16"),
        written("progressive", "valid-progressive-base", [], "a progressive JPEG base"),
        written("subsampled", "valid-subsampled-420-base", [], "a 4:2:0 chroma-subsampled base"),
        written("grey", "valid-greyscale-base", ["DEC-4"], "a one-component (greyscale) base: R = G = B"),
    ]


def neighbour_writer_input() -> bytes:
    """The writer input of valid-metadata-neighbours.

    A base with Exif (orientation 6), XMP, ICC, a foreign APP15, a stale GainMLP segment and,
    after EOI, a GainMLP segment that readers must not see.
    """
    scene = SCENES["neighbours"]
    levels = integer_scene(scene.height, scene.width, scene.seed)
    exif = Image.Exif()
    exif[0x0112] = 6
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/jpeg"/>'
           b"</rdf:RDF></x:xmpmeta>")
    icc = fixed_icc(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    base = exact_base(integer_sdr(levels), exif=exif.tobytes(), xmp=xmp, icc_profile=icc)
    layout = parse_jpeg(base)
    stale = ours(encoded("1x1").jpeg)[0]
    foreign = Segment(0xEF, b"Ducky\x00" + bytes(12))
    extra = (*layout.segments, foreign, stale)
    trailing = raw_segment(0xEF, ours(encoded("default").jpeg)[0].payload)
    return JpegLayout(extra, layout.scan + trailing).to_bytes()


@functools.cache
def neighbours() -> Encoded:
    """The reference encoder run on :func:`neighbour_writer_input`."""
    scene = SCENES["neighbours"]
    writer_input = neighbour_writer_input()
    hdr_pq = source_pq(integer_scene(scene.height, scene.width, scene.seed))
    return Encoded(encoder_output(scene, writer_input, hdr_pq), writer_input, hdr_pq)


@vector
def metadata_neighbours() -> Case:
    """Our segments among Exif, XMP, ICC and foreign APP15 segments."""
    note = encoder_note(SCENES["neighbours"], "writer_input.jpg: an exact base saved by Pillow with Exif "
                        "(orientation 6), XMP and an sRGB ICC profile, plus an APP15 'Ducky' segment, a stale GainMLP "
                        "segment (from valid-size-1x1) after the ICC APP2, and a GainMLP segment after EOI")
    requirements = WRITER + ["CAR-7", "CAR-8", "CAR-23", "CAR-24", "CAR-25", "CAR-26", "RES-4", "DEC-5"]
    return valid("valid-metadata-neighbours", neighbours().jpeg, requirements,
                 "Exif orientation 6 (ignored), XMP, an sRGB ICC profile (ignored: the container says BT.2020), "
                 "a foreign APP15, and a GainMLP segment after EOI (ignored)", note, writer_checks=True,
                 extra_files={"writer_input.jpg": neighbours().base})


def iso_gain_map_base() -> bytes:
    """The default scene's base with an ISO 21496-1 gain map attached (MPF), before our writer runs.

    The gain-map image itself holds a stale GainMLP segment, which readers must not see ([CAR-8]).
    """
    metadata = standard.StandardGainMapMetadata(kind="iso21496-1", version="0.0", base_headroom=0.0,
                                                alternate_headroom=2.0, gain_map_min=(0.0, 0.0, 0.0),
                                                gain_map_max=(2.0, 2.0, 2.0))
    buffer = io.BytesIO()
    Image.new("L", (32, 24), 128).save(buffer, "JPEG", quality=90)
    iso = Segment(0xE2, standard.iso_metadata_payload(metadata))
    stale = ours(encoded("1x1").jpeg)[0]
    map_jpeg = replace_segments(parse_jpeg(buffer.getvalue()), [iso, stale], lambda s: False).to_bytes()
    template = standard.StandardGainMap(metadata=metadata, base_size=(64, 48), gain_map_size=(32, 24),
                                        gain_map_channels=1, base_primaries="bt709", alternate_primaries="bt709",
                                        gain_map_offset=0, gain_map_jpeg=map_jpeg, announced_by=frozenset({"iso"}))
    return standard.attach_gain_map(encoded("default").base, template)


@functools.cache
def beside_iso() -> Encoded:
    """The default scene encoded on :func:`iso_gain_map_base` (the same pixels as valid-gamma-sine-w16)."""
    writer_input = iso_gain_map_base()
    jpeg = encoder_output(SCENES["beside-iso"], writer_input, encoded("default").hdr_pq)
    assert standard.find_gain_map(jpeg) is not None  # the MPF offsets survived the insertion
    return Encoded(jpeg, writer_input, encoded("default").hdr_pq)


@vector
def standard_gain_map_beside() -> Case:
    """A GainMLP file that also carries an ISO 21496-1 gain map (spec §1.1 allows it)."""
    note = encoder_note(SCENES["beside-iso"], "writer_input.jpg: the base of valid-gamma-sine-w16 with a 32x24 grey "
                        "ISO 21496-1 gain map attached by gainmap_format.standard.attach_gain_map, the gain-map JPEG "
                        "holding the GainMLP segment of valid-size-1x1")
    return valid("valid-with-iso-gain-map", beside_iso().jpeg,
                 WRITER + ["CAR-8", "CAR-20", "CAR-24", "CAR-25", "CAR-26"],
                 "an ISO 21496-1 gain map beside ours (MPF secondary image, still found: our segments went before "
                 "the MPF APP2), itself holding a GainMLP segment that readers must not see", note,
                 writer_checks=True, extra_files={"writer_input.jpg": beside_iso().base})


@vector
def two_segments_reversed() -> Case:
    """Reassembly by sequence number, not file order."""
    source = encoded("w128").jpeg
    data = with_segments(source, list(reversed(ours(source))))
    return valid("valid-segments-reversed", data, ["CAR-17"], "the two segments of a split container in reverse "
                 "order", "valid-w128-two-segments with its two GainMLP segments swapped")


@vector
def header_variants() -> list[Case]:
    """Fields that readers must ignore or accept at their bounds."""
    c = default_container()
    body = c[:-4] + bytes(range(12))
    return [
        valid("valid-flags-set", on_default(patch(c, flags=0xA5)), ["CON-5", "VER-11"],
              "flags 0xA5: readers ignore flags", "valid-gamma-sine-w16 with flags = 0xA5, CRC recomputed"),
        valid("valid-writer-version-0.0", on_default(patch(c, writer_version=0x0000)), ["VER-5"],
              "writer_version 0.0: never a reason to reject", "valid-gamma-sine-w16 with writer_version 0x0000"),
        valid("valid-future-minor-extension", on_default(patch(body + crc(body), writer_version=0x0207)),
              ["CON-35", "VER-5", "VER-7", "VER-8", "VER-9", "VER-10"],
              "a 2.7 writer's container with 12 bytes of extension fields: skipped, same output as without them",
              "valid-gamma-sine-w16 with writer_version 0x0207 and 12 bytes (00..0B) before the CRC"),
        valid("valid-minimum-version-2.0", on_default(patch(c, minimum_version=0x0200)), ["VER-3"],
              "minimum_version 2.0: a 2.0 reader decodes it as it decodes minimum_version 1.0",
              "valid-gamma-sine-w16 with minimum_version 0x0200", needs_version="2.0"),
        valid("valid-custom-epsilon-white", on_default(patch(c, epsilon=0.125, sdr_white_luminance=203.0)),
              ["RES-1", "RES-5", "RES-19", "CON-26"], "epsilon 1/8 and SDR white 203 cd/m², read from the container",
              "valid-gamma-sine-w16 with epsilon = 0.125 and sdr_white_luminance = 203"),
        valid("valid-clipping", on_default(patch(c, residual_mean=0.5, residual_range=8.0)), ["RES-5", "RES-7"],
              "f from -3.5 to 4.5: H' below 0 and above 1 before clipping", "valid-gamma-sine-w16 with "
              "residual_mean = 0.5 and residual_range = 8"),
        valid("valid-bounds-low",
              on_default(patch(c, input_mean=0.0, input_range=2.0**-20, epsilon=2.0**-10, sdr_white_luminance=1.0,
                               residual_range=2.0**-20, alternate_headroom_numerator=0)),
              ["CON-26", "CON-27", "CON-37", "CON-39", "CON-40", "CON-41"],
              "the lower bounds: input mean 0, input range 2^-20, epsilon 2^-10, SDR white 1 cd/m², residual "
              "range 2^-20 (f = residual_mean), H_alt = H_base = 0", "valid-gamma-sine-w16 with those fields set"),
        valid("valid-bounds-high",
              on_default(patch(c, input_mean=1.0, input_range=1.0, epsilon=0.5, sdr_white_luminance=10_000.0,
                               alternate_headroom_numerator=140_000)),
              ["CON-27", "CON-28", "CON-30", "CON-40", "CON-42"],
              "the upper bounds: input mean 1, input range 1, epsilon 1/2, SDR white 10,000 cd/m² (S + e "
              "above 1 for bright pixels), H_alt 14", "valid-gamma-sine-w16 with those fields set"),
        valid("valid-residual-mean-lowest", on_default(patch(c, residual_mean=-(2.0**16), residual_range=2.0**-20)),
              ["CON-38", "CON-39"],
              "residual_mean -2^16: (S + e)^f overflows binary32 to +inf, which clips to 1 (not NaN, not 0)",
              "valid-gamma-sine-w16 with residual_mean -65536 and residual_range 2^-20"),
        valid("valid-residual-range-highest", on_default(patch(c, residual_mean=2.0**16, residual_range=2.0**17)),
              ["CON-38", "CON-39"],
              "residual_mean 2^16, residual_range 2^17: f = 65536 (z + 1), every sample far from the unclipped "
              "window, so H' is 0", "valid-gamma-sine-w16 with residual_mean 65536 and residual_range 131072"),
    ]


@vector
def graph_variants() -> list[Case]:
    """Graphs that differ from the reference writer's only where the contract allows."""
    c = default_container()

    def free_text(model: onnx.ModelProto) -> None:
        model.producer_name, model.producer_version, model.domain = "someone else", "9.9", "org.example"
        model.model_version, model.doc_string = 42, "free text"
        helper.set_model_props(model, {"k": "v"})
        model.graph.name, model.graph.doc_string = "another name", "graph doc"
        for index, node in enumerate(model.graph.node):
            node.name, node.doc_string = f"node{index}", "node doc"
        for tensor in model.graph.initializer:
            tensor.doc_string = "tensor doc"

    def reorder(model: onnx.ModelProto) -> None:
        tensors = list(model.graph.initializer)
        del model.graph.initializer[:]
        model.graph.initializer.extend(reversed(tensors))

    return [
        valid("valid-graph-free-text", on_default(edit_model(c, free_text)), ["GRA-19"],
              "every free-text field of the model, graph, nodes and initializers set",
              "valid-gamma-sine-w16 with producer, domain, model_version, doc strings, metadata_props and names set"),
        valid("valid-graph-initializers-reversed", on_default(edit_model(c, reorder)), ["GRA-17"],
              "the twelve initializers in reverse order", "valid-gamma-sine-w16 with its initializers reversed"),
        valid("valid-high-frequency-weights", on_default(with_graph(c, _high_frequency_graph(c))),
              ["NET-4", "NET-5", "NET-6", "NET-7"],
              "large weights on the 2^11 π encodings: binary32 phases or a wrong encoding order show",
              "valid-gamma-sine-w16 with the rows of Wc, Wy and Wx for n = 11 and n = 23 set to 16 (sine) and "
              "-16 (cosine)"),
    ]


def _high_frequency_graph(container: bytes) -> bytes:
    weights = weights_of(container)
    arrays = {name: array.copy() for name, array in weights.arrays().items()}
    for name in ("Wc", "Wy", "Wx"):
        arrays[name][..., 11, :] = 16.0
        arrays[name][..., 23, :] = -16.0
    return build_graph(MlpWeights(**arrays), "sine")


@vector
def display_vectors() -> list[Case]:
    """Display adaptation (spec §7.5)."""
    gain = container_of(encoded("gain-relu-w8").jpeg)
    c = default_container()
    gain_file = encoded("gain-relu-w8").jpeg
    return [
        valid("valid-display-headroom-gamma", encoded("default").jpeg, ["RES-12", "RES-14", "RES-16"],
              "gamma map for a display with 1 stop of headroom: w = 1 / H_alt",
              "valid-gamma-sine-w16, decoded with display headroom 1", display_headroom=1.0),
        valid("valid-display-headroom-gain", gain_file, ["RES-12", "RES-15", "RES-16"],
              "gain map for a display with 0.5 stop of headroom: f_w = max(f, 0)^w",
              "valid-gain-relu-w8, decoded with display headroom 0.5", display_headroom=0.5),
        valid("valid-headroom-equal", on_default(patch(c, base_headroom_numerator=15_000,
                                                       alternate_headroom_numerator=15_000)),
              ["RES-13", "CON-18"], "H_alt = H_base = 1.5: w = 1 whatever the display",
              "valid-gamma-sine-w16 with both headrooms 15000/10000, decoded with display headroom 0",
              display_headroom=0.0),
        valid("valid-gain-weight-zero", with_container(gain_file, patch(gain, residual_mean=-5.0)),
              ["RES-12", "RES-15"], "gain map with f < 0 everywhere on an SDR display: w = 0, max(f, 0)^0 = 1, "
              "so H' = S", "valid-gain-relu-w8 with residual_mean = -5, decoded with display headroom 0",
              display_headroom=0.0),
    ]


# ---- version 2.1: the placement (spec §4.7) ----

#: Edits of the default scene's base (64x48): (vector suffix, Pillow edit, the same edit of a
#: Placement, requirements, description). Nearest-neighbour resampling keeps every edited base the
#: same bytes on every CPU.
_NEAREST = Image.Resampling.NEAREST
PLACEMENT_EDITS: list[tuple[str, Callable[[Image.Image], Image.Image], Callable[[Placement], Placement], list[str],
                            str]] = [
    ("crop", lambda im: im.crop((5, 3, 45, 35)), lambda p: p.crop((5, 3, 45, 35)), [],
     "crop (5, 3, 45, 35): a translation, separable"),
    ("crop-beyond-edges", lambda im: im.crop((-6, -4, 70, 30)), lambda p: p.crop((-6, -4, 70, 30)),
     ["NET-14", "RES-22"], "crop (-6, -4, 70, 30), past three edges: the black fill outside the source decodes "
     "as itself"),
    ("resize", lambda im: im.resize((40, 30), _NEAREST), lambda p: p.resize((40, 30)), [],
     "resize to 40x30: positions between source pixel centres"),
    ("reduce", lambda im: im.reduce(3), lambda p: p.reduce(3), ["NET-13", "NET-14"],
     "reduce by 3 to 22x16: the partial last block (source column 63 alone) is placed as a whole one, its centre "
     "at x_s = 64.5, within the margin m_x = 1 of the edge: the network decodes it, no neutral column"),
    ("rotate-90", lambda im: im.rotate(90, _NEAREST), lambda p: p.rotate(90), ["NET-14", "RES-22"],
     "rotate(90) without expand on a 64x48 image: a = e = 0 (rows feed the column input), corners outside"),
    ("rotate-37-expand", lambda im: im.rotate(37, _NEAREST, expand=True), lambda p: p.rotate(37, expand=True),
     ["NET-13", "NET-14", "RES-22"], "rotate(37, expand=True) to 80x78: per-pixel coordinates, black corners "
     "outside the source"),
    ("rotate-20-expand-white", lambda im: im.rotate(20, _NEAREST, expand=True, fillcolor=(255, 255, 255)),
     lambda p: p.rotate(20, expand=True), ["NET-13", "NET-14", "RES-22"],
     "rotate(20, expand=True) with a white fill: the corners outside the source stay SDR white"),
    ("scale-2-edges", lambda im: im.transform((34, 26), Image.Transform.AFFINE, (2, 0, -1.5, 0, 2, -0.25),
                                              _NEAREST, fillcolor=(255, 255, 255)),
     lambda p: p.affine((34, 26), (2, 0, -1.5, 0, 2, -0.25)), ["NET-13", "NET-14", "RES-22"],
     "x_s = 2 x - 1.5, y_s = 2 y - 0.25, a reduction by 2 (margins 1/2): column 0's centre (x_s = -0.5) lies "
     "past the source's edge, on the grown rectangle's (inside: the network, clamped), column 33 (x_s = 65.5) "
     "and row 24 (y_s = 48.75, a quarter past H0 + 1/2) lie outside; white fill"),
    ("chain", lambda im: im.crop((4, 2, 60, 46)).transpose(Image.Transpose.TRANSPOSE).rotate(-20, _NEAREST)
     .resize((30, 41), _NEAREST), lambda p: p.crop((4, 2, 60, 46)).transpose(Image.Transpose.TRANSPOSE)
     .rotate(-20).resize((30, 41)), ["NET-13", "NET-14", "RES-22"],
     "crop, transpose, rotate(-20), resize: four edits composed into one placement"),
    *[(f"transpose-{method.name.lower().replace('_', '-')}", lambda im, m=method: im.transpose(m),
       lambda p, m=method: p.transpose(m), [], f"transpose({method.name}): Exif orientation "
       f"{next(o for o, t in EXIF_TRANSPOSES.items() if t == method)}")
      for method in Image.Transpose],
]

_PLACEMENT_REQUIREMENTS = ["CON-45", "CON-47", "NET-12", "VER-1", "VER-3", "VER-9"]


def placed_file(edit_image: Callable[[Image.Image], Image.Image], edit_placement: Callable[[Placement], Placement],
                container: bytes | None = None) -> tuple[bytes, bytes]:
    """The default scene's base edited in Pillow, with its container re-packed for the edit.

    Returns:
        The file and its container, written by ``Container.with_placement``.
    """
    base = np.asarray(Image.open(io.BytesIO(encoded("default").base)).convert("RGB"))
    edited = np.asarray(edit_image(Image.fromarray(base)))
    source = ctr.parse_container(container or default_container())
    placed = source.with_placement(edit_placement(source.placement)).to_bytes()
    return with_container(exact_base(edited), placed), placed


@vector
def placement_vectors() -> list[Case]:
    """Version 2.1: edited bases whose container records where they lie in the source (spec §4.7)."""
    cases = []
    for suffix, edit_image, edit_placement, requirements, description in PLACEMENT_EDITS:
        data, _ = placed_file(edit_image, edit_placement)
        cases.append(valid(f"valid-placement-{suffix}", data, _PLACEMENT_REQUIREMENTS + requirements, description,
                           "valid-gamma-sine-w16's base, decoded, edited in Pillow and saved by generate.exact_base; "
                           "its container re-packed by Container.with_placement", needs_version="2.1"))
    _, crop = placed_file(*PLACEMENT_EDITS[0][1:3])
    body = crop[:-4] + bytes(range(12))
    cases.append(valid("valid-placement-future-extension", on_placed(patch(body + crc(body), writer_version=0x0207)),
                       ["CON-35", "CON-45", "VER-5", "VER-9"],
                       "a 2.7 writer's placed container with 12 bytes after the placement record: skipped",
                       "valid-placement-crop with writer_version 0x0207 and 12 bytes (00..0B) before the CRC",
                       needs_version="2.1"))
    return cases


def on_placed(container: bytes) -> bytes:
    """valid-placement-crop's file carrying another container."""
    return with_container(placed_file(*PLACEMENT_EDITS[0][1:3])[0], container)


def _placement_field(container: bytes, offset: int, fmt: str, value: float) -> bytes:
    """Set a field of a container's placement record (offset within the record), CRC recomputed."""
    body = bytearray(container[:-4])
    struct.pack_into(fmt, body, len(body) - PLACEMENT_SIZE + offset, value)
    return bytes(body) + crc(bytes(body))


@vector
def placement_rejections() -> list[Case]:
    """Version 2.1's new rejections ([CON-43], [CON-44], [CON-34] after the record)."""
    _, c = placed_file(*PLACEMENT_EDITS[0][1:3])
    record_start = len(c) - 4 - PLACEMENT_SIZE
    plain = default_container()
    cases = [
        ("invalid-placement-missing", on_default(patch(plain, minimum_version=0x0201, writer_version=0x0201)),
         ["CON-43"], "minimum_version 2.1 and no bytes after the graph: the placement record is missing",
         "valid-gamma-sine-w16's container with minimum_version 0x0201"),
        ("invalid-placement-short", on_placed(c[:record_start + 40] + crc(c[:record_start + 40])), ["CON-43"],
         "minimum_version 2.1 and 40 bytes after the graph", "valid-placement-crop's record cut to 40 bytes"),
        ("invalid-placement-source-width-0", on_placed(_placement_field(c, 0, ">I", 0)), ["CON-44"],
         "placement source_width 0", "valid-placement-crop with source_width 0"),
        ("invalid-placement-source-height-65536", on_placed(_placement_field(c, 4, ">I", 65_536)), ["CON-44"],
         "placement source_height 65,536", "valid-placement-crop with source_height 65536"),
        ("invalid-placement-matrix-nan", on_placed(_placement_field(c, 8, ">d", float("nan"))), ["CON-44"],
         "placement matrix entry a is NaN", "valid-placement-crop with a = NaN"),
        ("invalid-placement-scale-too-large", on_placed(_placement_field(c, 40, ">d", 2.0**16 + 2.0**-36)),
         ["CON-44"], "placement matrix entry e just above 2^16", "valid-placement-crop with e = 2^16 + 2^-36"),
        ("invalid-placement-shift-too-large", on_placed(_placement_field(c, 24, ">d", -(2.0**32) - 1.0)),
         ["CON-44"], "placement matrix entry c below -2^32", "valid-placement-crop with c = -2^32 - 1"),
        ("invalid-placement-extra-bytes", on_placed(c[:-4] + bytes(4) + crc(c[:-4] + bytes(4))), ["CON-34"],
         "4 bytes after the placement record from a 2.1 writer", "valid-placement-crop with 4 zero bytes before "
         "the CRC"),
    ]
    return [reject(name, data, req, description, note + ", CRC recomputed") for name, data, req, description, note
            in cases]


@vector
def overflow_vector() -> Case:
    """Binary32 overflow to NaN (spec §7.3 note)."""
    source = encoded("gamma-relu-w32-srgb-p3").jpeg
    c = container_of(source)
    weights = weights_of(c)
    width = weights.hidden_width
    w3 = np.ones((width, 3), np.float32)
    w3[0] = 0.0
    arrays = {name: np.zeros_like(a) for name, a in weights.arrays().items()}
    arrays.update(b1=np.full(width, 3.0e38, np.float32), W2=np.ones((width, width), np.float32), W3=w3)
    graph = build_graph(MlpWeights(**arrays), "relu")
    return valid("valid-overflow-nan", with_container(source, with_graph(c, graph)), ["RES-20"],
                 "finite parameters whose binary32 evaluation overflows to NaN: every sample is 0 (in binary64 the "
                 "gamma map also gives 0)", "valid-gamma-relu-w32-srgb-p3 with Wc = Wy = Wx = 0, b1 = 3e38, W2 = 1, "
                 "b2 = 0, W3 = 1 except its first row 0, b3 = 0")


@vector
def no_gainmap_vectors() -> list[Case]:
    """Files without a GainMLP gain map a reader can see."""
    default = encoded("default")
    payload = ours(default.jpeg)[0].payload
    other = Segment(0xEF, b"GainMLP\x01" + payload[8:])
    lower = Segment(0xEF, b"gainmlp\x00" + payload[8:])
    after_eoi = default.base + raw_segment(0xEF, payload)
    note = "the base of valid-gamma-sine-w16"
    return [
        reject("nogainmap-plain-jpeg", default.base, ["CAR-9"], "a plain JPEG", note, result="no_gainmap"),
        reject("nogainmap-other-identifier", with_segments(default.jpeg, [other, lower]), ["CAR-6", "CAR-7", "CAR-9"],
               "the container in APP15 segments whose identifiers are 'GainMLP\\x01' and 'gainmlp\\x00'",
               "valid-gamma-sine-w16 with its segment's identifier changed", result="no_gainmap"),
        reject("nogainmap-segment-after-eoi", after_eoi, ["CAR-8", "CAR-9"],
               "the only GainMLP segment follows the image's EOI", note + " followed by its GainMLP segment",
               result="no_gainmap"),
    ]


@vector
def jpeg_vectors() -> list[Case]:
    """Malformed marker segments before the first SOS."""
    data = encoded("default").jpeg
    gain_start = parse_jpeg(data).segments[1].offset
    png = io.BytesIO()
    Image.open(io.BytesIO(data)).save(png, "PNG")
    length_one = bytearray(data)
    length_one[4:6] = b"\x00\x01"
    sos = sos_offset(data)
    return [
        reject("invalid-jpeg-not-jpeg", png.getvalue(), ["DEC-1"], "a PNG file", "the base as PNG"),
        reject("invalid-jpeg-truncated-segment", data[: gain_start + 200], ["DEC-1", "GEN-5"],
               "the file ends inside the GainMLP segment", "valid-gamma-sine-w16 cut 200 bytes into that segment"),
        reject("invalid-jpeg-segment-length-1", bytes(length_one), ["DEC-1"], "APP0 with length field 1",
               "valid-gamma-sine-w16 with APP0's length set to 1"),
        reject("invalid-jpeg-no-sos", data[:sos], ["DEC-1"], "the file ends before any SOS",
               "valid-gamma-sine-w16 cut at its SOS marker"),
        reject("invalid-jpeg-eoi-before-sos", insert_after_app0(data, b"\xff\xd9"), ["DEC-1"],
               "an EOI marker among the header segments", "valid-gamma-sine-w16 with FF D9 after APP0"),
        reject("invalid-jpeg-soi-before-sos", insert_after_app0(data, b"\xff\xd8"), ["DEC-1"],
               "a second SOI marker among the header segments", "valid-gamma-sine-w16 with FF D8 after APP0"),
        reject("invalid-jpeg-garbage-between-segments", insert_after_app0(data, b"\x00"), ["DEC-1"],
               "a byte other than FF where a marker is due", "valid-gamma-sine-w16 with 00 after APP0"),
    ]


@vector
def segment_vectors() -> list[Case]:
    """Broken carriage (spec §3.2)."""
    single = encoded("default").jpeg
    split = encoded("w128").jpeg
    chunk = ours(single)[0].payload[10:]
    first, second = (s.payload[10:] for s in ours(split))
    note_single = "valid-gamma-sine-w16 with its segment replaced by "
    note_split = "valid-w128-two-segments with its segments replaced by "
    huge = bytes(65_523)
    return [
        reject("invalid-segment-payload-9-bytes",
               with_segments(single, [*ours(single), Segment(0xEF, b"GainMLP\x00\x01")]), ["CAR-10"],
               "a GainMLP segment with a 9-byte payload beside a good one",
               note_single + "itself plus an APP15 segment holding 'GainMLP\\0' and one byte"),
        reject("invalid-segment-count-0", with_segments(single, [segment(1, 0, chunk)]), ["CAR-11"],
               "count 0", note_single + "one with count 0"),
        reject("invalid-segment-sequence-0", with_segments(single, [segment(0, 1, chunk)]), ["CAR-12"],
               "sequence 0", note_single + "one with sequence 0"),
        reject("invalid-segment-sequence-above-count", with_segments(single, [segment(2, 1, chunk)]), ["CAR-13"],
               "sequence 2 of count 1", note_single + "one with sequence 2, count 1"),
        reject("invalid-segment-counts-disagree", with_segments(split, [segment(1, 2, first), segment(2, 3, second)]),
               ["CAR-14"], "counts 2 and 3 in the two segments", note_split + "counts 2 and 3"),
        reject("invalid-segment-duplicate", with_segments(split, [segment(1, 2, first), segment(1, 2, first),
                                                                  segment(2, 2, second)]),
               ["CAR-15"], "sequence 1 twice (identical copies)", note_split + "1, 1, 2"),
        reject("invalid-segment-missing", with_segments(split, [segment(1, 2, first)]), ["CAR-16"],
               "the second of two segments is missing", note_split + "the first only"),
        reject("invalid-segments-over-bound", with_segments(single, [segment(n, 17, huge) for n in range(1, 18)]),
               ["CAR-18", "GEN-6"], "17 full chunks: 1,113,891 bytes, over the 1,052,672-byte bound",
               note_single + "17 segments of 65,523 zero bytes, count 17"),
    ]


@vector
def container_vectors() -> list[Case]:
    """Containers that break a check of spec §4 and §5."""
    c = default_container()
    cases = [
        ("invalid-container-11-bytes", c[:7] + crc(c[:7]), ["CON-2"], "an 11-byte container (magic, version, "
         "CRC)", "the first 7 bytes of the default container and their CRC"),
        ("invalid-container-bad-magic", patch(b"GMLQ" + c[4:]), ["CON-3", "CON-1"], "magic 'GMLQ'",
         "magic changed, CRC recomputed"),
        ("invalid-container-crc-header", c[:9] + b"\x01" + c[10:], ["CON-15"], "a header byte changed (residual_kind "
         "0 to 1) without updating the CRC", "byte 9 (residual_kind) set to 1, CRC kept"),
        ("invalid-container-crc-weights", flip(c, _weight_offset(c)), ["CON-15"], "one bit flipped in a weight",
         "bit 0 of the high byte of Wc[1, 12, 0] flipped (the weight is multiplied by 4 or 1/4), CRC kept"),
        ("invalid-container-crc-trailer", c[:-4] + bytes(4), ["CON-15"], "the CRC zeroed", "trailer set to 0"),
        ("invalid-version-0.1", patch(c, minimum_version=0x0001), ["VER-6"], "minimum_version 0.1 (major 0)",
         "minimum_version 0x0001, CRC recomputed"),
        ("invalid-container-length-past-end", patch(c, graph_length=len(graph_of(c)) + 1), ["CON-13", "GEN-5"],
         "graph_length one byte past the trailer", "graph_length + 1, CRC recomputed"),
        ("invalid-container-length-huge", patch(c, graph_length=0xFFFFFFFF), ["CON-13", "CON-21", "GEN-6"],
         "graph_length 0xFFFFFFFF", "graph_length set, CRC recomputed"),
        ("invalid-container-truncated-fields", c[:40] + crc(c[:40]), ["GEN-5"], "a 44-byte container: the "
         "version 1.0 fields run past its end", "the first 40 bytes of the default container and their CRC"),
        ("invalid-residual-kind-2", patch(c, residual_kind=2), ["CON-8"], "residual_kind 2", "CRC recomputed"),
        ("invalid-residual-domain-0", patch(c, residual_domain=0), ["CON-9"], "residual_domain 0", "CRC recomputed"),
        ("invalid-activation-2", patch(c, activation=2), ["CON-10"], "activation 2", "CRC recomputed"),
        ("invalid-base-transfer-0", patch(c, base_transfer=0), ["CON-11"], "base_transfer 0", "CRC recomputed"),
        ("invalid-base-transfer-3", patch(c, base_transfer=3), ["CON-11"], "base_transfer 3", "CRC recomputed"),
        ("invalid-base-primaries-4", patch(c, base_primaries=4), ["CON-12"], "base_primaries 4", "CRC recomputed"),
        ("invalid-headroom-denominator-0", patch(c, alternate_headroom_denominator=0), ["CON-16"],
         "alternate headroom denominator 0", "CRC recomputed"),
        ("invalid-headroom-alternate-below-base", patch(c, base_headroom_numerator=100_000), ["CON-18"],
         f"H_base 10 above H_alt ({_alternate_headroom(c):.2f})", "base headroom 100000/10000, CRC recomputed"),
        ("invalid-headroom-below-base-in-binary64",
         patch(c, base_headroom_numerator=16_777_217, base_headroom_denominator=16_777_216,
               alternate_headroom_numerator=1, alternate_headroom_denominator=1),
         ["CON-17", "CON-18"], "H_base = 16777217/16777216 > H_alt = 1 in binary64 (equal in binary32)",
         "headrooms set, CRC recomputed"),
        ("invalid-headroom-above-14", patch(c, alternate_headroom_numerator=140_001), ["CON-42"],
         "H_alt 14.0001", "alternate headroom 140001/10000, CRC recomputed"),
        ("invalid-hidden-width-24", with_graph(patch(c, hidden_width=24), _width_24_graph()), ["CON-22", "CON-33"],
         "hidden_width 24 with a graph that is canonical for W_h 24", "hidden_width 24 and a canonical graph of "
         "W_h 24 (weights 0.01), CRC recomputed"),
        ("invalid-frequencies-10", patch(c, frequencies=10), ["CON-23", "CON-33"], "frequencies 10",
         "CRC recomputed"),
        ("invalid-width-0", patch(c, width=0), ["CON-24"], "width 0", "CRC recomputed"),
        ("invalid-height-65536", patch(c, height=65_536), ["CON-24"], "height 65,536", "CRC recomputed"),
        ("invalid-input-mean-nan", patch(c, input_mean=float("nan")), ["CON-25"], "input_mean NaN", "CRC recomputed"),
        ("invalid-residual-mean-inf", patch(c, residual_mean=float("inf")), ["CON-25"], "residual_mean +inf",
         "CRC recomputed"),
        ("invalid-input-range-0", patch(c, input_range=0.0), ["CON-26"], "input_range 0", "CRC recomputed"),
        ("invalid-residual-range-negative", patch(c, residual_range=-1.0), ["CON-26"], "residual_range -1",
         "CRC recomputed"),
        ("invalid-epsilon-nan", patch(c, epsilon=float("nan")), ["CON-26"], "epsilon NaN", "CRC recomputed"),
        ("invalid-sdr-white-0", patch(c, sdr_white_luminance=0.0), ["CON-26"], "sdr_white_luminance 0",
         "CRC recomputed"),
        ("invalid-input-mean-above-1", patch(c, input_mean=float(np.nextafter(np.float32(1), np.float32(2)))),
         ["CON-27"], "input_mean just above 1", "CRC recomputed"),
        ("invalid-input-range-above-1", patch(c, input_range=1.5), ["CON-28"], "input_range 1.5", "CRC recomputed"),
        ("invalid-epsilon-1", patch(c, epsilon=1.0), ["CON-40"], "epsilon 1", "CRC recomputed"),
        ("invalid-sdr-white-above-10000", patch(c, sdr_white_luminance=10_000.001), ["CON-30"],
         "sdr_white_luminance 10,000.001", "CRC recomputed"),
        *_range_cases(c),
        ("invalid-extension-from-2.0-writer", c[:-4] + b"\x00" * 4 + crc(c[:-4] + b"\x00" * 4), ["CON-34"],
         "4 bytes between graph and trailer from a 2.0 writer", "4 zero bytes inserted before the CRC"),
        ("invalid-extension-from-1.7-writer", patch(c[:-4] + bytes(range(12)) + crc(c[:-4] + bytes(range(12))),
                                                    writer_version=0x0107), ["CON-34"],
         "12 bytes between graph and trailer from a '1.7' writer: skipped by 1.0 readers, damage to 2.0 ones "
         "(valid-future-minor-extension of version 1.0)", "writer_version 0x0107 and 12 bytes (00..0B) before the "
         "CRC, CRC recomputed"),
        ("invalid-crc-and-version-3.0", patch(c, fix_crc=False, minimum_version=0x0300), ["CON-32", "CON-15"],
         "a CRC mismatch and minimum_version 3.0: damage is reported, not the version", "CRC kept"),
        ("invalid-magic-and-version-3.0", patch(b"GMLX" + patch(c, minimum_version=0x0300)[4:]), ["CON-32", "CON-3"],
         "a wrong magic and minimum_version 3.0: damage is reported, not the version", "CRC recomputed"),
    ]
    built = [reject(name, on_default(data), req, description, "valid-gamma-sine-w16's container: " + note)
             for name, data, req, description, note in cases]
    unsupported = [
        ("unsupported-version-3.0", patch(c, minimum_version=0x0300), ["VER-3", "VER-4", "VER-12", "CON-32"],
         "minimum_version 3.0, an unknown major version"),
        ("unsupported-version-2.2", patch(c, minimum_version=0x0202, writer_version=0x0202), ["VER-3", "VER-4"],
         "minimum_version 2.2, a minor version this reader does not know"),
        ("unsupported-version-1.1", patch(c, minimum_version=0x0101, writer_version=0x0101), ["VER-4", "VER-14"],
         "minimum_version 1.1, a version that does not exist (1.0 was followed by 2.0)"),
    ]
    built += [reject(name, on_default(data), req, description, "valid-gamma-sine-w16's container, CRC recomputed",
                     result="unsupported_version") for name, data, req, description in unsupported]
    return built


def _range_cases(c: bytes) -> list[tuple[str, bytes, list[str], str, str]]:
    """Version 2.0's value ranges (spec §4.6): each field just outside its bound, and the issue's example."""
    below_one = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
    return [
        ("invalid-sdr-white-below-1", patch(c, sdr_white_luminance=below_one), ["CON-41"],
         "sdr_white_luminance 0.99999994 (the binary32 value below 1)", "CRC recomputed"),
        ("invalid-sdr-white-1e-45", patch(c, sdr_white_luminance=1e-45), ["CON-41"],
         "sdr_white_luminance 1e-45 (the smallest binary32 subnormal): in 1.0 a valid file whose linear "
         "rendition relative to SDR white is +inf", "CRC recomputed"),
        ("invalid-epsilon-too-small", patch(c, epsilon=float(np.nextafter(np.float32(2.0**-10), np.float32(0.0)))),
         ["CON-40"], "epsilon just below 2^-10", "CRC recomputed"),
        ("invalid-epsilon-above-half", patch(c, epsilon=float(np.nextafter(np.float32(0.5), np.float32(1.0)))),
         ["CON-40"], "epsilon just above 1/2", "CRC recomputed"),
        ("invalid-input-range-too-small",
         patch(c, input_range=float(np.nextafter(np.float32(2.0**-20), np.float32(0.0)))), ["CON-37"],
         "input_range just below 2^-20", "CRC recomputed"),
        ("invalid-residual-mean-too-large", patch(c, residual_mean=65_536.0078125), ["CON-38"],
         "residual_mean 65536.0078125 (the binary32 value above 2^16)", "CRC recomputed"),
        ("invalid-residual-mean-too-small", patch(c, residual_mean=-65_536.0078125), ["CON-38"],
         "residual_mean -65536.0078125", "CRC recomputed"),
        ("invalid-residual-range-too-large", patch(c, residual_range=131_072.015625), ["CON-39"],
         "residual_range 131072.015625 (the binary32 value above 2^17)", "CRC recomputed"),
        ("invalid-residual-range-too-small",
         patch(c, residual_range=float(np.nextafter(np.float32(2.0**-20), np.float32(0.0)))), ["CON-39"],
         "residual_range just below 2^-20", "CRC recomputed"),
    ]


def _alternate_headroom(container: bytes) -> float:
    """H_alt of a container."""
    return ctr.parse_container(container).metadata.alternate_headroom


def _weight_offset(container: bytes) -> int:
    """Offset in the container of the high byte of Wc[1, 12, 0], a little-endian float32."""
    raw = initializer(onnx.load_model_from_string(graph_of(container)), "Wc").raw_data
    width = len(raw) // (4 * 3 * 24)
    return container.index(raw) + 4 * ((24 + 12) * width) + 3


def _width_24_graph() -> bytes:
    """A canonical graph for W_h 24, which no container may declare ([CON-22])."""
    shapes = parameter_shapes(24)
    return build_graph(MlpWeights(**{name: np.full(shape, 0.01, np.float32) for name, shape in shapes.items()}),
                       "sine")


@vector
def oversized_graph() -> Case:
    """A graph over the 1 MiB bound, in a container that is not."""
    c = default_container()
    graph = graph_of(c) + bytes(ctr.MAX_GRAPH_BYTES + 1 - len(graph_of(c)))
    return reject("invalid-graph-over-1mib", on_default(with_graph(c, graph)), ["CON-21", "GEN-6"],
                  "graph_length 1,048,577 (container 1,048,649 bytes, 17 segments)",
                  "valid-gamma-sine-w16's graph padded with zero bytes to 1,048,577 bytes")


def _graph_edits(width: int) -> list[tuple[str, Callable[[onnx.ModelProto], None], list[str], str]]:
    """(name, edit, requirements, description) of every graph-contract vector."""

    def node_op(index: int, op: str, domain: str = "") -> Callable[[onnx.ModelProto], None]:
        def edit(model: onnx.ModelProto) -> None:
            model.graph.node[index].op_type = op
            model.graph.node[index].domain = domain
        return edit

    def set_dims(index: int, output: bool, dims: list) -> Callable[[onnx.ModelProto], None]:
        def edit(model: onnx.ModelProto) -> None:
            values = model.graph.output if output else model.graph.input
            elem = values[index].type.tensor_type.elem_type
            values[index].CopyFrom(helper.make_tensor_value_info(values[index].name, elem, dims))
        return edit

    def tensor(name: str, action: Callable[[onnx.TensorProto], None]) -> Callable[[onnx.ModelProto], None]:
        def edit(model: onnx.ModelProto) -> None:
            action(initializer(model, name))
        return edit

    def external(t: onnx.TensorProto) -> None:
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value="/etc/passwd")

    def typed(t: onnx.TensorProto) -> None:
        values = np.frombuffer(t.raw_data, "<f4")
        t.ClearField("raw_data")
        t.float_data.extend(values.tolist())

    def as_double(t: onnx.TensorProto) -> None:
        t.raw_data = np.frombuffer(t.raw_data, "<f4").astype("<f8").tobytes()
        t.data_type = TensorProto.DOUBLE

    def first_value(value: float) -> Callable[[onnx.TensorProto], None]:
        def edit(t: onnx.TensorProto) -> None:
            raw = bytearray(t.raw_data)
            raw[:4] = np.float32(value).tobytes()
            t.raw_data = bytes(raw)
        return edit

    def dims(values: list[int]) -> Callable[[onnx.TensorProto], None]:
        def edit(t: onnx.TensorProto) -> None:
            del t.dims[:]
            t.dims.extend(values)
        return edit

    def swap_inputs(model: onnx.ModelProto) -> None:
        row, col = (onnx.ValueInfoProto(), onnx.ValueInfoProto())
        row.CopyFrom(model.graph.input[1])
        col.CopyFrom(model.graph.input[2])
        model.graph.input[1].CopyFrom(col)
        model.graph.input[2].CopyFrom(row)

    def input_dtype(model: onnx.ModelProto) -> None:
        model.graph.input[3].type.tensor_type.elem_type = TensorProto.FLOAT

    def function(model: onnx.ModelProto) -> None:
        model.functions.append(helper.make_function("org.example", "f", ["x"], ["y"],
                                                    [helper.make_node("Identity", ["x"], ["y"])],
                                                    [helper.make_opsetid("", 17)]))

    def sparse(model: onnx.ModelProto) -> None:
        values = numpy_helper.from_array(np.ones(1, np.float32), "sparse")
        indices = numpy_helper.from_array(np.zeros(1, np.int64), "indices")
        model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))

    def extra_initializer(model: onnx.ModelProto) -> None:
        model.graph.initializer.append(numpy_helper.from_array(np.ones(4, np.float32), "extra"))

    def duplicate_initializer(model: onnx.ModelProto) -> None:
        model.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "b3"))

    def missing_initializer(model: onnx.ModelProto) -> None:
        tensors = [t for t in model.graph.initializer if t.name != "a1"]
        del model.graph.initializer[:]
        model.graph.initializer.extend(tensors)

    def attribute(model: onnx.ModelProto) -> None:
        model.graph.node[4].attribute[0].i = 1

    def extra_node(model: onnx.ModelProto) -> None:
        model.graph.node.append(helper.make_node("Identity", ["res"], ["copy"]))

    def opsets(entries: list[tuple[str, int]]) -> Callable[[onnx.ModelProto], None]:
        def edit(model: onnx.ModelProto) -> None:
            del model.opset_import[:]
            model.opset_import.extend(helper.make_opsetid(d, v) for d, v in entries)
        return edit

    def overload(model: onnx.ModelProto) -> None:
        model.graph.node[12].overload = "x"

    return [
        ("invalid-graph-ir-version-7", lambda m: setattr(m, "ir_version", 7), ["GRA-5"], "ir_version 7"),
        ("invalid-graph-opset-16", opsets([("", 16)]), ["GRA-6"], "opset_import [('', 16)]"),
        ("invalid-graph-custom-domain-opset", opsets([("", 17), ("com.microsoft", 1)]), ["GRA-6"],
         "a second opset_import entry, for the custom domain com.microsoft"),
        ("invalid-graph-function", function, ["GRA-7"], "the model defines a function"),
        ("invalid-graph-training-info", lambda m: m.training_info.add(), ["GRA-8"],
         "the model has a training_info entry"),
        ("invalid-graph-sparse-initializer", sparse, ["GRA-9"], "the graph has a sparse initializer"),
        ("invalid-graph-value-info",
         lambda m: m.graph.value_info.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, [768, width])),
         ["GRA-10"], "the graph has a value_info entry"),
        ("invalid-graph-quantization-annotation",
         lambda m: m.graph.quantization_annotation.add(tensor_name="res"), ["GRA-11"],
         "the graph has a quantization annotation"),
        ("invalid-graph-input-shape", set_dims(0, False, [256, 25]), ["GRA-12"], "input lv is [256, 25]"),
        ("invalid-graph-input-dim-param", set_dims(1, False, ["rows", 24]), ["GRA-12"],
         "input row is ['rows', 24] instead of ['h', 24]"),
        ("invalid-graph-input-dtype", input_dtype, ["GRA-12"], "input sdr is FLOAT, not UINT8"),
        ("invalid-graph-inputs-reordered", swap_inputs, ["GRA-12"], "inputs col and row swapped"),
        ("invalid-graph-output-shape", set_dims(0, True, ["h", "w", 4]), ["GRA-13"], "output res is [h, w, 4]"),
        ("invalid-graph-19-nodes", extra_node, ["GRA-14"], "a 19th node (Identity)"),
        ("invalid-graph-disallowed-operator", node_op(13, "Einsum"), ["GRA-15"],
         "node 13 is Einsum, an operator outside Table 6"),
        ("invalid-graph-custom-domain-node", node_op(17, "Add", "com.microsoft"), ["GRA-15"],
         "node 17 is in the custom domain com.microsoft"),
        ("invalid-graph-node-attribute", attribute, ["GRA-15"], "Gather with axis 1"),
        ("invalid-graph-activation-mismatch", lambda m: (node_op(12, "Relu")(m), node_op(15, "Relu")(m)),
         ["GRA-16"], "Relu nodes in a container whose activation is sine"),
        ("invalid-graph-extra-initializer", extra_initializer, ["GRA-17"], "a 13th initializer 'extra'"),
        ("invalid-graph-duplicate-initializer", duplicate_initializer, ["GRA-17"], "initializer b3 twice"),
        ("invalid-graph-missing-initializer", missing_initializer, ["GRA-17"], "initializer a1 missing"),
        ("invalid-graph-constant-changed", tensor("o", lambda t: t.CopyFrom(
            numpy_helper.from_array(np.array([0, 256, 513], np.int32), "o"))), ["GRA-18"], "o = [0, 256, 513]"),
        ("invalid-graph-external-data", tensor("Wc", external), ["GRA-24"],
         "Wc stored as external data at /etc/passwd"),
        ("invalid-graph-initializer-dtype", tensor("Wc", as_double), ["GRA-25"], "Wc stored as DOUBLE"),
        ("invalid-graph-initializer-dims", tensor("Wc", dims([3, width, 24])), ["GRA-26"],
         f"Wc with dims [3, {width}, 24] (same size, wrong shape)"),
        ("invalid-graph-oversized-tensor-dims", tensor("Wc", dims([3, 24, 1 << 40])), ["GRA-26", "GEN-6"],
         "Wc claims dims [3, 24, 2^40] over its real raw_data"),
        ("invalid-graph-raw-data-short", tensor("b3", lambda t: setattr(t, "raw_data", t.raw_data[:8])),
         ["GRA-27"], "b3 with 8 bytes of raw_data"),
        ("invalid-graph-oversized-raw-data", tensor("b3", lambda t: setattr(t, "raw_data", bytes(65_536))),
         ["GRA-27", "GEN-6"], "b3 with 65,536 bytes of raw_data instead of 12"),
        ("invalid-graph-typed-data", tensor("b3", typed), ["GRA-27"], "b3 in float_data, no raw_data"),
        ("invalid-graph-nan-parameter", tensor("W2", first_value(float("nan"))), ["GRA-28"], "W2[0, 0] is NaN"),
        ("invalid-graph-inf-parameter", tensor("b1", first_value(float("-inf"))), ["GRA-28"], "b1[0] is -inf"),
        ("invalid-graph-node-overload", overload, ["GRA-21"], "node 12 sets NodeProto.overload"),
        ("invalid-graph-model-configuration", lambda m: m.configuration.add(name="x", device=["cpu"]), ["GRA-21"],
         "the model sets ModelProto.configuration"),
    ]


@vector
def graph_contract_vectors() -> list[Case]:
    """Graphs that break the contract of spec §6.4 and §6.5."""
    c = default_container()
    note = "valid-gamma-sine-w16's graph edited with the onnx package: "
    common = ["GRA-3", "DEC-2", "CON-33"]
    cases = []
    for name, edit, requirements, description in _graph_edits(16):
        level = "should" if "GRA-21" in requirements else "must"
        cases.append(reject(name, on_default(edit_model(c, edit)), requirements + common, description,
                            note + description + "; container rebuilt with its CRC", level=level))
    unknown = graph_of(c) + b"\x98\x06\x01"  # field 99, varint 1
    cases += [
        reject("invalid-graph-not-protobuf", on_default(with_graph(c, b"not an ONNX model\x00" + b"\xff" * 16)),
               ["GRA-4"] + common, "graph bytes that are not a protobuf message",
               "valid-gamma-sine-w16 with the graph replaced by ASCII text and FF bytes"),
        reject("invalid-graph-unknown-field", on_default(with_graph(c, unknown)), ["GRA-21"] + common,
               "the model has an unknown field (number 99)", "valid-gamma-sine-w16's graph with bytes 98 06 01 "
               "appended", level="should"),
        reject("invalid-graph-width-mismatch", on_default(patch(c, hidden_width=32)), ["GRA-18", "GRA-26"] + common,
               "container hidden_width 32, graph built for 16", "valid-gamma-sine-w16 with hidden_width 32"),
    ]
    return cases


@vector
def base_vectors() -> list[Case]:
    """Base images a decoder must refuse."""
    default = encoded("default")
    c = default_container()
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 48), (10, 20, 30, 40)).save(cmyk, "JPEG", quality=100)
    layout = parse_jpeg(default.jpeg)
    no_dqt = JpegLayout(tuple(s for s in layout.segments if s.marker != 0xDB), layout.scan).to_bytes()
    return [
        reject("invalid-base-size-mismatch", on_default(patch(c, width=65)), ["DEC-6"],
               "the container says 65x48, the base is 64x48", "valid-gamma-sine-w16 with width 65"),
        reject("invalid-base-cmyk", with_container(cmyk.getvalue(), c), ["DEC-8"], "a four-component (CMYK) base",
               "Pillow CMYK JPEG 64x48 carrying valid-gamma-sine-w16's container"),
        reject("invalid-base-missing-quantization-tables", no_dqt, ["DEC-3"],
               "the base's DQT segments are missing, so no T.81 decoder can decode it",
               "valid-gamma-sine-w16 without its DQT segments"),
        reject("invalid-base-too-large", too_large(default.jpeg, c), ["DEC-7", "GEN-6", "CON-24"],
               "frame header and container say 65535x65535 (4.3 gigapixels); the scan is the 64x48 one",
               "valid-gamma-sine-w16 with the SOF and container sizes set to 65535"),
    ]


# ---- running the builders ----


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as the bytes of a float32 ``.npy`` file."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32))
    return buffer.getvalue()


def build(names: list[str] | None = None) -> list[Case]:
    """Run the builders, all or those producing the named vectors."""
    cases: list[Case] = []
    for builder in BUILDERS.values():
        result = builder()
        cases.extend(result if isinstance(result, list) else [result])
    if names is not None:
        unknown = set(names) - {c.name for c in cases}
        if unknown:
            raise SystemExit(f"generate: unknown vector(s): {sorted(unknown)}")
        cases = [c for c in cases if c.name in names]
    return cases
