"""The one image-size limit that every reader applies, and the helpers that keep memory within it.

Every image this library reads (an OpenEXR or Radiance HDR file, an SDR base, the primary and
gain-map images of a standard gain-map JPEG) and every array ``encode`` takes is at most
:data:`MAX_PIXELS` pixels. Readers check the size their file's header declares before they
allocate anything for pixels, so an oversized declaration costs no memory and no time.

Within the limit, peak memory is linear in the pixel count (README, section Limits, gives the
measured a·pixels + b). The image-sized arrays are what scale; the float64 temporaries of the
colour conversions do not, because :func:`map_rows` computes them a block of rows at a time.
Should an allocation still fail (a smaller machine, other processes), :func:`memory_guard` turns
the ``MemoryError`` into an :class:`~gainmap_format.errors.InputError` naming the image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from .errors import GainmapError, InputError

MAX_PIXELS: int = 1 << 27
"""Largest width x height of any image read or encoded: 134,217,728 pixels (e.g. 16384 x 8192).

An encode of an image this size peaks at about 5.2 GiB of memory (README, Limits: about 40 bytes
a pixel plus 0.3 GiB), which leaves room on the project's 24 GiB machines; the limit is above
every camera's still image but the full resolution of 200 MP sensors.
"""

#: Pixels per block in :func:`map_rows`: large enough that numpy's per-call overhead is
#: negligible, small enough that a block's float64 temporaries stay under about 50 MB.
BLOCK_PIXELS = 1 << 18


def check_pixel_count(width: int, height: int, where: str, error: type[GainmapError] = InputError) -> None:
    """Refuse an image size outside 1x1 to :data:`MAX_PIXELS` pixels.

    Args:
        width: columns, as the header declares them.
        height: rows, as the header declares them.
        where: the file or image, for the message.
        error: the exception class to raise, so that each reader keeps its own error type.

    Raises:
        GainmapError: ``error``, when the size is empty or over the limit.
    """
    if width < 1 or height < 1:
        raise error(f"{where}: image size {width}x{height} is empty")
    if width * height > MAX_PIXELS:
        raise error(
            f"{where}: image size {width}x{height} ({width * height} pixels) exceeds the limit of {MAX_PIXELS} pixels"
        )


@contextmanager
def memory_guard(where: str) -> Iterator[None]:
    """Turn a failed allocation inside the block into an :class:`InputError` naming ``where``.

    numpy raises ``MemoryError`` (its ``_ArrayMemoryError`` subclass says how much it asked
    for) when an image-sized array does not fit; callers get the library's documented error.

    Args:
        where: the file or image being processed, for the message.

    Raises:
        InputError: a ``MemoryError`` escaped the block.
    """
    try:
        yield
    except MemoryError as exc:
        raise InputError(
            f"{where}: the image is too large for the memory available ({exc or 'allocation failed'}); "
            "see the README's Limits section for the memory an image needs"
        ) from exc


def map_rows(function: Callable[..., np.ndarray], out: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """Apply a per-pixel function to blocks of rows, writing each block's result into ``out``.

    The result is the same, bit for bit, as ``out[...] = function(*inputs)``, since a per-pixel
    function computes each pixel the same way whatever else is in its block, but the function's
    temporaries are only ever block-sized.

    Args:
        function: maps arrays of shape (rows, W, ...) to one of shape (rows, W, ...) that can be
            assigned to ``out``'s rows; it must treat every pixel independently.
        out: (H, W, ...) array that receives the result.
        inputs: (H, W, ...) arrays, sliced into the same row blocks.

    Returns:
        ``out``.
    """
    height, width = out.shape[:2]
    step = max(1, BLOCK_PIXELS // max(width, 1))
    for top in range(0, height, step):
        rows = slice(top, top + step)
        out[rows] = function(*(array[rows] for array in inputs))
    return out
