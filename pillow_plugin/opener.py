"""Opening: wrap Pillow's JPEG factory the way its MPO support does, and add ``im.hdr``.

Pillow's ``jpeg_factory`` opens every JPEG and hands some to ``MpoImageFile.adopt``. This
module wraps that factory: Pillow opens the file exactly as before (same class, mode, size,
``info`` and pixels), then the wrapper looks at the APP segments Pillow already read. A plain
JPEG gets ``im.hdr = None`` and nothing else. A gain-map JPEG is adopted into a subclass of the
class Pillow chose (:class:`GainMapJpegImageFile` or :class:`GainMapMpoImageFile`) whose ``hdr``
property returns an :class:`~pillow_plugin.hdr.HdrImage`, and ``im.info["gain_map"]`` links it
to the file. The only extra reads are for files that may hold a gain map: the whole file for
one that announces it, and the first 64 KiB of each MPF image for an MPO, to see whether one of
them is a gain map (Apple files announce nothing in their primary image).

A gain map that cannot be used never stops the file from opening: it opens as its SDR base
with a :class:`~pillow_plugin.errors.GainMapWarning` that names the file, and ``im.hdr`` raises
the error. That holds for any exception the probe meets, not only the library's documented
``GainmapError``: Pillow turns some (``IndexError``, ``TypeError``, ``struct.error``) raised by
a factory into "cannot identify image file", and a file that plain Pillow opens must open here too.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from PIL import ImageFile, JpegImagePlugin, MpoImagePlugin

from gainmap_format import structs
from gainmap_format.errors import GainmapError, JpegError, StandardGainMapError
from gainmap_format.jpeg import JpegLayout, parse_jpeg
from gainmap_format.standard import HDRGM_NS, find_gain_map, is_gain_map_image, mpf_images, xmp_mentions

from . import options
from .errors import GainMapWarning
from .hdr import INFO_KEY, INTERNAL, GainMapLink, HdrImage, _OurSource, _Source, _StandardSource

if TYPE_CHECKING:
    from .edits import EditedLink

#: Largest file whose gain map is read into memory.
MAX_FILE_BYTES = 1 << 30

#: Largest header (SOI to first scan) read to find an MPF segment's offset.
MAX_HEADER_BYTES = 1 << 23

#: Bytes read from the start of each MPF image to look for a gain-map marking.
PEEK_BYTES = 1 << 16


class _HdrAttribute:
    """The ``hdr`` attribute of an image opened from a gain-map JPEG."""

    # The file's link; an in-place edit (thumbnail, exif_transpose(in_place=True)) replaces it.
    _gain_map_link: GainMapLink | EditedLink

    @property
    def hdr(self) -> HdrImage:
        """The HDR rendition (lazy); raises the gain map's error when it is unusable."""
        link = self._gain_map_link
        if link.hdr is None:
            assert link.error is not None
            raise copy.copy(link.error)
        return link.hdr


class GainMapJpegImageFile(_HdrAttribute, JpegImagePlugin.JpegImageFile):
    """A JPEG that Pillow opens as ``JpegImageFile`` and that carries a gain map."""


class GainMapMpoImageFile(_HdrAttribute, MpoImagePlugin.MpoImageFile):
    """A JPEG that Pillow opens as an MPO (ISO-only Ultra HDR, Apple) and that carries a gain map."""


_ADOPTED = {
    JpegImagePlugin.JpegImageFile: GainMapJpegImageFile,
    MpoImagePlugin.MpoImageFile: GainMapMpoImageFile,
}


#: Pillow's open factory for a format, as ``Image.OPEN`` holds it.
Factory = Callable[[IO[bytes], str | bytes], ImageFile.ImageFile]


def wrap_factory(original: Factory) -> Factory:
    """Pillow's JPEG factory, followed by the gain-map probe."""

    def jpeg_factory(fp: IO[bytes], filename: str | bytes) -> ImageFile.ImageFile:
        image = original(fp, filename)
        if INTERNAL.get() or type(image) not in _ADOPTED:
            return image
        assert isinstance(image, JpegImagePlugin.JpegImageFile)  # every _ADOPTED class is one
        link = _probe(image)
        # Pillow's classes do not declare these attributes; the plugin adds them to the instance.
        if link is None:
            image.hdr = None  # type: ignore[attr-defined]
        else:
            image.__class__ = _ADOPTED[type(image)]
            image._gain_map_link = link  # type: ignore[attr-defined]
            image.info[INFO_KEY] = link
        return image

    return functools.update_wrapper(jpeg_factory, original)


def _probe(image: JpegImagePlugin.JpegImageFile) -> GainMapLink | None:
    """The gain map of a freshly opened JPEG, or None; a damaged one becomes a warning."""
    hints = _hints(image.applist)
    if not hints:
        return None
    fp = image.fp
    if fp is None:
        return None
    position = fp.tell()
    try:
        if hints == {"mpf"} and not _mpf_image_marked(fp):
            return None
        data = _read_all(fp)
        return _link(image, data, hints)
    except Exception as exc:  # any failure must still leave the SDR base open (module notes)
        error = _as_gainmap_error(exc)
        named = f"{os.fsdecode(image.filename)}: " if image.filename else ""
        warnings.warn(
            GainMapWarning(f"{named}the gain map is unusable, so the image opened as its SDR base: {error}"),
            stacklevel=5,
        )
        return GainMapLink(data=b"", mode=image.mode, size=image.size, error=error)
    finally:
        fp.seek(position)


def _as_gainmap_error(exc: Exception) -> GainmapError:
    """The library's error for a failed probe: a ``GainmapError`` as it is, anything else wrapped.

    The library raises only ``GainmapError`` on bad input; anything else reaching here is a bug,
    which the message says, while the file still opens.
    """
    if isinstance(exc, GainmapError):
        return exc
    if isinstance(exc, OSError):
        error = StandardGainMapError(f"cannot read the file: {exc}")
    else:
        error = StandardGainMapError(
            f"reading the gain map failed with {type(exc).__name__}: {exc} (a bug in gainmap_format; please report it)"
        )
    error.__cause__ = exc
    return error


def _hints(applist: list[tuple[str, bytes]]) -> set[str]:
    """What the primary's APP segments suggest: "gainmlp", "standard", "mpf"."""
    hints = set()
    for marker, payload in applist:
        if marker == "APP15" and payload.startswith(structs.SEGMENT_IDENTIFIER):
            hints.add("gainmlp")
        elif marker == "APP2" and payload.startswith(structs.ISO_IDENTIFIER):
            hints.add("standard")
        elif marker == "APP1" and payload.startswith(structs.XMP_IDENTIFIER) and xmp_mentions(payload, HDRGM_NS):
            hints.add("standard")
        elif marker == "APP2" and payload.startswith(structs.MPF_IDENTIFIER):
            hints.add("mpf")
    if not options.READ_STANDARD:
        hints &= {"gainmlp"}
    return hints


def _link(image: JpegImagePlugin.JpegImageFile, data: bytes, hints: set[str]) -> GainMapLink | None:
    source: _Source
    if "gainmlp" in hints:
        source = _our_source(data, image.size)
    else:
        gain_map = find_gain_map(data)
        if gain_map is None:
            return None
        if gain_map.base_size != image.size:
            raise StandardGainMapError(
                f"the primary's frame header says {gain_map.base_size}, Pillow opened {image.size}"
            )
        source = _StandardSource(gain_map, options.STANDARD_SDR_WHITE)
    return GainMapLink(data=data, mode=image.mode, size=image.size, hdr=HdrImage(source))


def _our_source(data: bytes, size: tuple[int, int]) -> _OurSource:
    """Check our container and graph now, so that a damaged file warns when it opens."""
    from gainmap_format.codec import check_base_size, read_container
    from gainmap_format.container import is_our_segment
    from gainmap_format.graph import check_graph

    container = read_container(data)
    metadata = container.metadata
    check_base_size(size, (metadata.width, metadata.height), "JPEG base image")
    check_graph(container.graph, metadata.activation, metadata.hidden_width)
    segments = tuple(s for s in parse_jpeg(data).segments if is_our_segment(s))
    return _OurSource(data, metadata, segments)


def _read_all(fp: IO[bytes]) -> bytes:
    size = fp.seek(0, os.SEEK_END)
    if size > MAX_FILE_BYTES:
        raise StandardGainMapError(
            f"file of {size} bytes is over the {MAX_FILE_BYTES}-byte bound for gain maps"
        )
    fp.seek(0)
    return fp.read()


def _mpf_image_marked(fp: IO[bytes]) -> bool:
    """Whether any image the MPF segment lists after the primary starts with a gain-map marking."""
    layout = _read_header(fp)
    if layout is None:
        return False
    try:
        images = mpf_images(layout)
    except StandardGainMapError:
        return False
    for image in images[1:]:
        fp.seek(image.offset)
        if is_gain_map_image(fp.read(PEEK_BYTES)):
            return True
    return False


def _read_header(fp: IO[bytes]) -> JpegLayout | None:
    """The primary's segments with their file offsets, reading only as far as the first scan."""
    fp.seek(0)
    buffer = fp.read(PEEK_BYTES)
    while True:
        try:
            return parse_jpeg(buffer)
        except JpegError:
            # Either the header goes on past what was read, or the file is not one we can
            # parse; reading on until the bound tells the two apart.
            more = fp.read(len(buffer)) if len(buffer) < MAX_HEADER_BYTES else b""
            if not more:
                return None
            buffer += more


__all__ = ["GainMapJpegImageFile", "GainMapMpoImageFile", "wrap_factory"]
