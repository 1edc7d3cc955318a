"""Traditional maps as real files: an ISO 21496-1 gain map, and our gamma map beside it.

Gain maps (Gain-JPEG, Gain-HEIC) follow ISO 21496-1, so that Gain-JPEG is a standard Ultra HDR
file that this library's reader, libultrahdr and phones open: the map holds
log2((HDR + k) / (SDR + k)) per channel in relative linear light, SDR white 1.0, with
k = 1/64, the SDR being the base as those readers linearise it (sRGB transfer, BT.709). This
is not the PQ-domain gain map of ``residual.py`` (which no standard reader applies), and it
cannot make colours outside BT.709, which the PQ-domain maps can; the file is what a
traditional encoder writes today. The JPEG file is the base, a version-only ISO APP2 segment
announcing the map, an MPF index and the map JPEG with its ISO metadata, which is how
libultrahdr writes it.

A gamma map (Gamma-JPEG) has no standard form. Its file has the same structure, the map JPEG
appended after the base and indexed by MPF, but carries no ISO or hdrgm marking, so that
standard readers see a plain JPEG rather than misreading the map as a gain. What the map
means is recorded in the map image's own APP15 segment, :data:`GAMMA_MAP_IDENTIFIER` followed
by a JSON :class:`GammaMapRecord`: the range its code values span and how the base is placed in
BT.2020 PQ. The map itself is ``baselines.map_values``'s gamma map, in BT.2020 PQ.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..colour import PRIMARIES, PrimariesName, TransferName, convert_primaries, pq_decode, pq_encode, srgb_decode
from ..errors import NoGainMapError
from ..jpeg import APP0, Segment, parse_jpeg, replace_segments
from ..residual import EPSILON, SDR_WHITE_LUMINANCE
from ..standard import StandardGainMapMetadata, append_image, mpf_images
from ..standard.apply import apply_iso
from ..standard.write import write_gain_map_file

#: ISO 21496-1 k_base and k_alt, as libultrahdr and Android write them.
ISO_OFFSET = 1.0 / 64.0

#: Identifier of the APP15 segment that says what a gamma-map image holds.
GAMMA_MAP_IDENTIFIER = b"TraditionalGammaMap\x00"

_APP15 = APP0 + 15


def iso_gain_values(hdr_pq: np.ndarray, base_linear: np.ndarray) -> np.ndarray:
    """The ISO 21496-1 gain, log2((HDR + k) / (SDR + k)), per channel at full resolution.

    Args:
        hdr_pq: float32 (H, W, 3), the HDR in BT.2020 PQ.
        base_linear: float32 (H, W, 3), the base as ISO readers linearise it: BT.709, 1.0 at
            code value 255.

    Returns:
        float32 (H, W, 3), log2 gain; HDR colours outside BT.709 are clipped to it first.
    """
    hdr = convert_primaries(pq_decode(hdr_pq) / SDR_WHITE_LUMINANCE, PRIMARIES["bt2020"], PRIMARIES["bt709"])
    ratio = (np.clip(hdr, 0.0, None) + ISO_OFFSET) / (base_linear + ISO_OFFSET)
    return np.log2(ratio).astype(np.float32)


def lossless_base_linear(code: np.ndarray) -> np.ndarray:
    """8-bit code values through the sRGB EOTF, as an ISO reader linearises a base: float32 (H, W, 3)."""
    return srgb_decode(code.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def iso_metadata(low: float, high: float, hdr_pq: np.ndarray) -> StandardGainMapMetadata:
    """ISO 21496-1 metadata for a map whose code values span log2 gains ``low`` to ``high``.

    Args:
        low: log2 gain of code value 0.
        high: log2 gain of code value 255.
        hdr_pq: float32 (H, W, 3), the HDR, for its headroom over SDR white.

    Returns:
        Single-channel parameters (all three map channels share the range), SDR base.
    """
    peak = float(pq_decode(np.max(hdr_pq))) / SDR_WHITE_LUMINANCE
    return StandardGainMapMetadata(
        kind="iso21496-1",
        version="0.0",
        base_headroom=0.0,
        alternate_headroom=max(0.0, math.log2(max(peak, 1.0))),
        gain_map_min=(low, low, low),
        gain_map_max=(high, high, high),
        base_offset=(ISO_OFFSET,) * 3,
        alternate_offset=(ISO_OFFSET,) * 3,
    )


def write_iso_file(base_jpeg: bytes, map_jpeg: bytes, metadata: StandardGainMapMetadata) -> bytes:
    """An ISO 21496-1 gain-map JPEG as libultrahdr writes it: ISO metadata only, no hdrgm XMP.

    The standard writer (:func:`~gainmap_format.standard.write.write_gain_map_file`) serves
    both this baseline and ``gainmap convert --to iso``.

    Args:
        base_jpeg: the SDR base.
        map_jpeg: the gain map image.
        metadata: what the map means.

    Returns:
        The file.
    """
    return write_gain_map_file(base_jpeg, map_jpeg, metadata, xmp=False)


def apply_iso_map(base_linear: np.ndarray, codes: np.ndarray, metadata: StandardGainMapMetadata) -> np.ndarray:
    """Apply an ISO gain map at full weight with the reader's formula and return the HDR in PQ.

    Args:
        base_linear: float32 (H, W, 3), the base linearised as ISO readers do; not modified.
        codes: uint8 (h, w, 3), the decoded map.
        metadata: its parameters.

    Returns:
        float32 (H, W, 3), BT.2020 PQ.
    """
    return iso_rendition_to_pq(apply_iso(base_linear.copy(), codes, metadata, 1.0), "bt709")


def iso_rendition_to_pq(linear: np.ndarray, primaries: PrimariesName) -> np.ndarray:
    """A gain-map rendition (relative linear, 1.0 = SDR white) as float32 BT.2020 PQ code values."""
    bt2020 = convert_primaries(linear, PRIMARIES[primaries], PRIMARIES["bt2020"])
    return pq_encode(np.clip(bt2020, 0.0, None) * SDR_WHITE_LUMINANCE).astype(np.float32)


@dataclass(frozen=True)
class GammaMapRecord:
    """What a gamma-map image means (its APP15 segment, as JSON).

    Attributes:
        low: the gamma code value 0 stands for.
        high: the gamma code value 255 stands for.
        epsilon: the offset e of H = (S + e)^f - e, in PQ code values.
        base_transfer: how the base's code values become light.
        base_primaries: the base's primaries.
        sdr_white_luminance: cd/m² of base code value 255.
    """

    low: float
    high: float
    epsilon: float = EPSILON
    base_transfer: TransferName = "gamma2.4"
    base_primaries: PrimariesName = "bt709"
    sdr_white_luminance: float = SDR_WHITE_LUMINANCE

    def to_bytes(self) -> bytes:
        """The record as compact JSON."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> GammaMapRecord:
        """Parse :meth:`to_bytes`'s output."""
        return cls(**json.loads(data))


def write_gamma_file(base_jpeg: bytes, map_jpeg: bytes, record: GammaMapRecord) -> bytes:
    """A JPEG carrying a traditional gamma map as an MPF-indexed second image, unmarked for ISO readers.

    Args:
        base_jpeg: the SDR base.
        map_jpeg: the gamma map image.
        record: what it means.

    Returns:
        The file.
    """
    segment = Segment(_APP15, GAMMA_MAP_IDENTIFIER + record.to_bytes())
    secondary = replace_segments(parse_jpeg(map_jpeg), [segment], lambda _: False).to_bytes()
    return append_image(base_jpeg, secondary)


def read_gamma_file(data: bytes) -> tuple[bytes, GammaMapRecord]:
    """Find the gamma map in a file :func:`write_gamma_file` wrote.

    Args:
        data: the whole file.

    Returns:
        (the map image, SOI to EOI; its record).

    Raises:
        NoGainMapError: no MPF-indexed image carries a gamma-map record.
        JpegError, StandardGainMapError: the file or its MPF index is malformed.
    """
    for image in mpf_images(parse_jpeg(data))[1:]:
        secondary = data[image.offset : image.offset + image.size]
        for segment in parse_jpeg(secondary).app_payloads(15, GAMMA_MAP_IDENTIFIER):
            return secondary, GammaMapRecord.from_bytes(segment.payload[len(GAMMA_MAP_IDENTIFIER) :])
    raise NoGainMapError("the JPEG holds no traditional gamma map (no MPF image with a TraditionalGammaMap record)")
