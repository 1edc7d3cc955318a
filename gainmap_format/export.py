"""The HDR of any gain-map JPEG this library reads, and the files HDR viewers show.

:func:`render_any` decodes a GainMLP file (:func:`~gainmap_format.codec.decode`) or a standard
one (ISO 21496-1, Ultra HDR / hdrgm XMP, Apple; :mod:`gainmap_format.standard`) to one form:
linear BT.2020 relative to SDR white, with the absolute luminance of SDR white. Standard maps
record no absolute luminance; this library takes ITU-R BT.2408's 203 cd/m²
(:data:`STANDARD_SDR_WHITE`) for them, as the Pillow plugin does.

:func:`encode_avif` writes a 10-bit 4:4:4 BT.2020 PQ AVIF (CICP 9, 16, 0, full range) when the
optional ``avif`` extra (imagecodecs, libavif) is installed.

:func:`encode_png` writes a 16-bit BT.2020 PQ PNG with a ``cICP`` chunk (9, 16, 0, 1), which
Chrome and other PNG third-edition readers show as HDR. It is written here with zlib: Pillow
cannot write 16-bit RGB PNG, and no maintained PNG library on PyPI writes ``cICP`` (pypng's last
release is from 2022; imagecodecs' PNG encoder writes no ``cICP``), while the format needs only
four chunks.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from . import container as ctr
from .colour import PRIMARIES, convert_primaries
from .errors import InputError, NoGainMapError
from .jpeg import parse_jpeg
from .limits import memory_guard
from .residual import hdr_to_pq
from .standard import find_gain_map

#: cd/m² of SDR white for standard gain maps, which record none (ITU-R BT.2408 reference white).
STANDARD_SDR_WHITE = 203.0

#: PNG third edition ``cICP``: BT.2020 primaries (9), PQ transfer (16), RGB (0), full range (1).
PQ_CICP = (9, 16, 0, 1)

ExportFormat = Literal["exr", "png", "avif"]

#: Output formats by file extension.
EXPORT_SUFFIXES: dict[str, ExportFormat] = {".exr": "exr", ".png": "png", ".avif": "avif"}

#: AVIF quality (imagecodecs' level, 0-100; 100 is lossless) of :func:`encode_avif`.
DEFAULT_AVIF_QUALITY = 90

#: How to get AVIF output, for the message when it is missing.
_AVIF_EXTRA = "AVIF output needs the optional 'avif' extra (pip install 'gainmap-format[avif]', imagecodecs)"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_RGB = 2
_PNG_FILTER_SUB = 1
#: Bytes per pixel of 16-bit RGB.
_PNG_PIXEL_BYTES = 6


@dataclass(frozen=True)
class Rendition:
    """An HDR rendition of a gain-map JPEG, whatever kind of file it came from.

    Attributes:
        relative: float32 (H, W, 3), linear BT.2020, 1.0 = SDR reference white.
        sdr_white_luminance: cd/m² of relative 1.0: the GainMLP container's value, or
            :data:`STANDARD_SDR_WHITE` for a standard map.
        kind: "gainmlp", or the standard map's kind ("iso21496-1", "ultrahdr-xmp", "apple").
        headroom: log2 headroom of the file's fullest HDR rendition, as it records it.
        decoded_pq: float32 (H, W, 3), the PQ code values a GainMLP decode computes (which
            :meth:`pq` returns, rather than rounding them through linear light); None for a
            standard map.
    """

    relative: np.ndarray
    sdr_white_luminance: float
    kind: str
    headroom: float
    decoded_pq: np.ndarray | None = field(default=None, repr=False)

    def absolute(self) -> np.ndarray:
        """float32 (H, W, 3), linear BT.2020 in cd/m² (a new array)."""
        absolute: np.ndarray = self.relative * np.float32(self.sdr_white_luminance)
        return absolute

    def pq(self) -> np.ndarray:
        """float32 (H, W, 3), BT.2020 PQ code values in [0, 1] (for a GainMLP file, :attr:`decoded_pq` itself)."""
        if self.decoded_pq is not None:
            return self.decoded_pq
        return hdr_to_pq(self.relative, PRIMARIES["bt2020"], self.sdr_white_luminance)


def read_named(source: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    """The file's bytes and how messages name it (its path, or "the JPEG" for bytes).

    Raises:
        InputError: the file cannot be read.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "the JPEG"
    try:
        return Path(source).read_bytes(), os.fspath(source)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc


def render_any(
    source: bytes | str | os.PathLike[str], display_headroom: float | None = None, *, with_pq: bool = True
) -> Rendition:
    """Decode the HDR of a GainMLP or standard gain-map JPEG.

    A file with both (``convert --keep-standard``) is decoded as GainMLP.

    Args:
        source: the file's bytes or path.
        display_headroom: log2 of the display's peak over SDR white; None for the file's
            fullest rendition. Either kind is weighted the ISO 21496-1 way.
        with_pq: keep a GainMLP decode's own PQ code values (:attr:`Rendition.decoded_pq`);
            False, for a caller that writes linear light only, saves an image-sized array.

    Returns:
        The rendition.

    Raises:
        NoGainMapError: the JPEG holds neither kind of gain map.
        JpegError, ContainerError, StandardGainMapError, ...: a damaged file, as the readers raise.
        InputError: an unreadable file, a non-finite headroom, or too large for the memory available.
    """
    from .codec import decode

    data, name = read_named(source)
    if ctr.from_layout(parse_jpeg(data)) is not None:
        decoded = decode(data, display_headroom=display_headroom, with_pq=with_pq)
        meta = decoded.metadata
        return Rendition(decoded.relative, meta.sdr_white_luminance, "gainmlp", meta.alternate_headroom, decoded.pq)
    gain_map = find_gain_map(data)
    if gain_map is None:
        raise NoGainMapError(f"{name}: holds no gain map (neither GainMLP nor ISO 21496-1, Ultra HDR or Apple)")
    with memory_guard(name):
        linear = gain_map.render(display_headroom)
        bt2020 = convert_primaries(linear, PRIMARIES[gain_map.primaries], PRIMARIES["bt2020"])
    return Rendition(bt2020, STANDARD_SDR_WHITE, gain_map.metadata.kind, gain_map.metadata.max_headroom)


def encode_png(pq: np.ndarray) -> bytes:
    """A 16-bit BT.2020 PQ PNG with ``cICP`` (9, 16, 0, 1).

    Args:
        pq: float (H, W, 3), BT.2020 PQ code values; clipped to [0, 1] and rounded to 16 bits.

    Returns:
        The PNG file.

    Raises:
        InputError: not (H, W, 3) or empty.
    """
    samples = _quantised(pq, 65535).astype(">u2")
    height, width, _ = pq.shape
    rows = samples.reshape(height, width * 3).view(np.uint8)
    # The Sub filter (each byte minus the one a pixel before) makes smooth images compress well.
    filtered = rows.copy()
    filtered[:, _PNG_PIXEL_BYTES:] -= rows[:, :-_PNG_PIXEL_BYTES]
    scanlines = np.empty((height, 1 + rows.shape[1]), np.uint8)
    scanlines[:, 0] = _PNG_FILTER_SUB
    scanlines[:, 1:] = filtered
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_RGB, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"cICP", bytes(PQ_CICP)),
            _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def avif_available() -> bool:
    """Whether AVIF can be written here (the optional ``avif`` extra: imagecodecs with libavif)."""
    try:
        import imagecodecs
    except ImportError:
        return False
    return bool(imagecodecs.AVIF.available)


def encode_avif(pq: np.ndarray, quality: int = DEFAULT_AVIF_QUALITY) -> bytes:
    """A 10-bit 4:4:4 BT.2020 PQ AVIF, CICP (9, 16, 0) full range, through imagecodecs' libavif.

    Args:
        pq: float (H, W, 3), BT.2020 PQ code values; clipped to [0, 1] and rounded to 10 bits.
        quality: 0-100; 100 is lossless.

    Returns:
        The AVIF file.

    Raises:
        InputError: the ``avif`` extra is not installed, or ``pq`` is not (H, W, 3).
    """
    if not avif_available():
        raise InputError(_AVIF_EXTRA)
    import imagecodecs

    samples = _quantised(pq, 1023).astype(np.uint16)
    data = imagecodecs.avif_encode(
        samples, level=quality, bitspersample=10, pixelformat="444", primaries=PQ_CICP[0], transfer=PQ_CICP[1],
        matrix=PQ_CICP[2],
    )
    return bytes(data)


def _quantised(pq: np.ndarray, peak: int) -> np.ndarray:
    """PQ code values (H, W, 3) as rounded float64 integers in [0, peak]; NaN is 0."""
    if pq.ndim != 3 or pq.shape[2] != 3 or 0 in pq.shape[:2]:
        raise InputError(f"PQ image must be (H, W, 3) with H, W > 0, got {pq.shape}")
    quantised: np.ndarray = np.rint(np.clip(np.nan_to_num(pq), 0.0, 1.0) * float(peak))
    return quantised


def encode(rendition: Rendition, fmt: ExportFormat, *, half: bool = False) -> bytes:
    """A rendition as a file of format ``fmt``.

    Args:
        rendition: from :func:`render_any`.
        fmt: "png" (16-bit BT.2020 PQ, cICP), "avif" (10-bit BT.2020 PQ; the ``avif`` extra) or
            "exr" (linear BT.2020 in cd/m²).
        half: EXR only: 16-bit half floats.

    Returns:
        The file.

    Raises:
        InputError: an unknown format, or AVIF without the ``avif`` extra.
    """
    if fmt == "png":
        return encode_png(rendition.pq())
    if fmt == "avif":
        return encode_avif(rendition.pq())
    if fmt == "exr":
        return encode_exr(rendition.absolute(), half=half)
    raise InputError(f"export format {fmt!r} is not one of {sorted(set(EXPORT_SUFFIXES.values()))}")


def export(
    source: bytes | str | os.PathLike[str], fmt: ExportFormat, *, display_headroom: float | None = None
) -> tuple[bytes, Rendition]:
    """Decode any gain-map JPEG and encode its HDR as a file that HDR viewers show.

    Args:
        source: the file's bytes or path.
        fmt: as for :func:`encode`.
        display_headroom: as for :func:`render_any`.

    Returns:
        (the encoded file, the rendition it holds).

    Raises:
        InputError: an unknown format, AVIF without its extra (both before any decoding); and
            as :func:`render_any` raises.
    """
    if fmt not in EXPORT_SUFFIXES.values():
        raise InputError(f"export format {fmt!r} is not one of {sorted(set(EXPORT_SUFFIXES.values()))}")
    if fmt == "avif" and not avif_available():
        raise InputError(_AVIF_EXTRA)
    rendition = render_any(source, display_headroom)
    return encode(rendition, fmt), rendition


def encode_exr(absolute: np.ndarray, *, half: bool = False) -> bytes:
    """Linear BT.2020 cd/m² as OpenEXR bytes (whiteLuminance 1), written through a temporary file.

    Args:
        absolute: float32 (H, W, 3), linear BT.2020 in cd/m².
        half: 16-bit half floats instead of 32-bit.

    Returns:
        The EXR file.
    """
    import tempfile

    from .hdrio import write_exr

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.exr"
        write_exr(path, absolute, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, half=half)
        return path.read_bytes()
