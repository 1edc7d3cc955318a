"""The public encode/decode API: HDR in, one JPEG out, HDR back.

``encode`` places the HDR and the SDR base in the BT.2020 PQ domain, computes the residual
map, fits the network (``fitting``, imported only here and only when encoding), exports the graph,
wraps it in a container and inserts that into the base JPEG without re-encoding it.
``decode`` reads the container, checks the graph against the spec's contract, runs it with
ONNX Runtime over the decoded base and applies the residual.

Limits (README, section Limits): every image is at most :data:`MAX_PIXELS` pixels, checked from
its header before pixels are decoded; a JPEG is checked whole and with at most
:data:`~gainmap_format.jpeg.MAX_SCANS` scans before it is decoded; running out of memory is an
:class:`~gainmap_format.errors.InputError`; an HDR image without a finite positive sample is
refused.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from . import container as ctr
from .adaptation import iso21496_weight
from .atomic import write_bytes
from .colour import PRIMARIES, PrimariesLike, icc_profile, resolve_chromaticities
from .errors import ContainerError, InputError, JpegError, NoGainMapError
from .geometry import Placement
from .graph import build_graph, check_graph
from .initweights import load_initial_weights, warn_missing_init
from .jpeg import check_decodable, is_jpeg, parse_jpeg, replace_segments
from .limits import MAX_PIXELS as MAX_PIXELS
from .limits import check_pixel_count, map_rows, memory_guard
from .network import MlpWeights
from .options import EncodeOptions as EncodeOptions
from .options import FitOptions as FitOptions
from .options import checked_encode_options
from .residual import (
    CODE_VALUES,
    EPSILON,
    SDR_WHITE_LUMINANCE,
    Normalisation,
    hdr_to_pq,
    pq_to_linear,
    residual_map,
    sdr_to_pq,
)
from .runtime import Engine, render
from .tonemap import cap_peak, render_sdr

Source = bytes | str | os.PathLike[str]

#: cd/m² of HDR value 1.0 when the HDR file does not say (EXR without whiteLuminance, .hdr).
DEFAULT_WHITE_LUMINANCE = SDR_WHITE_LUMINANCE


@dataclass(frozen=True)
class EncodeResult:
    """What ``encode`` made.

    Attributes:
        jpeg: the whole output file.
        metadata: the container's metadata.
        metadata_bytes: bytes of every APP segment added, markers and headers included.
        fit_seconds: wall time of the fit.
        fit_loss: final training MSE on the normalised residual.
        device: the device the fit ran on: "cpu" or "cuda".
    """

    jpeg: bytes
    metadata: ctr.GainMapMetadata
    metadata_bytes: int
    fit_seconds: float
    fit_loss: float
    device: str


@dataclass(frozen=True)
class DecodedImage:
    """A decoded HDR rendition and what it came from.

    Attributes:
        pq: float32 (H, W, 3), BT.2020 PQ code values in [0, 1]; None when ``decode`` was told
            ``with_pq=False``.
        sdr: uint8 (H, W, 3), the base image as decoded.
        metadata: the container's metadata.
        relative: float32 (H, W, 3), linear BT.2020 with 1.0 at SDR reference white (also via
            :meth:`linear`); the decoder writes it directly, the other forms are derived.
    """

    pq: np.ndarray | None
    sdr: np.ndarray
    metadata: ctr.GainMapMetadata = field(repr=False)
    relative: np.ndarray = field(repr=False)

    @property
    def absolute(self) -> np.ndarray:
        """float32 (H, W, 3), linear BT.2020 in cd/m² (a new array)."""
        absolute: np.ndarray = self.relative * np.float32(self.metadata.sdr_white_luminance)
        return absolute

    def linear(self, reference: Literal["sdr-white", "absolute"] = "sdr-white") -> np.ndarray:
        """Linear BT.2020 light.

        Args:
            reference: "sdr-white" for 1.0 = SDR reference white (the decoded array itself);
                "absolute" for cd/m² (a new array).

        Returns:
            float32 (H, W, 3).
        """
        if reference == "absolute":
            return self.absolute
        if reference == "sdr-white":
            return self.relative
        raise InputError(f"reference {reference!r} is not 'sdr-white' or 'absolute'")


def _read_source(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc


def _source_name(source: Source) -> str:
    """How messages name ``source``: its path, or "the JPEG" for bytes."""
    return "the JPEG" if isinstance(source, bytes | bytearray | memoryview) else os.fspath(source)


def check_base_size(size: tuple[int, int], made_for: tuple[int, int], where: str) -> None:
    """Refuse a base image whose size is not the one its gain map was made for.

    The one check of this fault, for :func:`decode` and for the Pillow plugin alike.

    Args:
        size: (width, height) of the base image, from its frame header.
        made_for: (width, height) recorded in the container.
        where: the file or image, for the message.

    Raises:
        ContainerError: the sizes differ.
    """
    if size != made_for:
        raise ContainerError(
            f"{where}: the base image is {size[0]}x{size[1]} but the gain map was made for {made_for[0]}x{made_for[1]}"
        )


def decode_base(
    jpeg: bytes, expected_size: tuple[int, int] | None = None, where: str = "JPEG base image"
) -> np.ndarray:
    """Decode a JPEG's primary image to 8-bit RGB with Pillow.

    Nothing is decoded until the file has passed :func:`~gainmap_format.jpeg.check_decodable`
    (whole, at most :data:`~gainmap_format.jpeg.MAX_SCANS` scans) and its frame header's size
    has been checked.

    Args:
        jpeg: the whole file.
        expected_size: (width, height) the container was made for; checked against the frame
            header before any pixel is decoded, so a file cannot make us decode a huge base
            only to reject it.
        where: the file or image, for messages.

    Returns:
        uint8 (H, W, 3).

    Raises:
        JpegError: malformed, truncated, too many scans, undecodable, or not greyscale or YCbCr.
        InputError: larger than :data:`MAX_PIXELS`, or too large for the memory available.
        ContainerError: the size differs from ``expected_size``.
    """
    check_decodable(jpeg, where)
    try:
        # Pillow's JPEG class directly, not Image.open: the Pillow plugin must not run here.
        with JpegImagePlugin.JpegImageFile(io.BytesIO(jpeg)) as image, memory_guard(where):
            if expected_size is not None:
                check_base_size(image.size, expected_size, where)
            width, height = image.size
            check_pixel_count(width, height, where)
            # CMYK and YCCK have no single standard conversion to RGB, so decoders would differ.
            if image.mode not in ("RGB", "L"):
                raise JpegError(
                    f"{where}: the image has mode {image.mode}; only greyscale and colour (YCbCr) are supported"
                )
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise JpegError(f"{where}: cannot decode: {exc}") from exc


def _encode_base(code: np.ndarray, quality: int, profile: bytes | None = None) -> bytes:
    """Encode the base at 4:4:4 (chroma subsampling error would become HDR colour error), with ``profile`` if given."""
    buffer = io.BytesIO()
    extra = {} if profile is None else {"icc_profile": profile}
    Image.fromarray(code, "RGB").save(buffer, "JPEG", quality=quality, subsampling=0, optimize=True, **extra)
    return buffer.getvalue()


def render_base(hdr_pq: np.ndarray, options: EncodeOptions) -> bytes:
    """The base JPEG this library renders from the HDR: tone-mapped, with an ICC profile of its pixels.

    Args:
        hdr_pq: float32 (H, W, 3), the HDR in BT.2020 PQ.
        options: the tone map, exposure, quality, primaries and transfer (None: sRGB's curve).

    Returns:
        The JPEG, at ``options.quality`` and 4:4:4.
    """
    transfer = options.for_base(rendered=True).base_transfer
    code = render_sdr(
        hdr_pq, options.tone_map, exposure=options.exposure, transfer=transfer, primaries=options.sdr_primaries
    )
    return _encode_base(code, options.quality, icc_profile(options.sdr_primaries, transfer))


def prepare_base(
    sdr: bytes | np.ndarray | None, hdr_pq: np.ndarray, quality: int, options: EncodeOptions | None = None
) -> tuple[bytes, np.ndarray]:
    """The base JPEG and its decoded pixels, from whatever SDR the caller gave.

    Args:
        sdr: JPEG bytes (kept byte for byte, its ICC profile with them), other image bytes or
            a uint8 (H, W, 3) array (encoded at ``quality``, 4:4:4), or None for a base
            rendered from ``hdr_pq`` (:func:`render_base`).
        hdr_pq: float32 (H, W, 3), the HDR in BT.2020 PQ; the base must have its size.
        quality: JPEG quality for a base encoded here.
        options: how a base is rendered when ``sdr`` is None (its quality is ``quality``);
            None for the defaults.

    Returns:
        (the base JPEG, uint8 (H, W, 3) its pixels as decoded).

    Raises:
        InputError: unreadable SDR, or sizes differ. JpegError: a malformed SDR JPEG.
    """
    if sdr is None:
        options = dataclasses.replace(checked_encode_options(options), quality=quality)
        base = render_base(hdr_pq, options)
    elif isinstance(sdr, np.ndarray):
        if sdr.dtype != np.uint8 or sdr.ndim != 3 or sdr.shape[2] != 3:
            raise InputError(f"SDR array must be uint8 (H, W, 3), got {sdr.dtype} {sdr.shape}")
        base = _encode_base(sdr, quality)
    elif is_jpeg(sdr):
        base = sdr
    else:
        base = _encode_base(_decode_other_sdr(sdr), quality)
    code = decode_base(base)
    if code.shape != hdr_pq.shape:
        raise InputError(
            f"SDR image is {code.shape[1]}x{code.shape[0]} but the HDR image is "
            f"{hdr_pq.shape[1]}x{hdr_pq.shape[0]}; they must be the same size"
        )
    return base, code


def _decode_other_sdr(data: bytes) -> np.ndarray:
    """Decode a non-JPEG SDR image (PNG, TIFF, ...) to uint8 (H, W, 3), its size checked first.

    JPEGs never come here (:func:`prepare_base` keeps them as the base), so every JPEG this
    library decodes passes :func:`decode_base` and its checks.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 MP on; MAX_PIXELS, checked next, is this library's bound.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image, memory_guard("SDR image"):
            width, height = image.size
            check_pixel_count(width, height, "SDR image")
            if image.mode in ("I;16", "I;16B", "I", "F"):
                raise InputError(f"SDR image has {image.mode} samples; an 8-bit image is needed")
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise InputError("cannot read the SDR image: not an image format Pillow reads (PNG, TIFF, BMP, ...)") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read the SDR image: {exc}") from exc


def _check_hdr(pixels: np.ndarray) -> None:
    """Refuse HDR pixels that are not a finite float (H, W, 3) image holding some light.

    Raises:
        InputError: wrong type or shape, over :data:`MAX_PIXELS`, a NaN or infinite sample,
            or no positive sample (an all-black or all-negative image has no HDR to encode).
    """
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError(f"HDR pixels must be an array (H, W, 3), got {getattr(pixels, 'shape', type(pixels))}")
    if not np.issubdtype(pixels.dtype, np.floating):
        raise InputError(f"HDR pixels must be floating point linear light, got {pixels.dtype}")
    check_pixel_count(pixels.shape[1], pixels.shape[0], "HDR image")
    if not np.all(np.isfinite(pixels)):
        raise InputError("HDR pixels contain NaN or infinite values")
    if not pixels.max() > 0:
        raise InputError(
            f"HDR pixels hold no positive value (the largest is {pixels.max()}): the image holds no light"
        )


def _headroom(hdr_pq: np.ndarray, sdr_white: float) -> float:
    """log2 of the HDR peak over SDR white, never below 0 (spec §4.5)."""
    peak = float(pq_to_linear(np.max(hdr_pq), 1.0))
    return max(0.0, math.log2(max(peak, 1e-6) / sdr_white))


@dataclass(frozen=True)
class FitInputs:
    """What the network is fitted to, prepared from an HDR image and its SDR base.

    Attributes:
        base: the base JPEG, the bytes the output file is built on.
        code: uint8 (H, W, 3), the base's code values as a decoder will see them.
        hdr_pq: float32 (H, W, 3), the HDR in BT.2020 PQ code values.
        target: float32 (H, W, 3), the normalised residual map, about [-1, 1].
        input_norm: normalisation of code / 255, recorded in the container.
        residual_norm: normalisation of the residual map, recorded in the container.
        sdr_white_luminance: cd/m² at which base white was placed in the PQ domain, recorded in
            the container.
    """

    base: bytes
    code: np.ndarray
    hdr_pq: np.ndarray
    target: np.ndarray
    input_norm: Normalisation
    residual_norm: Normalisation
    sdr_white_luminance: float = SDR_WHITE_LUMINANCE


def prepare_fit_inputs(
    hdr: np.ndarray,
    *,
    chromaticities: PrimariesLike = "bt709",
    white_luminance: float = DEFAULT_WHITE_LUMINANCE,
    sdr: bytes | np.ndarray | None = None,
    options: EncodeOptions | None = None,
) -> FitInputs:
    """Everything ``encode`` does before fitting: the base, the residual map and its normalisation.

    Meta-initialisation prepares its synthetic images with this too, so that it fits exactly
    what ``encode`` will later fit.

    Args:
        hdr: float (H, W, 3), linear light in ``chromaticities``; 1.0 is ``white_luminance``.
        chromaticities: primaries and white point of ``hdr``: a name ("bt709", "display-p3",
            "bt2020") or the 8 numbers (rx, ry, gx, gy, bx, by, wx, wy).
        white_luminance: cd/m² of HDR value 1.0.
        sdr: the base, as for :func:`encode`; None for the default tone mapping of ``hdr``.
        options: the residual kind, the base's transfer, primaries and JPEG quality.

    Returns:
        The fit's inputs and the base they came from.

    Raises:
        InputError: bad pixels, sizes or options; too large for the memory available.
        JpegError: the SDR JPEG is malformed.
    """
    options = checked_encode_options(options).for_base(rendered=sdr is None)
    primaries = resolve_chromaticities(chromaticities)
    _check_hdr(hdr)
    with memory_guard("HDR image"):
        hdr_pq = map_rows(
            lambda rows: hdr_to_pq(rows, primaries, white_luminance), np.empty(hdr.shape, np.float32), hdr
        )
        base, code = prepare_base(sdr, hdr_pq, options.quality, options)
        if options.max_headroom is not None:
            hdr_pq = cap_peak(hdr_pq, SDR_WHITE_LUMINANCE * 2.0**options.max_headroom)
        return fit_inputs(base, code, hdr_pq, options)


def fit_inputs(
    base: bytes,
    code: np.ndarray,
    hdr_pq: np.ndarray,
    options: EncodeOptions,
    sdr_white_luminance: float = SDR_WHITE_LUMINANCE,
) -> FitInputs:
    """The residual map and normalisations that fit ``hdr_pq`` from the base pixels ``code``.

    :func:`prepare_fit_inputs` passes the base JPEG's own decoded pixels; the evaluation's
    paper protocol passes the lossless SDR instead, with the JPEG only carrying the result.

    Args:
        base: the base JPEG the output file is built on.
        code: uint8 (H, W, 3), the base pixels the network will be evaluated on.
        hdr_pq: float32 (H, W, 3), the HDR in BT.2020 PQ, the size of ``code``.
        options: the residual kind and the base's transfer and primaries.
        sdr_white_luminance: cd/m² at which base white is placed in the PQ domain; the
            result carries it to the container.

    Returns:
        The fit's inputs.
    """
    if code.shape != hdr_pq.shape or code.dtype != np.uint8:
        raise InputError(f"base pixels {code.dtype} {code.shape} do not match the HDR image {hdr_pq.shape}")

    def residual_rows(hdr_rows: np.ndarray, code_rows: np.ndarray) -> np.ndarray:
        sdr_pq = sdr_to_pq(code_rows, options.base_transfer, options.sdr_primaries, sdr_white_luminance)
        residual: np.ndarray = residual_map(hdr_rows, sdr_pq, options.residual, EPSILON)
        return residual

    # One image-sized float32 array besides the inputs: the residual, normalised in place.
    input_norm = _input_normalisation(code)
    residual = map_rows(residual_rows, np.empty(hdr_pq.shape, np.float32), hdr_pq, code)
    residual_norm = Normalisation.of(residual)
    target = map_rows(residual_norm.apply, residual, residual)
    return FitInputs(base, code, hdr_pq, target, input_norm, residual_norm, sdr_white_luminance)


def _input_normalisation(code: np.ndarray) -> Normalisation:
    """``Normalisation.of(code / 255)`` of uint8 (H, W, 3) in float32, from a histogram of ``code`` (no copy of it)."""
    return Normalisation.of_levels(code, CODE_VALUES)


def _initial_weights(options: EncodeOptions) -> MlpWeights | None:
    """The weights the fit starts from; None for the seeded random initialisation."""
    if options.init == "random":
        return None
    fit = options.fit
    weights = load_initial_weights(options.residual, fit.activation, fit.hidden_width)
    if weights is None:
        warn_missing_init(options.residual, fit.activation, fit.hidden_width)
    return weights


def encode(
    hdr: np.ndarray,
    *,
    chromaticities: PrimariesLike = "bt709",
    white_luminance: float = DEFAULT_WHITE_LUMINANCE,
    sdr: bytes | np.ndarray | None = None,
    options: EncodeOptions | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> EncodeResult:
    """Encode an HDR image as one JPEG: an SDR base plus the network in APP15 segments.

    Args:
        hdr: float (H, W, 3), linear light in ``chromaticities``; 1.0 is ``white_luminance``.
        chromaticities: primaries and white point of ``hdr``: a name ("bt709", "display-p3",
            "bt2020") or the 8 numbers (rx, ry, gx, gy, bx, by, wx, wy).
        white_luminance: cd/m² of HDR value 1.0.
        sdr: the base: JPEG bytes (kept byte for byte), other image bytes such as PNG or a
            uint8 (H, W, 3) array (encoded at ``options.quality``), or None for the default
            tone mapping of ``hdr``.
        options: fitting and format options.
        progress: called as progress(step, total, loss) during the fit.

    Returns:
        The file and what went into it.

    Raises:
        InputError: bad pixels, sizes or options; a damaged shipped initialisation file.
        JpegError: the SDR JPEG is malformed.

    Warns:
        MissingInitWarning: ``options.init`` is "meta" but no initialisation ships for this
            residual, activation and width; the fit starts from random weights.
    """
    options = checked_encode_options(options).for_base(rendered=sdr is None)
    inputs = prepare_fit_inputs(
        hdr, chromaticities=chromaticities, white_luminance=white_luminance, sdr=sdr, options=options
    )
    with memory_guard("HDR image"):
        return encode_prepared(inputs, options, progress)


def encode_prepared(
    inputs: FitInputs,
    options: EncodeOptions,
    progress: Callable[[int, int, float], None] | None = None,
) -> EncodeResult:
    """Fit the network to prepared inputs and insert it into their base JPEG (the rest of :func:`encode`).

    Args:
        inputs: from :func:`prepare_fit_inputs`, or :func:`fit_inputs` for a base whose pixels
            are given (the evaluation's lossless protocol).
        options: fitting and format options; the residual kind must be the one ``inputs`` has.
        progress: called as progress(step, total, loss) during the fit.

    Returns:
        The file and what went into it.

    Raises:
        JpegError: the base JPEG is malformed. InputError: a damaged shipped initialisation file.

    Warns:
        MissingInitWarning: as for :func:`encode`.
    """
    from .fitting import fit

    layout = parse_jpeg(inputs.base)
    input_norm, residual_norm = inputs.input_norm, inputs.residual_norm
    result = fit(
        inputs.code, inputs.target, input_norm.mean, input_norm.range, options.fit,
        init=_initial_weights(options), progress=progress,
    )
    metadata = ctr.GainMapMetadata(
        residual=options.residual,
        activation=options.fit.activation,
        hidden_width=options.fit.hidden_width,
        width=inputs.code.shape[1],
        height=inputs.code.shape[0],
        base_transfer=options.base_transfer,
        base_primaries=options.sdr_primaries,
        input_mean=input_norm.mean,
        input_range=input_norm.range,
        residual_mean=residual_norm.mean,
        residual_range=residual_norm.range,
        epsilon=EPSILON,
        sdr_white_luminance=inputs.sdr_white_luminance,
        alternate_headroom=_headroom(inputs.hdr_pq, inputs.sdr_white_luminance),
    )
    container = ctr.build_container(metadata, build_graph(result.weights, options.fit.activation))
    segments = ctr.to_segments(container)
    output = replace_segments(layout, segments, ctr.is_our_segment).to_bytes()
    added = sum(len(s.encode()) for s in segments)
    return EncodeResult(output, metadata, added, result.seconds, result.loss, result.device)


def read_container(source: Source) -> ctr.Container:
    """Read and validate the container of a gain-map JPEG (graph bytes not yet checked).

    Raises:
        JpegError: not a JPEG, or malformed.
        NoGainMapError: a valid JPEG without our segments.
        ContainerError: damaged container; UnsupportedVersionError: newer format.
    """
    data = _read_source(source)
    carried = ctr.from_layout(parse_jpeg(data))
    if carried is None:
        raise NoGainMapError("the JPEG holds no GainMLP gain map (no APP15 'GainMLP' segment)")
    return ctr.parse_container(carried)


def decode(
    source: Source,
    *,
    display_headroom: float | None = None,
    base_pixels: np.ndarray | None = None,
    engine: Engine = "auto",
    with_pq: bool = True,
) -> DecodedImage:
    """Decode the HDR rendition of a gain-map JPEG.

    Args:
        source: the file's bytes or path.
        display_headroom: log2 of the display's peak over SDR white; None (the default)
            gives the full rendition, the file's own maximum headroom. Smaller headrooms
            are rendered with ISO 21496-1's weighting (spec §7.5).
        base_pixels: uint8 (H, W, 3) to apply the gain map to instead of the file's own base
            image, for an evaluation whose base was never a JPEG (the paper's lossless
            protocol); None, the default, decodes the file's base.
        engine: "auto" (the fused C kernel when built), "native" or "onnxruntime" (the graph);
            they agree to float32 rounding.
        with_pq: also keep the PQ code values; False (for a caller that wants linear light
            only) saves an image-sized array.

    Returns:
        The HDR image in BT.2020 PQ with the base it came from.

    Raises:
        JpegError, NoGainMapError, ContainerError, UnsupportedVersionError,
        GraphContractError: as their names say (a base whose size differs from the
        container's is a ContainerError; a truncated base, or one with more than
        :data:`~gainmap_format.jpeg.MAX_SCANS` scans, is a JpegError). InputError:
        ``base_pixels`` of the wrong size; an image too large for the memory available.
    """
    with memory_guard(_source_name(source)):
        return _decode(source, display_headroom, base_pixels, engine, with_pq)


def _decode(
    source: Source, display_headroom: float | None, base_pixels: np.ndarray | None, engine: Engine, with_pq: bool
) -> DecodedImage:
    """:func:`decode`, without its translation of allocation failures."""
    data = _read_source(source)
    layout = parse_jpeg(data)
    carried = ctr.from_layout(layout)
    if carried is None:
        raise NoGainMapError("the JPEG holds no GainMLP gain map (no APP15 'GainMLP' segment)")
    container = ctr.parse_container(carried)
    metadata = container.metadata
    weights = check_graph(container.graph, metadata.activation, metadata.hidden_width)
    if base_pixels is None:
        where = f"{_source_name(source)}: JPEG base image"
        code = decode_base(data, expected_size=(metadata.width, metadata.height), where=where)
    else:
        code = _checked_base_pixels(base_pixels, container.placement)
    return _render_decoded(code, weights, container.metadata, container.placement, display_headroom, engine, with_pq)


def _checked_base_pixels(base: np.ndarray, placement: Placement) -> np.ndarray:
    """``base`` when it is uint8 (H, W, 3) of the placement's size; an InputError otherwise."""
    width, height = placement.size
    if base.dtype != np.uint8 or base.shape != (height, width, 3):
        raise InputError(
            f"base pixels {base.dtype} {base.shape} are not uint8 ({height}, {width}, 3), the size the gain map is "
            "placed on"
        )
    return base


def _render_decoded(
    code: np.ndarray,
    weights: MlpWeights,
    metadata: ctr.GainMapMetadata,
    placement: Placement,
    display_headroom: float | None,
    engine: Engine,
    with_pq: bool,
) -> DecodedImage:
    """Decode steps 7 to 13 of spec §8.1 on checked inputs; ``placement`` is the base's (spec §4.7)."""
    weight = 1.0
    if display_headroom is not None:
        weight = iso21496_weight(display_headroom, metadata.base_headroom, metadata.alternate_headroom)
    width, height = placement.size
    metadata = dataclasses.replace(metadata, width=width, height=height)
    rendition = render(
        weights, metadata, code, weight, engine, linear_unit=metadata.sdr_white_luminance, with_pq=with_pq,
        placement=placement,
    )
    return DecodedImage(rendition.pq, code, metadata, rendition.linear)


def decode_pixels(
    base: np.ndarray,
    container: ctr.Container,
    *,
    placement: Placement | None = None,
    display_headroom: float | None = None,
    engine: Engine = "auto",
    with_pq: bool = True,
) -> DecodedImage:
    """Decode the HDR rendition of base pixels that a container's network applies to, edited or not.

    This is :func:`decode` for a base held in memory: an image edited in Pillow (cropped, resized,
    rotated) decodes with the container's network and the edit's placement, without a refit.

    Args:
        base: uint8 (H, W, 3), the base image's code values.
        container: the gain map, as :func:`read_container` or ``Container.with_placement`` give it.
        placement: where ``base`` lies in the image the network was fitted on, of size (W, H);
            None takes the container's own (the identity for an unedited file).
        display_headroom: as for :func:`decode`.
        engine: as for :func:`decode`.
        with_pq: as for :func:`decode`.

    Returns:
        The HDR rendition of ``base``; its ``metadata`` has ``base``'s width and height.

    Raises:
        GraphContractError: the container's graph breaks the contract. ContainerError: a
            placement fitted on another image than the container's network. InputError: ``base``
            not uint8 (H, W, 3) of the placement's size; an image too large for the memory available.
    """
    placement = placement or container.placement
    if placement.source_size != container.placement.source_size:
        raise ContainerError(
            f"placement for a network fitted on {placement.source_size}, the container's was fitted on "
            f"{container.placement.source_size}"
        )
    code = _checked_base_pixels(base, placement)
    metadata = container.metadata
    with memory_guard("base pixels"):
        weights = check_graph(container.graph, metadata.activation, metadata.hidden_width)
        return _render_decoded(code, weights, metadata, placement, display_headroom, engine, with_pq)


def encode_file(
    hdr_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    sdr_path: str | os.PathLike[str] | None = None,
    white_luminance: float | None = None,
    options: EncodeOptions | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> EncodeResult:
    """Encode an OpenEXR or Radiance file to a gain-map JPEG, written atomically.

    Args:
        hdr_path: the HDR image; its chromaticities and whiteLuminance are honoured.
        output_path: where to write the JPEG; an existing file is replaced only on success.
        sdr_path: an SDR JPEG (kept byte for byte) or PNG to use as the base.
        white_luminance: cd/m² of HDR value 1.0 when the file does not say; default 100.
        options: see :class:`EncodeOptions`.
        progress: fit progress callback.
    """
    result = encode_hdr_file(
        hdr_path, sdr_path=sdr_path, white_luminance=white_luminance, options=options, progress=progress
    )
    write_bytes(output_path, result.jpeg)
    return result


def encode_hdr_file(
    hdr_path: str | os.PathLike[str],
    *,
    sdr_path: str | os.PathLike[str] | None = None,
    white_luminance: float | None = None,
    options: EncodeOptions | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> EncodeResult:
    """Encode an OpenEXR or Radiance file to a gain-map JPEG, in memory (:func:`encode_file` without the write).

    Args:
        hdr_path: the HDR image; its chromaticities and whiteLuminance are honoured.
        sdr_path: an SDR JPEG (kept byte for byte) or PNG to use as the base.
        white_luminance: cd/m² of HDR value 1.0 when the file does not say; default 100.
        options: see :class:`EncodeOptions`.
        progress: fit progress callback.
    """
    from .hdrio import read_hdr

    image = read_hdr(hdr_path)
    luminance = image.white_luminance or white_luminance or DEFAULT_WHITE_LUMINANCE
    sdr = _read_source(sdr_path) if sdr_path is not None else None
    return encode(
        image.pixels,
        chromaticities=image.chromaticities,
        white_luminance=luminance,
        sdr=sdr,
        options=options,
        progress=progress,
    )


def decode_file(source: Source, output_path: str | os.PathLike[str], *, half: bool = False) -> DecodedImage:
    """Decode a gain-map JPEG to an OpenEXR file in absolute cd/m² (whiteLuminance 1), BT.2020."""
    from .hdrio import write_exr

    decoded = decode(source)
    write_exr(
        output_path,
        decoded.linear("absolute"),
        chromaticities=PRIMARIES["bt2020"],
        white_luminance=1.0,
        half=half,
    )
    return decoded
