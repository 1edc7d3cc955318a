"""The one image-size limit that every reader applies, and the helpers that keep memory within it.

Every image this library reads (an OpenEXR or Radiance HDR file, an SDR base, the primary and
gain-map images of a standard gain-map JPEG) and every array ``encode`` takes is at most
:data:`MAX_PIXELS` pixels. Readers check the size their file's header declares before they
allocate anything for pixels, so an oversized declaration costs no memory and no time.

Within the limit, peak memory is linear in the pixel count (README, section Limits, gives the
measured a·pixels + b). The image-sized arrays are what scale; the float64 temporaries of the
colour conversions do not, because :func:`map_rows` computes them a block of rows at a time (on
several threads, each with its own smaller block, so that the temporaries in flight stay the same).
Should an allocation still fail (a smaller machine, other processes), :func:`memory_guard` turns
the ``MemoryError`` into an :class:`~gainmap_format.errors.InputError` naming the image.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from .errors import GainmapError, InputError
from .native import thread_count

MAX_PIXELS: int = 1 << 27
"""Largest width x height of any image read or encoded: 134,217,728 pixels (e.g. 16384 x 8192).

An encode of an image this size peaks at about 5.2 GiB of memory (README, Limits: about 40 bytes
a pixel plus 0.3 GiB), which leaves room on the project's 24 GiB machines; the limit is above
every camera's still image but the full resolution of 200 MP sensors.
"""

#: Pixels per block in :func:`map_rows` on one thread: large enough that numpy's per-call overhead
#: is negligible, small enough that a block's float64 temporaries stay under about 50 MB.
BLOCK_PIXELS = 1 << 18

#: Smallest block when :func:`map_rows` divides :data:`BLOCK_PIXELS` among its threads: below this,
#: numpy's per-call overhead starts to show (measured on the tone map and ``hdr_to_pq``).
MIN_BLOCK_PIXELS = 1 << 16

#: Most threads :func:`map_rows` uses: the work is memory-bound numpy, which gains little beyond.
MAX_MAP_THREADS = 8

#: Freed memory glibc keeps at the top of a heap rather than returning it (its M_TOP_PAD), see
#: :func:`keep_heap_pages`.
HEAP_TOP_PAD = 64 << 20

#: Allocations from this size up get pages of their own (glibc's M_MMAP_THRESHOLD; 32 MB is the
#: most it takes): image-sized arrays, returned to the system when freed. Smaller ones (a block's
#: temporaries) come from the heap.
OWN_PAGES_FROM = 32 << 20

#: mallopt's parameter numbers (glibc's malloc.h).
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


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
    temporaries are only ever block-sized. Blocks run on up to :data:`MAX_MAP_THREADS` threads
    (:func:`~gainmap_format.native.thread_count`; numpy releases the GIL inside its loops), each
    block then :data:`BLOCK_PIXELS` divided among them, so that the temporaries in flight stay
    about one single-threaded block's.

    Args:
        function: maps arrays of shape (rows, W, ...) to one of shape (rows, W, ...) that can be
            assigned to ``out``'s rows; it must treat every pixel independently and may be called
            from several threads at once.
        out: (H, W, ...) array that receives the result; it may be one of ``inputs`` (each
            block reads its own rows before it writes them).
        inputs: (H, W, ...) arrays, sliced into the same row blocks.

    Returns:
        ``out``.
    """
    keep_heap_pages()
    height, width = out.shape[:2]
    threads = min(thread_count(), MAX_MAP_THREADS)
    block_pixels = max(BLOCK_PIXELS // threads, min(MIN_BLOCK_PIXELS, BLOCK_PIXELS))
    step = max(1, block_pixels // max(width, 1))
    blocks = [slice(top, top + step) for top in range(0, height, step)]

    def run(rows: slice) -> None:
        out[rows] = function(*(array[rows] for array in inputs))

    if threads == 1 or len(blocks) == 1:
        for rows in blocks:
            run(rows)
    else:
        with ThreadPoolExecutor(min(threads, len(blocks))) as pool:
            # list() waits for every block and re-raises the first exception (MemoryError too).
            list(pool.map(run, blocks))
    return out


@functools.cache
def keep_heap_pages() -> bool:
    """Ask glibc's malloc, once per process, to reuse the memory of freed temporaries.

    By default glibc gives a freed block's temporaries (megabytes each) back to the system at
    once, so the next block's are new pages, each zeroed by the kernel on its first touch:
    measured here, a 0.26 MP block's ``np.clip(x * 100, 0, None)`` took 8.5 ms with 1,500 page
    faults against 0.4 ms with none, and :func:`map_rows` runs such temporaries hundreds of times
    per image. Setting any of these options turns glibc's own adaptive thresholds off, so both
    are set: allocations under :data:`OWN_PAGES_FROM` come from the heap, and up to
    :data:`HEAP_TOP_PAD` bytes of freed memory stay at its top. Up to that much stays with the
    process after it frees it. Elsewhere (macOS, musl) nothing is changed.

    Returns:
        Whether both settings were made.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no glibc malloc in this process (Windows: TypeError)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, OWN_PAGES_FROM)) and bool(mallopt(_M_TOP_PAD, HEAP_TOP_PAD))
