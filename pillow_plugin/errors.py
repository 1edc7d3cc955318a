"""Warnings of the plugin. Errors are the library's: every one is a ``gainmap_format.GainmapError``."""

from __future__ import annotations


class GainMapWarning(UserWarning):
    """A JPEG carries a gain map that cannot be used; the image opened as its SDR base.

    The message names what is wrong (segment, offset, field). Asking for ``im.hdr`` on such an
    image raises the ``GainmapError`` that the warning describes.
    """


class HdrDroppedWarning(GainMapWarning):
    """Saving an image that came from a gain-map JPEG wrote it without its gain map.

    The pixels no longer match the base the gain map was made for (or ``keep_on_save`` is off),
    so the gain map would give wrong HDR. Pass ``hdr=`` to ``save`` to write a new one, or
    ``hdr=False`` to drop it without this warning.
    """
