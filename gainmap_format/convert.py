"""Converting gain-map JPEGs: standard ones to GainMLP, and any one to a standard ISO 21496-1 file.

To GainMLP (:func:`convert`, ``gainmap convert IN -o OUT.jpg``): the source's fullest HDR
rendition, as the standard reader decodes it, is the target; the network is fitted to it from
the base as decoded. The output is the source's primary image with its entropy-coded data byte
for byte, its Exif, ICC, IPTC and the user's own XMP properties, plus our APP15 segments. The
standard map image, MPF, the ISO 21496-1 APP2 segments and the hdrgm / GContainer XMP
properties are removed, unless ``keep_standard`` keeps the map (then still valid for standard
readers, and our reader prefers the network). Other images after the primary (an Apple depth
map, say) are dropped.

Conventions carried through:

- SDR white: standard maps record no absolute luminance; ITU-R BT.2408's 203 cd/m²
  (:data:`~gainmap_format.export.STANDARD_SDR_WHITE`, what the Pillow plugin uses) is
  written into the container's ``sdr_white_luminance``, and the base is placed at it in the PQ
  domain, so that ``absolute()`` and ``pq()`` of the source and of the output agree.
- The base: sRGB transfer, as every standard writer assumes, and the primaries of its ICC
  profile (BT.709 when it has none that is recognised).
- Headrooms: the source's base and alternate headrooms, so that one ISO 21496-1 weight
  renders both files for a display. Between the end points the two files interpolate
  differently (our residual in PQ, theirs in log2 gain); the end points agree.

To ISO 21496-1 (``to="iso"``): from any gain-map JPEG, ours included, a standard file as current
Android writes it (:func:`~gainmap_format.standard.write.write_gain_map_file`), the base kept
byte for byte and the map computed against the base as standard readers linearise it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import container as ctr
from .atomic import write_bytes
from .codec import decode_base, encode_prepared, fit_inputs
from .colour import PRIMARIES, PrimariesName, TransferName, convert_primaries
from .errors import InputError, NoGainMapError, StandardGainMapError
from .export import STANDARD_SDR_WHITE, read_named, render_any
from .jpeg import image_end, parse_jpeg, replace_segments
from .limits import map_rows, memory_guard
from .options import EncodeOptions, checked_encode_options
from .residual import hdr_to_pq
from .standard import StandardGainMap, attach_gain_map, find_gain_map, mpf_images
from .standard.decode import base_linear
from .standard.icc import icc_primaries
from .standard.write import (
    DEFAULT_MAP_QUALITY,
    DEFAULT_MAP_SCALE,
    gain_map_from_renditions,
    strip_standard,
    write_gain_map_file,
)

Target = Literal["gainmlp", "iso"]

#: How standard readers and writers take a base's code values to light.
STANDARD_BASE_TRANSFER: TransferName = "srgb"

#: Spec §4.5: the largest headroom a container records.
_MAX_HEADROOM = ctr.MAX_HEADROOM



@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert` made.

    Attributes:
        jpeg: the whole output file.
        source_kind: "gainmlp", "iso21496-1", "ultrahdr-xmp" or "apple".
        metadata: the GainMLP container's metadata; None for an ISO output.
        source_bytes: size of the input file.
        fit_seconds: wall time of the fit (0 for an ISO output).
        device: where the fit ran ("" for an ISO output).
        fit_loss: the fit's final training MSE on the normalised residual (None for an ISO output).
    """

    jpeg: bytes
    source_kind: str
    metadata: ctr.GainMapMetadata | None
    source_bytes: int
    fit_seconds: float = 0.0
    device: str = ""
    fit_loss: float | None = None


def convert(
    source: bytes | str | os.PathLike[str],
    *,
    to: Target = "gainmlp",
    options: EncodeOptions | None = None,
    keep_standard: bool = False,
    map_scale: int = DEFAULT_MAP_SCALE,
    map_quality: int = DEFAULT_MAP_QUALITY,
    progress: Callable[[int, int, float], None] | None = None,
) -> ConvertResult:
    """Convert a gain-map JPEG to GainMLP (from a standard one) or to ISO 21496-1 (from any).

    Args:
        source: the file's bytes or path.
        to: "gainmlp" or "iso".
        options: GainMLP only: the fit (width, activation, iterations, seed, ...), the residual
            and init; the base's transfer and primaries are the source's, whatever is given.
        keep_standard: GainMLP only: keep the standard map too (see the module notes).
        map_scale: ISO only: the map is this many times smaller than the base per side (1-16).
        map_quality: ISO only: the map's JPEG quality (1-100).
        progress: GainMLP only: called as progress(step, total, loss) during the fit.

    Returns:
        The file and what went into it.

    Raises:
        InputError: bad options, or a GainMLP input converted to GainMLP.
        NoGainMapError: the JPEG holds no gain map of any kind.
        JpegError, StandardGainMapError, ContainerError: a damaged input, as the readers raise.
    """
    if to not in ("gainmlp", "iso"):
        raise InputError(f"conversion target {to!r} is not one of ['gainmlp', 'iso']")
    options = checked_encode_options(options)
    data, name = read_named(source)
    layout = parse_jpeg(data)
    ours = ctr.from_layout(layout) is not None
    if to == "iso":
        return _to_iso(data, name, ours, map_scale, map_quality)
    if ours:
        raise InputError(f"{name}: is already a GainMLP file; use --to iso to write a standard gain-map JPEG")
    gain_map = find_gain_map(data)
    if gain_map is None:
        raise NoGainMapError(f"{name}: holds no gain map (no ISO 21496-1, Ultra HDR or Apple gain-map image)")
    with memory_guard(name):
        return _to_gainmlp(data, gain_map, options, keep_standard, progress)


def convert_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    to: Target = "gainmlp",
    options: EncodeOptions | None = None,
    keep_standard: bool = False,
    map_scale: int = DEFAULT_MAP_SCALE,
    map_quality: int = DEFAULT_MAP_QUALITY,
    progress: Callable[[int, int, float], None] | None = None,
) -> ConvertResult:
    """:func:`convert` a file and write the result atomically (an existing file is replaced only on success).

    Args:
        input_path: the gain-map JPEG.
        output_path: where to write the result.
        to: as for :func:`convert`.
        options: as for :func:`convert`.
        keep_standard: as for :func:`convert`.
        map_scale: as for :func:`convert`.
        map_quality: as for :func:`convert`.
        progress: as for :func:`convert`.

    Returns:
        As :func:`convert`.
    """
    result = convert(
        Path(input_path), to=to, options=options, keep_standard=keep_standard, map_scale=map_scale,
        map_quality=map_quality, progress=progress,
    )
    write_bytes(output_path, result.jpeg)
    return result


def primary_image(data: bytes, gain_map: StandardGainMap) -> bytes:
    """The primary image, SOI to EOI, without the images that follow it.

    It ends at its end of image (EOI), found by walking its segments and scans, which must come
    before the first image that MPF or the gain map's location puts after it.

    Args:
        data: the whole file.
        gain_map: its standard gain map.

    Returns:
        The primary image's bytes, unchanged.

    Raises:
        JpegError: the primary is malformed, truncated or has no EOI before the gain-map image.
    """
    layout = parse_jpeg(data)
    try:
        followers = [image.offset for image in mpf_images(layout)[1:]]
    except StandardGainMapError:
        followers = []  # the gain map was found through GContainer; its offset is what matters
    scan_start = len(data) - len(layout.scan)
    # Some writers get MPF offsets wrong (the reader then found the map through GContainer):
    # only an offset where an image starts bounds the primary.
    images = [o for o in followers if o > scan_start and data[o : o + 2] == b"\xff\xd8"]
    return _cut_at_eoi(data, min([gain_map.gain_map_offset, *images]))


def _cut_at_eoi(data: bytes, end: int) -> bytes:
    """The image that starts ``data``, up to its end of image (EOI), which must come before ``end``."""
    return data[: image_end(data[:end], "primary image")]


def _to_gainmlp(
    data: bytes,
    gain_map: StandardGainMap,
    options: EncodeOptions,
    keep_standard: bool,
    progress: Callable[[int, int, float], None] | None,
) -> ConvertResult:
    """Fit the network to the standard map's fullest rendition and build the output file."""
    primary = primary_image(data, gain_map)
    base = primary if keep_standard else strip_standard(primary)
    options = dataclasses.replace(options, sdr_transfer=STANDARD_BASE_TRANSFER, sdr_primaries=gain_map.base_primaries)
    chromaticities = PRIMARIES[gain_map.primaries]
    relative = gain_map.render()
    # In place, by blocks of rows: no second image-sized array, and block-sized temporaries.
    hdr_pq = map_rows(lambda rows: hdr_to_pq(rows, chromaticities, STANDARD_SDR_WHITE), relative, relative)
    code = decode_base(base, where="primary image")
    if code.shape != hdr_pq.shape:
        raise StandardGainMapError(
            f"the primary image decodes to {code.shape[1]}x{code.shape[0]} but the HDR rendition is "
            f"{hdr_pq.shape[1]}x{hdr_pq.shape[0]}"
        )
    result = encode_prepared(fit_inputs(base, code, hdr_pq, options, STANDARD_SDR_WHITE), options, progress)
    meta = gain_map.metadata
    low = min(max(min(meta.base_headroom, meta.alternate_headroom), 0.0), _MAX_HEADROOM)
    metadata = dataclasses.replace(
        result.metadata,
        base_headroom=low,
        alternate_headroom=min(max(meta.max_headroom, low), _MAX_HEADROOM),
    )
    container = ctr.build_container(metadata, ctr.parse_container(_carried(result.jpeg)).graph)
    # The metadata as the file records it (headrooms are rationals of 1/10,000).
    metadata = ctr.parse_container(container).metadata
    segments = ctr.to_segments(container)
    output = replace_segments(parse_jpeg(base), segments, ctr.is_our_segment).to_bytes()
    if keep_standard:
        output = attach_gain_map(output, gain_map)
    return ConvertResult(output, meta.kind, metadata, len(data), result.fit_seconds, result.device, result.fit_loss)


def _carried(jpeg: bytes) -> bytes:
    """The container that ``encode_prepared`` has just inserted."""
    carried = ctr.from_layout(parse_jpeg(jpeg))
    if carried is None:  # pragma: no cover - encode_prepared always inserts one
        raise AssertionError("encode_prepared wrote no container")
    return carried


def _to_iso(data: bytes, name: str, ours: bool, map_scale: int, map_quality: int) -> ConvertResult:
    """Render the file's fullest HDR and write it as an ISO 21496-1 + hdrgm gain-map JPEG."""
    if ours:
        primary = _gainmlp_primary(data)
        kind = "gainmlp"
    else:
        gain_map = find_gain_map(data)
        if gain_map is None:
            raise NoGainMapError(f"{name}: holds no gain map (neither GainMLP nor ISO 21496-1, Ultra HDR or Apple)")
        primary = strip_standard(primary_image(data, gain_map))
        kind = gain_map.metadata.kind
    with memory_guard(name):
        rendition = render_any(data)
        primaries: PrimariesName = icc_primaries(parse_jpeg(primary)) or "bt709"
        hdr = convert_primaries(rendition.relative, PRIMARIES["bt2020"], PRIMARIES[primaries])
        gain_map_image = gain_map_from_renditions(
            hdr, base_linear(primary), rendition.headroom, scale=map_scale, quality=map_quality
        )
    output = write_gain_map_file(primary, gain_map_image.jpeg, gain_map_image.metadata)
    return ConvertResult(output, kind, None, len(data))


def _gainmlp_primary(data: bytes) -> bytes:
    """A GainMLP file's base without our segments, and without any standard map it keeps."""
    without_ours = replace_segments(parse_jpeg(data), [], ctr.is_our_segment).to_bytes()
    gain_map = find_gain_map(without_ours)
    if gain_map is not None:
        return strip_standard(primary_image(without_ours, gain_map))
    return _cut_at_eoi(without_ours, len(without_ours))
