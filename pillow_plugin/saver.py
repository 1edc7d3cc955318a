"""Saving: ``im.save("x.jpg", hdr=...)`` writes a GainMLP file; a plain save keeps or warns.

Two wrappers. :func:`wrap_image_save` sits in front of ``Image.Image.save`` and makes a save the
plugin handles safe for the file it replaces; :func:`wrap_save` sits in front of Pillow's JPEG save
handler and does the work:

- ``hdr=`` an array (or an :class:`~pillow_plugin.hdr.HdrImage`): Pillow encodes the image as
  the SDR base with every option given (quality, subsampling, exif, icc_profile, ...), and
  ``gainmap_format.codec.encode`` fits a gain map to that base, which it keeps byte for byte.
- no ``hdr=``, the image opened from a gain-map JPEG (or a copy) with exactly the pixels of its
  base and no save options: the file as it was, byte for byte (base and gain map untouched).
- the same with save options (``exif=``, ``quality=``, ...): Pillow encodes the base with them and
  the original gain map goes back in.
- no ``hdr=``, the result of geometric edits (``crop``, ``resize``, ``rotate``, ...; see
  :mod:`pillow_plugin.edits`) with the pixels the edits produced: Pillow encodes the base and the
  gain map follows the edits (a GainMLP container with the composed placement; a standard map
  transformed in step, written as ISO 21496-1 + hdrgm XMP + MPF).
- the same with changed pixels (``point``, ``filter``, ``paste``, ImageDraw, ImageEnhance):
  Pillow's file without the gain map, and a :class:`~pillow_plugin.errors.HdrDroppedWarning`
  that says so (Pillow issue #8036).
- ``hdr=False``: drop the gain map without a warning.

A base the plugin has Pillow encode takes, unless the save options say otherwise, the quality of
the file the image came from (estimated from its quantisation tables), its chroma subsampling
(4:4:4 for GainMLP files, whose maps are fitted to full-resolution colour) and its ICC profile
(a standard gain map applies in the base's colour space): not Pillow's quality 75.

Saving an image that carries a gain map in another format (PNG, WebP, TIFF, AVIF, ...) writes it
without the gain map and warns with :class:`~pillow_plugin.errors.HdrDroppedWarning`.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeGuard

import numpy as np
from PIL import Image

from gainmap_format.atomic import check_target, write_bytes
from gainmap_format.colour import PRIMARIES, Chromaticities, resolve_chromaticities
from gainmap_format.errors import GainmapError, InputError
from gainmap_format.options import checked_encode_options
from gainmap_format.standard import find_gain_map

from . import options
from .edits import EditedLink
from .errors import HdrDroppedWarning
from .hdr import INFO_KEY, GainMapLink, HdrImage, internal

#: Save options this wrapper reads; Pillow's own handler ignores them.
HDR_OPTIONS = ("hdr", "hdr_primaries", "hdr_options", "hdr_progress")

#: Relative HDR arrays put SDR white at 1.0; the codec places SDR white at this many cd/m².
_SDR_WHITE = 100.0

_JPEG = "JPEG"


SaveHandler = Callable[[Image.Image, IO[bytes], str | bytes], None]
SaveMethod = Callable[..., None]


def wrap_image_save(original: SaveMethod) -> SaveMethod:
    """``Image.Image.save``, made safe for the file it replaces when the plugin writes it.

    Pillow opens a path target with ``open(path, "w+b")``, which empties an existing file,
    before it calls the format's save handler, and the ``hdr=`` path validates and fits for
    seconds after that: a bad argument or a Ctrl-C would leave the old file (often the source
    image itself) empty. No save handler can undo that, and the image need not be one the
    plugin opened (``Image.fromarray(sdr).save(path, hdr=...)``), so the save method is the
    only place that runs early enough. The wrapper changes only JPEG saves to a path that the
    plugin handles (``hdr=`` given, or a gain map carried from the file the image came from):
    it checks the target's folder, runs Pillow's own save with every argument into memory, and
    writes the bytes to a temporary file that is renamed over the target. Every other save
    reaches Pillow unchanged. An ``hdr=`` save to a format other than JPEG is refused before
    anything is opened, rather than writing the image without its HDR; a save to another format
    of an image that carries a gain map goes to Pillow with a :class:`HdrDroppedWarning`.
    """

    @functools.wraps(original)
    def save(self: Image.Image, fp: Any, format: str | None = None, **params: Any) -> None:
        # Pillow lets an encoderinfo already set on the image override the arguments.
        settings = {**params, **getattr(self, "encoderinfo", {})}
        if not _plugin_writes(self, settings):
            original(self, fp, format, **params)
            return
        target_format = _target_format(fp, format)
        if _hdr_given(settings) and target_format not in (None, _JPEG):
            raise InputError(
                f"cannot save {_describe(fp)}: hdr= writes a gain-map JPEG, not {target_format}; "
                "save as JPEG (.jpg) or leave out hdr="
            )
        if target_format not in (None, _JPEG):
            warnings.warn(
                HdrDroppedWarning(
                    f"{_describe(fp)}: saved as {target_format} without the HDR gain map, which only a JPEG "
                    "carries; save as JPEG (.jpg) to keep it, or pass hdr=False to drop it without this warning"
                ),
                stacklevel=2,
            )
        if not _is_path(fp) or target_format != _JPEG:
            original(self, fp, format, **params)
            return
        path = os.fsdecode(fp)
        check_target(path)
        buffer = _NamedBuffer(path)
        original(self, buffer, _JPEG, **params)
        write_bytes(path, buffer.getvalue())

    return save


def wrap_save(original: SaveHandler) -> SaveHandler:
    """Pillow's JPEG save handler, preceded by the gain-map logic.

    Everything is computed before the first byte goes to ``fp``, so a failure leaves a stream
    the caller passed as it was.
    """

    def jpeg_save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
        settings = image.encoderinfo
        if _hdr_given(settings):
            with _naming(filename):
                data = _encode_with_hdr(original, image, filename, settings["hdr"])
        elif (link := _carried(image, settings)) is not None:
            with _naming(filename):
                data = _keep_or_drop(original, image, filename, link)
        else:
            original(image, fp, filename)
            return
        fp.write(data)

    return functools.update_wrapper(jpeg_save, original)


def _plugin_writes(image: Image.Image, settings: dict[str, Any]) -> bool:
    """Whether a JPEG save of ``image`` with these save options is the plugin's rather than Pillow's."""
    return _hdr_given(settings) or _carried(image, settings) is not None


def _hdr_given(settings: dict[str, Any]) -> bool:
    # Identity, not equality: hdr is usually an array.
    hdr = settings.get("hdr")
    return hdr is not None and hdr is not False


def _carried(image: Image.Image, settings: dict[str, Any]) -> GainMapLink | EditedLink | None:
    """The usable gain map of the file or edit ``image`` came from, unless ``hdr=False`` drops it."""
    link = image.info.get(INFO_KEY)
    if settings.get("hdr") is False or not isinstance(link, GainMapLink | EditedLink) or link.hdr is None:
        return None
    return link


def _is_path(fp: Any) -> TypeGuard[str | bytes | os.PathLike[str] | os.PathLike[bytes]]:
    return isinstance(fp, str | bytes | os.PathLike)


def _describe(fp: Any) -> str:
    name = fp if _is_path(fp) else getattr(fp, "name", None)
    return os.fsdecode(name) if _is_path(name) else "to the stream"


def _target_format(fp: Any, format: str | None) -> str | None:
    """The format Pillow will save in, found as Pillow finds it; None where Pillow will refuse."""
    if format:
        return format.upper()
    name = fp if _is_path(fp) else getattr(fp, "name", None)
    if not _is_path(name):
        return None
    extension = os.path.splitext(os.fsdecode(name))[1].lower()
    Image.preinit()
    if extension not in Image.EXTENSION:
        Image.init()
    found = Image.EXTENSION.get(extension)
    return found.upper() if found else None


class _NamedBuffer(io.BytesIO):
    """An in-memory file that carries the target's name, as Pillow's handlers expect of a file.

    Pillow takes the name for the file name it passes to the handler (so errors can name it),
    and notices through it that an image is being saved over the file it was read from.
    """

    def __init__(self, name: str) -> None:
        """An empty buffer called ``name``."""
        super().__init__()
        self.name = name


@contextmanager
def _naming(filename: str | bytes) -> Iterator[None]:
    """Put the file being saved into the message of a library error raised inside."""
    try:
        yield
    except GainmapError as exc:
        if not filename:
            raise
        raise type(exc)(f"cannot save {os.fsdecode(filename)}: {exc}") from exc


def _pillow_jpeg(original: SaveHandler, image: Image.Image, filename: str | bytes) -> bytes:
    buffer = io.BytesIO()
    original(image, buffer, filename)
    return buffer.getvalue()


def _keep_or_drop(
    original: SaveHandler, image: Image.Image, filename: str | bytes, link: GainMapLink | EditedLink
) -> bytes:
    """The new file with the gain map put back, or without it and a warning saying why."""
    assert link.hdr is not None
    origin = link.origin if isinstance(link, EditedLink) else link
    unchanged = options.KEEP_ON_SAVE and link.unchanged(image)
    if unchanged and isinstance(link, GainMapLink) and not _encoding_options(image.encoderinfo):
        return link.data
    base = _pillow_jpeg(original, _with_source_defaults(image, origin), filename)
    if not options.KEEP_ON_SAVE:
        return _dropped(base, "keep_on_save is off")
    if not unchanged:
        return _dropped(base, f"the pixels differ from the {_made_for(link)} the gain map was made for")
    kept = link.write(base) if isinstance(link, EditedLink) else link.hdr.carry_to(base)
    if link.hdr.metadata.kind != "gainmlp":
        problem = _unreadable(kept)
        if problem is not None:
            return _dropped(base, problem)
    return kept


def _made_for(link: GainMapLink | EditedLink) -> str:
    """How a drop warning names the pixels the gain map was made for."""
    if isinstance(link, EditedLink):
        width, height = link.placement.size
        return f"{width}x{height} edited image"
    return f"{link.size[0]}x{link.size[1]} {link.mode} base"


def _encoding_options(settings: dict[str, Any]) -> set[str]:
    """The save options that ask for an encoding of their own (anything but the plugin's ``hdr*``)."""
    return set(settings) - set(HDR_OPTIONS)


def _with_source_defaults(image: Image.Image, origin: GainMapLink) -> Image.Image:
    """``image`` with the source file's quality, subsampling and ICC profile as save defaults.

    Options the caller gave win; ``qtables`` given also leaves out the default quality.
    """
    settings = image.encoderinfo
    defaults: dict[str, Any] = {}
    if "quality" not in settings and "qtables" not in settings:
        defaults["quality"] = origin.quality
    if "subsampling" not in settings:
        defaults["subsampling"] = origin.subsampling
    icc = image.info.get("icc_profile")
    if icc and "icc_profile" not in settings:
        defaults["icc_profile"] = icc
    image.encoderinfo = {**defaults, **settings}
    return image


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
        # Frames: this, _keep_or_drop, the handler, Image.save, its wrapper, then the caller's.
        stacklevel=6,
    )
    return base


def _encode_with_hdr(original: SaveHandler, image: Image.Image, filename: str | bytes, hdr: Any) -> bytes:
    """Encode ``image`` as the base with Pillow, then fit and insert a GainMLP gain map."""
    from gainmap_format import codec

    info = image.encoderinfo
    encode_options = checked_encode_options(info.get("hdr_options"), "hdr_options")
    progress = info.get("hdr_progress")
    if progress is not None and not callable(progress):
        raise InputError(f"hdr_progress must be callable as progress(step, total, loss), not {progress!r:.80}")
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
            progress=progress,
        )
    return result.jpeg


def _hdr_input(hdr: Any, primaries: Any) -> tuple[np.ndarray, Chromaticities]:
    """The HDR pixels and their chromaticities from what the caller passed.

    Raises:
        InputError: ``primaries`` is neither a known name nor 8 chromaticities of a colour space.
    """
    if isinstance(hdr, HdrImage):
        return np.asarray(hdr), PRIMARIES[hdr.primaries]
    return np.asarray(hdr), resolve_chromaticities(primaries, "hdr_primaries")
