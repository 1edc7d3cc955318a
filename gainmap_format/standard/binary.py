"""Reading binary structures (construct structs, TIFF IFDs) with errors that say where.

MPF indexes (CIPA DC-007) and Exif blocks are both TIFF structures, and ISO 21496-1 metadata
and JPEG frame headers are fixed binary layouts; every reader reports damage the same way.
"""

from __future__ import annotations

from typing import Any

import construct as cs

from .. import structs
from ..errors import StandardGainMapError


def parse_struct(struct: cs.Construct, data: bytes, where: str) -> Any:
    """Parse ``data`` with a construct struct.

    Args:
        struct: the layout.
        data: the bytes, from the start of the structure.
        where: the structure's location, for the error message.

    Returns:
        The parsed container.

    Raises:
        StandardGainMapError: the bytes are truncated or malformed.
    """
    try:
        return struct.parse(data)
    except cs.ConstructError as exc:
        raise StandardGainMapError(f"{where}: truncated or malformed ({_short(exc)})") from exc


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


def u32(value: bytes, order: bytes) -> int:
    """A 4-byte TIFF field value as an unsigned integer in the block's byte order (b"II" or b"MM")."""
    return int.from_bytes(value, "little" if order == b"II" else "big")


def ifd_entries(tiff: bytes, offset: int, order: bytes, where: str) -> dict[int, Any]:
    """An IFD's entries by tag; the first entry wins when a tag repeats.

    Args:
        tiff: the TIFF block, from its header.
        offset: the IFD's offset in ``tiff``.
        order: the block's byte order, b"II" or b"MM".
        where: the block's location, for the error message.

    Returns:
        {tag: entry} with construct entries (tag, type, count, value).

    Raises:
        StandardGainMapError: the offset is outside the block or the IFD is malformed.
    """
    if not 0 < offset < len(tiff):
        raise StandardGainMapError(f"{where}: IFD offset {offset} is outside the {len(tiff)}-byte TIFF block")
    ifd = parse_struct(structs.TIFF_IFD[order], tiff[offset:], f"{where}, IFD at {offset}")
    entries: dict[int, Any] = {}
    for entry in ifd.entries:
        entries.setdefault(entry.tag, entry)
    return entries
