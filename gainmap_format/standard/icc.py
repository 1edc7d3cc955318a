"""ICC profiles: which known primaries an image's embedded profile describes.

A profile's ``cicp`` tag names its primaries outright; otherwise its rXYZ, gXYZ and bXYZ
colorants, which ICC stores adapted to D50, are matched against each known set adapted the same way.
"""

from __future__ import annotations

import functools

import construct as cs
import numpy as np

from .. import structs
from ..colour import PRIMARIES, PrimariesName, conversion_matrix, rgb_to_xyz_matrix
from ..jpeg import JpegLayout

#: ITU-T H.273 colour primaries code points that an ICC ``cicp`` tag may carry.
_CICP_PRIMARIES: dict[int, PrimariesName] = {1: "bt709", 9: "bt2020", 12: "display-p3"}

#: ICC.1:2022 §7.2.16: the profile connection space illuminant, D50.
_D50_WHITE = (0.3457, 0.3585)

#: Largest distance in xy between an ICC colorant and a known primary that still matches.
_COLORANT_TOLERANCE = 0.01

#: Most tag-table entries read; profiles have a few dozen. A hostile count of up to 2^32 - 1 over
#: a 16 MB profile would otherwise cost seconds of parsing.
MAX_ICC_TAGS = 1024

#: ICC.1:2022 §7.3: where the tag count sits, after the 128-byte header.
_TAG_COUNT_AT = slice(128, 132)

#: The tags read, and the most bytes any of them needs: an XYZType of one colorant is 20 bytes,
#: a cicpType 12. Reading no more keeps a hostile table (every tag the whole profile) small.
_WANTED_TAGS = frozenset({b"cicp", b"rXYZ", b"gXYZ", b"bXYZ"})
_TAG_BYTES = 20


def icc_primaries(layout: JpegLayout) -> PrimariesName | None:
    """The primaries an image's ICC profile describes, when they are ones we know.

    Args:
        layout: one image's layout.

    Returns:
        The primaries' name, or None when there is no profile, it is damaged or inconsistent
        (more than :data:`MAX_ICC_TAGS` tags included), or its primaries are none of
        :data:`~gainmap_format.colour.PRIMARIES`.
    """
    profile = _icc_profile(layout)
    if profile is None or int.from_bytes(profile[_TAG_COUNT_AT], "big") > MAX_ICC_TAGS:
        return None
    try:
        header = structs.ICC_PROFILE.parse(profile)
        tags = {
            t.signature: profile[t.offset : t.offset + min(t.size, _TAG_BYTES)]
            for t in header.tags
            if t.signature in _WANTED_TAGS
        }
        if b"cicp" in tags:
            return _CICP_PRIMARIES.get(structs.ICC_CICP.parse(tags[b"cicp"]).colour_primaries)
        colorants = [structs.ICC_XYZ.parse(tags[name]).xyz for name in (b"rXYZ", b"gXYZ", b"bXYZ")]
    except (cs.ConstructError, KeyError):
        return None
    xy = [_xy(np.array(c, dtype=np.float64) / 65536.0) for c in colorants]
    for name, expected in _d50_colorants().items():
        if all(
            np.hypot(*(np.array(a) - np.array(b))) <= _COLORANT_TOLERANCE for a, b in zip(xy, expected, strict=True)
        ):
            return name
    return None


def _icc_profile(layout: JpegLayout) -> bytes | None:
    """Reassemble an ICC profile from its APP2 segments; None when absent or inconsistent."""
    pieces: dict[int, bytes] = {}
    count = None
    for segment in layout.app_payloads(2, structs.ICC_IDENTIFIER):
        try:
            piece = structs.ICC_SEGMENT.parse(segment.payload)
        except cs.ConstructError:
            return None
        if count not in (None, piece.count) or piece.sequence in pieces or not 1 <= piece.sequence <= piece.count:
            return None
        count = piece.count
        pieces[piece.sequence] = piece.chunk
    if count is None or len(pieces) != count:
        return None
    return b"".join(pieces[i] for i in range(1, count + 1))


def _xy(xyz: np.ndarray) -> tuple[float, float]:
    total = float(np.sum(xyz))
    return (0.0, 0.0) if total <= 0.0 else (float(xyz[0] / total), float(xyz[1] / total))


@functools.cache
def _d50_colorants() -> dict[PrimariesName, list[tuple[float, float]]]:
    """Chromaticities (xy) of each known set's primaries once adapted to D50, as ICC colorant tags store them.

    XYZ_D50 = Bradford(D65 -> D50) M_D65; conversion_matrix gives inv(M') Bradford M_D65 for a
    target M' with the same primaries and a D50 white, so M' times it is the adapted matrix.
    """
    result = {}
    for name, chromaticities in PRIMARIES.items():
        target = (*chromaticities[:6], *_D50_WHITE)
        adapted = rgb_to_xyz_matrix(target) @ conversion_matrix(chromaticities, target)
        result[name] = [_xy(adapted[:, i]) for i in range(3)]
    return result
