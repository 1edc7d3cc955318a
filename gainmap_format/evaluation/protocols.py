"""The two protocols: which SDR base every method is fitted against and decoded with.

- ``paper``: the paper's. The base is the 8-bit SDR itself, lossless: each method's map is
  computed from, and applied to, those exact code values. Files are still written (on a JPEG of
  that SDR, which only carries them) and their maps are read back from the files, but applied
  to the lossless pixels, as if the base had been stored without loss.
- ``real``: what a user gets. The base is a JPEG at the encoder's default quality (the
  codec's, 98 at 4:4:4, or a paired SDR JPEG as given); every method is fitted against that
  JPEG as decoded, and decoded from the whole file by its reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..codec import prepare_base
from ..errors import InputError
from .inputs import BenchImage

ProtocolName = Literal["paper", "real"]
PROTOCOLS: tuple[ProtocolName, ...] = ("paper", "real")

#: How the report introduces each protocol.
PROTOCOL_TITLES = {
    "paper": "paper protocol: 8-bit lossless SDR base",
    "real": "real-file protocol: JPEG base at the encoder's quality, methods fitted to it",
}


@dataclass(frozen=True)
class Base:
    """The SDR base of one image under one protocol.

    Attributes:
        protocol: "paper" or "real".
        jpeg: the base JPEG every file is built on.
        code: uint8 (H, W, 3), the code values every method is fitted against and decoded with:
            the lossless SDR (paper) or ``jpeg`` as decoded (real).
    """

    protocol: ProtocolName
    jpeg: bytes
    code: np.ndarray

    @property
    def lossless(self) -> bool:
        """Whether decoding applies maps to :attr:`code` rather than to the file's own base."""
        return self.protocol == "paper"


def make_base(image: BenchImage, protocol: ProtocolName, quality: int) -> Base:
    """The base of ``image`` under ``protocol``.

    Args:
        image: the bench image.
        protocol: "paper" or "real".
        quality: JPEG quality (4:4:4) of a base this library encodes.

    Returns:
        The base.

    Raises:
        InputError: an unknown protocol, or an SDR the codec rejects.
    """
    if protocol == "real":
        jpeg, code = prepare_base(image.sdr, image.hdr_pq, quality)
        return Base(protocol, jpeg, code)
    if protocol == "paper":
        code = image.sdr_pixels()
        jpeg, _ = prepare_base(code, image.hdr_pq, quality)
        return Base(protocol, jpeg, code)
    raise InputError(f"protocol {protocol!r} is not one of {PROTOCOLS}")
