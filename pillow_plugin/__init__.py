"""Pillow plugin: ``Image.open`` on a gain-map JPEG gives the SDR image and, beside it, the HDR.

Importing the package registers it; :func:`register` does so explicitly and sets options::

    import numpy as np
    from PIL import Image
    import pillow_plugin  # registers

    im = Image.open("photo.jpg")          # the SDR base, exactly as Pillow gives it
    if im.hdr is not None:                # None for a plain JPEG
        hdr = np.asarray(im.hdr)          # float32 (H, W, 3), linear, 1.0 = SDR white
        im.hdr.primaries                  # "bt709", "display-p3" or "bt2020"
        im.hdr.metadata                   # kind, version, headrooms, sizes
        im.hdr.render(display_headroom=1.0)   # for a display twice as bright as SDR white
        im.hdr.pq(), im.hdr.absolute()    # BT.2020 PQ, or cd/m²

    im.save("out.jpg", hdr=hdr_array)     # a GainMLP gain-map JPEG; im is the SDR base

Files read: GainMLP (ours), ISO 21496-1, Ultra HDR / Adobe hdrgm XMP and Apple HDRGainMap.
Plain JPEGs, MPOs, progressive and CMYK JPEGs open exactly as without the plugin, apart from
``im.hdr = None``. An unusable gain map opens as the SDR base with a :class:`GainMapWarning`;
``im.hdr`` then raises the ``gainmap_format.GainmapError`` it describes (``ContainerError`` and
its kin for ours, ``StandardGainMapError`` for the others).

A save that the plugin handles (``hdr=``, or an image carrying a gain map) to a path never
damages the file it replaces: everything is computed in memory, then written to a temporary
file that is renamed over the target. For that, ``register`` wraps ``Image.Image.save`` (Pillow
empties a path target before any save handler runs); ``unregister`` restores it.

Geometric edits keep the gain map (:mod:`pillow_plugin.edits`): ``crop``, ``resize``, ``reduce``,
``thumbnail``, ``rotate`` (any angle, with or without ``expand``), ``transpose``, an AFFINE
``transform`` and ``ImageOps.exif_transpose`` give images with their own lazy ``.hdr``, and
chained edits compose into one transform::

    small = im.rotate(37, expand=True).crop((10, 10, 500, 400)).resize((245, 195))
    np.asarray(small.hdr)                 # the HDR of exactly those pixels
    small.save("small.jpg")               # a gain-map JPEG: the map follows the edits

``im.hdr`` is aligned with the pixels as stored, like Pillow's image (Exif orientation is not
applied); ``ImageOps.exif_transpose(im)`` turns both.

Saving without ``hdr=`` an image that carries a gain map: the opened image unchanged, with no
save options, writes the file as it was, byte for byte; an edited one writes its base at the
source's quality (not Pillow's 75) with the map that follows the edits; an image whose pixels were
changed otherwise (``point``, ``filter``, ``paste``, ImageDraw, ImageEnhance) is written without
it, with :class:`HdrDroppedWarning`, as is any save to another format (PNG, WebP, TIFF, AVIF);
``hdr=False`` drops it silently. Save options for ``hdr=``:
``hdr_primaries`` (name or 8 chromaticities of the array, default "bt709"), ``hdr_options``
(``gainmap_format.EncodeOptions``), ``hdr_progress`` (callback); every Pillow JPEG option
applies to the base, whose quality defaults to ``EncodeOptions.quality`` and subsampling to
4:4:4.
"""

from __future__ import annotations

import warnings
from typing import Any

from PIL import Image, JpegImagePlugin

from . import options
from .edits import EditedLink, unwrap_edits, wrap_edits
from .errors import GainMapWarning, HdrDroppedWarning
from .hdr import INFO_KEY, HdrImage, HdrMetadata
from .opener import GainMapJpegImageFile, GainMapMpoImageFile, wrap_factory
from .saver import wrap_image_save, wrap_save

__all__ = [
    "INFO_KEY",
    "EditedLink",
    "GainMapJpegImageFile",
    "GainMapMpoImageFile",
    "GainMapWarning",
    "HdrDroppedWarning",
    "HdrImage",
    "HdrMetadata",
    "options",
    "register",
    "unregister",
]


def register(**settings: Any) -> None:
    """Register the plugin with Pillow (idempotent) and set options.

    Args:
        **settings: option names of :mod:`pillow_plugin.options` in lower case, e.g.
            ``read_standard=False``, ``standard_sdr_white=203.0``, ``keep_on_save=True``.
            Unknown names warn and are ignored; a value of the wrong type raises TypeError.
    """
    for name, value in settings.items():
        expected = options.TYPES.get(name)
        if expected is None:
            warnings.warn(
                f"unknown pillow_plugin option {name!r}; known: {sorted(options.TYPES)}", stacklevel=2
            )
            continue
        if not isinstance(value, expected):
            raise TypeError(f"pillow_plugin option {name} must be {expected}, not {type(value).__name__}")
        setattr(options, name.upper(), value)
    factory, accept = Image.OPEN[JpegImagePlugin.JpegImageFile.format]
    if getattr(factory, "__wrapped__", None) is None:
        Image.register_open(JpegImagePlugin.JpegImageFile.format, wrap_factory(factory), accept)
    save = Image.SAVE[JpegImagePlugin.JpegImageFile.format]
    if getattr(save, "__wrapped__", None) is None:
        Image.register_save(JpegImagePlugin.JpegImageFile.format, wrap_save(save))
    if getattr(Image.Image.save, "__wrapped__", None) is None:
        Image.Image.save = wrap_image_save(Image.Image.save)  # type: ignore[method-assign]
    wrap_edits()


def unregister() -> None:
    """Give Pillow back its own JPEG open and save handlers, ``Image.save`` and geometric methods."""
    unwrap_edits()
    original_save = getattr(Image.Image.save, "__wrapped__", None)
    if original_save is not None:
        Image.Image.save = original_save  # type: ignore[method-assign]
    factory, accept = Image.OPEN[JpegImagePlugin.JpegImageFile.format]
    original_factory = getattr(factory, "__wrapped__", None)
    if original_factory is not None:
        Image.register_open(JpegImagePlugin.JpegImageFile.format, original_factory, accept)
    original_handler = getattr(Image.SAVE[JpegImagePlugin.JpegImageFile.format], "__wrapped__", None)
    if original_handler is not None:
        Image.register_save(JpegImagePlugin.JpegImageFile.format, original_handler)


register()
