"""Geometric edits keep the gain map: crop, resize, reduce, thumbnail, rotate, transpose, AFFINE transform.

Pillow's operations return plain ``Image.Image`` objects (``thumbnail`` and
``exif_transpose(in_place=True)`` change the image itself). :func:`wrap_edits` wraps those methods
so that, on an image that carries a usable gain map, the result carries one too:

- ``im.info["gain_map"]`` becomes an :class:`EditedLink`: the file the edits started from, one
  :class:`~gainmap_format.geometry.Placement` (chained edits compose into it) and a digest of the
  pixels the edit produced, which is how a later save tells an untouched result from one that was
  painted on;
- ``result.hdr`` is a lazy :class:`~pillow_plugin.hdr.HdrImage` of the result: for a GainMLP file
  the network evaluated at the placed coordinates over the result's own pixels
  (``gainmap_format.codec.decode_pixels``); for a standard file the map image transformed in step
  at its own resolution (bilinear), then ISO 21496-1's formula over the result's pixels.

Only the outermost call acts: Pillow's own methods call one another (``rotate`` calls
``transpose`` or ``transform``, ``resize`` calls ``reduce``, ``thumbnail`` calls ``resize``).
Operations that change pixel values (``point``, ``filter``, ``convert`` to another mode, ``paste``,
``ImageDraw``, ``ImageEnhance``) are not wrapped: their result carries the parent's link, whose
pixels no longer match, so saving it drops the map with ``HdrDroppedWarning`` (``hdr=`` still
writes a new one). ``QUAD``, ``PERSPECTIVE`` and ``MESH`` transforms are not affine and drop it
the same way.

The standard map's transform, rendering and writing are ``gainmap_format.edit``'s; this module
only ties them to Pillow's images.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import ExifTags, Image, ImageOps

from gainmap_format.edit import EditedMap, edited_map_size, render_edited, transform_gain_map, write_edited
from gainmap_format.geometry import EXIF_TRANSPOSES, Placement
from gainmap_format.jpeg import parse_jpeg, replace_segments
from gainmap_format.standard import StandardGainMap

from .hdr import INFO_KEY, GainMapLink, HdrImage, _OurSource, _RelativeSource, _Source, _StandardSource

if TYPE_CHECKING:
    from gainmap_format.codec import DecodedImage
    from gainmap_format.container import Container

#: Pillow methods whose result is a new image with the same pixels, placed elsewhere.
EDIT_METHODS = ("crop", "resize", "reduce", "rotate", "transpose", "transform", "copy")

#: Set while a wrapped edit runs, so that the Pillow methods it calls do not place their results again.
_EDITING = contextvars.ContextVar("pillow_plugin_editing", default=False)

#: Pillow's names of ``transform`` methods that are affine.
_AFFINE, _EXTENT = Image.Transform.AFFINE, Image.Transform.EXTENT


def fingerprint(image: Image.Image) -> bytes:
    """A digest of an image's mode, size and pixels: equal digests mean the same pixels."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.mode} {image.size}".encode())
    digest.update(image.tobytes())
    return digest.digest()


@dataclass(eq=False)
class EditedLink:
    """What an image made by geometric edits of a gain-map image carries in ``info["gain_map"]``.

    Attributes:
        origin: the link of the file the edits started from.
        placement: where the image's pixels lie in the origin's base (for a GainMLP file that
            was itself edited before, in the network's source image).
        digest: :func:`fingerprint` of the pixels the edit produced.
        hdr: the lazy HDR rendition of those pixels.
        error: always None (an unusable gain map is never edited).
    """

    origin: GainMapLink
    placement: Placement
    digest: bytes = field(repr=False)
    hdr: HdrImage
    error: None = None

    def unchanged(self, image: Image.Image) -> bool:
        """Whether ``image`` has exactly the pixels the edit produced."""
        return image.tell() == 0 and fingerprint(image) == self.digest

    def write(self, base_jpeg: bytes) -> bytes:
        """The gain map, transformed by the edits, put into ``base_jpeg`` (the edited pixels, encoded)."""
        return self.hdr.carry_to(base_jpeg)


def source_of(link: GainMapLink | EditedLink) -> tuple[GainMapLink, Placement]:
    """The file a link leads back to, and where the linked image lies in it."""
    if isinstance(link, EditedLink):
        return link.origin, link.placement
    return link, _initial_placement(link)


def _initial_placement(link: GainMapLink) -> Placement:
    """The placement of the file's own base: its container's for a GainMLP file (edited before, or the identity)."""
    assert link.hdr is not None
    source = link.hdr._source
    if isinstance(source, _OurSource):
        return _container(source).placement
    return Placement.identity(link.size)


def _container(source: _OurSource) -> Container:
    from gainmap_format.codec import read_container

    return read_container(source.data)


def follow(link: GainMapLink | EditedLink, placement: Placement, image: Image.Image) -> EditedLink:
    """The link of ``image``, made from the image ``link`` belongs to by an edit ending at ``placement``."""
    origin, _ = source_of(link)
    assert origin.hdr is not None
    source = origin.hdr._source
    edited: _Source
    if isinstance(source, _OurSource):
        edited = _EditedOurSource(source, placement, image)
    else:
        assert isinstance(source, _StandardSource)
        edited = _EditedStandardSource(source, placement, image)
    return EditedLink(origin, placement, fingerprint(image), HdrImage(edited))


def _pixels(image: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) of an edited image."""
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


class _EditedOurSource(_Source):
    """A GainMLP image after edits: the same network, asked at the placed coordinates."""

    def __init__(self, origin: _OurSource, placement: Placement, image: Image.Image) -> None:
        """Keep the file's source, the composed placement and the edited image."""
        self._origin = origin
        self._placement = placement
        self._image = image
        width, height = image.size
        self.metadata = replace(origin.metadata, width=width, height=height)

    def _decode(self, display_headroom: float | None, with_pq: bool) -> DecodedImage:
        from gainmap_format import codec

        container = _container(self._origin)
        return codec.decode_pixels(
            _pixels(self._image), container, placement=self._placement, display_headroom=display_headroom,
            with_pq=with_pq,
        )

    def relative(self, display_headroom: float | None) -> np.ndarray:
        return self._decode(display_headroom, with_pq=False).linear("sdr-white")

    def pq(self, display_headroom: float | None) -> np.ndarray:
        pq = self._decode(display_headroom, with_pq=True).pq
        if pq is None:  # pragma: no cover - decode_pixels keeps PQ when asked to
            raise AssertionError("decode_pixels(with_pq=True) returned no PQ values")
        return pq

    def absolute(self, display_headroom: float | None) -> np.ndarray:
        return self._decode(display_headroom, with_pq=False).linear("absolute")

    def carry_to(self, base_jpeg: bytes) -> bytes:
        """``base_jpeg`` with the container, its placement replaced by the composed one."""
        from gainmap_format import container as ctr

        segments = _container(self._origin).with_placement(self._placement).segments()
        return replace_segments(parse_jpeg(base_jpeg), segments, ctr.is_our_segment).to_bytes()


class _EditedStandardSource(_RelativeSource):
    """A standard gain-map image after edits: the map image transformed in step, ISO maths over the new base."""

    def __init__(self, origin: _StandardSource, placement: Placement, image: Image.Image) -> None:
        """Keep the file's source, the composed placement and the edited image."""
        self._gain_map: StandardGainMap = origin.gain_map
        self._placement = placement
        self._image = image
        self._map: EditedMap | None = None
        width, height = image.size
        map_width, map_height = edited_map_size(self._gain_map, placement)
        self.metadata = replace(
            origin.metadata, width=width, height=height, gain_map_width=map_width, gain_map_height=map_height,
            kind="iso21496-1",  # what the saved file carries, whatever the source's dialect
        )

    def edited_map(self) -> EditedMap:
        """The transformed map (computed once)."""
        if self._map is None:
            self._map = transform_gain_map(self._gain_map, self._placement)
        return self._map

    def relative(self, display_headroom: float | None) -> np.ndarray:
        return render_edited(self._gain_map, self.edited_map(), _pixels(self._image), display_headroom)

    def carry_to(self, base_jpeg: bytes) -> bytes:
        """``base_jpeg`` (its standard markings removed) with the transformed map: ISO 21496-1, hdrgm XMP, MPF."""
        return write_edited(base_jpeg, self.edited_map())


# --- Wrapping Pillow's methods -------------------------------------------------------------------

#: How each wrapped method moves pixels: (placement, image, bound arguments, result) -> placement,
#: or None when the call is not a geometric edit that this module follows.
Placer = Callable[[Placement, Image.Image, dict[str, Any]], Placement | None]


def _crop(placement: Placement, image: Image.Image, args: dict[str, Any]) -> Placement | None:
    box = args["box"]
    return placement if box is None else placement.crop(tuple(box))


def _resize(placement: Placement, image: Image.Image, args: dict[str, Any]) -> Placement | None:
    box = args["box"]
    return placement.resize(tuple(args["size"]), None if box is None else tuple(box))


def _reduce(placement: Placement, image: Image.Image, args: dict[str, Any]) -> Placement | None:
    box = args["box"]
    factor = args["factor"] if isinstance(args["factor"], int) else tuple(args["factor"])
    return placement.reduce(factor, None if box is None else tuple(box))


def _rotate(placement: Placement, image: Image.Image, args: dict[str, Any]) -> Placement | None:
    return placement.rotate(float(args["angle"]), bool(args["expand"]), args["center"], args["translate"])


def _transpose(placement: Placement, image: Image.Image, args: dict[str, Any]) -> Placement | None:
    return placement.transpose(int(args["method"]))


def _transform(placement: Placement, image: Image.Image, args: dict[str, Any]) -> Placement | None:
    method, data, size = args["method"], args["data"], tuple(args["size"])
    if hasattr(method, "getdata"):  # an ImageTransform handler object
        method, data = method.getdata()
    if method == _EXTENT:
        # Pillow's own conversion of an extent to an affine map.
        x0, y0, x1, y1 = data
        method, data = _AFFINE, ((x1 - x0) / size[0], 0.0, x0, 0.0, (y1 - y0) / size[1], y0)
    if method != _AFFINE:
        return None
    a, b, c, d, e, f = (float(v) for v in data[:6])
    return placement.affine(size, (a, b, c, d, e, f))


_PLACERS: dict[str, Placer] = {
    "crop": _crop,
    "resize": _resize,
    "reduce": _reduce,
    "rotate": _rotate,
    "transpose": _transpose,
    "transform": _transform,
    "copy": lambda placement, image, args: placement,
}


def usable_link(image: Image.Image) -> GainMapLink | EditedLink | None:
    """The usable gain map of an image that is the link's own: the opened file or an edit's result.

    ``info`` is copied into every derived image, so the link alone says nothing: only the image
    the link was attached to (``_gain_map_link`` of the opened file, ``hdr`` of a result) owns
    it. An edit's result is also checked against its digest, so that pixels painted over since
    (``paste``, ``ImageDraw``) are not edited further as if they were the gain map's. The opened
    file is trusted (checking it would decode the file again on every edit), on its first frame:
    an MPO's other frames are other images.
    """
    link = image.info.get(INFO_KEY)
    if not isinstance(link, GainMapLink | EditedLink) or link.hdr is None or image.tell() != 0:
        return None
    own = vars(image)
    if own.get("_gain_map_link") is not link and own.get("hdr") is not link.hdr:
        return None
    if isinstance(link, EditedLink) and not link.unchanged(image):
        return None
    return link


def _attach(image: Image.Image, link: EditedLink) -> None:
    """Make ``link`` the image's gain map: ``info``, and ``hdr`` (or the opened file's own link)."""
    image.info[INFO_KEY] = link
    if hasattr(image, "_gain_map_link"):
        image._gain_map_link = link
    else:
        image.hdr = link.hdr  # type: ignore[attr-defined]


def _placed(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (an ``Image.Image`` method), whose result follows the gain map of the image it is called on."""
    signature = inspect.signature(original)
    placer = _PLACERS[name]

    @functools.wraps(original)
    def method(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
        if _EDITING.get():
            return original(self, *args, **kwargs)
        link = usable_link(self)
        token = _EDITING.set(True)
        try:
            result = original(self, *args, **kwargs)
        finally:
            _EDITING.reset(token)
        if link is None or not isinstance(result, Image.Image):
            return result
        if name == "copy":
            # Same pixels, same place: the copy shares the link (an opened file's copy then
            # saves as the file itself).
            result.info[INFO_KEY] = link
            result.hdr = link.hdr  # type: ignore[attr-defined]
            return result
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        placement = placer(source_of(link)[1], self, bound.arguments)
        if placement is not None and placement.size == result.size:
            _attach(result, follow(link, placement, result))
        return result

    return method


def _thumbnail(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Image.thumbnail`` (in place): the whole image scaled to its new size."""

    @functools.wraps(original)
    def thumbnail(self: Image.Image, *args: Any, **kwargs: Any) -> Any:
        link = usable_link(self)
        token = _EDITING.set(True)
        try:
            result = original(self, *args, **kwargs)
        finally:
            _EDITING.reset(token)
        if link is not None:
            _, placement = source_of(link)
            if self.size != placement.size:
                _attach(self, follow(link, placement.resize(self.size), self))
        return result

    return thumbnail


def _exif_transpose(original: Callable[..., Any]) -> Callable[..., Any]:
    """``ImageOps.exif_transpose``: its in-place form bypasses ``transpose``, so it is followed here."""

    @functools.wraps(original)
    def exif_transpose(image: Image.Image, *, in_place: bool = False) -> Any:
        link = usable_link(image) if in_place else None
        method = EXIF_TRANSPOSES.get(image.getexif().get(ExifTags.Base.Orientation, 1)) if link is not None else None
        result = original(image, in_place=in_place)
        if link is not None and method is not None:
            _attach(image, follow(link, source_of(link)[1].transpose(method), image))
        return result

    return exif_transpose


def _blend(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Image.blend``, whose result also carries ``im2``'s gain-map link.

    The result takes ``im1``'s ``info``, and ``ImageEnhance.Brightness`` and ``Contrast`` put a
    new image there: carried over, the link lets a save notice the changed pixels and warn.
    """

    @functools.wraps(original)
    def blend(im1: Image.Image, im2: Image.Image, alpha: float) -> Image.Image:
        result: Image.Image = original(im1, im2, alpha)
        link = im2.info.get(INFO_KEY)
        if INFO_KEY not in result.info and link is not None:
            result.info[INFO_KEY] = link
        return result

    return blend


def wrap_edits() -> None:
    """Wrap Pillow's geometric methods, ``ImageOps.exif_transpose`` and ``Image.blend`` (idempotent)."""
    for name in EDIT_METHODS:
        current = getattr(Image.Image, name)
        if getattr(current, "__wrapped__", None) is None:
            setattr(Image.Image, name, _placed(name, current))
    if getattr(Image.Image.thumbnail, "__wrapped__", None) is None:
        Image.Image.thumbnail = _thumbnail(Image.Image.thumbnail)  # type: ignore[method-assign]
    if getattr(ImageOps.exif_transpose, "__wrapped__", None) is None:
        ImageOps.exif_transpose = _exif_transpose(ImageOps.exif_transpose)
    if getattr(Image.blend, "__wrapped__", None) is None:
        Image.blend = _blend(Image.blend)


def unwrap_edits() -> None:
    """Give Pillow back its own methods."""
    for name in (*EDIT_METHODS, "thumbnail"):
        original = getattr(getattr(Image.Image, name), "__wrapped__", None)
        if original is not None:
            setattr(Image.Image, name, original)
    original_exif = getattr(ImageOps.exif_transpose, "__wrapped__", None)
    if original_exif is not None:
        ImageOps.exif_transpose = original_exif
    original_blend = getattr(Image.blend, "__wrapped__", None)
    if original_blend is not None:
        Image.blend = original_blend
