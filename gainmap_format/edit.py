"""Editing a gain-map JPEG of any kind: crop, resize, rotate, transpose and auto-orient, keeping its HDR.

The file-level face of the Pillow plugin's edits (:mod:`pillow_plugin.edits`), for the
``gainmap edit`` command and for programs that hold bytes rather than images. The file is opened
through the plugin, the operations are applied in the order given with Pillow's own methods, and
the result is saved as the plugin saves any edited image:

- GainMLP: the base re-encoded at the source's quality (4:4:4), the same network with the edits'
  composed placement (format 2.1; no refit);
- ISO 21496-1, Ultra HDR, Apple: the base re-encoded at the source's quality and subsampling, the
  map image transformed in step at its own resolution, written as ISO 21496-1 + hdrgm XMP + MPF
  (an Apple map becomes ISO 21496-1).

The user's Exif (its orientation removed by :class:`AutoOrient`), ICC profile and XMP (less the
gain-map properties) are kept. Every output size is checked against
:data:`~gainmap_format.limits.MAX_PIXELS` before any pixel is decoded.
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from .adaptation import iso21496_weight
from .atomic import write_bytes
from .colour import PRIMARIES, bt709_inverse_oetf, convert_primaries, srgb_decode
from .errors import GainmapError, InputError, JpegError, NoGainMapError
from .export import read_named
from .geometry import EXIF_TRANSPOSES, Matrix, Placement, apply, compose
from .jpeg import estimate_quality
from .limits import check_pixel_count
from .standard import StandardGainMap, StandardGainMapMetadata
from .standard.apply import apply_iso
from .standard.decode import decode_jpeg
from .standard.write import strip_standard, write_gain_map_file

#: The Exif tag of the orientation.
_ORIENTATION = 0x0112

#: ``--transpose`` names and Pillow's ``Image.Transpose`` values.
TRANSPOSES = {
    "flip-left-right": 0,
    "flip-top-bottom": 1,
    "rotate-90": 2,
    "rotate-180": 3,
    "rotate-270": 4,
    "transpose": 5,
    "transverse": 6,
}


@dataclass(frozen=True)
class Crop:
    """Keep the window of ``width`` x ``height`` pixels at (``x``, ``y``); parts outside the image are black."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Resize:
    """Scale to ``width`` x ``height`` pixels (Pillow's bicubic resize, antialiased)."""

    width: int
    height: int


@dataclass(frozen=True)
class Rotate:
    """Rotate ``degrees`` counter-clockwise (bicubic); ``expand`` keeps the whole image, black in the corners."""

    degrees: float
    expand: bool = True


@dataclass(frozen=True)
class Transpose:
    """Flip or rotate by quarter turns: one of :data:`TRANSPOSES`."""

    method: str


@dataclass(frozen=True)
class AutoOrient:
    """Turn the pixels upright as the Exif orientation says and remove the orientation (``ImageOps.exif_transpose``)."""


Operation = Crop | Resize | Rotate | Transpose | AutoOrient


def edit(
    source: bytes | str | os.PathLike[str], operations: Sequence[Operation], *, quality: int | None = None
) -> bytes:
    """Apply geometric operations to a gain-map JPEG of any kind; the gain map follows them.

    Args:
        source: the file's bytes or path.
        operations: applied in order; at least one.
        quality: JPEG quality (1-100) of the re-encoded base; None takes the source's own,
            estimated from its quantisation tables.

    Returns:
        The edited gain-map JPEG.

    Raises:
        InputError: no operation, a bad one (an empty crop, an unknown transpose, a size over
            :data:`~gainmap_format.limits.MAX_PIXELS`), a bad quality, or an unreadable file.
        NoGainMapError: the JPEG holds no gain map.
        JpegError, ContainerError, StandardGainMapError: a damaged input, as the readers raise
            (a base that Pillow cannot decode is a JpegError).
    """
    import pillow_plugin

    if not operations:
        raise InputError("no operation given: crop, resize, rotate, transpose or auto-orient")
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100):
        raise InputError(f"quality {quality!r} is not an integer from 1 to 100")
    data, name = read_named(source)
    pillow_plugin.register()
    try:
        image = _open(data, name)
        _check_sizes(image, operations, name)
        image = _applied(image, operations, name)
        return _save(image, name, quality)
    except GainmapError as exc:
        if str(exc).startswith(f"{name}: "):
            raise
        raise type(exc)(f"{name}: {exc}") from exc


def _applied(image: Image.Image, operations: Sequence[Operation], name: str) -> Image.Image:
    """The operations applied in order."""
    try:
        for operation in operations:
            image = _apply(image, operation)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow decodes the base on the first operation: a damaged one fails there.
        raise JpegError(f"{name}: cannot decode the base image ({exc})") from exc
    return image


def edit_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    operations: Sequence[Operation],
    *,
    quality: int | None = None,
) -> bytes:
    """:func:`edit` a file and write the result atomically (an existing file is replaced only on success).

    Args:
        input_path: the gain-map JPEG.
        output_path: where to write the result.
        operations: as for :func:`edit`.
        quality: as for :func:`edit`.

    Returns:
        The bytes written.
    """
    result = edit(os.fspath(input_path), operations, quality=quality)
    write_bytes(output_path, result)
    return result


def _open(data: bytes, name: str) -> Image.Image:
    """The file opened through the plugin, refused unless it carries a usable gain map."""
    from pillow_plugin import GainMapWarning

    with warnings.catch_warnings():
        # A damaged gain map opens as SDR with a warning; im.hdr then raises its error.
        warnings.simplefilter("ignore", GainMapWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise InputError(f"{name}: is not an image Pillow can open") from exc
        except OSError as exc:
            raise InputError(f"{name}: cannot be read as an image ({exc})") from exc
    if image.format != "JPEG" and image.format != "MPO":
        raise InputError(f"{name}: is a {image.format} file, not a gain-map JPEG")
    if image.hdr is None:  # type: ignore[attr-defined]
        raise NoGainMapError(f"{name}: holds no gain map (neither GainMLP nor ISO 21496-1, Ultra HDR or Apple)")
    return image


def _check_sizes(image: Image.Image, operations: Sequence[Operation], name: str) -> None:
    """Follow the sizes through the operations before any pixel is decoded."""
    check_pixel_count(*image.size, name)
    placement = Placement.identity(image.size)
    orientation = image.getexif().get(_ORIENTATION, 1)
    for index, operation in enumerate(operations, start=1):
        where = f"{name}: operation {index} ({_describe(operation)})"
        try:
            placement = _placed(placement, operation, orientation)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from exc
        if isinstance(operation, AutoOrient):
            orientation = 1
        check_pixel_count(*placement.size, where)


def _placed(placement: Placement, operation: Operation, orientation: int) -> Placement:
    """Where the image lies after ``operation`` (its size is what matters here)."""
    if isinstance(operation, Crop):
        return placement.crop((operation.x, operation.y, operation.x + operation.width, operation.y + operation.height))
    if isinstance(operation, Resize):
        return placement.resize((operation.width, operation.height))
    if isinstance(operation, Rotate):
        return placement.rotate(operation.degrees, operation.expand)
    if isinstance(operation, Transpose):
        if operation.method not in TRANSPOSES:
            raise InputError(f"transpose {operation.method!r} is not one of {sorted(TRANSPOSES)}")
        return placement.transpose(TRANSPOSES[operation.method])
    method = EXIF_TRANSPOSES.get(orientation)
    return placement if method is None else placement.transpose(method)


def _describe(operation: Operation) -> str:
    return type(operation).__name__.lower()


def _apply(image: Image.Image, operation: Operation) -> Image.Image:
    if isinstance(operation, Crop):
        return image.crop((operation.x, operation.y, operation.x + operation.width, operation.y + operation.height))
    if isinstance(operation, Resize):
        return image.resize((operation.width, operation.height), Image.Resampling.BICUBIC)
    if isinstance(operation, Rotate):
        return image.rotate(operation.degrees, Image.Resampling.BICUBIC, expand=operation.expand)
    if isinstance(operation, Transpose):
        return image.transpose(Image.Transpose(TRANSPOSES[operation.method]))
    return ImageOps.exif_transpose(image)


def _save(image: Image.Image, name: str, quality: int | None) -> bytes:
    """The edited image saved by the plugin, with the source's Exif and XMP; a dropped gain map is an error."""
    from pillow_plugin import HdrDroppedWarning

    params: dict[str, Any] = {key: image.info[key] for key in ("exif", "xmp") if image.info.get(key)}
    if quality is not None:
        params["quality"] = quality
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HdrDroppedWarning)
        image.save(buffer, "JPEG", **params)
    for warning in caught:
        if issubclass(warning.category, HdrDroppedWarning):
            raise InputError(f"{name}: the edited file could not keep its gain map: {warning.message}")
        warnings.warn(warning.message, stacklevel=3)
    return buffer.getvalue()


# --- Standard gain maps follow a placement ----------------------------------------------------
#
# A standard map covers its base at its own resolution and is sampled the way libultrahdr
# samples it (map sample 0 on base pixel 0, see ``standard.resample``); the transform of the map
# is set up in that convention for the source map and the edited one alike. An edited Apple map
# is rewritten in ISO 21496-1 terms (log2 gain from 0 to log2 headroom), which is what the saved
# file carries.

#: Edge samples added around a map before it is transformed: in libultrahdr's convention the
#: source base's last pixels sample up to half a map sample beyond the map's border, where
#: Pillow's transform would give its fill; the decoders clamp to the border there instead.
_MAP_PAD = 1


@dataclass(frozen=True)
class EditedMap:
    """A standard gain map transformed with its base.

    Attributes:
        codes: uint8 (h, w, 1 or 3), the map image's code values.
        metadata: what they mean, in ISO 21496-1 terms (an Apple map converted).
        icc_profile: the source map image's ICC profile (the gain's colour space when the
            metadata does not use the base's), or None.
        quality: the JPEG quality the source map was encoded at (estimated).
    """

    codes: np.ndarray = field(repr=False)
    metadata: StandardGainMapMetadata
    icc_profile: bytes | None
    quality: int


@functools.cache
def _srgb_table() -> np.ndarray:
    """float32 (256,): the sRGB EOTF of each 8-bit code, as standard readers linearise a base."""
    return srgb_decode(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def _xmp_expressible(meta: StandardGainMapMetadata) -> bool:
    """Whether hdrgm XMP attributes can say what the metadata says (one channel, an SDR base)."""
    per_channel = (meta.gain_map_min, meta.gain_map_max, meta.gamma, meta.base_offset, meta.alternate_offset)
    return not meta.base_is_hdr and all(len(set(values)) == 1 for values in per_channel)


def edited_map_size(gain_map: StandardGainMap, placement: Placement) -> tuple[int, int]:
    """The edited map's size: the edited base's at the source map's scale per axis, at least 1x1.

    An edit that reaches outside the source image (a rotation with ``expand``, a crop box beyond
    the image) gets a map of the edited base's own size instead: Pillow fills the base there
    with black, the map must be neutral there, and only a full-resolution map can follow that
    boundary, which crosses the map's samples, without putting the neutral gain on the pixels
    inside it (about 30 dB at a 37-degree rotation with a quarter-size map, against 45 dB).
    """
    (width, height), (source_width, source_height) = placement.size, placement.source_size
    if _reaches_outside(placement):
        return placement.size
    map_width, map_height = gain_map.gain_map_size
    return (max(1, round(width * map_width / source_width)), max(1, round(height * map_height / source_height)))


def _reaches_outside(placement: Placement) -> bool:
    """Whether any edited pixel's centre lies outside the source image (checked at the four corner pixels)."""
    width, height = placement.size
    corners = ((0.5, 0.5), (width - 0.5, 0.5), (0.5, height - 0.5), (width - 0.5, height - 0.5))
    source_width, source_height = placement.source_size
    return any(
        not (0.0 <= x < source_width and 0.0 <= y < source_height)
        for x, y in (apply(placement.matrix, cx, cy) for cx, cy in corners)
    )


def map_matrix(placement: Placement, source_map_size: tuple[int, int], map_size: tuple[int, int]) -> Matrix:
    """AFFINE ``data`` taking the source map image to the edited one, in libultrahdr's sampling convention.

    Map sample j lies on base pixel j times the base-to-map ratio (sample 0 on pixel 0), so in
    continuous coordinates map u corresponds to base (u - 1/2) ratio + 1/2, for the edited map
    against the edited base and the source map against the source base alike.
    """
    source_width, source_height = placement.source_size
    sx, sy = source_map_size[0] / source_width, source_map_size[1] / source_height
    to_map: Matrix = (sx, 0.0, 0.5 - 0.5 * sx, 0.0, sy, 0.5 - 0.5 * sy)
    return compose(to_map, _map_to_source_base(placement, map_size))


def _map_to_source_base(placement: Placement, map_size: tuple[int, int]) -> Matrix:
    """Edited map (continuous coordinates) -> edited base -> source base, in libultrahdr's convention."""
    rx, ry = placement.size[0] / map_size[0], placement.size[1] / map_size[1]
    to_base: Matrix = (rx, 0.0, 0.5 - 0.5 * rx, 0.0, ry, 0.5 - 0.5 * ry)
    return compose(placement.matrix, to_base)


def _outside_source(placement: Placement, map_size: tuple[int, int]) -> np.ndarray:
    """bool (h, w): edited map samples whose base pixel lies outside the source image."""
    a, b, c, d, e, f = _map_to_source_base(placement, map_size)
    u = np.arange(map_size[0], dtype=np.float64)[None, :] + 0.5
    v = np.arange(map_size[1], dtype=np.float64)[:, None] + 0.5
    x, y = a * u + b * v + c, d * u + e * v + f
    width, height = placement.source_size
    outside: np.ndarray = (x < 0) | (x >= width) | (y < 0) | (y >= height)
    return outside


def _neutral_codes(meta: StandardGainMapMetadata, channels: int) -> np.ndarray:
    """float32 (channels,): the code value of log2 gain 0 (HDR = base) per map channel, within 0-255."""
    codes = []
    for c in range(channels):
        low, high, gamma = meta.gain_map_min[c], meta.gain_map_max[c], meta.gamma[c]
        unit = min(max((0.0 - low) / (high - low), 0.0), 1.0) if high > low else 0.0
        codes.append(255.0 * unit**gamma)
    return np.array(codes, dtype=np.float32)


def transform_gain_map(gain_map: StandardGainMap, placement: Placement) -> EditedMap:
    """Transform a standard map image with its base's edits, at its own resolution.

    Args:
        gain_map: the source file's map.
        placement: the edits, from the source base to the edited base.

    Returns:
        The edited map; an Apple map is converted to ISO 21496-1 log2 gains first. Where the
        edited base lies outside the source (the corners of a rotation with ``expand``, a crop
        box beyond the image), the map is neutral (log2 gain 0), so Pillow's black fill stays
        black; inside, samples near the source map's border take the border's value.

    Raises:
        StandardGainMapError: the map image cannot be decoded.
    """
    codes = decode_jpeg(gain_map.gain_map_jpeg, f"gain-map image at offset {gain_map.gain_map_offset}")
    values, metadata = _iso_values(codes, gain_map.metadata)
    size = edited_map_size(gain_map, placement)
    matrix = map_matrix(placement, gain_map.gain_map_size, size)
    padded = np.pad(values, ((_MAP_PAD, _MAP_PAD), (_MAP_PAD, _MAP_PAD), (0, 0)), mode="edge")
    a, b, c, d, e, f = matrix
    shifted: Matrix = (a, b, c + _MAP_PAD, d, e, f + _MAP_PAD)
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(padded[..., k])).transform(
                size, Image.Transform.AFFINE, shifted, Image.Resampling.BILINEAR
            )
        )
        for k in range(padded.shape[2])
    ]
    transformed = np.stack(planes, axis=-1)
    transformed[_outside_source(placement, size)] = _neutral_codes(metadata, transformed.shape[2])
    edited = np.clip(np.rint(transformed), 0, 255).astype(np.uint8)
    with JpegImagePlugin.JpegImageFile(io.BytesIO(gain_map.gain_map_jpeg)) as image:
        icc = image.info.get("icc_profile")
    return EditedMap(edited, metadata, icc or None, estimate_quality(gain_map.gain_map_jpeg))


def _iso_values(codes: np.ndarray, meta: StandardGainMapMetadata) -> tuple[np.ndarray, StandardGainMapMetadata]:
    """float32 (h, w, C) code values 0-255 in ISO 21496-1 terms, and their metadata.

    ISO and hdrgm maps are already; an Apple map's gain 1 + (h - 1) g, g its BT.709-linearised
    sample, becomes log2 gain over 0 to log2 h with no offsets, which ISO's formula renders the
    same (weights included: both raise the gain to the weight).
    """
    if meta.apple_headroom is None:
        return codes.astype(np.float32), replace(meta, kind="iso21496-1", version="0.0")
    headroom = meta.apple_headroom
    stops = math.log2(headroom) if headroom > 1.0 else 2.0**-10
    linear = bt709_inverse_oetf(codes[..., :1].astype(np.float64) / 255.0)
    log_gain = np.log2(1.0 + (headroom - 1.0) * linear)
    values = (255.0 * log_gain / stops).astype(np.float32)
    iso = StandardGainMapMetadata(
        kind="iso21496-1", version="0.0", base_headroom=0.0, alternate_headroom=stops,
        gain_map_min=(0.0,) * 3, gain_map_max=(stops,) * 3,
    )
    return values, iso


def render_edited(
    gain_map: StandardGainMap, edited: EditedMap, base: np.ndarray, display_headroom: float | None = None
) -> np.ndarray:
    """The HDR of an edited base with its transformed map, as a standard reader renders the saved file.

    Args:
        gain_map: the source file's map (its primaries).
        edited: :func:`transform_gain_map` of it.
        base: uint8 (H, W, 3), the edited base's code values.
        display_headroom: log2 of the display's peak over SDR white; None for the fullest rendition.

    Returns:
        float32 (H, W, 3), linear light in ``gain_map.primaries``, 1.0 = SDR white.
    """
    meta = edited.metadata
    headroom = meta.max_headroom if display_headroom is None else display_headroom
    weight = iso21496_weight(headroom, meta.base_headroom, meta.alternate_headroom)
    linear = _srgb_table()[base]
    if gain_map.primaries != gain_map.base_primaries:
        linear = convert_primaries(linear, PRIMARIES[gain_map.base_primaries], PRIMARIES[gain_map.primaries])
    return apply_iso(linear, edited.codes, meta, weight)


def write_edited(base_jpeg: bytes, edited: EditedMap) -> bytes:
    """``base_jpeg`` (its standard markings removed) with the transformed map: ISO 21496-1, hdrgm XMP, MPF.

    Args:
        base_jpeg: the edited base, encoded (the user's Exif, ICC and XMP in it are kept).
        edited: :func:`transform_gain_map` of the source's map.

    Returns:
        The gain-map JPEG; hdrgm XMP is written too when the metadata has an attribute form.
    """
    pixels = edited.codes[..., 0] if edited.codes.shape[2] == 1 else edited.codes
    buffer = io.BytesIO()
    extra: dict[str, Any] = {"icc_profile": edited.icc_profile} if edited.icc_profile else {}
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "JPEG", quality=edited.quality, subsampling=0, **extra)
    return write_gain_map_file(
        strip_standard(base_jpeg), buffer.getvalue(), edited.metadata, xmp=_xmp_expressible(edited.metadata)
    )
