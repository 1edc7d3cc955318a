"""Read and write the linear HDR images that the encoder starts from.

Two file formats:

- OpenEXR, through the ``OpenEXR`` package. RGB(A) files, luminance/chroma files (``Y``, ``RY``,
  ``BY``, converted the way OpenEXR's own ``RgbaInputFile`` does), luminance-only files, scanline,
  tiled and multi-resolution files (the full-resolution level is read).
- Radiance RGBE (``.hdr``, ``.pic``), with a reader and writer of our own in numpy.

:func:`read_hdr` recognises the format by the file's first bytes, never by its name, and returns an
:class:`HdrImage`: float32 linear-light RGB plus the chromaticities of those RGB values. Every
problem with a file or an argument is an :class:`~gainmap_format.errors.InputError` that names the
file and says what was wrong and where.

Limits (README, section Limits): an image is at most :data:`MAX_PIXELS` pixels, checked from the
header before any pixel is read; a failed allocation is an InputError. An image must hold light:
one with no finite positive sample is refused. NaN and infinite samples in an otherwise usable
image are repaired, with an :class:`~gainmap_format.errors.InputRepairWarning` that counts them.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import OpenEXR

from .atomic import atomic_output, write_bytes
from .colour import PRIMARIES, Chromaticities, luminance_weights
from .errors import InputError, InputRepairWarning
from .limits import MAX_PIXELS as MAX_PIXELS
from .limits import check_pixel_count, map_rows, memory_guard

REC709_CHROMATICITIES: Chromaticities = PRIMARIES["bt709"]
"""ITU-R BT.709 primaries with a D65 white: OpenEXR's documented default, and ours for Radiance."""

XYZ_CHROMATICITIES: Chromaticities = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1 / 3, 1 / 3)
"""The "primaries" of CIE XYZ itself, as used for Radiance ``32-bit_rle_xyze`` files."""

_EXR_MAGIC = b"\x76\x2f\x31\x01"
_RADIANCE_MAGIC = b"#?"
_MAX_RADIANCE_HEADER = 64 * 1024

# A new-style RLE scanline starts with the bytes 2, 2 and its length in 15 bits; Radiance only
# writes (and only looks for) them when the length is in this range.
_RLE_LENGTHS = range(8, 0x8000)

# In flat and old-style RLE scanlines, a pixel whose mantissas are 1, 1, 1 is a run marker.
_RUN_MARKER = b"\x01\x01\x01"

# Largest value an RGBE pixel can hold: mantissa 255 with the largest exponent, decoded the way
# Radiance's colr_color() decodes it.
_RGBE_MAX = 255.5 * 2.0**119

# The value of one mantissa step for each exponent byte; exponent 0 means black.
_RGBE_STEPS = np.concatenate([[0.0], np.ldexp(1.0, np.arange(1, 256) - 136)]).astype(np.float32)

# OpenEXR's ImfRgbaYca.cpp: the 14 taps that interpolate a missing chroma sample between its
# neighbours in a 2x subsampled channel (reconstructChromaHoriz / reconstructChromaVert).
_CHROMA_TAPS = np.array(
    [0.002128, -0.007540, 0.019597, -0.043159, 0.087929, -0.186077, 0.627123]
    + [0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128],
    dtype=np.float32,
)
# Sample offsets of those taps, for the pixel between samples m and m + 1.
_CHROMA_TAP_OFFSETS = np.arange(-6, 8)


@dataclass(frozen=True)
class HdrImage:
    """A linear-light HDR image as read from a file.

    Attributes:
        pixels: float32 array of shape (H, W, 3), C-contiguous, linear light in the units of the
            file (relative; absolute only when ``white_luminance`` says so). Always finite: when
            read from a file, NaN becomes 0, +inf the largest finite value in the image and -inf
            the smallest, with an :class:`~gainmap_format.errors.InputRepairWarning`. Negative
            values (out of gamut, or noise in a camera file) are kept.
        chromaticities: CIE 1931 xy of the primaries and white of ``pixels`` (see
            :data:`Chromaticities`). When the file does not say, :data:`REC709_CHROMATICITIES`.
        white_luminance: luminance in cd/m² of the RGB value (1, 1, 1) when the file says (the EXR
            ``whiteLuminance`` attribute); None otherwise.
        source: the format the image was read from: ``"exr"`` or ``"radiance"``.

    """

    pixels: np.ndarray
    chromaticities: Chromaticities
    white_luminance: float | None
    source: str

    def __post_init__(self) -> None:
        """Check the pixel array, so that every HdrImage honours the documented contract.

        Raises:
            InputError: ``pixels`` is not a finite, C-contiguous float32 (H, W, 3) array, or
                ``chromaticities`` does not have 8 values.

        """
        pixels = self.pixels
        if (
            not isinstance(pixels, np.ndarray)
            or pixels.dtype != np.float32
            or pixels.ndim != 3
            or pixels.shape[2] != 3
            or 0 in pixels.shape
            or not pixels.flags.c_contiguous
        ):
            raise InputError("HdrImage.pixels must be a C-contiguous float32 (H, W, 3) array")
        if not np.isfinite(pixels).all():
            raise InputError("HdrImage.pixels must be finite")
        if len(self.chromaticities) != 8:
            raise InputError("HdrImage.chromaticities must have 8 values")


def read_hdr(path: str | os.PathLike[str]) -> HdrImage:
    """Read an OpenEXR or Radiance RGBE file, whichever the first bytes say it is.

    Args:
        path: the file to read.

    Returns:
        The image, see :class:`HdrImage`.

    Raises:
        InputError: the file cannot be read, is neither format, or is damaged, truncated,
            larger than :data:`MAX_PIXELS` (checked from the header, before reading pixels),
            too large for the memory available, holds channels that are not an image, or holds
            no finite positive sample (no light: nothing that could be shown as HDR).

    Warns:
        InputRepairWarning: some samples were NaN or infinite and were replaced (see
            :attr:`HdrImage.pixels`); the message counts the pixels.

    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise InputError(f"{name}: cannot read the file: {exc}") from exc
    if magic == _EXR_MAGIC:
        with memory_guard(name):
            return _read_exr(name)
    if magic.startswith(_RADIANCE_MAGIC):
        with memory_guard(name):
            return _read_radiance(name)
    raise InputError(
        f"{name}: not an OpenEXR or Radiance file (starts with bytes {magic.hex(' ') or 'none'})"
    )


def write_exr(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    chromaticities: Chromaticities,
    white_luminance: float | None,
    half: bool = False,
) -> None:
    """Write an RGB OpenEXR file (ZIP compression) without ever leaving a partial file.

    The file is written under a temporary name in the same directory and renamed into place, so a
    failure leaves an existing file at ``path`` untouched.

    Args:
        path: the file to write; replaced if it exists.
        pixels: float array of shape (H, W, 3), H and W >= 1, linear light, finite. Values beyond
            the channel type's range (float32, or float16 with ``half``) are clipped to it.
        chromaticities: xy of the primaries and white of ``pixels``, stored as the
            ``chromaticities`` attribute.
        white_luminance: cd/m² of RGB (1, 1, 1), stored as ``whiteLuminance``; None stores nothing.
        half: store HALF (float16) channels instead of FLOAT.

    Raises:
        InputError: ``pixels``, ``chromaticities`` or ``white_luminance`` is unusable, or the
            image is too large for the memory available.

    """
    name = os.fspath(path)
    with memory_guard(name):
        _write_exr(path, _checked_pixels(pixels, name), chromaticities, white_luminance, half)


def _write_exr(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    chromaticities: Chromaticities,
    white_luminance: float | None,
    half: bool,
) -> None:
    """:func:`write_exr` of pixels already checked."""
    name = os.fspath(path)
    header: dict[str, object] = {
        "compression": OpenEXR.ZIP_COMPRESSION,
        "type": OpenEXR.scanlineimage,
        "chromaticities": _checked_chromaticities(chromaticities, f"{name}: chromaticities"),
    }
    if white_luminance is not None:
        header["whiteLuminance"] = _checked_white_luminance(white_luminance, name)
    with atomic_output(path) as temporary:
        # Interleaved, as the binding writes an "RGB" group: no per-channel copies.
        OpenEXR.File(header, {"RGB": _stored(rgb, np.float16 if half else np.float32)}).write(str(temporary))


def _stored(rgb: np.ndarray, dtype: type[np.floating[Any]]) -> np.ndarray:
    """``rgb`` as C-contiguous ``dtype``, clipped to its range: itself when it is ``dtype``, else made in row blocks."""
    if rgb.dtype == dtype:
        return np.ascontiguousarray(rgb)  # finite (checked) values of the type are within its range
    limit = np.finfo(dtype).max
    return map_rows(lambda rows: np.clip(rows, -limit, limit), np.empty(rgb.shape, dtype), rgb)


def write_radiance(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
    """Write a Radiance RGBE file (``-Y H +X W``, RGB), without ever leaving a partial file.

    Scanlines 8 to 32767 pixels long are written with new-style RLE framing (literal chunks only,
    no runs), as Radiance itself requires for those lengths: a flat scanline there could start
    with bytes that a reader takes for an RLE header. Other lengths are written flat. Pixels are
    encoded as Radiance's setcolr() does (mantissas truncated), so that decoding with
    colr_color()'s half-step offset is unbiased.

    Args:
        path: the file to write; replaced if it exists.
        pixels: float array of shape (H, W, 3), H and W >= 1, linear RGB, finite. Negative values
            are stored as 0 and values above the largest RGBE value (about 1.7e38) are clipped.

    Raises:
        InputError: ``pixels`` is unusable, or the image is too large for the memory available.

    """
    name = os.fspath(path)
    with memory_guard(name):
        rgbe = _encode_rgbe(_checked_pixels(pixels, name))
        height, width = rgbe.shape[:2]
        header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode("ascii")
        body = _rle_framed(rgbe) if width in _RLE_LENGTHS else rgbe.tobytes()
        write_bytes(path, header + body)


# Shared checks and helpers.


def _checked_pixels(pixels: np.ndarray, name: str) -> np.ndarray:
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype.kind != "f"
        or pixels.ndim != 3
        or pixels.shape[2] != 3
        or 0 in pixels.shape
    ):
        shape = getattr(pixels, "shape", None)
        dtype = getattr(pixels, "dtype", type(pixels).__name__)
        raise InputError(
            f"{name}: pixels must be a float array of shape (H, W, 3) with H, W >= 1; "
            f"got {dtype} with shape {shape}"
        )
    if not np.isfinite(pixels).all():
        raise InputError(f"{name}: pixels contain NaN or infinity")
    return pixels


def _checked_chromaticities(values: Any, what: str) -> Chromaticities:
    """Return ``values`` as 8 floats after checking that they define an RGB colour space.

    Each value is the shortest decimal that rounds to the same float32, so values that were
    written from short decimals (0.64, 0.33, ...) read back as exactly those decimals even though
    EXR stores float32.
    """
    try:
        floats = tuple(float(str(np.float32(v))) for v in values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: expected 8 numbers, got {_describe(values)}") from exc
    if len(floats) != 8:
        raise InputError(f"{what}: expected 8 numbers, got {len(floats)}")
    chromaticities: Chromaticities = floats
    try:
        luminance_weights(chromaticities)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from exc
    return chromaticities


def _checked_white_luminance(value: Any, name: str) -> float:
    try:
        luminance = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name}: whiteLuminance must be a number, got {_describe(value)}"
        ) from exc
    if not (np.isfinite(luminance) and luminance > 0):
        raise InputError(f"{name}: whiteLuminance must be positive and finite, got {luminance}")
    return float(str(np.float32(luminance)))


def _repaired(pixels: np.ndarray, name: str) -> np.ndarray:
    """Check that an image read from ``name`` holds light, and make its samples finite.

    NaN becomes 0, +inf the largest finite value in the image and -inf the smallest, in place.

    Args:
        pixels: float32 (H, W, 3), as decoded.
        name: the file, for the messages.

    Returns:
        ``pixels``, repaired.

    Raises:
        InputError: no sample is both finite and positive (all NaN, infinite, zero or negative):
            whatever a repair made of it would be black.

    Warns:
        InputRepairWarning: some samples were NaN or infinite; the message counts the pixels.
    """
    finite = np.isfinite(pixels)
    # Reductions with where= read the finite samples without copying them out.
    high = float(np.max(pixels, where=finite, initial=-np.inf))
    if not high > 0:
        raise InputError(
            f"{name}: no sample is finite and positive (the largest finite value is {high}): "
            "the image holds no light, so it is not an HDR image"
        )
    if finite.all():
        return pixels
    low = float(np.min(pixels, where=finite, initial=np.inf))
    repaired = int(np.count_nonzero(~finite.all(axis=-1)))
    total = pixels.shape[0] * pixels.shape[1]
    warnings.warn(
        f"{name}: {repaired} of {total} pixels held NaN or infinite samples; NaN became 0, +inf "
        f"the largest finite value ({high:g}) and -inf the smallest ({low:g})",
        InputRepairWarning,
        stacklevel=4,
    )
    cleaned: np.ndarray = np.nan_to_num(pixels, copy=False, nan=0.0, posinf=high, neginf=low)
    return cleaned


# OpenEXR.


def _read_exr(name: str) -> HdrImage:
    header = _exr_header(name)
    width, height = _exr_size(header, name)
    chromaticities = REC709_CHROMATICITIES
    if "chromaticities" in header:
        chromaticities = _checked_chromaticities(
            header["chromaticities"], f"{name}: chromaticities attribute"
        )
    white_luminance = None
    if "whiteLuminance" in header:
        white_luminance = _checked_white_luminance(header["whiteLuminance"], name)
    rgb = _exr_rgb(name, (height, width), chromaticities)
    return HdrImage(
        pixels=np.ascontiguousarray(_repaired(rgb, name)),
        chromaticities=chromaticities,
        white_luminance=white_luminance,
        source="exr",
    )


def _exr_header(name: str) -> dict[str, Any]:
    """Read the first part's header, after checking what the whole file would decode to."""
    try:
        exr = OpenEXR.File(name, header_only=True)
        headers = [exr.header(i) for i in range(len(exr.parts))]
    except Exception as exc:  # the binding raises bare RuntimeError/ValueError on bad files
        raise InputError(f"{name}: not a readable OpenEXR file: {exc}") from exc
    if not headers:
        raise InputError(f"{name}: the OpenEXR file has no parts")
    if headers[0].get("type") not in (OpenEXR.scanlineimage, OpenEXR.tiledimage):
        kind = _describe(headers[0].get("type"))
        raise InputError(f"{name}: part 0 is of type {kind}, not a flat image")
    # The binding decodes every channel of every part at once: bound all of it, not only ours.
    samples = sum(_exr_samples(header, name) for header in headers)
    if samples > 4 * MAX_PIXELS:
        raise InputError(
            f"{name}: the file holds {samples} samples in all, more than {4 * MAX_PIXELS}"
        )
    header: dict[str, Any] = headers[0]
    return header


def _exr_size(header: dict[str, Any], name: str) -> tuple[int, int]:
    try:
        (x_min, y_min), (x_max, y_max) = header["dataWindow"]
        width, height = int(x_max) - int(x_min) + 1, int(y_max) - int(y_min) + 1
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: missing or malformed dataWindow attribute") from exc
    check_pixel_count(width, height, name)
    return width, height


def _exr_rgb(name: str, shape: tuple[int, int], chromaticities: Chromaticities) -> np.ndarray:
    """Decode the first part's pixels to float32 (H, W, 3) RGB.

    The binding's channel arrays are released when this returns, before the caller's repair.
    """
    channels = _exr_pixels(name)
    group = channels.get("RGB", channels.get("RGBA"))
    if group is not None:
        return _exr_interleaved(group, shape, name)
    if {"R", "G", "B"} <= channels.keys():
        rgb = np.empty((*shape, 3), dtype=np.float32)
        for index, channel in enumerate("RGB"):
            rgb[..., index] = _exr_plane(channels, channel, shape, name)
        return rgb
    if "Y" in channels:
        return _exr_luminance_chroma(channels, shape, chromaticities, name)
    raise InputError(f"{name}: channels {sorted(channels)} hold neither R, G, B nor Y (RY, BY)")


def _exr_interleaved(group: OpenEXR.Channel, shape: tuple[int, int], name: str) -> np.ndarray:
    """R, G, B as the binding interleaves them, (H, W, 3 or 4), as float32 (H, W, 3) after checks."""
    pixels = group.pixels
    if pixels is None or pixels.dtype not in (np.float16, np.float32):
        raise InputError(f"{name}: channels R, G, B hold {group.type()}, not floats")
    if pixels.ndim != 3 or pixels.shape[:2] != shape:
        raise InputError(f"{name}: channels R, G, B have shape {pixels.shape[:2]}, expected {shape}")
    # One pass, a block of rows per thread: the cast (or, for float32 RGBA, the copy) also drops alpha.
    return map_rows(lambda rows: rows[..., :3], np.empty((*shape, 3), np.float32), pixels)


def _exr_samples(header: dict[str, Any], name: str) -> int:
    width, height = _exr_size(header, name)
    try:
        samplings = [(channel.xSampling, channel.ySampling) for channel in header["channels"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{name}: missing or malformed channels attribute") from exc
    return sum(-(-width // x) * -(-height // y) for x, y in samplings)


def _describe(value: object) -> str:
    """Return repr(value), shortened: the binding cannot decode every damaged attribute."""
    try:
        return repr(value)[:80]
    except ValueError:  # UnicodeDecodeError from an attribute of an unknown type
        return f"an undecodable {type(value).__name__}"


def _exr_pixels(name: str) -> dict[str, OpenEXR.Channel]:
    """The first part's channels; R, G, B (and A) interleaved as one "RGB" ("RGBA") group where they can be.

    Interleaved by the binding's C++, R, G and B cost one read and one cast rather than three
    strided copies. Channels of different types or samplings cannot be interleaved: those files
    are read again, channel by channel, and checked one channel at a time.
    """
    try:
        channels: dict[str, OpenEXR.Channel] = OpenEXR.File(name).channels()
        return channels
    except Exception:  # mixed types or samplings: the separate read below decides
        pass
    try:
        channels = OpenEXR.File(name, separate_channels=True).channels()
        return channels
    except Exception as exc:  # truncated or corrupt pixel data: the binding says "0 parts"
        raise InputError(f"{name}: cannot decode the OpenEXR pixel data: {exc}") from exc


def _exr_plane(
    channels: dict[str, OpenEXR.Channel],
    channel_name: str,
    shape: tuple[int, int],
    name: str,
    sampling: int = 1,
) -> np.ndarray:
    """Return one channel as float32 after checking its type, sampling and shape."""
    channel = channels[channel_name]
    if channel.type() not in (OpenEXR.HALF, OpenEXR.FLOAT):
        raise InputError(f"{name}: channel {channel_name} holds {channel.type()}, not floats")
    if (channel.xSampling, channel.ySampling) != (sampling, sampling):
        raise InputError(
            f"{name}: channel {channel_name} is sampled every "
            f"({channel.xSampling}, {channel.ySampling}) pixels, expected ({sampling}, {sampling})"
        )
    plane = channel.pixels
    if plane is None or plane.shape != shape:
        got = None if plane is None else plane.shape
        raise InputError(f"{name}: channel {channel_name} has shape {got}, expected {shape}")
    samples: np.ndarray = plane.astype(np.float32, copy=False)
    return samples


def _exr_luminance_chroma(
    channels: dict[str, OpenEXR.Channel],
    shape: tuple[int, int],
    chromaticities: Chromaticities,
    name: str,
) -> np.ndarray:
    """Convert Y (+ RY, BY) channels to (H, W, 3) RGB as OpenEXR's RgbaInputFile does.

    Y alone is grey. Chroma must be subsampled 2x2, the only layout RgbaInputFile reads.
    """
    luminance = _exr_plane(channels, "Y", shape, name)
    if "RY" not in channels and "BY" not in channels:
        return np.repeat(luminance[..., None], 3, axis=-1)
    if not {"RY", "BY"} <= channels.keys():
        raise InputError(f"{name}: has only one of the chroma channels RY and BY")
    # OpenEXR guarantees even sizes and origin for a 2x2-sampled channel.
    half_shape = (shape[0] // 2, shape[1] // 2)
    chroma = np.stack([_exr_plane(channels, c, half_shape, name, 2) for c in ("RY", "BY")], -1)
    weights = luminance_weights(chromaticities).astype(np.float32)
    if weights[1] <= 0:
        raise InputError(f"{name}: chromaticities {chromaticities} give green no luminance")
    return _luminance_chroma_to_rgb(luminance, chroma, weights)


def _luminance_chroma_to_rgb(
    luminance: np.ndarray, chroma: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Follow ImfRgbaYca.cpp, vectorised: from Y and 2x2-subsampled (RY, BY) to RGB.

    Interpolate the chroma to full resolution, R = (RY + 1) Y, B = (BY + 1) Y,
    G = (Y - R yw_r - B yw_b) / yw_g, then pull in pixels far more saturated than their
    neighbours (the interpolation filter overshoots at sharp colour edges). OpenEXR rounds every
    step to half; we keep float32.

    Args:
        luminance: (H, W) float32 Y, H and W even.
        chroma: (H / 2, W / 2, 2) float32 RY and BY.
        weights: (3,) float32 luminance weights yw of R, G and B.

    Returns:
        (H, W, 3) float32 RGB.

    """
    height, width = luminance.shape
    by_column = np.ascontiguousarray(chroma.swapaxes(0, 1))  # gathers of whole rows are fast
    columns = np.ascontiguousarray(_upsample_chroma(by_column, 0, width).swapaxes(0, 1))
    # fixSaturation compares each row with the rows above and below, so convert one extra row on
    # each side, made as OpenEXR makes them: its reader clamps a row index y < 0 to 0 and
    # y > H - 1 to H - 2, and interpolates chroma for row -1 like any odd row.
    full_chroma = _upsample_chroma(columns, -1, height + 2)
    del columns  # each intermediate is freed once used: peak memory is what limits image size
    rows = np.concatenate([[0], np.arange(height), [max(height - 2, 0)]])
    rgb = _yca_to_rgb(luminance[rows], full_chroma[..., 0], full_chroma[..., 1], weights)
    del full_chroma
    return _fix_saturation(rgb, weights)


def _upsample_chroma(samples: np.ndarray, first: int, count: int) -> np.ndarray:
    """Interpolate chroma sampled at every other position along axis 0.

    Args:
        samples: (n, ...) float32; sample i sits at full-resolution position 2 i.
        first: full-resolution position of the first output (may be negative).
        count: number of outputs.

    Returns:
        (count, ...) float32: a sample where there is one, else the 14-tap filter of ImfRgbaYca
        over the nearest samples, with sample indices clamped to the edges as OpenEXR pads.

    """
    positions = np.arange(first, first + count)
    nearest = positions // 2  # the sample at or before each position
    last = len(samples) - 1
    result = samples[np.clip(nearest, 0, last)]
    odd = positions % 2 == 1
    taps = np.clip(nearest[odd, None] + _CHROMA_TAP_OFFSETS, 0, last)
    interpolated = np.zeros_like(result[odd])
    for k, weight in enumerate(_CHROMA_TAPS):
        interpolated += samples[taps[:, k]] * weight
    result[odd] = interpolated
    return result


def _yca_to_rgb(y: np.ndarray, ry: np.ndarray, by: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return (..., 3) float32 RGB from luminance and full-resolution chroma (ImfRgbaYca YCAtoRGBA)."""
    rgb = np.empty((*y.shape, 3), dtype=np.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    np.multiply(ry + 1, y, out=red)
    np.multiply(by + 1, y, out=blue)
    np.divide(y - red * weights[0] - blue * weights[2], weights[1], out=green)
    # Zero chroma is exact grey, without the rounding of the general formula.
    grey = (ry == 0) & (by == 0)
    rgb[grey] = y[grey, None]
    return rgb


def _fix_saturation(rgb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Desaturate pixels much more saturated than their diagonal neighbours (ImfRgbaYca).

    Args:
        rgb: (H + 2, W, 3) float32, the image with one extra row above and below; changed in
            place.
        weights: luminance weights of the RGB channels.

    Returns:
        (H, W, 3) float32, a view of the image rows of ``rgb``, over-saturated pixels pulled in.

    """
    saturation = _saturation(rgb)
    # Saturation at the columns either side, edges repeated: the diagonal neighbours.
    padded = np.pad(saturation, ((0, 0), (1, 1)), mode="edge")
    sides = padded[:, :-2] + padded[:, 2:]
    mean = np.minimum(1.0, 0.25 * (sides[:-2] + sides[2:]))
    limit = np.minimum(1.0, 1 - (1 - mean) * 0.25)
    own = saturation[1:-1]
    result = rgb[1:-1]
    over = own > limit
    result[over] = _desaturate(result[over], limit[over] / own[over], weights)
    return result


def _saturation(rgb: np.ndarray) -> np.ndarray:
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    ratio = np.divide(low, high, out=np.ones_like(high), where=high > 0)
    saturation: np.ndarray = 1 - ratio
    return saturation


def _desaturate(rgb: np.ndarray, factor: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Move (n, 3) pixels towards their largest channel by ``factor``, keeping luminance."""
    high = rgb.max(axis=-1, keepdims=True)
    out = np.maximum(high - (high - rgb) * factor[:, None], 0.0)
    before, after = rgb @ weights, out @ weights
    scale = np.divide(before, after, out=np.ones_like(after), where=after > 0)
    desaturated: np.ndarray = (out * scale[:, None]).astype(np.float32)
    return desaturated


# Radiance RGBE.


@dataclass(frozen=True)
class _RadianceHeader:
    """What the header and resolution line of a Radiance file say."""

    chromaticities: Chromaticities
    scale: np.ndarray  # (3,) float32: EXPOSURE times COLORCORR, to divide out of the pixels
    orientation: str  # e.g. "-Y+X": scanline axis and direction, then pixel axis and direction
    scanlines: int
    scanline_length: int
    data_offset: int  # where the pixel data starts in the file


@dataclass
class _RgbeStream:
    """The encoded pixel bytes of a Radiance file, read front to back."""

    data: bytes
    name: str
    offset: int  # file offset of data[0], for messages
    pos: int = 0

    def error(self, scanline: int, problem: str, pos: int | None = None) -> InputError:
        at = self.offset + (self.pos if pos is None else pos)
        return InputError(f"{self.name}: scanline {scanline} at byte {at}: {problem}")

    def at_rle_scanline(self) -> bool:
        head = self.data[self.pos : self.pos + 3]
        return len(head) == 3 and head[0] == 2 and head[1] == 2 and head[2] < 128


def _read_radiance(name: str) -> HdrImage:
    try:
        with open(name, "rb") as file:
            header = _parse_radiance_header(file.read(_MAX_RADIANCE_HEADER), name)
            file.seek(header.data_offset)
            # At most 2 bytes per value (RLE codes of 1) plus the 4-byte scanline header: reading
            # no further bounds memory whatever the file's size.
            data = file.read(header.scanlines * (8 * header.scanline_length + 4))
    except OSError as exc:
        raise InputError(f"{name}: cannot read the file: {exc}") from exc
    stream = _RgbeStream(data, name, header.data_offset)
    rgbe = _decode_scanlines(stream, header.scanlines, header.scanline_length)
    # Free the encoded bytes (up to 8 a pixel) and then the RGBE array (4 a pixel) as soon as
    # they are used up: the float image is the largest array, and peak memory is per pixel.
    del data, stream
    pixels = _rgbe_to_float(rgbe)
    del rgbe
    pixels /= header.scale
    pixels = _orient(pixels, header.orientation)
    return HdrImage(
        pixels=np.ascontiguousarray(_repaired(pixels, name)),
        chromaticities=header.chromaticities,
        white_luminance=None,
        source="radiance",
    )


def _parse_radiance_header(head: bytes, name: str) -> _RadianceHeader:
    """Parse the header lines and the resolution line that follows the blank line.

    Without a PRIMARIES line, pixels are taken to be Rec.709/D65 RGB. Radiance's own default
    (color.h STDPRIMS) is 0.640 0.330 0.290 0.600 0.150 0.060 with the equal-energy white
    (1/3, 1/3), which suits its renderer's spectral-to-RGB convention. The files met in
    practice (Poly Haven, Photoshop and camera-made panoramas) are assembled from sRGB/Rec.709
    photographs and meant to be viewed as such; reading them with an equal-energy white would
    tint every one of them.
    """
    end = head.find(b"\n\n")
    resolution_end = head.find(b"\n", end + 2)
    if end < 0 or resolution_end < 0:
        raise InputError(
            f"{name}: Radiance header and resolution line do not end within the first "
            f"{_MAX_RADIANCE_HEADER} bytes"
        )
    is_xyz, primaries = False, REC709_CHROMATICITIES
    scale = np.ones(3, dtype=np.float64)
    for number, raw in enumerate(head[:end].split(b"\n")[1:], start=2):
        key, _, value = raw.decode("latin-1").partition("=")
        where = f"{name}: header line {number}"
        if key == "FORMAT":
            is_xyz = _radiance_is_xyz(value.strip(), where)
        elif key == "EXPOSURE":
            scale *= _radiance_numbers(value, 1, where)
        elif key == "COLORCORR":
            scale *= _radiance_numbers(value, 3, where)
        elif key == "PRIMARIES":
            primaries = _radiance_primaries(value, where)
    orientation, scanlines, length = _parse_resolution(head[end + 2 : resolution_end], name)
    return _RadianceHeader(
        chromaticities=XYZ_CHROMATICITIES if is_xyz else primaries,
        scale=scale.astype(np.float32),
        orientation=orientation,
        scanlines=scanlines,
        scanline_length=length,
        data_offset=resolution_end + 1,
    )


def _radiance_is_xyz(value: str, where: str) -> bool:
    """Return whether the FORMAT value says XYZE rather than RGBE."""
    if value not in ("32-bit_rle_rgbe", "32-bit_rle_xyze"):
        raise InputError(f"{where}: unsupported FORMAT {value!r}")
    return value == "32-bit_rle_xyze"


def _radiance_numbers(value: str, count: int, where: str) -> np.ndarray:
    """Parse ``count`` positive, finite numbers (EXPOSURE, COLORCORR)."""
    try:
        numbers = np.array([float(v) for v in value.split()], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{where}: {value.strip()!r} is not {count} numbers") from exc
    if numbers.shape != (count,) or not (np.isfinite(numbers).all() and (numbers > 0).all()):
        raise InputError(f"{where}: {value.strip()!r} is not {count} positive, finite numbers")
    return numbers


def _radiance_primaries(value: str, where: str) -> Chromaticities:
    fields = value.split()
    # Photoshop writes PRIMARIES=0 0 0 0 0 0 0 0 when it knows nothing: treat it as absent.
    if len(fields) == 8 and all(_is_zero(f) for f in fields):
        return REC709_CHROMATICITIES
    return _checked_chromaticities(fields, f"{where}: PRIMARIES")


def _is_zero(field: str) -> bool:
    try:
        return float(field) == 0
    except ValueError:
        return False


_RESOLUTION = re.compile(r"([-+][XY]) +(\d{1,10}) +([-+][XY]) +(\d{1,10})")


def _parse_resolution(line: bytes, name: str) -> tuple[str, int, int]:
    """Return the orientation (e.g. "-Y+X"), the scanline count and the scanline length."""
    match = _RESOLUTION.fullmatch(line.decode("latin-1").strip())
    if not match or match[1][1] == match[3][1]:
        raise InputError(f"{name}: bad Radiance resolution line {line[:80]!r}")
    scanlines, length = int(match[2]), int(match[4])
    check_pixel_count(length, scanlines, name)
    return match[1] + match[3], scanlines, length


def _decode_scanlines(stream: _RgbeStream, count: int, length: int) -> np.ndarray:
    """Decode ``count`` scanlines of ``length`` pixels into a (count, length, 4) uint8 array."""
    rgbe = np.empty((count, length, 4), dtype=np.uint8)
    for y in range(count):
        if length in _RLE_LENGTHS and stream.at_rle_scanline():
            rgbe[y] = _read_rle_scanline(stream, y, length)
        else:
            rgbe[y] = _read_flat_scanline(stream, y, length)
    return rgbe


def _read_rle_scanline(stream: _RgbeStream, y: int, length: int) -> np.ndarray:
    """Decode a new-style RLE scanline: the 4 components one after the other, each as codes.

    A code byte above 128 repeats the next byte (code - 128) times; any other code is followed
    by that many literal bytes.
    """
    data, pos = stream.data, stream.pos
    declared = int.from_bytes(data[pos + 2 : pos + 4], "big")
    if declared != length:
        raise stream.error(y, f"RLE scanline declares length {declared}, expected {length}")
    line = bytearray(4 * length)
    pos, size = pos + 4, len(data)
    for start in range(0, 4 * length, length):
        x, stop = start, start + length
        while x < stop:
            if pos >= size:
                raise stream.error(y, "pixel data ends inside the scanline", pos)
            code = data[pos]
            if code > 128:
                count, end = code - 128, pos + 2
                values = data[pos + 1 : end] * count
            else:
                count, end = code, pos + 1 + code
                values = data[pos + 1 : end]
            if not 0 < count <= stop - x:
                left = stop - x
                raise stream.error(y, f"RLE code {code} does not fit the {left} values left", pos)
            if end > size:
                raise stream.error(y, "pixel data ends inside the scanline", size)
            line[x : x + count] = values
            pos, x = end, x + count
    stream.pos = pos
    rgbe: np.ndarray = np.frombuffer(line, dtype=np.uint8).reshape(4, length).T
    return rgbe


def _read_flat_scanline(stream: _RgbeStream, y: int, length: int) -> np.ndarray:
    """Decode a flat or old-style RLE scanline of ``length`` pixels into (length, 4) bytes.

    Pixels are stored whole. A pixel (1, 1, 1, n) is a run marker: repeat the previous pixel n
    times, or n << 8 times if the marker before it was also a run marker, and so on.
    """
    data, pos = stream.data, stream.pos
    line = bytearray(4 * length)
    x, shift = 0, 0  # x counts bytes of line
    while x < len(line):
        literal = _literal_bytes(data, pos, len(line) - x)
        if literal:
            line[x : x + literal] = data[pos : pos + literal]
            x, pos, shift = x + literal, pos + literal, 0
            continue
        if pos + 4 > len(data):
            raise stream.error(y, "pixel data ends inside the scanline", pos)
        if x == 0:
            raise stream.error(y, "run marker with no pixel before it in the scanline", pos)
        count, left = data[pos + 3] << shift, (len(line) - x) // 4
        if count > left:
            raise stream.error(y, f"run of {count} overflows the {left} pixels left", pos)
        line[x : x + 4 * count] = line[x - 4 : x] * count
        x, pos, shift = x + 4 * count, pos + 4, shift + 8
    stream.pos = pos
    return np.frombuffer(line, dtype=np.uint8).reshape(length, 4)


def _literal_bytes(data: bytes, start: int, limit: int) -> int:
    """Count the bytes of whole pixels from ``start`` to the next run marker, at most ``limit``.

    bytes.find does the scanning, so long literal stretches cost C time and a file full of
    markers costs a few Python steps per marker.
    """
    stop = start + min(limit, len(data) - start) // 4 * 4
    found = data.find(_RUN_MARKER, start, stop)
    while found >= 0 and (found - start) % 4:
        found = data.find(_RUN_MARKER, found + 1, stop)
    return (stop if found < 0 else found) - start


def _rgbe_to_float(rgbe: np.ndarray) -> np.ndarray:
    """Decode (..., 4) RGBE bytes as Radiance's colr_color() does: (m + 0.5) 2^(e - 136).

    The half step centres each value in the interval that setcolr()'s truncation maps to it.
    (stb_image and Walter's rgbe.c omit it, reading values up to 0.4% lower.) e = 0 is black.
    """
    rgb = rgbe[..., :3].astype(np.float32)
    rgb += 0.5
    rgb *= _RGBE_STEPS[rgbe[..., 3:]]
    return rgb


def _orient(scanlines: np.ndarray, orientation: str) -> np.ndarray:
    """Turn decoded scanlines into rows from top to bottom, pixels from left to right.

    ``orientation`` is the resolution line's two axes with their directions, e.g. "-Y+X" (the
    standard: scanlines from the top, +Y being up, each from left to right) or "+X-Y" (scanlines
    are columns from left to right, each from top to bottom).
    """
    scan_axis, pixel_axis = orientation[:2], orientation[2:]
    image = scanlines
    if scan_axis in ("+Y", "-X"):  # first scanline at the bottom or at the right
        image = image[::-1]
    if pixel_axis in ("-X", "+Y"):  # pixels run from right to left or from bottom to top
        image = image[:, ::-1]
    if scan_axis[1] == "X":
        image = image.swapaxes(0, 1)
    return image


def _encode_rgbe(pixels: np.ndarray) -> np.ndarray:
    """Encode (H, W, 3) floats as (H, W, 4) RGBE bytes, as Radiance's setcolr() does."""
    rgb = np.clip(pixels.astype(np.float64), 0.0, _RGBE_MAX)
    peak = rgb.max(axis=-1)
    _, exponent = np.frexp(peak)  # peak = f 2^exponent with f in [0.5, 1)
    visible = peak > 1e-32  # setcolr()'s threshold for black
    mantissas = np.floor(rgb * np.ldexp(256.0, -exponent)[..., None])
    rgbe = np.zeros(pixels.shape[:2] + (4,), dtype=np.uint8)
    rgbe[visible, :3] = mantissas[visible]
    rgbe[visible, 3] = exponent[visible] + 128
    return rgbe


def _rle_framed(rgbe: np.ndarray) -> bytes:
    """Frame (H, W, 4) RGBE as new-style RLE scanlines made only of literal runs of <= 128."""
    height, width = rgbe.shape[:2]
    starts = np.arange(0, width, 128)
    lengths = np.minimum(128, width - starts).astype(np.uint8)
    components = np.insert(rgbe.transpose(0, 2, 1), starts, lengths, axis=2)
    scanline_header = np.array([2, 2, width >> 8, width & 0xFF], dtype=np.uint8)
    heads = np.broadcast_to(scanline_header, (height, 4))
    return np.concatenate([heads, components.reshape(height, -1)], axis=1).tobytes()
