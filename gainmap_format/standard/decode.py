"""Decoding the base and gain-map JPEGs to pixels, bounded by their frame headers first.

The base is decoded as libultrahdr, the reference decoder, decodes it: for 4:2:0 JPEGs with
chroma samples repeated, not interpolated, and Y'CbCr converted in floating point (see
``_base_codes``). At weight 0 the rendition therefore differs from Pillow's SDR pixels at sharp
colour edges; it agrees with the reference's HDR to 50-100 dB instead of about 35 dB on such
files. The base is then linearised with the sRGB transfer, as every writer assumes.

Limits (README, section Limits): each image is checked whole and with at most
:data:`~gainmap_format.jpeg.MAX_SCANS` scans, and its size against
:data:`~gainmap_format.limits.MAX_PIXELS`, before anything is decoded; running out of memory is an
:class:`~gainmap_format.errors.InputError`.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, JpegImagePlugin

from .. import structs
from ..colour import srgb_decode
from ..errors import JpegError, StandardGainMapError
from ..jpeg import JpegLayout, check_decodable
from ..limits import check_pixel_count, map_rows, memory_guard
from .binary import parse_struct

#: Entries of the sRGB EOTF table for code values that the reference decode leaves between
#: 8-bit steps; a step of 1/4095 keeps the error below 0.03% of a code value's light.
_FINE_CODES = 4096

#: Pillow's numbering of chroma samplings (JpegImagePlugin.get_sampling).
_SAMPLING_444 = 0
_SAMPLING_420 = 2


def frame_dimensions(layout: JpegLayout, where: str) -> tuple[int, int, int]:
    """(width, height, components) from the frame header, within :data:`~gainmap_format.limits.MAX_PIXELS`.

    Args:
        layout: one image's layout.
        where: the image's location, for error messages.

    Returns:
        (width, height, components).

    Raises:
        StandardGainMapError: no frame header, a malformed one, or a size out of bounds.
    """
    for segment in layout.segments:
        if segment.marker in structs.SOF_MARKERS:
            frame = parse_struct(structs.JPEG_FRAME_HEADER, segment.payload, f"{where}, frame header")
            check_pixel_count(frame.width, frame.height, where, StandardGainMapError)
            return frame.width, frame.height, frame.components
    raise StandardGainMapError(f"{where}: no frame header (SOF) before the first scan")


def decode_jpeg(data: bytes, where: str) -> np.ndarray:
    """Decode one JPEG image with Pillow's JPEG decoder itself (no plugin dispatch).

    Args:
        data: the image, SOI to EOI.
        where: the image's location, for the error message.

    Returns:
        uint8 (H, W, C), C = 1 for a one-component image, else 3.

    Raises:
        StandardGainMapError: truncated, more than :data:`~gainmap_format.jpeg.MAX_SCANS`
            scans, larger than :data:`~gainmap_format.limits.MAX_PIXELS`, or Pillow cannot
            decode it.
        InputError: too large for the memory available.
    """
    _check_decodable(data, where)
    with memory_guard(where):
        return _decode_checked(data, where)


def _check_decodable(data: bytes, where: str) -> None:
    """:func:`~gainmap_format.jpeg.check_decodable`, failing as the rest of this package does."""
    try:
        check_decodable(data, where)
    except JpegError as exc:
        raise StandardGainMapError(str(exc)) from exc


def _decode_checked(data: bytes, where: str) -> np.ndarray:
    """:func:`decode_jpeg` of an image that has passed :func:`_check_decodable`."""
    try:
        with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as image:
            width, height = image.size
            check_pixel_count(width, height, where, StandardGainMapError)
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            pixels = np.asarray(image)
    except StandardGainMapError:  # a ValueError of our own, already saying where and what
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise StandardGainMapError(f"{where}: cannot decode ({exc})") from exc
    return pixels[..., None] if pixels.ndim == 2 else pixels


def base_linear(data: bytes) -> np.ndarray:
    """The primary image as linear float32 (H, W, 3) through the sRGB EOTF.

    Args:
        data: the whole file; its primary image is decoded.

    Returns:
        float32 (H, W, 3), relative linear light, 1.0 at code value 255.

    Raises:
        StandardGainMapError: the primary image cannot be decoded (see :func:`decode_jpeg`).
        InputError: too large for the memory available.
    """
    where = "primary image"
    _check_decodable(data, where)
    with memory_guard(where):
        codes = _base_codes(data, where)
        if isinstance(codes, tuple):
            luma, chroma = codes
            return map_rows(_ycbcr_to_linear, np.empty((*luma.shape, 3), np.float32), luma, chroma)
        table = _srgb_table(256)
        return map_rows(table.take, np.empty(codes.shape, np.float32), codes)


def _ycbcr_to_linear(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """float32 (rows, W, 3) linear light of Y'CbCr rows, through codes of :data:`_FINE_CODES` steps."""
    linear: np.ndarray = _srgb_table(_FINE_CODES).take(_ycbcr_to_codes(luma, chroma))
    return linear


@functools.cache
def _srgb_table(entries: int) -> np.ndarray:
    """float32 (entries,): the sRGB EOTF at code values 0, 1 / (entries - 1), ..., 1."""
    return srgb_decode(np.linspace(0.0, 1.0, entries)).astype(np.float32)


def _base_codes(data: bytes, where: str) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The primary image's R'G'B' code values (H, W, 3), decoded as libultrahdr decodes them.

    libultrahdr, the reference decoder, reads a 4:2:0 base as 8-bit Y'CbCr, repeats each chroma
    sample over its 2x2 block and converts to R'G'B' in floating point; Pillow (libjpeg)
    interpolates chroma and rounds R'G'B' to 8 bits. On saturated colour edges the two differ
    by several code values, which puts a comparison with the reference at about 35 dB on such
    files, so 4:2:0 and 4:4:4 bases are decoded the reference's way (for 4:4:4 only the
    floating-point conversion differs). 4:2:2 and other layouts are decoded by Pillow.

    Args:
        data: the whole file, already through :func:`_check_decodable`.
        where: the image's location, for messages.

    Returns:
        For the reference's way, uint8 Y' (H, W) and Cb, Cr (H, W, 2) with each chroma sample
        repeated over the pixels it covers, for :func:`_ycbcr_to_codes`; else Pillow's uint8
        R'G'B' codes (H, W, 3).
    """
    try:
        with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as image:
            width, height = image.size
            check_pixel_count(width, height, where, StandardGainMapError)
            sampling = _reference_sampling(image)
            if sampling is None:
                return _rgb_codes(_decode_checked(data, where))
            image.draft("YCbCr", None)
            ycbcr = np.asarray(image)
            if sampling == _SAMPLING_444:
                return ycbcr[..., 0], ycbcr[..., 1:]
            luma = ycbcr[..., 0]
        with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as image:
            # Decoding at half size makes libjpeg run the chroma IDCTs at their own
            # resolution, so these are the stored chroma samples, not interpolated ones.
            image.draft("YCbCr", (width // 2, height // 2))
            chroma = np.asarray(image)[..., 1:]
    except StandardGainMapError:  # a ValueError of our own, already saying where and what
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise StandardGainMapError(f"{where}: cannot decode ({exc})") from exc
    if chroma.shape[:2] != ((height + 1) // 2, (width + 1) // 2):
        return _rgb_codes(_decode_checked(data, where))
    return luma, np.repeat(np.repeat(chroma, 2, axis=0), 2, axis=1)[:height, :width]


def _rgb_codes(codes: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) from a decode that may have one component."""
    return np.repeat(codes, 3, axis=2) if codes.shape[2] == 1 else codes


def _reference_sampling(image: JpegImagePlugin.JpegImageFile) -> int | None:
    """The chroma sampling of a Y'CbCr JPEG that is decoded the reference's way, else None.

    4:4:4 (0) and 4:2:0 (2) in Pillow's numbering; 4:2:2 and unusual layouts go to Pillow.
    """
    width, height = image.size
    sampling = JpegImagePlugin.get_sampling(image)
    if image.mode != "RGB" or image.info.get("adobe_transform", 1) == 0 or min(width, height) < 2:
        return None
    return sampling if sampling in (_SAMPLING_444, _SAMPLING_420) else None


def _ycbcr_to_codes(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """JFIF's full-range BT.601 Y'CbCr (ITU-T T.871 §7) to R'G'B' codes of :data:`_FINE_CODES` steps."""
    y = luma.astype(np.float32)
    cb = chroma[..., 0].astype(np.float32) - np.float32(128.0)
    cr = chroma[..., 1].astype(np.float32) - np.float32(128.0)
    out = np.empty((*y.shape, 3), dtype=np.uint16)
    scale = np.float32((_FINE_CODES - 1) / 255.0)
    for channel, (cb_weight, cr_weight) in enumerate(((0.0, 1.402), (-0.344136, -0.714136), (1.772, 0.0))):
        plane = y.copy()
        if cb_weight:
            plane += np.float32(cb_weight) * cb
        if cr_weight:
            plane += np.float32(cr_weight) * cr
        plane *= scale
        np.rint(plane, out=plane)
        out[..., channel] = np.clip(plane, 0.0, _FINE_CODES - 1, out=plane)
    return out
