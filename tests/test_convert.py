"""gainmap_format.convert: standard gain-map JPEGs to GainMLP, any gain-map JPEG to ISO 21496-1."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gainmap_format import codec, standard, structs
from gainmap_format.convert import convert, convert_file, primary_image
from gainmap_format.errors import InputError, JpegError, NoGainMapError, StandardGainMapError
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.export import STANDARD_SDR_WHITE, render_any
from gainmap_format.jpeg import APP0, Segment, parse_jpeg
from gainmap_format.standard.iso import announcing_iso_payload
from gainmap_format.standard.write import gain_map_from_renditions, strip_standard, write_gain_map_file
from gainmap_format.standard.xmp import announcing_xmp
from tests.conftest import jpeg_bytes
from tests.standard_fixtures import base_codes, icc_profile, standard_fixture
from tests.test_fuzz import bounded, mutated_standard_files
from tests.test_standard import psnr_after_scale

#: Enough steps for the 64x48 fixtures to pass 40 dB; the default 1000 is for real photos.
OPTIONS = codec.EncodeOptions(fit=codec.FitOptions(iterations=200, seed=1))

EXIF = structs.EXIF_IDENTIFIER + b"MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
USER_XMP = 'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="user tool"'


def _user_file() -> tuple[bytes, bytes]:
    """An Android-layout file whose primary has Exif, a Display P3 ICC profile and a user XMP property.

    Returns:
        (the file, its primary image).
    """
    fixture = standard_fixture("iso-and-xmp")
    gain_map = standard.find_gain_map(fixture.data)
    version = b'hdrgm:Version="1.0"'
    packet = announcing_xmp(len(gain_map.gain_map_jpeg)).replace(version, version + b" " + USER_XMP.encode())
    base = jpeg_bytes(base_codes(), quality=100, subsampling=0, icc_profile=icc_profile("display-p3"), exif=EXIF)
    announce = [Segment(APP0 + 1, structs.XMP_IDENTIFIER + packet), Segment(APP0 + 2, announcing_iso_payload())]
    data = standard.append_image(base, gain_map.gain_map_jpeg, announce)
    return data, primary_image(data, standard.find_gain_map(data))


@pytest.fixture(scope="module")
def user_file():
    return _user_file()


@pytest.fixture(scope="module")
def converted(user_file):
    return convert(user_file[0], options=OPTIONS)


def _segments(data: bytes, n: int, identifier: bytes) -> list[bytes]:
    return [s.payload for s in parse_jpeg(data).app_payloads(n, identifier)]


def test_the_base_and_the_users_metadata_are_kept(user_file, converted):
    data, primary = user_file
    out = converted.jpeg
    assert parse_jpeg(out).scan == parse_jpeg(primary).scan  # entropy-coded data byte for byte, nothing after EOI
    assert out.endswith(b"\xff\xd9")
    for n, identifier in ((1, structs.EXIF_IDENTIFIER), (2, b"ICC_PROFILE\x00")):
        assert _segments(out, n, identifier) == _segments(primary, n, identifier) != []
    (xmp,) = _segments(out, 1, structs.XMP_IDENTIFIER)
    assert b'xmp:CreatorTool="user tool"' in xmp
    assert b"hdr-gain-map" not in xmp and b"Container" not in xmp
    assert _segments(out, 2, structs.MPF_IDENTIFIER) == [] and _segments(out, 2, structs.ISO_IDENTIFIER) == []
    assert standard.find_gain_map(out) is None
    added = len(out) - len(strip_standard(primary))
    assert 0 < added <= 10_240


def test_the_container_records_the_sources_conventions(converted):
    meta = converted.metadata
    assert converted.source_kind == "iso21496-1"
    assert meta.sdr_white_luminance == STANDARD_SDR_WHITE
    assert meta.base_primaries == "display-p3" and meta.base_transfer == "srgb"
    assert meta.base_headroom == 0.0 and meta.alternate_headroom == pytest.approx(2.3, abs=1e-4)
    assert codec.read_container(converted.jpeg).metadata == meta


def test_the_output_renders_like_the_source(user_file, converted):
    data = user_file[0]
    source, output = render_any(data), render_any(converted.jpeg)
    assert output.sdr_white_luminance == source.sdr_white_luminance == STANDARD_SDR_WHITE
    assert pq_psnr(source.pq(), output.pq()) >= 40.0
    # Absolute light agrees too: the same SDR white on both sides.
    assert np.mean(output.absolute()) == pytest.approx(np.mean(source.absolute()), rel=0.03)
    # At an SDR display both show the base; at the full headroom the full HDR.
    sdr_source, sdr_output = render_any(data, 0.0).pq(), render_any(converted.jpeg, 0.0).pq()
    assert pq_psnr(sdr_source, sdr_output) >= 40.0


@pytest.mark.parametrize("name", ["apple-xmp", "xmp-container", "iso-alternate-space"])
def test_every_dialect_converts(name):
    data = standard_fixture(name).data
    result = convert(data, options=OPTIONS)
    assert pq_psnr(render_any(data).pq(), render_any(result.jpeg).pq()) >= 38.0
    assert standard.find_gain_map(result.jpeg) is None


def test_keep_standard_serves_both_readers(user_file):
    data, primary = user_file
    result = convert(data, options=OPTIONS, keep_standard=True)
    out = result.jpeg
    kept = standard.find_gain_map(out)
    source = standard.find_gain_map(data)
    assert kept.gain_map_jpeg == source.gain_map_jpeg and kept.announced_by == source.announced_by
    assert np.array_equal(kept.render(), source.render())
    assert codec.read_container(out).metadata == result.metadata
    assert render_any(out).kind == "gainmlp"
    scan = parse_jpeg(primary).scan
    assert out[len(out) - len(source.gain_map_jpeg) - len(scan) :].startswith(scan)


def test_keep_standard_still_decodes_in_libultrahdr(user_file):
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    out = convert(user_file[0], options=codec.EncodeOptions(fit=codec.FitOptions(iterations=1)), keep_standard=True)
    reference = imagecodecs.ultrahdr_decode(out.jpeg)[..., :3].astype(np.float32)
    assert psnr_after_scale(standard.find_gain_map(out.jpeg).render(), reference) >= 35.0


def test_refusals():
    fixture = standard_fixture("iso-single-quarter").data
    with pytest.raises(NoGainMapError, match="holds no gain map"):
        convert(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(InputError, match="conversion target"):
        convert(fixture, to="heic")
    with pytest.raises(InputError, match="must be a gainmap_format.EncodeOptions"):
        convert(fixture, options={"iterations": 1})
    ours = convert(fixture, options=codec.EncodeOptions(fit=codec.FitOptions(iterations=1))).jpeg
    with pytest.raises(InputError, match="already a GainMLP file"):
        convert(ours)
    with pytest.raises((JpegError, StandardGainMapError)):
        convert(fixture[: len(fixture) // 2])
    with pytest.raises(InputError, match="cannot read"):
        convert("/nonexistent/x.jpg")


def test_a_primary_without_eoi_is_refused():
    data = standard_fixture("iso-single-quarter").data
    gain_map = standard.find_gain_map(data)
    at = gain_map.gain_map_offset
    broken = data[: at - 2] + b"\x00\x00" + data[at:]
    with pytest.raises((StandardGainMapError, JpegError)):
        convert(broken, options=OPTIONS)


def test_convert_file_is_atomic(tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"precious")
    source = tmp_path / "plain.jpg"
    source.write_bytes(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(NoGainMapError):
        convert_file(source, target)
    assert target.read_bytes() == b"precious"


# ---- to ISO 21496-1 ----


@pytest.mark.parametrize("from_ours", [False, True], ids=["standard", "gainmlp"])
def test_to_iso_writes_androids_layout(user_file, converted, from_ours):
    source = converted.jpeg if from_ours else user_file[0]
    result = convert(source, to="iso")
    gain_map = standard.find_gain_map(result.jpeg)
    assert gain_map.metadata.kind == "iso21496-1" and gain_map.announced_by == frozenset({"iso", "xmp"})
    assert gain_map.gain_map_channels == 3 and gain_map.gain_map_size == (64, 48)
    assert parse_jpeg(result.jpeg).scan.startswith(parse_jpeg(user_file[1]).scan)
    assert pq_psnr(render_any(source).pq(), render_any(result.jpeg).pq()) >= 38.0
    (xmp,) = _segments(result.jpeg, 1, structs.XMP_IDENTIFIER)
    assert b'xmp:CreatorTool="user tool"' in xmp


def test_to_iso_agrees_with_libultrahdr(converted):
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    result = convert(converted.jpeg, to="iso", map_scale=2, map_quality=90)
    assert standard.find_gain_map(result.jpeg).gain_map_size == (32, 24)
    reference = imagecodecs.ultrahdr_decode(result.jpeg)[..., :3].astype(np.float32)
    assert psnr_after_scale(standard.find_gain_map(result.jpeg).render(), reference) >= 40.0


def test_map_options_are_checked():
    data = standard_fixture("iso-single-quarter").data
    for bad in ({"map_scale": 0}, {"map_scale": 17}, {"map_scale": 2.0}, {"map_quality": 101}, {"map_quality": True}):
        with pytest.raises(InputError, match="gain-map"):
            convert(data, to="iso", **bad)


# ---- the writer's pieces ----


def test_strip_standard_drops_an_xmp_packet_left_empty():
    fixture = standard_fixture("xmp-mpf").data
    stripped = strip_standard(primary_image(fixture, standard.find_gain_map(fixture)))
    assert _segments(stripped, 1, structs.XMP_IDENTIFIER) == []
    assert _segments(stripped, 2, structs.MPF_IDENTIFIER) == []


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/"/>', "DOCTYPE"),
        (b"\xff\xfe<x hdrgm", "not UTF-8"),
        (
            b'<x xmlns:h="http://ns.adobe.com/hdr-gain-map/1.0/">' + b"<h:a/>" * 100 + b"</x>",
            "more than 64 elements",
        ),
    ],
)
def test_strip_standard_refuses_hostile_xmp(packet, message):
    if b"hdr-gain-map" not in packet:
        packet += b"http://ns.adobe.com/hdr-gain-map/1.0/"
    base = jpeg_bytes(np.zeros((8, 8, 3), np.uint8))
    layout = parse_jpeg(base)
    hostile = type(layout)((Segment(APP0 + 1, structs.XMP_IDENTIFIER + packet), *layout.segments), layout.scan)
    with pytest.raises(StandardGainMapError, match=message):
        strip_standard(hostile.to_bytes())


def test_written_maps_round_trip_through_the_reader():
    rng = np.random.default_rng(5)
    base = rng.uniform(0.0, 1.0, (24, 32, 3)).astype(np.float32)
    hdr = base * np.float32(2.0) ** rng.uniform(0.0, 2.0, (24, 32, 1)).astype(np.float32)
    made = gain_map_from_renditions(hdr, base, 2.0, scale=1, quality=100)
    assert made.metadata.gain_map_min[0] <= 0.0 < made.metadata.gain_map_max[0]
    file = write_gain_map_file(jpeg_bytes(np.zeros((24, 32, 3), np.uint8)), made.jpeg, made.metadata)
    read = standard.find_gain_map(file)
    assert read.metadata.gain_map_max == pytest.approx(made.metadata.gain_map_max, rel=1e-6)
    with pytest.raises(InputError, match="must both be"):
        gain_map_from_renditions(hdr[:2], base, 2.0)


# ---- hostile inputs: the fuzz targets of the readers, through convert ----

FUZZ_CONVERT = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ONE_STEP = codec.EncodeOptions(fit=codec.FitOptions(iterations=1))


@pytest.mark.filterwarnings("ignore:Truncated File Read")
@FUZZ_CONVERT
@given(mutated_standard_files(), st.sampled_from(["gainmlp", "iso"]))
def test_convert_mutated_files(data, to):
    result = bounded(lambda: convert(data, to=to, options=ONE_STEP))
    if result is not None:
        assert render_any(result.jpeg).relative.shape[2] == 3


def test_a_wrong_mpf_offset_does_not_cut_the_primary():
    """Some writers get MPF offsets wrong; the reader then uses GContainer, and so must the cut."""
    data = standard_fixture("iso-and-xmp").data
    gain_map = standard.find_gain_map(data)
    (mpf,) = parse_jpeg(data).app_payloads(2, structs.MPF_IDENTIFIER)
    origin = mpf.offset + 4 + len(structs.MPF_IDENTIFIER)
    right = (gain_map.gain_map_offset - origin).to_bytes(4, "big")
    at = data.index(right, mpf.offset, mpf.offset + 4 + len(mpf.payload))
    wrong = data[:at] + (gain_map.gain_map_offset - origin - 100).to_bytes(4, "big") + data[at + 4 :]
    assert standard.find_gain_map(wrong).gain_map_offset == gain_map.gain_map_offset
    cut = primary_image(wrong, standard.find_gain_map(wrong))
    assert len(cut) == len(primary_image(data, gain_map)) and cut == wrong[: len(cut)]
