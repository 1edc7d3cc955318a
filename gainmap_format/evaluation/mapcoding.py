"""Image codecs for an 8-bit traditional map: JPEG (Pillow) and HEIC (pillow-heif, optional).

Both code the map's three channels at full chroma resolution (4:4:4), since each channel is its
own map and subsampling one would blur it. HEIC needs the ``heif`` extra, whose wheels bundle
libheif with the x265 encoder; :func:`heic_codec` says why it is unavailable when it is.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .baselines import decode_map_jpeg, encode_map_jpeg


@dataclass(frozen=True)
class MapCodec:
    """An image codec for 8-bit maps.

    Attributes:
        name: "JPEG" or "HEIC", as method names use it.
        encode: (uint8 (h, w, 3) code values, quality 1-100) to the coded bytes.
        decode: the coded bytes back to uint8 (h, w, 3).
    """

    name: str
    encode: Callable[[np.ndarray, int], bytes]
    decode: Callable[[bytes], np.ndarray]


JPEG = MapCodec("JPEG", encode_map_jpeg, decode_map_jpeg)


def heic_codec() -> MapCodec:
    """The HEIC codec, when pillow-heif is installed and can encode.

    Raises:
        ImportError: pillow-heif is absent or its libheif has no HEVC encoder; the message says why.
    """
    try:
        import pillow_heif
    except ImportError as error:
        raise ImportError("pillow-heif is not installed (pip install 'gainmap-format[heif]')") from error
    if not pillow_heif.libheif_info().get("HEIF"):
        raise ImportError("pillow-heif's libheif has no HEVC encoder")
    return MapCodec("HEIC", _encode_heic, _decode_heic)


def _encode_heic(code: np.ndarray, quality: int) -> bytes:
    import pillow_heif

    height, width, _ = code.shape
    image = pillow_heif.from_bytes(mode="RGB", size=(width, height), data=np.ascontiguousarray(code).tobytes())
    buffer = io.BytesIO()
    image.save(buffer, quality=quality, chroma=444)
    return buffer.getvalue()


def _decode_heic(data: bytes) -> np.ndarray:
    import pillow_heif

    return np.asarray(pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True))[..., :3]
