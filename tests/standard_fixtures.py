"""Small standard gain-map JPEGs written with the project's own writers, one per reader path.

Every file is 64x48 with a smaller (or equal) gain map, built deterministically at test-session
time, so the standard reader and the plugin are tested from a clean clone; the real files in
``../shared/data`` stay the larger check. Each :class:`StandardFixture` records what the file was
built from (the metadata in ISO 21496-1's terms, or Apple's headroom), so tests can compute the
expected rendering independently of the reader.

Reader paths covered (see :data:`FIXTURES`):

- ISO 21496-1 only, multichannel metadata and a full-size three-channel map;
- ISO 21496-1 only, one channel and a quarter-size one-channel map (libultrahdr's layout);
- ISO 21496-1 and hdrgm XMP in both images (Android's layout), a half-size map;
- hdrgm XMP only with MPF, attribute form, offsets left to their defaults;
- hdrgm XMP only with MPF and a three-channel map larger than the base;
- hdrgm XMP only, per-channel ``rdf:Seq`` values, found through the GContainer directory
  without MPF, with a map at a non-integer ratio (bilinear resampling);
- ISO 21496-1 applied in the gain-map image's colour space (BT.2020 ICC profile on the map,
  sRGB profile on the base);
- Apple HDRGainMap with its headroom in the map's XMP (Display P3 base profile), and with it in
  the primary's maker note.
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageCms

from gainmap_format import standard, structs
from gainmap_format.colour import PrimariesName
from gainmap_format.jpeg import APP0, Segment, parse_jpeg, replace_segments
from gainmap_format.standard.apple import APPLE_AUX_TYPE
from gainmap_format.standard.iso import announcing_iso_payload
from gainmap_format.standard.xmp import APDI_NS, APPLE_NS, RDF_NS, announcing_xmp
from tests.conftest import SHARED_DATA

#: (width, height) of every fixture's base image.
BASE_SIZE = (64, 48)

#: ICC colorants (rXYZ, gXYZ, bXYZ, adapted to D50) as the published profiles store them: Apple's
#: Display P3 and the ITU's BT.2020 profiles. Typed in from those profiles, not computed here, so
#: that the reader's own colorant maths is checked against them.
ICC_COLORANTS: dict[PrimariesName, tuple[tuple[float, float, float], ...]] = {
    "display-p3": ((0.515121, 0.241196, -0.001053), (0.291977, 0.692245, 0.041885), (0.157104, 0.066574, 0.784073)),
    "bt2020": ((0.673459, 0.279033, -0.001931), (0.165661, 0.675338, 0.029979), (0.125092, 0.045643, 0.797186)),
}


@dataclass(frozen=True)
class StandardFixture:
    """A generated gain-map JPEG and what it was built from.

    Attributes:
        name: short identifier, used as the test id.
        data: the whole file.
        metadata: the parameters written, in ISO 21496-1's terms (for Apple files the reader's
            ISO description of them, with ``apple_headroom`` set).
        gain_map_size: (width, height) of the gain-map image.
        gain_map_channels: components of the gain-map JPEG, 1 or 3.
        announced_by: what the primary image announces: "iso" and/or "xmp".
        base_primaries: the base's primaries, from its ICC profile ("bt709" without one).
        primaries: the primaries the gain applies in and the rendering is in.
        libultrahdr: whether libultrahdr 1.4.0 (imagecodecs 2026.3.6) decodes the file; it reads
            neither Apple maps nor hdrgm ``rdf:Seq`` values.
    """

    name: str
    data: bytes
    metadata: standard.StandardGainMapMetadata
    gain_map_size: tuple[int, int]
    gain_map_channels: int
    announced_by: frozenset[str]
    base_primaries: PrimariesName
    primaries: PrimariesName
    libultrahdr: bool


def base_codes() -> np.ndarray:
    """uint8 (48, 64, 3): smooth colour ramps from near black to near white, the fixtures' base."""
    width, height = BASE_SIZE
    x = np.linspace(0.0, 1.0, width)[None, :]
    y = np.linspace(0.0, 1.0, height)[:, None]
    red = 16 + 220 * x * np.ones_like(y)
    green = 16 + 220 * y * np.ones_like(x)
    blue = 128 + 100 * np.sin(2.0 * np.pi * (x + y))
    return np.rint(np.stack([red, green, blue], axis=-1)).astype(np.uint8)


def map_codes(width: int, height: int, channels: int) -> np.ndarray:
    """uint8 (height, width, channels): a smooth gain-map pattern spanning 0 to 255, per channel shifted."""
    x = np.linspace(0.0, 1.0, width)[None, :]
    y = np.linspace(0.0, 1.0, height)[:, None]
    planes = [0.5 + 0.5 * np.sin(2.0 * np.pi * (x + 0.7 * y) + 1.3 * c) for c in range(channels)]
    return np.rint(255.0 * np.stack(planes, axis=-1)).astype(np.uint8)


def icc_profile(primaries: PrimariesName) -> bytes:
    """An ICC profile for ``primaries``: lcms's sRGB profile, its colorant tags replaced for other gamuts."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    if primaries == "bt709":
        return bytes(profile)
    tags = {t.signature: t.offset for t in structs.ICC_PROFILE.parse(bytes(profile)).tags}
    for signature, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), ICC_COLORANTS[primaries], strict=True):
        at = tags[signature] + 8  # after the "XYZ " type and its reserved bytes
        profile[at : at + 12] = struct.pack(">iii", *(round(v * 65536) for v in xyz))
    return bytes(profile)


def _jpeg(codes: np.ndarray, *segments: bytes, **save_options: object) -> bytes:
    """uint8 (H, W, 1 or 3) as a quality-100 4:4:4 JPEG, with ``segments`` (APPn payloads) after its SOI."""
    mode = "L" if codes.shape[2] == 1 else "RGB"
    buffer = io.BytesIO()
    pixels = codes[..., 0] if mode == "L" else codes
    Image.fromarray(pixels, mode).save(buffer, "JPEG", quality=100, subsampling=0, **save_options)
    app1 = (structs.XMP_IDENTIFIER, structs.EXIF_IDENTIFIER)
    added = [Segment(APP0 + (1 if p.startswith(app1) else 2), p) for p in segments]
    return replace_segments(parse_jpeg(buffer.getvalue()), added, lambda s: False).to_bytes()


def _xmp_packet(namespaces: dict[str, str], properties: dict[str, str | tuple[str, ...]]) -> bytes:
    """An XMP APP1 payload with one rdf:Description: scalar properties as attributes, tuples as rdf:Seq."""
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in namespaces.items())
    attributes = " ".join(f'{name}="{value}"' for name, value in properties.items() if isinstance(value, str))
    elements = "".join(
        f"<{name}><rdf:Seq>{''.join(f'<rdf:li>{v}</rdf:li>' for v in value)}</rdf:Seq></{name}>"
        for name, value in properties.items()
        if not isinstance(value, str)
    )
    text = (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF_NS}">'
        f'<rdf:Description rdf:about="" {declarations} {attributes}>{elements}</rdf:Description>'
        "</rdf:RDF></x:xmpmeta>"
    )
    return structs.XMP_IDENTIFIER + text.encode()


def hdrgm_packet(meta: standard.StandardGainMapMetadata, per_channel: bool, offsets: bool = True) -> bytes:
    """Adobe Gain Map 1.0 values of an SDR-base map as the gain-map image's XMP payload.

    Args:
        meta: the parameters in ISO terms (base headroom 0: an SDR base).
        per_channel: write each per-channel property as an rdf:Seq of three, else one attribute.
        offsets: write OffsetSDR and OffsetHDR; without them a reader takes the default 1/64.

    Returns:
        The APP1 payload, identifier included.
    """

    def value(values: tuple[float, float, float]) -> str | tuple[str, ...]:
        return tuple(repr(v) for v in values) if per_channel else repr(values[0])

    properties: dict[str, str | tuple[str, ...]] = {
        "hdrgm:Version": "1.0",
        "hdrgm:HDRCapacityMin": repr(meta.base_headroom),
        "hdrgm:HDRCapacityMax": repr(meta.alternate_headroom),
        "hdrgm:GainMapMin": value(meta.gain_map_min),
        "hdrgm:GainMapMax": value(meta.gain_map_max),
        "hdrgm:Gamma": value(meta.gamma),
    }
    if offsets:
        properties["hdrgm:OffsetSDR"] = value(meta.base_offset)
        properties["hdrgm:OffsetHDR"] = value(meta.alternate_offset)
    return _xmp_packet({"hdrgm": standard.HDRGM_NS}, properties)


def apple_packet(headroom: float | None) -> bytes:
    """The XMP of an Apple gain-map image: its auxiliary type, and the headroom when given (version 2)."""
    properties = {"apdi:AuxiliaryImageType": APPLE_AUX_TYPE}
    if headroom is not None:
        properties |= {"HDRGainMap:HDRGainMapVersion": "131072", "HDRGainMap:HDRGainMapHeadroom": repr(headroom)}
    else:
        properties["HDRGainMap:HDRGainMapVersion"] = "65536"
    return _xmp_packet({"apdi": APDI_NS, "HDRGainMap": APPLE_NS}, properties)


def apple_maker_note_exif(tag33: tuple[int, int], tag48: tuple[int, int]) -> bytes:
    """An Exif APP1 payload (identifier included) whose maker note is Apple's, with SRATIONAL tags 33 and 48."""
    entries = struct.pack(">H", 2) + struct.pack(">HHII", 33, 10, 1, 44) + struct.pack(">HHII", 48, 10, 1, 52)
    note = b"Apple iOS\x00" + struct.pack(">H", 1) + b"MM" + entries + bytes(4) + struct.pack(">iiii", *tag33, *tag48)
    # TIFF header; IFD0 at 8 points at the Exif IFD at 26, whose MakerNote entry points at 44.
    tiff = b"MM" + struct.pack(">HI", 42, 8)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, 26) + bytes(4)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x927C, 7, len(note), 44) + bytes(4)
    return structs.EXIF_IDENTIFIER + tiff + note


def _iso_meta(**fields: object) -> standard.StandardGainMapMetadata:
    values: dict = {
        "kind": "iso21496-1",
        "version": "0.0",
        "base_headroom": 0.0,
        "alternate_headroom": 2.5,
        "gain_map_min": (0.0, 0.0, 0.0),
        "gain_map_max": (2.5, 2.5, 2.5),
        "base_offset": (1 / 64,) * 3,
        "alternate_offset": (1 / 64,) * 3,
    }
    return standard.StandardGainMapMetadata(**{**values, **fields})


def _apple_meta(headroom: float, version: str) -> standard.StandardGainMapMetadata:
    stops = float(np.log2(headroom))
    return standard.StandardGainMapMetadata(
        kind="apple",
        version=version,
        base_headroom=0.0,
        alternate_headroom=stops,
        gain_map_min=(0.0, 0.0, 0.0),
        gain_map_max=(stops,) * 3,
        base_offset=(0.0,) * 3,
        alternate_offset=(0.0,) * 3,
        apple_headroom=headroom,
    )


def _iso_with_mpf(
    name: str,
    meta: standard.StandardGainMapMetadata,
    size: tuple[int, int],
    channels: int,
    base_icc: PrimariesName | None = None,
    map_icc: PrimariesName | None = None,
) -> StandardFixture:
    """ISO 21496-1 only: full metadata in the map, a version-only announcement and MPF in the primary.

    ``base_icc`` and ``map_icc`` name the primaries of an ICC profile to embed in either image.
    """
    secondary = _jpeg(
        map_codes(*size, channels),
        standard.iso_metadata_payload(meta),
        **({"icc_profile": icc_profile(map_icc)} if map_icc else {}),
    )
    base = _jpeg(base_codes(), **({"icc_profile": icc_profile(base_icc)} if base_icc else {}))
    data = standard.append_image(base, secondary, [Segment(APP0 + 2, announcing_iso_payload())])
    base_primaries = base_icc or "bt709"
    return StandardFixture(
        name=name,
        data=data,
        metadata=meta,
        gain_map_size=size,
        gain_map_channels=channels,
        announced_by=frozenset({"iso"}),
        base_primaries=base_primaries,
        primaries=base_primaries if meta.use_base_colour_space else (map_icc or base_primaries),
        libultrahdr=True,
    )


def _iso_and_xmp() -> StandardFixture:
    """Android's layout: ISO and hdrgm in the map; version-only ISO, hdrgm + GContainer and MPF in the primary."""
    meta = _iso_meta(alternate_headroom=2.3, gain_map_max=(2.3,) * 3)
    secondary = _jpeg(map_codes(32, 24, 1), standard.iso_metadata_payload(meta), hdrgm_packet(meta, per_channel=False))
    announce = [
        Segment(APP0 + 2, announcing_iso_payload()),
        Segment(APP0 + 1, structs.XMP_IDENTIFIER + announcing_xmp(len(secondary))),
    ]
    data = standard.append_image(_jpeg(base_codes()), secondary, announce)
    return StandardFixture("iso-and-xmp", data, meta, (32, 24), 1, frozenset({"iso", "xmp"}), "bt709", "bt709", True)


def _xmp_with_mpf() -> StandardFixture:
    """hdrgm XMP only, attribute form, offsets omitted (the reader's default 1/64), found through MPF."""
    meta = _iso_meta(
        kind="ultrahdr-xmp", version="1.0", gain_map_min=(-0.25,) * 3, gamma=(1.25,) * 3, alternate_headroom=2.5
    )
    secondary = _jpeg(map_codes(32, 24, 1), hdrgm_packet(meta, per_channel=False, offsets=False))
    announce = [Segment(APP0 + 1, structs.XMP_IDENTIFIER + announcing_xmp(len(secondary)))]
    data = standard.append_image(_jpeg(base_codes()), secondary, announce)
    return StandardFixture("xmp-mpf", data, meta, (32, 24), 1, frozenset({"xmp"}), "bt709", "bt709", True)


def _xmp_larger_map() -> StandardFixture:
    """hdrgm XMP only with MPF and a three-channel map 1.5 times the base on each side."""
    meta = _iso_meta(kind="ultrahdr-xmp", version="1.0", alternate_headroom=2.0, gain_map_max=(2.0,) * 3)
    secondary = _jpeg(map_codes(96, 72, 3), hdrgm_packet(meta, per_channel=False))
    announce = [Segment(APP0 + 1, structs.XMP_IDENTIFIER + announcing_xmp(len(secondary)))]
    data = standard.append_image(_jpeg(base_codes()), secondary, announce)
    return StandardFixture("xmp-larger-map", data, meta, (96, 72), 3, frozenset({"xmp"}), "bt709", "bt709", True)


def _xmp_container_only() -> StandardFixture:
    """hdrgm XMP only, rdf:Seq per channel, no MPF: the GContainer directory locates a 24x18 map."""
    meta = _iso_meta(
        kind="ultrahdr-xmp",
        version="1.0",
        channels=3,
        alternate_headroom=3.0,
        gain_map_min=(0.0, -0.5, 0.25),
        gain_map_max=(2.0, 3.0, 2.5),
        gamma=(1.0, 0.8, 1.5),
        base_offset=(1 / 64, 0.02, 0.01),
        alternate_offset=(1 / 64, 0.01, 0.03),
    )
    secondary = _jpeg(map_codes(24, 18, 3), hdrgm_packet(meta, per_channel=True))
    announce = Segment(APP0 + 1, structs.XMP_IDENTIFIER + announcing_xmp(len(secondary)))
    primary = replace_segments(parse_jpeg(_jpeg(base_codes())), [announce], lambda s: False).to_bytes()
    return StandardFixture(
        "xmp-container", primary + secondary, meta, (24, 18), 3, frozenset({"xmp"}), "bt709", "bt709", False
    )


def _apple(name: str, headroom: float, in_xmp: bool, size: tuple[int, int]) -> StandardFixture:
    """Apple HDRGainMap: a one-channel map, the headroom in its XMP or in the primary's maker note."""
    secondary = _jpeg(map_codes(*size, 1), apple_packet(headroom if in_xmp else None))
    if in_xmp:
        base = _jpeg(base_codes(), icc_profile=icc_profile("display-p3"))
    else:
        # Tag 33 >= 1 and tag 48 <= 0.01: Apple's formula gives 3 - 70 * tag48 = 2.65 stops.
        base = _jpeg(base_codes(), apple_maker_note_exif((12, 10), (5, 1000)))
    data = standard.append_image(base, secondary)
    meta = _apple_meta(headroom, "131072" if in_xmp else "65536")
    primaries = "display-p3" if in_xmp else "bt709"
    return StandardFixture(name, data, meta, size, 1, frozenset(), primaries, primaries, False)


#: Builders of every fixture, by name.
_BUILDERS = {
    "iso-multichannel": lambda: _iso_with_mpf(
        "iso-multichannel",
        _iso_meta(
            channels=3,
            alternate_headroom=3.0,
            gain_map_min=(-0.5, 0.0, 0.25),
            gain_map_max=(2.0, 2.5, 3.0),
            gamma=(1.0, 1.5, 0.8),
            base_offset=(1 / 64, 0.02, 0.01),
            alternate_offset=(1 / 64, 0.01, 0.02),
        ),
        BASE_SIZE,
        3,
    ),
    "iso-single-quarter": lambda: _iso_with_mpf("iso-single-quarter", _iso_meta(), (16, 12), 1),
    "iso-and-xmp": _iso_and_xmp,
    "xmp-mpf": _xmp_with_mpf,
    "xmp-larger-map": _xmp_larger_map,
    "xmp-container": _xmp_container_only,
    "iso-alternate-space": lambda: _iso_with_mpf(
        "iso-alternate-space",
        _iso_meta(use_base_colour_space=False, alternate_headroom=2.0, gain_map_max=(2.0,) * 3),
        (32, 24),
        3,
        base_icc="bt709",
        map_icc="bt2020",
    ),
    "apple-xmp": lambda: _apple("apple-xmp", 3.5, True, (32, 24)),
    "apple-maker-note": lambda: _apple("apple-maker-note", 2.0**2.65, False, (16, 12)),
}

#: Names of the fixtures, in a stable order (test ids).
FIXTURES = tuple(_BUILDERS)


@functools.cache
def standard_fixture(name: str) -> StandardFixture:
    """The fixture called ``name``, built once per test session.

    Args:
        name: one of :data:`FIXTURES`.

    Returns:
        The fixture.
    """
    return _BUILDERS[name]()


#: Real files of ../shared/data up to this size join the fixtures in the reader tests; the
#: larger ones are checked by test_standard.py and test_pillow_plugin.py.
MAX_REAL_BYTES = 200_000


def reader_cases() -> list:
    """pytest params: every fixture, then the small real gain-map JPEGs of ../shared/data when present."""
    cases = [pytest.param(name, id=name) for name in FIXTURES]
    folder = SHARED_DATA / "gainmaps"
    if folder.is_dir():
        small = (p for p in sorted(folder.glob("*.jpg")) if p.stat().st_size <= MAX_REAL_BYTES)
        cases += [pytest.param(f"real:{p.name}", id=p.name) for p in small]
    return cases


def case_bytes(case: str) -> bytes:
    """The file of a :func:`reader_cases` case: a fixture's bytes, or a real file's ("real:NAME").

    Args:
        case: a fixture name, or "real:" and a file name in ../shared/data/gainmaps.

    Returns:
        The whole file.
    """
    if case.startswith("real:"):
        return (SHARED_DATA / "gainmaps" / case.removeprefix("real:")).read_bytes()
    return standard_fixture(case).data
