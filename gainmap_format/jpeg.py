"""JPEG marker segments: split a file into its header segments and the rest, and put it back.

Only the part of a JPEG before the first scan (SOS) is parsed; everything from the SOS marker
on (entropy-coded data, later tables, EOI, and whatever follows EOI, such as MPF secondary
images) is kept as opaque bytes. That is what lets the library add or remove metadata
segments without re-encoding, or even looking at, the image data.

Before any JPEG is decoded, :func:`check_decodable` walks it to its end of image (EOI) and
bounds its scan count (:data:`MAX_SCANS`): a progressive JPEG can repeat a scan thousands of
times in a few kilobytes, and each repetition costs the decoder a pass over the whole image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import JpegError

SOI = 0xD8
EOI = 0xD9
SOS = 0xDA
APP0 = 0xE0
APP1 = 0xE1
APP15 = 0xEF
COM = 0xFE

#: A segment's length field counts itself (2 bytes) and is 16 bits wide.
MAX_SEGMENT_PAYLOAD = 0xFFFF - 2

#: Markers that stand alone, with no length field (ITU T.81 table B.1).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})

MAX_SCANS = 100
"""Most scans (SOS markers) a JPEG may hold for this library to decode it.

Baseline JPEGs have 1 scan (or one per component); libjpeg's and mozjpeg's progressive scripts
write about 10, Photoshop at most 5. Each scan costs the decoder a pass over the image, so this
bound, ten times what encoders write, caps a JPEG's decode time at about 100 such passes
(README, section Limits, states the measured worst case per megapixel).
"""

# In entropy-coded data a 0xFF is followed by 0x00 (a stuffed data byte), a restart marker
# (0xD0-0xD7) or fill (0xFF); any other byte after it makes a marker that ends the scan.
_MARKER_AFTER_SCAN = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")


@dataclass(frozen=True)
class Segment:
    """One marker segment before the first scan.

    Attributes:
        marker: the marker's second byte, e.g. 0xE1 for APP1.
        offset: byte offset of the segment's 0xFF in the file it was read from (-1 if new).
        payload: the bytes after the length field.
    """

    marker: int
    payload: bytes
    offset: int = -1

    def is_app(self, n: int) -> bool:
        """Whether this is an APPn segment."""
        return self.marker == APP0 + n

    def encode(self) -> bytes:
        """The segment as it appears in a file: marker, length, payload."""
        if len(self.payload) > MAX_SEGMENT_PAYLOAD:
            raise JpegError(
                f"segment 0xFF{self.marker:02X} payload of {len(self.payload)} bytes is over "
                f"the {MAX_SEGMENT_PAYLOAD}-byte limit of a JPEG segment"
            )
        if self.marker in _STANDALONE:
            return bytes((0xFF, self.marker))
        length = len(self.payload) + 2
        return bytes((0xFF, self.marker, length >> 8, length & 0xFF)) + self.payload


@dataclass(frozen=True)
class JpegLayout:
    """A JPEG split at its first scan.

    Attributes:
        segments: every marker segment between SOI and the first SOS, in file order.
        scan: the file from the first SOS marker to its end, untouched.
    """

    segments: tuple[Segment, ...]
    scan: bytes

    def app_payloads(self, n: int, identifier: bytes) -> list[Segment]:
        """The APPn segments whose payload starts with ``identifier``, in file order."""
        return [s for s in self.segments if s.is_app(n) and s.payload.startswith(identifier)]

    def to_bytes(self) -> bytes:
        """Reassemble the file: SOI, the segments, then the scan bytes."""
        parts = [bytes((0xFF, SOI))]
        parts.extend(segment.encode() for segment in self.segments)
        parts.append(self.scan)
        return b"".join(parts)


def is_jpeg(data: bytes) -> bool:
    """Whether ``data`` starts with a JPEG SOI marker followed by another marker."""
    return len(data) >= 3 and data[0] == 0xFF and data[1] == SOI and data[2] == 0xFF


def parse_jpeg(data: bytes) -> JpegLayout:
    """Split a JPEG file into its header segments and the scan bytes.

    Args:
        data: the whole file.

    Returns:
        The layout; ``layout.to_bytes() == data`` for files without fill bytes between markers.

    Raises:
        JpegError: not a JPEG, a truncated segment, a bad length, or no scan at all.
    """
    if not is_jpeg(data):
        raise JpegError(f"not a JPEG file: it starts with {bytes(data[:4]).hex(' ')!r}, not FF D8 FF")
    segments: list[Segment] = []
    pos = 2
    while True:
        marker, start = _next_marker(data, pos)
        if marker == SOS:
            return JpegLayout(tuple(segments), bytes(data[start:]))
        if marker in (SOI, EOI):
            raise JpegError(f"unexpected marker 0xFF{marker:02X} at offset {start} before any scan")
        if marker in _STANDALONE:
            pos = start + 2
            continue
        segment, pos = _read_segment(data, marker, start)
        segments.append(segment)


def check_decodable(data: bytes, where: str) -> None:
    """Check, without decoding, that a JPEG is whole and holds at most :data:`MAX_SCANS` scans.

    Walks the marker segments and, with one C-speed search per scan, skips each scan's
    entropy-coded data (stuffed 0xFF00 bytes and restart markers included) up to the marker
    that ends it, until the end of image (EOI). Bytes after EOI (an MPF secondary image) are not
    read. Stops at the first scan over the bound, so a hostile file is refused quickly.

    Args:
        data: the image, from its SOI marker on.
        where: the file or image, for the message.

    Raises:
        JpegError: not a JPEG, a malformed or truncated segment, more than :data:`MAX_SCANS`
            scans, or truncated (the data ends before EOI, which decoders would fill with
            grey). The message starts with ``where``.
    """
    image_end(data, where)


def image_end(data: bytes, where: str) -> int:
    """The offset just after a JPEG's end of image (EOI), found as :func:`check_decodable` walks it.

    Args:
        data: the image, from its SOI marker on; bytes after its EOI (an MPF secondary image)
            are not read.
        where: the file or image, for the message.

    Returns:
        The length of the image's own bytes, EOI included.

    Raises:
        JpegError: as :func:`check_decodable`.
    """
    try:
        return _walk_to_end(data)
    except JpegError as exc:
        raise JpegError(f"{where}: {exc}") from None


def _walk_to_end(data: bytes) -> int:
    """Walk a JPEG from SOI to EOI, counting scans (see :func:`check_decodable`)."""
    if not is_jpeg(data):
        raise JpegError(f"not a JPEG file: it starts with {bytes(data[:4]).hex(' ')!r}, not FF D8 FF")
    scans, pos = 0, 2
    while True:
        marker, start = _next_marker(data, pos, "the end of image (EOI)" if scans else "the first scan (SOS)")
        if marker == EOI and scans:
            return start + 2
        if marker in (SOI, EOI):
            raise JpegError(f"unexpected marker 0xFF{marker:02X} at offset {start} before any scan")
        if marker in _STANDALONE:
            pos = start + 2
            continue
        pos = _segment_end(data, marker, start)
        if marker == SOS:
            scans += 1
            if scans > MAX_SCANS:
                raise JpegError(
                    f"scan {scans} at offset {start} is over the bound of {MAX_SCANS} scans (SOS markers) "
                    "that this library decodes"
                )
            end = _MARKER_AFTER_SCAN.search(data, pos)
            if end is None:
                raise JpegError(
                    f"truncated JPEG: the data of the scan at offset {start} runs to the end of the file "
                    "with no end of image (EOI)"
                )
            pos = end.start()


def _next_marker(data: bytes, pos: int, before: str = "the first scan (SOS)") -> tuple[int, int]:
    """The marker byte at ``pos`` and the offset of its 0xFF, skipping fill bytes.

    ``before`` names what the file should reach first, for the message when it ends.
    """
    if pos >= len(data):
        raise JpegError(f"truncated JPEG: file ends at offset {pos} before {before}")
    if data[pos] != 0xFF:
        raise JpegError(f"expected a marker (0xFF) at offset {pos}, found 0x{data[pos]:02X}")
    start = pos
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        raise JpegError(f"truncated JPEG: file ends in fill bytes at offset {start}")
    return data[pos], pos - 1


def _read_segment(data: bytes, marker: int, start: int) -> tuple[Segment, int]:
    end = _segment_end(data, marker, start)
    return Segment(marker, bytes(data[start + 4 : end]), start), end


def _segment_end(data: bytes, marker: int, start: int) -> int:
    """The offset just after the segment whose 0xFF is at ``start``, its length checked."""
    if start + 4 > len(data):
        raise JpegError(f"truncated JPEG: segment 0xFF{marker:02X} at offset {start} has no length")
    length = (data[start + 2] << 8) | data[start + 3]
    if length < 2:
        raise JpegError(f"segment 0xFF{marker:02X} at offset {start} has invalid length {length}")
    end = start + 2 + length
    if end > len(data):
        raise JpegError(
            f"truncated JPEG: segment 0xFF{marker:02X} at offset {start} declares {length} bytes "
            f"but the file ends {end - len(data)} bytes early"
        )
    return end


def replace_segments(
    layout: JpegLayout,
    new_segments: Iterable[Segment],
    remove: Callable[[Segment], bool],
) -> JpegLayout:
    """Drop the segments ``remove`` selects and insert ``new_segments`` after APP0/APP1.

    New segments go after the leading run of APP0 (JFIF) and APP1 (Exif, XMP) segments, which
    readers expect first, and before any APP2: an MPF segment's offsets count from inside
    itself to data after the scan, so segments added before it keep those offsets valid.

    Args:
        layout: the JPEG to change.
        new_segments: segments to add, in order.
        remove: returns True for an existing segment that must go.

    Returns:
        The new layout; the scan bytes are the same object, never re-encoded.
    """
    kept = [s for s in layout.segments if not remove(s)]
    insert_at = 0
    while insert_at < len(kept) and kept[insert_at].marker in (APP0, APP1):
        insert_at += 1
    merged = kept[:insert_at] + list(new_segments) + kept[insert_at:]
    return JpegLayout(tuple(merged), layout.scan)


def with_comment(data: bytes, comment: bytes) -> bytes:
    """``data`` with a comment (COM) segment, in place of those whose first word is the same.

    The segment goes where :func:`replace_segments` puts new segments (after the leading APP0
    and APP1 segments); nothing else in the file changes, the image data included.

    Args:
        data: the whole file.
        comment: the comment's bytes, a first word ending in a space, then the text; at most
            :data:`MAX_SEGMENT_PAYLOAD` bytes.

    Returns:
        The new file.

    Raises:
        JpegError: ``data`` is malformed, or the comment is too long for a segment.
    """
    word = comment.partition(b" ")[0] + b" "
    return replace_segments(
        parse_jpeg(data), [Segment(COM, comment)], lambda s: s.marker == COM and s.payload.startswith(word)
    ).to_bytes()


def comments(data: bytes, word: bytes) -> list[bytes]:
    """The comment (COM) segments before the first scan whose payload starts with ``word``, in file order.

    Raises:
        JpegError: ``data`` is malformed.
    """
    return [s.payload for s in parse_jpeg(data).segments if s.marker == COM and s.payload.startswith(word)]


# --- Quantisation tables and the quality they were made at (re-encoding an edited base) ---

DQT = 0xDB

#: ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), in natural (row-major)
#: order: the tables that libjpeg, and so Pillow and most cameras' encoders, scale by quality.
IJG_TABLES = (
    (
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ),
    (
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99, 47, 66, *(99,) * 38,
    ),
)  # fmt: skip

#: ITU-T T.81 figure A.6: the natural-order position of each coefficient as a DQT segment lists them.
ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,
    7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31,
    39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip


def quantisation_tables(data: bytes) -> dict[int, tuple[int, ...]]:
    """The quantisation tables a JPEG defines before its first scan (ITU-T T.81 §B.2.4.1).

    Args:
        data: the whole file.

    Returns:
        Table id (0-3) -> 64 quantiser values in natural (row-major) order; a table defined
        twice keeps its last definition, as decoders do.

    Raises:
        JpegError: malformed file, or a DQT segment whose length does not match its tables.
    """
    tables: dict[int, tuple[int, ...]] = {}
    for segment in parse_jpeg(data).segments:
        if segment.marker != DQT:
            continue
        payload, pos = segment.payload, 0
        while pos < len(payload):
            precision, table_id = payload[pos] >> 4, payload[pos] & 0x0F
            width = 2 if precision else 1
            end = pos + 1 + 64 * width
            if precision > 1 or table_id > 3 or end > len(payload):
                raise JpegError(f"DQT segment at offset {segment.offset}: malformed table at byte {pos}")
            raw = payload[pos + 1 : end]
            values = [int.from_bytes(raw[i : i + width], "big") for i in range(0, len(raw), width)]
            natural = [0] * 64
            for k, position in enumerate(ZIGZAG):
                natural[position] = values[k]
            tables[table_id] = tuple(natural)
            pos = end
    return tables


def ijg_table(quality: int, which: int, baseline: bool = True) -> tuple[int, ...]:
    """libjpeg's ``jpeg_set_quality`` scaling of an Annex K table.

    Args:
        quality: 1 to 100.
        which: 0 for the luminance table, 1 for the chrominance table.
        baseline: clamp to 255, as 8-bit (baseline) tables must be.

    Returns:
        64 quantiser values in natural order.
    """
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    top = 255 if baseline else 32767
    return tuple(min(max((base * scale + 50) // 100, 1), top) for base in IJG_TABLES[which])


def estimate_quality(data: bytes) -> int:
    """The libjpeg quality whose scaled Annex K tables are nearest a JPEG's own tables.

    Tables 0 and 1 (luminance and chrominance as libjpeg assigns them) are compared in the log
    domain, so that a step of 1 to 2 in a fine table counts as much as 50 to 100 in a coarse
    one. Exact for libjpeg-made files (Pillow, libjpeg-turbo); for an encoder with tables of its
    own (some cameras) it is the IJG quality of similar fineness.

    Args:
        data: the whole file (or an image, SOI on).

    Returns:
        Quality 1 to 100; ties go to the higher quality.

    Raises:
        JpegError: malformed file, or no quantisation table 0 before the first scan.
    """
    tables = quantisation_tables(data)
    if 0 not in tables:
        raise JpegError("the JPEG defines no quantisation table 0 before its first scan")
    compared = [(which, tables[which]) for which in (0, 1) if which in tables]
    logs = {which: [math.log(max(v, 1)) for v in table] for which, table in compared}
    baseline = all(max(table) <= 255 for _, table in compared)
    best, best_error = 100, math.inf
    for quality in range(100, 0, -1):
        error = 0.0
        for which, _ in compared:
            expected = ijg_table(quality, which, baseline)
            error += sum(abs(a - math.log(e)) for a, e in zip(logs[which], expected, strict=True))
        if error < best_error:
            best, best_error = quality, error
    return best
