"""The HDR rendition that hangs off an image opened from a gain-map JPEG, and its metadata.

:class:`HdrImage` is lazy: opening a file only parses and checks the gain map; the pixels are
computed the first time they are asked for, by ``gainmap_format.codec.decode`` for GainMLP files
and by ``gainmap_format.standard`` for the others. The plugin has no codec logic of its own.
"""

from __future__ import annotations

import contextvars
import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import JpegImagePlugin

from gainmap_format.colour import PRIMARIES, PrimariesName
from gainmap_format.errors import GainmapError, JpegError
from gainmap_format.jpeg import Segment, estimate_quality, parse_jpeg, replace_segments
from gainmap_format.residual import hdr_to_pq
from gainmap_format.standard import StandardGainMap, StandardGainMapMetadata, attach_gain_map

if TYPE_CHECKING:
    from PIL import Image

    from gainmap_format.codec import DecodedImage
    from gainmap_format.container import GainMapMetadata

HdrKind = Literal["gainmlp", "iso21496-1", "ultrahdr-xmp", "apple"]

#: The ``im.info`` key that links an image, and every image derived from it, to its gain map.
INFO_KEY = "gain_map"

#: Set while the plugin itself opens JPEGs, so that its own opens are not probed again.
INTERNAL = contextvars.ContextVar("pillow_plugin_internal", default=False)


@contextmanager
def internal() -> Iterator[None]:
    """Mark the plugin's own JPEG opens (the codec decodes bases with ``Image.open``)."""
    token = INTERNAL.set(True)
    try:
        yield
    finally:
        INTERNAL.reset(token)


@dataclass(frozen=True)
class HdrMetadata:
    """What a gain map says about the HDR rendition, whatever its format.

    Attributes:
        kind: "gainmlp" (ours), "iso21496-1", "ultrahdr-xmp" (Ultra HDR / Adobe hdrgm XMP) or
            "apple" (Apple HDRGainMap).
        version: the format's version: ours "major.minor" of the writer; ISO
            "minimum_version.writer_version"; XMP ``hdrgm:Version``; Apple ``HDRGainMapVersion``.
        base_headroom: log2 of the base rendition's peak over SDR white (0 for an SDR base).
        alternate_headroom: log2 of the alternate rendition's peak over SDR white.
        width: base image width in pixels.
        height: base image height in pixels.
        gain_map_width: width of the gain-map image; None for GainMLP (the map is a network).
        gain_map_height: height of the gain-map image; None for GainMLP.
        gain_map_channels: 1 or 3 for an image map; None for GainMLP.
        payload_bytes: bytes the gain map adds to the file: our APP15 segments, or the
            gain-map JPEG.
        primaries: primaries of ``np.asarray(hdr)``: "bt709", "display-p3" or "bt2020".
        sdr_white_luminance: cd/m² of relative value 1.0, as ``absolute()`` and ``pq()`` use it.
        details: the format's own metadata: ``gainmap_format.GainMapMetadata`` for ours,
            ``gainmap_format.standard.StandardGainMapMetadata`` for the others.
    """

    kind: HdrKind
    version: str
    base_headroom: float
    alternate_headroom: float
    width: int
    height: int
    gain_map_width: int | None
    gain_map_height: int | None
    gain_map_channels: int | None
    payload_bytes: int
    primaries: PrimariesName
    sdr_white_luminance: float
    details: GainMapMetadata | StandardGainMapMetadata = field(repr=False)

    @property
    def max_headroom(self) -> float:
        """log2 headroom of the full rendition, the one ``np.asarray(hdr)`` gives."""
        return max(self.base_headroom, self.alternate_headroom)


class HdrImage:
    """The HDR rendition of a gain-map JPEG; ``np.asarray(hdr)`` computes it on first use.

    ``np.asarray(hdr)`` is float32 (H, W, 3), linear light in :attr:`primaries`, 1.0 = SDR
    reference white, rendered for the file's maximum headroom, and read-only (it is cached).
    For a GainMLP file it equals ``gainmap_format.codec.decode(path).linear("sdr-white")``.

    Attributes:
        metadata: :class:`HdrMetadata`.
        primaries: primaries of the relative and absolute arrays.
        size: (width, height), as Pillow gives sizes.
        shape: (height, width, 3).
        dtype: float32.
    """

    dtype = np.dtype(np.float32)

    def __init__(self, source: _Source) -> None:
        """Wrap a source; use ``Image.open`` rather than building one."""
        self._source = source
        self._full: np.ndarray | None = None
        self.metadata = source.metadata
        self.primaries: PrimariesName = source.metadata.primaries
        self.size = (source.metadata.width, source.metadata.height)
        self.shape = (source.metadata.height, source.metadata.width, 3)

    def __repr__(self) -> str:
        """Kind, size and headroom; never computes pixels."""
        m = self.metadata
        return (
            f"<HdrImage {m.kind} {m.width}x{m.height} {m.primaries} "
            f"headroom {m.max_headroom:.2f} stops{' (computed)' if self._full is not None else ''}>"
        )

    @property
    def __array_interface__(self) -> dict[str, Any]:
        """NumPy's array interface over the cached full rendition (read-only)."""
        array = self._full_rendition()
        return {
            "version": 3,
            "shape": array.shape,
            "typestr": array.dtype.str,
            "data": (array.ctypes.data, True),
            "strides": None,
        }

    def render(self, display_headroom: float | None = None) -> np.ndarray:
        """Render for a display, relative to SDR white.

        Args:
            display_headroom: log2 of the display's peak over its SDR white (0 for an SDR
                display, 1 for twice as bright, ...); None for the full rendition. Standard
                maps use ISO 21496-1's weight w = clamp((H - H_base) / (H_alt - H_base), 0, 1);
                GainMLP maps interpolate their gamma map with the same weight
                (``gainmap_format.codec.decode(display_headroom=...)``).

        Returns:
            float32 (H, W, 3), linear light in :attr:`primaries`, 1.0 = SDR reference white;
            a new array each call.

        Raises:
            GainmapError: the gain map or base cannot be decoded (e.g. damaged image data).
        """
        if display_headroom is None:
            rendition: np.ndarray = self._full_rendition().copy()
            return rendition
        with internal():
            return self._source.relative(display_headroom)

    def pq(self, display_headroom: float | None = None) -> np.ndarray:
        """The rendition as BT.2020 PQ code values (SMPTE ST 2084), SDR white at its luminance.

        Args:
            display_headroom: as in :meth:`render`.

        Returns:
            float32 (H, W, 3) in [0, 1]; SDR white is at :attr:`HdrMetadata.sdr_white_luminance`
            cd/m² and colours outside BT.2020 are clipped.
        """
        with internal():
            return self._source.pq(display_headroom)

    def absolute(self, display_headroom: float | None = None) -> np.ndarray:
        """The rendition in absolute luminance.

        Args:
            display_headroom: as in :meth:`render`.

        Returns:
            float32 (H, W, 3), linear cd/m² in :attr:`primaries`: the relative rendition times
            :attr:`HdrMetadata.sdr_white_luminance`.
        """
        with internal():
            return self._source.absolute(display_headroom)

    def carry_to(self, base_jpeg: bytes) -> bytes:
        """Put this gain map into a new encoding of the same base pixels (used on save)."""
        return self._source.carry_to(base_jpeg)

    def _full_rendition(self) -> np.ndarray:
        if self._full is None:
            with internal():
                array = np.ascontiguousarray(self._source.relative(None), dtype=np.float32)
            array.flags.writeable = False
            self._full = array
        return self._full


class _Source:
    """What an :class:`HdrImage` needs from a format."""

    metadata: HdrMetadata

    def relative(self, display_headroom: float | None) -> np.ndarray:
        """float32 (H, W, 3), linear in ``metadata.primaries``, 1.0 = SDR white."""
        raise NotImplementedError

    def pq(self, display_headroom: float | None) -> np.ndarray:
        """float32 (H, W, 3), BT.2020 PQ code values."""
        raise NotImplementedError

    def absolute(self, display_headroom: float | None) -> np.ndarray:
        """float32 (H, W, 3), linear cd/m² in ``metadata.primaries``."""
        raise NotImplementedError

    def carry_to(self, base_jpeg: bytes) -> bytes:
        """``base_jpeg`` with this gain map in it."""
        raise NotImplementedError


class _OurSource(_Source):
    """A GainMLP file: everything goes through ``gainmap_format.codec.decode``.

    Attributes:
        data: the whole file.
        metadata: :class:`HdrMetadata`.
    """

    def __init__(self, data: bytes, metadata: GainMapMetadata, segments: tuple[Segment, ...]) -> None:
        """Keep the file, its container's metadata and its APP15 segments."""
        self.data = data
        self._segments = segments
        self._decoded: dict[float | None, DecodedImage] = {}
        self.metadata = HdrMetadata(
            kind="gainmlp",
            version=f"{metadata.writer_version[0]}.{metadata.writer_version[1]}",
            base_headroom=metadata.base_headroom,
            alternate_headroom=metadata.alternate_headroom,
            width=metadata.width,
            height=metadata.height,
            gain_map_width=None,
            gain_map_height=None,
            gain_map_channels=None,
            payload_bytes=sum(len(s.encode()) for s in segments),
            primaries="bt2020",
            sdr_white_luminance=metadata.sdr_white_luminance,
            details=metadata,
        )

    def _decode(self, display_headroom: float | None, with_pq: bool) -> DecodedImage:
        from gainmap_format import codec

        # The full rendition is kept, since pq() and absolute() of it are common next steps; its
        # PQ values only once asked for (np.asarray(im.hdr) needs linear light alone).
        if display_headroom is None:
            kept = self._decoded.get(None)
            if kept is None or (with_pq and kept.pq is None):
                kept = self._decoded[None] = codec.decode(self.data, with_pq=with_pq)
            return kept
        return codec.decode(self.data, display_headroom=display_headroom, with_pq=with_pq)

    def relative(self, display_headroom: float | None) -> np.ndarray:
        return self._decode(display_headroom, with_pq=False).linear("sdr-white")

    def pq(self, display_headroom: float | None) -> np.ndarray:
        pq = self._decode(display_headroom, with_pq=True).pq
        if pq is None:  # pragma: no cover - decode keeps PQ when asked to
            raise AssertionError("decode(with_pq=True) returned no PQ values")
        # A copy, so that a caller writing into it cannot change the kept decode.
        copied: np.ndarray = pq.copy()
        return copied

    def absolute(self, display_headroom: float | None) -> np.ndarray:
        return self._decode(display_headroom, with_pq=False).linear("absolute")

    def carry_to(self, base_jpeg: bytes) -> bytes:
        from gainmap_format.container import is_our_segment

        return replace_segments(parse_jpeg(base_jpeg), self._segments, is_our_segment).to_bytes()


class _RelativeSource(_Source):
    """A source that renders relative light; PQ and absolute values follow from it and its metadata."""

    def pq(self, display_headroom: float | None) -> np.ndarray:
        chromaticities = PRIMARIES[self.metadata.primaries]
        return hdr_to_pq(self.relative(display_headroom), chromaticities, self.metadata.sdr_white_luminance)

    def absolute(self, display_headroom: float | None) -> np.ndarray:
        absolute: np.ndarray = self.relative(display_headroom) * np.float32(self.metadata.sdr_white_luminance)
        return absolute


class _StandardSource(_RelativeSource):
    """An ISO 21496-1, Ultra HDR / Adobe XMP or Apple file: rendered by ``gainmap_format.standard``.

    Attributes:
        gain_map: the file's gain map, as ``find_gain_map`` returns it.
        metadata: :class:`HdrMetadata`.
    """

    def __init__(self, gain_map: StandardGainMap, sdr_white_luminance: float) -> None:
        """Keep the gain map and the luminance that relative 1.0 stands for."""
        self.gain_map = gain_map
        self._full: np.ndarray | None = None
        meta = gain_map.metadata
        self.metadata = HdrMetadata(
            kind=meta.kind,
            version=meta.version,
            base_headroom=meta.base_headroom,
            alternate_headroom=meta.alternate_headroom,
            width=gain_map.base_size[0],
            height=gain_map.base_size[1],
            gain_map_width=gain_map.gain_map_size[0],
            gain_map_height=gain_map.gain_map_size[1],
            gain_map_channels=gain_map.gain_map_channels,
            payload_bytes=len(gain_map.gain_map_jpeg),
            primaries=gain_map.primaries,
            sdr_white_luminance=float(sdr_white_luminance),
            details=meta,
        )

    def relative(self, display_headroom: float | None) -> np.ndarray:
        # The full rendition is kept: HdrImage caches it read-only, and pq() and absolute()
        # of it would otherwise render it again.
        if display_headroom is not None:
            return self.gain_map.render(display_headroom)
        if self._full is None:
            self._full = self.gain_map.render()
        return self._full

    def carry_to(self, base_jpeg: bytes) -> bytes:
        return attach_gain_map(base_jpeg, self.gain_map)


@dataclass(eq=False)
class GainMapLink:
    """What an image opened from a gain-map JPEG, and every image derived from it, carries.

    It sits in ``im.info["gain_map"]``; Pillow copies ``info`` into derived images, which is
    how a save can tell that an image came from a gain-map file.

    Attributes:
        data: the whole file.
        mode: the image's mode when opened.
        size: the image's size when opened.
        hdr: the HDR rendition, or None when the gain map is unusable.
        error: why it is unusable, else None.
    """

    data: bytes = field(repr=False)
    mode: str
    size: tuple[int, int]
    hdr: HdrImage | None = None
    error: GainmapError | None = None

    @functools.cached_property
    def quality(self) -> int:
        """The JPEG quality of the file's base, estimated from its quantisation tables (1-100)."""
        return estimate_quality(self.data)

    @functools.cached_property
    def subsampling(self) -> int:
        """Pillow's ``subsampling`` for a new base: 4:4:4 (0) for GainMLP, else the file's own.

        A GainMLP map is fitted to full-resolution colour, so its base keeps full-resolution chroma.
        """
        if self.hdr is None or self.hdr.metadata.kind == "gainmlp":
            return 0
        with internal(), JpegImagePlugin.JpegImageFile(io.BytesIO(self.data)) as original:
            sampling = JpegImagePlugin.get_sampling(original)
        return sampling if sampling >= 0 else 0

    def unchanged(self, image: Image.Image) -> bool:
        """Whether ``image`` has exactly the pixels the file's base decodes to.

        The base is decoded again from the file rather than fingerprinted at load, so opening
        and loading cost nothing extra; only a save that might keep the gain map pays.
        """
        if (image.mode, image.size) != (self.mode, self.size) or image.tell() != 0:
            return False
        try:
            with internal(), JpegImagePlugin.JpegImageFile(io.BytesIO(self.data)) as original:
                return bool(original.mode == image.mode and original.tobytes() == image.tobytes())
        except (OSError, SyntaxError, ValueError, JpegError):
            return False
