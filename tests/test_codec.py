import io
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from gainmap_format import codec, container, jpeg, native
from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import (
    ContainerError,
    GraphContractError,
    InputError,
    JpegError,
    NoGainMapError,
    UnsupportedVersionError,
)
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.residual import hdr_to_pq, sdr_to_pq
from gainmap_format.scenes import hdr_scene
from gainmap_format.tonemap import default_sdr, render_sdr
from tests.conftest import QUICK, jpeg_bytes, shared_data

BT2020 = PRIMARIES["bt2020"]


def test_round_trip_quality_and_metadata(scene, encoded):
    decoded = codec.decode(encoded.jpeg)
    assert decoded.pq.shape == scene.shape and decoded.pq.dtype == np.float32
    assert pq_psnr(hdr_to_pq(scene, BT2020, 1.0), decoded.pq) > 30.0
    metadata = decoded.metadata
    assert (metadata.width, metadata.height, metadata.residual, metadata.hidden_width) == (64, 48, "gamma", 16)
    assert metadata.alternate_headroom == pytest.approx(np.log2(float(scene.max()) / 100.0), abs=0.05)
    absolute = decoded.linear("absolute")
    assert np.allclose(hdr_to_pq(absolute, BT2020, 1.0), decoded.pq, atol=1e-5)
    assert np.allclose(decoded.linear("sdr-white"), absolute / 100.0, rtol=1e-6)
    with pytest.raises(InputError):
        decoded.linear("nits")


def test_default_metadata_fits_in_10240_bytes(encoded):
    assert encoded.metadata_bytes <= 10240
    layout = jpeg.parse_jpeg(encoded.jpeg)
    ours = [s for s in layout.segments if container.is_our_segment(s)]
    assert sum(len(s.encode()) for s in ours) == encoded.metadata_bytes


def test_a_real_fit_beats_a_quick_one():
    scene = hdr_scene(64, 96, seed=7)
    reference = hdr_to_pq(scene, PRIMARIES["bt709"], 1.0)
    quick = codec.encode(scene, white_luminance=1.0, options=codec.EncodeOptions(fit=codec.FitOptions(iterations=5)))
    better = codec.encode(scene, white_luminance=1.0, options=codec.EncodeOptions(fit=codec.FitOptions(iterations=300)))
    quick_db = pq_psnr(reference, codec.decode(quick.jpeg).pq)
    better_db = pq_psnr(reference, codec.decode(better.jpeg).pq)
    assert better_db > quick_db + 3.0
    assert better_db > 40.0


def test_same_seed_gives_the_same_file(scene, encoded):
    again = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, options=QUICK)
    assert again.jpeg == encoded.jpeg


def test_user_jpeg_is_kept_byte_for_byte_with_its_metadata(scene):
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"  # empty IFD0
    sdr = jpeg_bytes(default_sdr(hdr_to_pq(scene, BT2020, 1.0)), quality=90, exif=exif, icc_profile=b"fake-icc-profile")
    result = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, sdr=sdr, options=QUICK)
    before, after = jpeg.parse_jpeg(sdr), jpeg.parse_jpeg(result.jpeg)
    assert after.scan == before.scan
    kept = [(s.marker, s.payload) for s in after.segments if not container.is_our_segment(s)]
    assert kept == [(s.marker, s.payload) for s in before.segments]
    assert any(s.payload.startswith(b"ICC_PROFILE") for s in after.segments)
    assert np.array_equal(codec.decode(result.jpeg).sdr, codec.decode_base(sdr))


def test_reencoding_replaces_our_segments(scene, encoded):
    again = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, sdr=encoded.jpeg, options=QUICK)
    ours = [s for s in jpeg.parse_jpeg(again.jpeg).segments if container.is_our_segment(s)]
    assert len(ours) == 1
    assert jpeg.parse_jpeg(again.jpeg).scan == jpeg.parse_jpeg(encoded.jpeg).scan


def test_png_and_array_bases(scene):
    code = default_sdr(hdr_to_pq(scene, BT2020, 1.0))
    buffer = io.BytesIO()
    Image.fromarray(code).save(buffer, "PNG")
    from_png = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, sdr=buffer.getvalue(), options=QUICK)
    from_array = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, sdr=code, options=QUICK)
    assert from_png.jpeg == from_array.jpeg
    assert np.abs(codec.decode(from_png.jpeg).sdr.astype(int) - code).mean() < 2.0


@pytest.mark.parametrize(
    "options",
    [
        codec.EncodeOptions(residual="gain", fit=codec.FitOptions(iterations=40)),
        codec.EncodeOptions(fit=codec.FitOptions(iterations=40, activation="relu", hidden_width=8)),
        codec.EncodeOptions(sdr_transfer="srgb", sdr_primaries="display-p3", fit=codec.FitOptions(iterations=40)),
    ],
)
def test_variants_round_trip(scene, options):
    result = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, options=options)
    decoded = codec.decode(result.jpeg)
    assert (decoded.metadata.residual, decoded.metadata.activation) == (options.residual, options.fit.activation)
    assert pq_psnr(hdr_to_pq(scene, BT2020, 1.0), decoded.pq) > 25.0


def test_display_headroom_zero_gives_the_sdr_and_full_gives_the_hdr(encoded):
    full = codec.decode(encoded.jpeg)
    sdr_only = codec.decode(encoded.jpeg, display_headroom=0.0)
    assert np.allclose(sdr_only.pq, sdr_to_pq(full.sdr, full.metadata.base_transfer, "bt709"), atol=1e-5)
    at_peak = codec.decode(encoded.jpeg, display_headroom=full.metadata.alternate_headroom)
    assert np.allclose(at_peak.pq, full.pq, atol=1e-6)
    halfway = codec.decode(encoded.jpeg, display_headroom=full.metadata.alternate_headroom / 2)
    assert sdr_only.pq.mean() < halfway.pq.mean() < full.pq.mean()


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (9, 1), (13, 27)])
def test_odd_sizes(shape):
    scene = hdr_scene(*shape, seed=2)
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=3))
    result = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, options=options)
    assert codec.decode(result.jpeg).pq.shape == (*shape, 3)


def test_bad_inputs_raise_input_error(scene):
    with pytest.raises(InputError, match="same size"):
        codec.encode(scene, white_luminance=1.0, sdr=jpeg_bytes(np.zeros((10, 10, 3), np.uint8)), options=QUICK)
    with pytest.raises(InputError, match="NaN"):
        codec.encode(np.full((4, 4, 3), np.nan, np.float32), options=QUICK)
    with pytest.raises(InputError, match="floating point"):
        codec.encode(np.zeros((4, 4, 3), np.uint8), options=QUICK)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        codec.encode(np.zeros((4, 4)), options=QUICK)
    with pytest.raises(InputError, match="cannot read the SDR"):
        codec.encode(scene, white_luminance=1.0, sdr=b"neither jpeg nor png", options=QUICK)
    with pytest.raises(InputError, match="quality"):
        codec.EncodeOptions(quality=0)
    with pytest.raises(InputError):
        codec.EncodeOptions(residual="ratio")


def test_plain_jpeg_has_no_gain_map():
    plain = jpeg_bytes(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(NoGainMapError):
        codec.decode(plain)
    with pytest.raises(NoGainMapError):
        codec.read_container(plain)


def test_not_a_jpeg_and_truncations(encoded):
    with pytest.raises(JpegError, match="not a JPEG"):
        codec.decode(b"GIF89a")
    data = encoded.jpeg
    our_start = data.index(b"GainMLP\x00")
    for end in (3, 20, our_start + 100, our_start + 5000):
        with pytest.raises((JpegError, ContainerError)):
            codec.decode(data[:end])
    with pytest.raises(JpegError, match="the JPEG: JPEG base image: truncated JPEG"):
        codec.decode(data[: len(data) - 200])


def _tamper(data: bytes, change) -> bytes:
    """Apply ``change`` to the container bytes and recompute its checksum."""
    layout = jpeg.parse_jpeg(data)
    body = bytearray(container.from_layout(layout)[:-4])
    change(body)
    fixed = bytes(body) + zlib.crc32(body).to_bytes(4, "big")
    new = container.to_segments(fixed)
    return jpeg.replace_segments(layout, new, container.is_our_segment).to_bytes()


def test_damaged_container_is_a_checksum_error(encoded):
    data = bytearray(encoded.jpeg)
    data[data.index(b"GMLP") + 200] ^= 0x10
    with pytest.raises(ContainerError, match="checksum"):
        codec.decode(bytes(data))


def test_unknown_major_version(encoded):
    def bump(body):
        body[4] = container.FORMAT_VERSION[0] + 1

    with pytest.raises(UnsupportedVersionError, match="major"):
        codec.decode(_tamper(encoded.jpeg, bump))


def test_graph_outside_the_contract(encoded):
    def break_graph(body):
        index = body.index(b"MatMul")
        body[index : index + 6] = b"Matmul"

    with pytest.raises(GraphContractError):
        codec.decode(_tamper(encoded.jpeg, break_graph))


def test_container_for_another_size_is_rejected(encoded):
    def resize(body):
        body[16:20] = (65).to_bytes(4, "big")

    with pytest.raises(ContainerError, match="made for 65x48"):
        codec.decode(_tamper(encoded.jpeg, resize))


def test_cmyk_base_is_rejected():
    cmyk = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(cmyk, "JPEG")
    with pytest.raises(JpegError, match="CMYK"):
        codec.decode_base(cmyk.getvalue())


def test_files_are_written_atomically(tmp_path, encoded):
    from gainmap_format.hdrio import read_hdr, write_exr

    hdr_path = tmp_path / "scene.exr"
    scene = hdr_scene(24, 32, seed=4)
    write_exr(hdr_path, scene, chromaticities=BT2020, white_luminance=1.0)
    out = tmp_path / "out.jpg"
    result = codec.encode_file(hdr_path, out, options=QUICK)
    assert out.read_bytes() == result.jpeg
    exr = tmp_path / "dec.exr"
    codec.decode_file(out, exr)
    image = read_hdr(exr)
    assert image.white_luminance == 1.0 and image.chromaticities == BT2020
    assert pq_psnr(hdr_to_pq(scene, BT2020, 1.0), hdr_to_pq(image.pixels, BT2020, 1.0)) > 25
    out.write_bytes(b"precious")
    with pytest.raises(InputError):
        codec.encode_file(tmp_path / "missing.exr", out, options=QUICK)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec.exr", "out.jpg", "scene.exr"]


def test_real_hdr_files_round_trip():
    folder = shared_data("hdr")
    from gainmap_format.hdrio import read_hdr

    for name in ("oexr_Rec709.exr", "ph_noon_grass_1k.hdr"):
        image = read_hdr(folder / name)
        crop = np.ascontiguousarray(image.pixels[:96, :128])
        result = codec.encode(crop, chromaticities=image.chromaticities, white_luminance=100.0,
                              options=codec.EncodeOptions(fit=codec.FitOptions(iterations=150)))
        reference = hdr_to_pq(crop, image.chromaticities, 100.0)
        assert pq_psnr(reference, codec.decode(result.jpeg).pq) > 35.0, name


def test_an_ultra_hdr_base_keeps_its_own_gain_map_readable():
    """Our segments go before the MPF segment, so libultrahdr still finds the file's own map."""
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs (libultrahdr) is a test extra")
    base = (shared_data("gainmaps") / "libultrahdr_iso_1280x720.jpg").read_bytes()
    result = codec.encode(hdr_scene(720, 1280, seed=1), chromaticities=BT2020, white_luminance=1.0, sdr=base,
                          options=codec.EncodeOptions(fit=codec.FitOptions(iterations=5)))
    assert np.array_equal(imagecodecs.ultrahdr_decode(result.jpeg), imagecodecs.ultrahdr_decode(base))
    assert codec.decode(result.jpeg).metadata.width == 1280


def test_decode_against_given_base_pixels(encoded):
    """The evaluation's lossless protocol: the map applied to pixels the file's JPEG only approximates."""
    own = codec.decode(encoded.jpeg)
    assert np.array_equal(codec.decode(encoded.jpeg, base_pixels=own.sdr).pq, own.pq)
    other = codec.decode(encoded.jpeg, base_pixels=np.clip(own.sdr.astype(int) + 3, 0, 255).astype(np.uint8))
    assert not np.array_equal(other.pq, own.pq)
    with pytest.raises(InputError, match="base pixels"):
        codec.decode(encoded.jpeg, base_pixels=own.sdr[:-1])


def test_fitting_against_lossless_pixels(scene):
    """``fit_inputs`` takes the pixels to fit against apart from the JPEG that carries the result."""
    hdr_pq = hdr_to_pq(scene, BT2020, 1.0)
    code = default_sdr(hdr_pq)
    base, decoded = codec.prepare_base(code, hdr_pq, 60)
    inputs = codec.fit_inputs(base, code, hdr_pq, QUICK)
    assert inputs.base == base and inputs.code is code and not np.array_equal(decoded, code)
    result = codec.encode_prepared(inputs, QUICK)
    assert result.jpeg.startswith(base[:2]) and codec.read_container(result.jpeg).metadata.width == 64
    with pytest.raises(InputError):
        codec.fit_inputs(base, code[:, :-1], hdr_pq, QUICK)


@pytest.mark.parametrize("engine", ["native", "onnxruntime"])
def test_linear_only_decode_and_both_engines_agree(encoded, engine):
    if engine == "native" and not native.available():
        pytest.skip("the C extension was not built")
    full = codec.decode(encoded.jpeg, engine=engine)
    lean = codec.decode(encoded.jpeg, engine=engine, with_pq=False)
    reference = codec.decode(encoded.jpeg, engine="onnxruntime")
    assert lean.pq is None
    assert np.array_equal(lean.relative, full.relative)
    assert np.allclose(full.pq, reference.pq, atol=3e-5)
    assert np.allclose(full.absolute, full.relative * full.metadata.sdr_white_luminance)
    assert full.linear("absolute").shape == full.linear().shape


@pytest.mark.skipif(not native.available(), reason="the C extension was not built")
@pytest.mark.parametrize("with_pq", [True, False])
@pytest.mark.parametrize("headroom", [None, 0.0, 0.5, 1.0], ids=["full", "sdr", "half", "peak"])
def test_both_engines_honour_the_same_arguments(encoded, with_pq, headroom):
    alternate = codec.read_container(encoded.jpeg).metadata.alternate_headroom
    display = None if headroom is None else headroom * alternate
    native_, graph = (
        codec.decode(encoded.jpeg, engine=engine, with_pq=with_pq, display_headroom=display)
        for engine in ("native", "onnxruntime")
    )
    # float32 rounding and the kernel's exp2/log2 polynomials: PQ within 3e-5 (about 90 dB). Linear
    # light is PQ's EOTF of it, whose slope d ln(L) / dE is 10 to 45 over the range, so the same
    # difference is up to 1e-3 of a linear value.
    assert np.allclose(native_.relative, graph.relative, rtol=1e-3, atol=1e-6)
    if with_pq:
        assert np.allclose(native_.pq, graph.pq, atol=3e-5)
    else:
        assert native_.pq is None and graph.pq is None


def test_chromaticities_by_name_or_by_numbers(scene):
    by_name = codec.prepare_fit_inputs(scene, chromaticities="display-p3", options=QUICK)
    by_numbers = codec.prepare_fit_inputs(scene, chromaticities=list(PRIMARIES["display-p3"]), options=QUICK)
    assert np.array_equal(by_name.hdr_pq, by_numbers.hdr_pq)
    assert np.array_equal(by_name.hdr_pq, hdr_to_pq(scene, PRIMARIES["display-p3"], 100.0))


@pytest.mark.parametrize(
    "chromaticities",
    ["p3", "BT709", (0.64, 0.33, 0.3), (0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3127, 0.329), 5],
    ids=["unknown name", "wrong case", "three numbers", "collinear", "not numbers"],
)
def test_bad_chromaticities_fail_before_any_work(scene, monkeypatch, chromaticities):
    monkeypatch.setattr(codec, "hdr_to_pq", _must_not_run)
    with pytest.raises(InputError, match="chromaticities"):
        codec.encode(scene, chromaticities=chromaticities, options=QUICK)


def _must_not_run(*args, **kwargs):
    raise AssertionError("work started although the arguments were wrong")


def test_missing_init_warning_points_at_the_callers_line(tmp_path):
    from gainmap_format.hdrio import write_exr
    from gainmap_format.initweights import MissingInitWarning

    scene = hdr_scene(8, 8, seed=1)
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=0, hidden_width=8))
    exr = tmp_path / "scene.exr"
    write_exr(exr, scene, chromaticities=BT2020, white_luminance=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.encode(scene, options=options)
        codec.encode_file(exr, tmp_path / "out.jpg", options=options)
    warned = [w for w in caught if issubclass(w.category, MissingInitWarning)]
    assert [w.filename for w in warned] == [__file__, __file__]
    assert "gamma-sine-8" in str(warned[0].message)


# Limits: one size bound, memory, inputs that are not HDR.


def test_one_limit_everywhere():
    from gainmap_format import hdrio, limits

    assert codec.MAX_PIXELS == hdrio.MAX_PIXELS == limits.MAX_PIXELS


def test_row_blocks_give_what_one_pass_gives(monkeypatch):
    from gainmap_format import limits
    from gainmap_format.residual import EPSILON, Normalisation, residual_map

    scene = hdr_scene(37, 53, seed=6)
    options = codec.EncodeOptions(residual="gain", fit=codec.FitOptions(iterations=3))
    whole = codec.prepare_fit_inputs(scene, white_luminance=100.0, options=options)
    monkeypatch.setattr(limits, "BLOCK_PIXELS", 100)  # two rows a block, the last one short
    blocks = codec.prepare_fit_inputs(scene, white_luminance=100.0, options=options)
    assert blocks.base == whole.base and np.array_equal(blocks.code, whole.code)
    assert np.array_equal(blocks.hdr_pq, hdr_to_pq(scene, PRIMARIES["bt709"], 100.0))
    residual = residual_map(blocks.hdr_pq, sdr_to_pq(blocks.code, "srgb", "bt709"), "gain", EPSILON)
    assert blocks.residual_norm == whole.residual_norm == Normalisation.of(residual)
    assert np.array_equal(blocks.target, whole.target)
    assert np.array_equal(blocks.target, whole.residual_norm.apply(residual))
    assert blocks.input_norm == whole.input_norm == Normalisation.of(blocks.code.astype(np.float32) / 255.0)


@pytest.mark.parametrize("value", [0.0, -2.0], ids=["black", "negative"])
def test_hdr_without_light_is_refused(value):
    with pytest.raises(InputError, match="no positive value"):
        codec.encode(np.full((4, 5, 3), value, np.float32), options=QUICK)


def _allocate_too_much(*args, **kwargs):
    return np.empty(1 << 62, np.uint8)  # numpy's own MemoryError, as a real shortage raises it


def test_running_out_of_memory_while_encoding_is_an_input_error(monkeypatch, scene):
    monkeypatch.setattr(codec, "hdr_to_pq", _allocate_too_much)
    with pytest.raises(InputError, match="HDR image: the image is too large for the memory available"):
        codec.encode(scene, options=QUICK)
    monkeypatch.undo()
    monkeypatch.setattr(codec, "build_graph", _allocate_too_much)
    with pytest.raises(InputError, match="too large for the memory available"):
        codec.encode(scene, options=codec.EncodeOptions(fit=codec.FitOptions(iterations=1)))


def test_running_out_of_memory_while_decoding_names_the_file(monkeypatch, tmp_path, encoded):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encoded.jpeg)
    monkeypatch.setattr(codec, "render", _allocate_too_much)
    with pytest.raises(InputError, match=r"photo\.jpg: the image is too large for the memory available"):
        codec.decode(path)
    monkeypatch.undo()
    monkeypatch.setattr(np, "asarray", _allocate_too_much)
    with pytest.raises(InputError, match="JPEG base image: the image is too large"):
        codec.decode_base(encoded.jpeg)


def _jpeg_of_size(width: int, height: int) -> bytes:
    """A tiny JPEG whose frame header declares ``width`` x ``height``."""
    data = bytearray(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_oversized_jpeg_is_refused_from_its_header():
    with pytest.raises(InputError, match="exceeds the limit"):
        codec.decode_base(_jpeg_of_size(65535, 2049))
    codec.decode_base(_jpeg_of_size(8, 8))


def test_decode_names_a_damaged_base_file(tmp_path, encoded):
    path = tmp_path / "cut.jpg"
    path.write_bytes(encoded.jpeg[:-200])
    with pytest.raises(JpegError, match=r"cut\.jpg: JPEG base image: truncated JPEG"):
        codec.decode(path)


def test_large_sdr_image_is_refused_by_our_limit_not_pillows_warning(scene):
    # A PNG header declaring 12000 x 12000 (144 MP): over our limit, under Pillow's error
    # threshold, over its warning threshold. With warnings as errors the warning used to escape.
    png = io.BytesIO()
    Image.new("RGB", (1, 1)).save(png, "PNG")
    data = bytearray(png.getvalue())
    data[16:24] = (12000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="SDR image: image size 12000x12000 .* exceeds the limit"):
            codec.encode(scene, sdr=bytes(data), options=QUICK)


# ---- the rendered base: tone map, transfer and ICC profile (issue 15) ----


def _icc_of(data: bytes) -> bytes | None:
    with Image.open(io.BytesIO(data)) as image:
        return image.info.get("icc_profile")


def test_a_rendered_base_is_srgb_and_carries_a_matching_profile(scene, encoded):
    from gainmap_format.colour import icc_profile

    assert (encoded.metadata.base_transfer, encoded.metadata.base_primaries) == ("srgb", "bt709")
    assert _icc_of(encoded.jpeg) == icc_profile("bt709", "srgb")
    rendered = render_sdr(hdr_to_pq(scene, BT2020, 1.0))
    assert np.abs(codec.decode(encoded.jpeg).sdr.astype(int) - rendered).mean() < 1.0


def test_the_tone_map_exposure_and_primaries_are_honoured(scene):
    hdr_pq = hdr_to_pq(scene, BT2020, 1.0)
    options = codec.EncodeOptions(tone_map="reinhard", exposure=-1.0, sdr_primaries="display-p3", fit=QUICK.fit)
    result = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, options=options)
    from gainmap_format.colour import icc_profile

    assert (result.metadata.base_transfer, result.metadata.base_primaries) == ("srgb", "display-p3")
    assert _icc_of(result.jpeg) == icc_profile("display-p3", "srgb")
    expected = render_sdr(hdr_pq, "reinhard", exposure=-1.0, primaries="display-p3")
    assert np.abs(codec.decode(result.jpeg).sdr.astype(int) - expected).mean() < 1.0


def test_the_papers_base_is_still_available(scene):
    options = codec.EncodeOptions(tone_map="paper", sdr_transfer="gamma2.4", fit=QUICK.fit)
    result = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, options=options)
    assert result.metadata.base_transfer == "gamma2.4"
    paper = default_sdr(hdr_to_pq(scene, BT2020, 1.0))
    assert np.abs(codec.decode(result.jpeg).sdr.astype(int) - paper).mean() < 1.0


def test_a_given_base_keeps_its_own_profile_and_records_gamma_2_4(scene):
    sdr = jpeg_bytes(default_sdr(hdr_to_pq(scene, BT2020, 1.0)), icc_profile=b"the user's own profile")
    result = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, sdr=sdr, options=QUICK)
    assert _icc_of(result.jpeg) == b"the user's own profile"
    assert result.metadata.base_transfer == "gamma2.4"
    no_profile = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, sdr=jpeg_bytes(
        default_sdr(hdr_to_pq(scene, BT2020, 1.0))), options=QUICK)
    assert _icc_of(no_profile.jpeg) is None


@pytest.mark.parametrize("primaries", ["bt709", "display-p3"])
def test_the_base_profile_describes_the_colours_a_colour_managed_viewer_must_show(primaries):
    from PIL import ImageCms

    from gainmap_format.colour import convert_primaries, icc_profile, srgb_decode, srgb_encode

    # sRGB colours, written in the base's primaries; LittleCMS's own sRGB profile must get them back.
    code = np.random.default_rng(7).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    linear = convert_primaries(srgb_decode(code / 255.0), PRIMARIES["bt709"], PRIMARIES[primaries])
    base = np.round(srgb_encode(np.clip(linear, 0.0, 1.0)) * 255.0).astype(np.uint8)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(primaries, "srgb")))
    transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    shown = np.asarray(ImageCms.applyTransform(Image.fromarray(base), transform)).astype(int)
    # Within the rounding of the base's own 8 bits, which the steep start of sRGB's curve magnifies.
    assert np.abs(shown - code).max() <= 4 and np.abs(shown - code).mean() < 0.3
    assert icc_profile(primaries, "gamma2.4") != icc_profile(primaries, "srgb")


def test_max_headroom_caps_the_hdr_and_the_recorded_headroom(scene, encoded):
    from gainmap_format.colour import pq_decode

    # The scene peaks above 2 stops over SDR white (100 cd/m² in the container).
    assert encoded.metadata.alternate_headroom > 2.5
    options = codec.EncodeOptions(max_headroom=1.5, fit=QUICK.fit)
    capped = codec.encode(scene, chromaticities=BT2020, white_luminance=1.0, options=options)
    assert capped.metadata.alternate_headroom == pytest.approx(1.5, abs=1e-3)
    inputs = codec.prepare_fit_inputs(scene, chromaticities=BT2020, white_luminance=1.0, options=options)
    assert float(pq_decode(np.array(inputs.hdr_pq.max(), np.float64))) == pytest.approx(100 * 2**1.5, rel=1e-3)
    # The base is rendered from the HDR as it was: the cap changes only what the map reaches.
    assert np.abs(codec.decode(capped.jpeg).sdr.astype(int) - codec.decode(encoded.jpeg).sdr).max() <= 1


def test_the_encode_command_takes_the_tone_map_exposure_primaries_and_headroom(tmp_path, scene, capsys):
    from gainmap_format.cli import EXIT_OK, EXIT_USAGE, main
    from gainmap_format.hdrio import write_exr

    exr = tmp_path / "scene.exr"
    write_exr(exr, scene, chromaticities=BT2020, white_luminance=1.0)
    out = tmp_path / "out.jpg"
    args = ["encode", str(exr), "-o", str(out), "--iterations", "3", "--device", "cpu", "--quiet",
            "--tone-map", "reinhard", "--exposure", "-0.5", "--sdr-primaries", "display-p3", "--max-headroom", "1"]
    assert main(args) == EXIT_OK
    result = codec.decode(out.read_bytes())
    assert (result.metadata.base_transfer, result.metadata.base_primaries) == ("srgb", "display-p3")
    assert result.metadata.alternate_headroom == pytest.approx(1.0, abs=1e-3)
    expected = render_sdr(hdr_to_pq(scene, BT2020, 1.0), "reinhard", exposure=-0.5, primaries="display-p3")
    assert np.abs(result.sdr.astype(int) - expected).mean() < 1.0
    for wrong in (["--tone-map", "aces"], ["--exposure", "nan"], ["--max-headroom", "20"]):
        with pytest.raises(SystemExit) as exit_status:
            main(["encode", str(exr), "-o", str(tmp_path / "x.jpg"), *wrong])
        assert exit_status.value.code == EXIT_USAGE
        assert wrong[1] in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "x.jpg").exists()
