"""Saving: ``im.save("x.jpg", hdr=...)`` writes a GainMLP file; a plain save keeps or warns.

The wrapper sits in front of Pillow's JPEG save handler:

- ``hdr=`` an array (or an :class:`~pillow_plugin.hdr.HdrImage`): Pillow encodes the image as
  the SDR base with every option given (quality, subsampling, exif, icc_profile, ...), and
  ``gainmap_format.codec.encode`` fits a gain map to that base, which it keeps byte for byte.
- no ``hdr=``, an image that came from a gain-map JPEG (``im.info["gain_map"]``) with exactly
  the pixels of its base: Pillow encodes it and the original gain map goes back in.
- the same with changed pixels (resized, edited): Pillow's file without the gain map, and a
  :class:`~pillow_plugin.errors.HdrDroppedWarning` that says so (Pillow issue #8036).
- ``hdr=False``: drop the gain map without a warning.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import IO, Any

import numpy as np
from PIL import Image

from gainmap_format.colour import PRIMARIES, Chromaticities
from gainmap_format.errors import GainmapError, InputError
from gainmap_format.standard import find_gain_map

from . import options
from .errors import HdrDroppedWarning
from .hdr import INFO_KEY, GainMapLink, HdrImage, internal

#: Save options this wrapper reads; Pillow's own handler ignores them.
HDR_OPTIONS = ("hdr", "hdr_primaries", "hdr_options", "hdr_progress")

#: Relative HDR arrays put SDR white at 1.0; the codec places SDR white at this many cd/m².
_SDR_WHITE = 100.0


SaveHandler = Callable[[Image.Image, IO[bytes], str | bytes], None]


def wrap_save(original: SaveHandler) -> SaveHandler:
    """Pillow's JPEG save handler, preceded by the gain-map logic."""

    def jpeg_save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
        hdr = image.encoderinfo.get("hdr")
        if hdr is not None and hdr is not False:
            fp.write(_encode_with_hdr(original, image, filename, hdr))
            return
        link = image.info.get(INFO_KEY)
        if hdr is False or not isinstance(link, GainMapLink) or link.hdr is None:
            original(image, fp, filename)
            return
        fp.write(_keep_or_drop(original, image, filename, link))

    jpeg_save.__wrapped__ = original
    return jpeg_save


def _pillow_jpeg(original: SaveHandler, image: Image.Image, filename: str | bytes) -> bytes:
    buffer = io.BytesIO()
    original(image, buffer, filename)
    return buffer.getvalue()


def _keep_or_drop(
    original: SaveHandler, image: Image.Image, filename: str | bytes, link: GainMapLink
) -> bytes:
    """The new file with the gain map put back, or without it and a warning saying why."""
    base = _pillow_jpeg(original, image, filename)
    assert link.hdr is not None
    if not options.KEEP_ON_SAVE:
        return _dropped(base, "keep_on_save is off")
    if not link.unchanged(image):
        original_base = f"{link.size[0]}x{link.size[1]} {link.mode}"
        return _dropped(base, f"the pixels differ from the {original_base} base the gain map was made for")
    kept = link.hdr.carry_to(base)
    if link.hdr.metadata.kind != "gainmlp":
        problem = _unreadable(kept)
        if problem is not None:
            return _dropped(base, problem)
    return kept


def _unreadable(data: bytes) -> str | None:
    """Why a standard gain map carried into a new file would not read back, or None."""
    try:
        with internal():
            found = find_gain_map(data)
    except GainmapError as exc:
        detail = str(exc)
        if "maker-note" in detail:
            detail += "; pass exif=im.info['exif'] to keep Apple's headroom"
        return f"it would not read back ({detail})"
    return None if found is not None else "it would not read back"


def _dropped(base: bytes, reason: str) -> bytes:
    warnings.warn(
        HdrDroppedWarning(
            f"saved without the HDR gain map: {reason}. Pass hdr=<HDR array> (for example the "
            "original im.hdr rendered at the new size) to write a new gain map, or hdr=False "
            "to drop it without this warning"
        ),
        stacklevel=5,
    )
    return base


def _encode_with_hdr(original: SaveHandler, image: Image.Image, filename: str | bytes, hdr: Any) -> bytes:
    """Encode ``image`` as the base with Pillow, then fit and insert a GainMLP gain map."""
    from gainmap_format import codec

    info = image.encoderinfo
    encode_options = info.get("hdr_options") or codec.EncodeOptions()
    if not isinstance(encode_options, codec.EncodeOptions):
        raise InputError(
            f"hdr_options must be a gainmap_format.EncodeOptions, not {type(encode_options).__name__}"
        )
    pixels, chromaticities = _hdr_input(hdr, info.get("hdr_primaries", "bt709"))
    if image.mode not in ("RGB", "L"):
        raise InputError(
            f"an image in mode {image.mode} cannot be the SDR base of a gain-map JPEG; convert to RGB"
        )
    base_image = image if image.mode == "RGB" else image.convert("RGB")
    base_image.encoderinfo = {"quality": encode_options.quality, "subsampling": 0, **info}
    base = _pillow_jpeg(original, base_image, filename)
    with internal():
        result = codec.encode(
            pixels,
            chromaticities=chromaticities,
            white_luminance=_SDR_WHITE,
            sdr=base,
            options=encode_options,
            progress=info.get("hdr_progress"),
        )
    return result.jpeg


def _hdr_input(hdr: Any, primaries: Any) -> tuple[np.ndarray, Chromaticities]:
    """The HDR pixels and their chromaticities from what the caller passed."""
    if isinstance(hdr, HdrImage):
        return np.asarray(hdr), PRIMARIES[hdr.primaries]
    if isinstance(primaries, str):
        if primaries not in PRIMARIES:
            raise InputError(f"hdr_primaries {primaries!r} is not one of {sorted(PRIMARIES)}")
        chromaticities = PRIMARIES[primaries]
    else:
        chromaticities = tuple(float(v) for v in primaries)
        if len(chromaticities) != 8:
            raise InputError("hdr_primaries must be a name or 8 numbers (rx, ry, gx, gy, bx, by, wx, wy)")
    return np.asarray(hdr), chromaticities
