"""Every binary structure of the format, declared with ``construct``.

Each declaration names the section of ``spec/gainmap-mlp.md`` it implements. All integers and
floats are big-endian, as in JPEG and ISO 21496-1. The declarations only describe bytes; the
checks on values (ranges, finiteness, versions) live in ``container.py``.
"""

from __future__ import annotations

import construct as cs

#: Spec §3.1: the identifier that opens each of our APP15 segments.
SEGMENT_IDENTIFIER = b"GainMLP\x00"

#: Spec §4.1: the container's first four bytes.
CONTAINER_MAGIC = b"GMLP"

# Spec §3.1: one APP15 segment's payload. The container is cut into chunks carried in
# order; sequence numbers count from 1, like ICC profiles split over APP2 segments.
SEGMENT_PAYLOAD = cs.Struct(
    "identifier" / cs.Const(SEGMENT_IDENTIFIER),
    "sequence" / cs.Int8ub,
    "count" / cs.Int8ub,
    "chunk" / cs.GreedyBytes,
)

SEGMENT_HEADER_SIZE = len(SEGMENT_IDENTIFIER) + 2

# Spec §4.2: the part of the container every version shares, read first so that a reader
# can refuse a newer version before it tries to read fields it does not know.
CONTAINER_PREFIX = cs.Struct(
    "magic" / cs.Const(CONTAINER_MAGIC),
    "minimum_version" / cs.Int16ub,
    "writer_version" / cs.Int16ub,
)

# Spec §4.5: an unsigned rational, as ISO 21496-1 stores headrooms.
RATIONAL = cs.Struct("numerator" / cs.Int32ub, "denominator" / cs.Int32ub)

# Spec §4.3: the version 1.0 container body, without the trailing checksum.
CONTAINER_BODY_V1 = cs.Struct(
    "magic" / cs.Const(CONTAINER_MAGIC),
    "minimum_version" / cs.Int16ub,
    "writer_version" / cs.Int16ub,
    "flags" / cs.Int8ub,
    "residual_kind" / cs.Int8ub,
    "residual_domain" / cs.Int8ub,
    "activation" / cs.Int8ub,
    "hidden_width" / cs.Int8ub,
    "frequencies" / cs.Int8ub,
    "base_transfer" / cs.Int8ub,
    "base_primaries" / cs.Int8ub,
    "width" / cs.Int32ub,
    "height" / cs.Int32ub,
    "epsilon" / cs.Float32b,
    "sdr_white_luminance" / cs.Float32b,
    "input_mean" / cs.Float32b,
    "input_range" / cs.Float32b,
    "residual_mean" / cs.Float32b,
    "residual_range" / cs.Float32b,
    "base_headroom" / RATIONAL,
    "alternate_headroom" / RATIONAL,
    "graph" / cs.Prefixed(cs.Int32ub, cs.GreedyBytes),
    # Spec §5: fields a later minor version appends; a 1.0 writer leaves this empty.
    "extensions" / cs.GreedyBytes,
)

# Spec §4.7 (version 2.1): the placement record, first in the extensions of a container whose
# minimum_version is 2.1 or later: the size of the image the network was fitted on, and the affine
# map (a, b, c, d, e, f) from this base image's pixel coordinates to that image's.
PLACEMENT = cs.Struct(
    "source_width" / cs.Int32ub,
    "source_height" / cs.Int32ub,
    "matrix" / cs.Array(6, cs.Float64b),
)
PLACEMENT_SIZE = PLACEMENT.sizeof()

#: Spec §4.4: the CRC-32 trailer closing every container version.
CHECKSUM = cs.Int32ub
CHECKSUM_SIZE = 4


# ---- Standard gain maps (ISO 21496-1, MPF): issue 3 ----

#: ISO 21496-1 Annex C (carriage in JPEG): the identifier opening its APP2 segments.
ISO_IDENTIFIER = b"urn:iso:std:iso:ts:21496:-1\x00"

#: CIPA DC-007 §5.2.1: the identifier opening the MP Extensions APP2 segment.
MPF_IDENTIFIER = b"MPF\x00"

#: XMP Specification Part 3 §1.1.3: the identifier opening the standard XMP APP1 segment.
XMP_IDENTIFIER = b"http://ns.adobe.com/xap/1.0/\x00"

#: Exif 2.32 §4.7.2: the identifier opening the Exif APP1 segment.
EXIF_IDENTIFIER = b"Exif\x00\x00"

#: ICC.1:2022 Annex B.4: the identifier opening each APP2 segment of an embedded ICC profile.
ICC_IDENTIFIER = b"ICC_PROFILE\x00"

# ISO 21496-1 §6.2 (GainMapMetadata syntax): the two version fields every payload starts with.
# A primary image's APP2 segment may hold only these, to say that the file has a gain map.
ISO_VERSION = cs.Struct(
    "minimum_version" / cs.Int16ub,
    "writer_version" / cs.Int16ub,
)

# ISO 21496-1 §6.2: the flags byte. Bit 7 is_multichannel, bit 6 use_base_colour_space; the
# standard reserves the rest. libultrahdr 1.x sets bit 3 when every rational shares one
# denominator and then writes that denominator once (ISO_BODY_COMMON_DENOMINATOR).
ISO_FLAGS = cs.BitStruct(
    "is_multichannel" / cs.Flag,
    "use_base_colour_space" / cs.Flag,
    "reserved_high" / cs.BitsInteger(2),
    "common_denominator" / cs.Flag,
    "reserved_low" / cs.BitsInteger(3),
)

# ISO 21496-1 §6.2: a signed rational (gain map min and max, offsets).
ISO_SIGNED_FRACTION = cs.Struct("numerator" / cs.Int32sb, "denominator" / cs.Int32ub)

# ISO 21496-1 §6.2: an unsigned rational (headrooms, gamma).
ISO_UNSIGNED_FRACTION = cs.Struct("numerator" / cs.Int32ub, "denominator" / cs.Int32ub)

# ISO 21496-1 §6.2: one channel's parameters, each rational with its own denominator.
ISO_CHANNEL = cs.Struct(
    "gain_map_min" / ISO_SIGNED_FRACTION,
    "gain_map_max" / ISO_SIGNED_FRACTION,
    "gamma" / ISO_UNSIGNED_FRACTION,
    "base_offset" / ISO_SIGNED_FRACTION,
    "alternate_offset" / ISO_SIGNED_FRACTION,
)

# libultrahdr 1.x's common-denominator variant of ISO_CHANNEL: numerators only.
ISO_CHANNEL_COMMON_DENOMINATOR = cs.Struct(
    "gain_map_min" / cs.Int32sb,
    "gain_map_max" / cs.Int32sb,
    "gamma" / cs.Int32ub,
    "base_offset" / cs.Int32sb,
    "alternate_offset" / cs.Int32sb,
)


def _iso_channel_count(context: cs.Container) -> int:
    """ISO 21496-1 §6.3: three channels when is_multichannel is set, otherwise one."""
    return 3 if context._.flags.is_multichannel else 1


# ISO 21496-1 §6.2: headrooms, then the channels.
ISO_BODY = cs.Struct(
    "base_hdr_headroom" / ISO_UNSIGNED_FRACTION,
    "alternate_hdr_headroom" / ISO_UNSIGNED_FRACTION,
    "channels" / cs.Array(_iso_channel_count, ISO_CHANNEL),
)

# libultrahdr 1.x's common-denominator variant of ISO_BODY.
ISO_BODY_COMMON_DENOMINATOR = cs.Struct(
    "denominator" / cs.Int32ub,
    "base_hdr_headroom" / cs.Int32ub,
    "alternate_hdr_headroom" / cs.Int32ub,
    "channels" / cs.Array(_iso_channel_count, ISO_CHANNEL_COMMON_DENOMINATOR),
)

# ISO 21496-1 §6.2: the whole payload after ISO_IDENTIFIER, for minimum_version 0.
ISO_METADATA = cs.Struct(
    "minimum_version" / cs.Int16ub,
    "writer_version" / cs.Int16ub,
    "flags" / ISO_FLAGS,
    "body" / cs.IfThenElse(cs.this.flags.common_denominator, ISO_BODY_COMMON_DENOMINATOR, ISO_BODY),
)


def _tiff_header(order: bytes, u16: cs.Construct, u32: cs.Construct) -> cs.Struct:
    """TIFF 6.0 §2 (image file header), as MPF and Exif use it: byte order, 42, IFD0 offset."""
    return cs.Struct("byte_order" / cs.Const(order), "magic" / cs.Const(42, u16), "ifd_offset" / u32)


def _ifd(u16: cs.Construct, u32: cs.Construct) -> cs.Struct:
    """TIFF 6.0 §2 (image file directory): entry count, 12-byte entries, next IFD offset."""
    entry = cs.Struct("tag" / u16, "type" / u16, "count" / u32, "value" / cs.Bytes(4))
    return cs.Struct("count" / u16, "entries" / cs.Array(cs.this.count, entry), "next_ifd" / u32)


def _mp_entry(u16: cs.Construct, u32: cs.Construct) -> cs.Struct:
    """CIPA DC-007 §5.2.3.3.3 (MP Entry): attribute, size, data offset, two dependent images."""
    return cs.Struct(
        "attribute" / u32,
        "size" / u32,
        "data_offset" / u32,
        "dependent_image_1" / u16,
        "dependent_image_2" / u16,
    )


_LITTLE = (cs.Int16ul, cs.Int32ul)
_BIG = (cs.Int16ub, cs.Int32ub)

#: TIFF 6.0 §2: the image file header for each byte order, keyed by its first two bytes.
TIFF_HEADER = {b"II": _tiff_header(b"II", *_LITTLE), b"MM": _tiff_header(b"MM", *_BIG)}

#: TIFF 6.0 §2: an image file directory for each byte order.
TIFF_IFD = {b"II": _ifd(*_LITTLE), b"MM": _ifd(*_BIG)}

#: CIPA DC-007 §5.2.3.3.3: one MP Entry for each byte order.
MP_ENTRY = {b"II": _mp_entry(*_LITTLE), b"MM": _mp_entry(*_BIG)}

#: TIFF 6.0 §2: the size of one IFD entry, and of an IFD's count and next-IFD fields.
IFD_ENTRY_SIZE = 12
IFD_OVERHEAD = 6

# TIFF 6.0 §2 (field types 5 and 10): RATIONAL and SRATIONAL, big-endian.
TIFF_RATIONAL = {
    5: cs.Struct("numerator" / cs.Int32ub, "denominator" / cs.Int32ub),
    10: cs.Struct("numerator" / cs.Int32sb, "denominator" / cs.Int32sb),
}

# Apple's maker note (no published specification; the layout Exif readers such as ExifTool and
# Skia's SkExif document): signature, version, byte order, then a big-endian IFD at offset 14
# whose value offsets count from the start of the maker note.
APPLE_MAKER_NOTE = cs.Struct(
    "signature" / cs.Const(b"Apple iOS\x00"),
    "version" / cs.Int16ub,
    "byte_order" / cs.Const(b"MM"),
)

# ICC.1:2022 Annex B.4: one APP2 segment of an embedded profile: 1-based sequence and count.
ICC_SEGMENT = cs.Struct(
    "identifier" / cs.Const(ICC_IDENTIFIER),
    "sequence" / cs.Int8ub,
    "count" / cs.Int8ub,
    "chunk" / cs.GreedyBytes,
)

# ICC.1:2022 §7.3 (tag table): one entry.
ICC_TAG = cs.Struct("signature" / cs.Bytes(4), "offset" / cs.Int32ub, "size" / cs.Int32ub)

# ICC.1:2022 §7.2 and §7.3: the profile size, the header we skip, and the tag table.
ICC_PROFILE = cs.Struct(
    "size" / cs.Int32ub,
    cs.Padding(124),
    "tag_count" / cs.Int32ub,
    "tags" / cs.Array(cs.this.tag_count, ICC_TAG),
)

# ICC.1:2022 §10.31 (XYZType): one XYZ triple in s15Fixed16Number.
ICC_XYZ = cs.Struct("type" / cs.Const(b"XYZ "), cs.Padding(4), "xyz" / cs.Array(3, cs.Int32sb))

# ICC.1:2022 §10.3 (cicpType, ICC v4.4): ITU-T H.273 code points.
ICC_CICP = cs.Struct(
    "type" / cs.Const(b"cicp"),
    cs.Padding(4),
    "colour_primaries" / cs.Int8ub,
    "transfer_characteristics" / cs.Int8ub,
    "matrix_coefficients" / cs.Int8ub,
    "full_range" / cs.Int8ub,
)

# ITU-T T.81 §B.2.2 (frame header): sample precision, lines, samples per line, components.
JPEG_FRAME_HEADER = cs.Struct(
    "precision" / cs.Int8ub,
    "height" / cs.Int16ub,
    "width" / cs.Int16ub,
    "components" / cs.Int8ub,
)

#: ITU-T T.81 table B.1: the start-of-frame markers (SOF0 to SOF15 less DHT, JPG and DAC).
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
