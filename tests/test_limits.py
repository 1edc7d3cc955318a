"""gainmap_format.limits.map_rows: blocks of rows on threads give what one pass gives."""

import platform
import resource

import numpy as np
import pytest

from gainmap_format import limits


def _per_pixel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.abs(a)) * b + np.sin(a)


@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_threaded_blocks_give_one_pass_bit_for_bit(monkeypatch, threads):
    monkeypatch.setenv("GAINMAP_THREADS", threads)
    monkeypatch.setattr(limits, "BLOCK_PIXELS", 3 * 29)  # a few rows a block, the last one short
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((31, 29, 3)), rng.standard_normal((31, 29, 3))
    out = limits.map_rows(_per_pixel, np.empty_like(a), a, b)
    assert np.array_equal(out, _per_pixel(a, b))
    # In place: every block reads its own rows before it writes them.
    assert np.array_equal(limits.map_rows(_per_pixel, a, a, b), out)


def test_an_error_in_a_block_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("GAINMAP_THREADS", "2")
    monkeypatch.setattr(limits, "BLOCK_PIXELS", 8)

    def failing(rows: np.ndarray) -> np.ndarray:
        if 5 in rows[:, 0]:
            raise MemoryError("block of row 5")
        return rows

    image = np.arange(10, dtype=np.float64).repeat(4).reshape(10, 4)
    with pytest.raises(MemoryError, match="row 5"):
        limits.map_rows(failing, np.empty_like(image), image)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="M_TOP_PAD is glibc's")
def test_glibc_is_asked_to_keep_freed_pages():
    limits.keep_heap_pages.cache_clear()
    assert limits.keep_heap_pages() is True
    # Freed blocks of temporaries are then reused: a second pass over the same sizes faults far fewer pages.
    rows = np.ones((64, 4096, 3), np.float32)
    np.clip(rows * 100.0, 0, None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        np.clip(rows * 100.0, 0, None)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 10 * rows.nbytes // 4096 // 4
