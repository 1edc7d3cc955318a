"""Choosing a codec quality that hits a byte budget.

A traditional map is compared with the MLP at a given size, so its coder's quality is searched
for: the highest quality whose output fits the budget. Output size grows with quality almost
everywhere for JPEG and HEIC, so a bisection over 1-100 finds it in seven tries; where the size
is not monotonic the result still fits the budget but may be a step below the best that does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import InputError

T = TypeVar("T")

MIN_QUALITY = 1
MAX_QUALITY = 100


@dataclass(frozen=True)
class Sized(Generic[T]):
    """The output chosen for a budget.

    Attributes:
        value: what ``make`` returned at :attr:`quality`.
        quality: the quality chosen.
        size: its size in bytes.
        fits: whether it is within the budget; False only when even the lowest quality is over it.
    """

    value: T
    quality: int
    size: int
    fits: bool


def fit_budget(make: Callable[[int], T], size_of: Callable[[T], int], budget: int) -> Sized[T]:
    """The highest quality whose output is at most ``budget`` bytes.

    Args:
        make: builds the output at a quality in 1-100.
        size_of: the bytes an output counts for.
        budget: the byte budget, >= 1.

    Returns:
        The chosen output; the lowest quality's, marked as not fitting, when nothing fits.

    Raises:
        InputError: a budget below 1 byte.
    """
    if budget < 1:
        raise InputError(f"byte budget {budget} must be at least 1")
    low, high = MIN_QUALITY, MAX_QUALITY
    best: Sized[T] | None = None
    while low <= high:
        quality = (low + high) // 2
        value = make(quality)
        tried = Sized(value, quality, size_of(value), True)
        if tried.size <= budget:
            best, low = tried, quality + 1
        else:
            high = quality - 1
    # When nothing fitted, the bisection's last try was the lowest quality.
    return best if best is not None else Sized(tried.value, tried.quality, tried.size, False)
