"""The Pillow plugin: plain JPEGs unchanged, ``im.hdr`` for every gain-map JPEG, saving.

The libultrahdr cross-check runs here, through ``Image.open``, because what it checks is the
HDR that users get from the plugin.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin, MpoImagePlugin

import pillow_plugin
from gainmap_format import codec, fitting, standard, structs
from gainmap_format.errors import ContainerError, GainmapError, InputError, StandardGainMapError
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.jpeg import parse_jpeg, replace_segments
from pillow_plugin import GainMapWarning, HdrDroppedWarning
from tests.conftest import jpeg_bytes, shared_data
from tests.test_standard import LIBULTRAHDR_CEILING, MIN_PSNR_DB, psnr_after_scale


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _open_plain(data: bytes) -> Image.Image:
    pillow_plugin.unregister()
    try:
        return _open(data)
    finally:
        pillow_plugin.register()


def _gain_map_files() -> list[Path]:
    return sorted(shared_data("gainmaps").glob("*.jpg"))


def _plain_real_jpegs() -> dict[str, bytes]:
    """Real camera and editor bitstreams without any gain-map marking.

    A Pixel's Exif thumbnail, and the primary image of each shared file cut at its end with the
    segments that announce or index a gain map removed.
    """
    files = {}
    pixel = (shared_data("gainmaps") / "pixel_uhdr_01.jpg").read_bytes()
    thumbnail = pixel.index(b"\xff\xd8\xff", 2)
    files["pixel thumbnail"] = pixel[thumbnail : pixel.index(b"\xff\xd9", thumbnail) + 2]

    def announces(segment) -> bool:
        identifiers = (structs.MPF_IDENTIFIER, structs.ISO_IDENTIFIER, structs.SEGMENT_IDENTIFIER)
        return segment.payload.startswith(identifiers) or standard.HDRGM_NS.encode() in segment.payload

    for path in _gain_map_files()[:6]:
        data = path.read_bytes()
        gain_map = standard.find_gain_map(data)
        primary = parse_jpeg(data[: gain_map.gain_map_offset])
        files[f"{path.name} primary"] = replace_segments(primary, [], announces).to_bytes()
    return files


def _generated_jpegs() -> dict[str, bytes]:
    code = np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    rgb = Image.fromarray(code, "RGB")
    files = {
        "baseline": jpeg_bytes(code),
        "progressive": jpeg_bytes(code, progressive=True, quality=90),
        "4:4:4 with exif": jpeg_bytes(code, subsampling=0, exif=rgb.getexif().tobytes()),
    }
    buffer = io.BytesIO()
    rgb.convert("CMYK").save(buffer, "JPEG")
    files["CMYK"] = buffer.getvalue()
    buffer = io.BytesIO()
    rgb.convert("L").save(buffer, "JPEG")
    files["grayscale"] = buffer.getvalue()
    buffer = io.BytesIO()
    rgb.save(buffer, "MPO", save_all=True, append_images=[rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    files["MPO"] = buffer.getvalue()
    return files


def _same_as_pillow(data: bytes) -> None:
    plain = _open_plain(data)
    ours = _open(data)
    assert type(ours) is type(plain)
    assert (ours.format, ours.mode, ours.size, ours.info) == (
        plain.format,
        plain.mode,
        plain.size,
        plain.info,
    )
    assert ours.hdr is None
    for frame in range(getattr(plain, "n_frames", 1)):
        plain.seek(frame)
        ours.seek(frame)
        assert ours.tobytes() == plain.tobytes()


@pytest.mark.parametrize("name", ["baseline", "progressive", "4:4:4 with exif", "CMYK", "grayscale", "MPO"])
def test_generated_plain_mpo_progressive_and_cmyk_jpegs_open_unchanged(name):
    _same_as_pillow(_generated_jpegs()[name])


def test_real_plain_jpegs_open_unchanged():
    files = _plain_real_jpegs()
    assert len(files) == 7
    for data in files.values():
        _same_as_pillow(data)


def test_gain_map_files_keep_pillows_class_size_and_pixels():
    for path in _gain_map_files()[:8]:
        data = path.read_bytes()
        plain = _open_plain(data)
        ours = _open(data)
        assert isinstance(ours, type(plain)) and ours.format == plain.format, path.name
        assert (ours.mode, ours.size) == ("RGB", plain.size)
        assert ours.tobytes() == plain.tobytes()
        assert {k: v for k, v in ours.info.items() if k != pillow_plugin.INFO_KEY} == plain.info


# ---- the HDR of every shared gain-map JPEG against libultrahdr ----


def _libultrahdr_files() -> list[str]:
    try:
        return [p.name for p in _gain_map_files()]
    except pytest.skip.Exception:
        return ["(no shared data)"]


@pytest.mark.parametrize("name", _libultrahdr_files())
def test_hdr_agrees_with_libultrahdr(name, record_property):
    """PSNR of np.asarray(im.hdr), after one least-squares scale, against libultrahdr 1.4.0's linear decode.

    Tolerance: the issue's 40 dB floor. Both are compared in libultrahdr's output gamut (the
    gain-map image's ICC profile, else the base's) and clipped at its 10000 / 203 ceiling.
    Files that libultrahdr 1.4.0 refuses must still be refused (so that this test notices
    when it learns them); test_standard.py cross-checks them another way.
    """
    imagecodecs = pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 is the test-only reference")
    data = (shared_data("gainmaps") / name).read_bytes()
    image = Image.open(io.BytesIO(data))
    assert image.hdr is not None
    try:
        reference = imagecodecs.ultrahdr_decode(data)[..., :3].astype(np.float32)
    except imagecodecs.UltrahdrError as exc:
        assert image.hdr.metadata.kind == "apple" or "hdrgm:Version" in str(exc), exc
        pytest.skip(f"libultrahdr cannot decode {name}: {exc}")
    ours = np.asarray(image.hdr)
    gain_map = image.hdr.metadata
    alternate = standard.find_gain_map(data).alternate_primaries
    if gain_map.primaries != alternate:
        from gainmap_format.colour import PRIMARIES, convert_primaries

        ours = convert_primaries(ours, PRIMARIES[gain_map.primaries], PRIMARIES[alternate])
    psnr = psnr_after_scale(np.clip(ours, 0.0, LIBULTRAHDR_CEILING), reference)
    record_property("psnr_db", round(psnr, 2))
    print(f"{name}: {psnr:.2f} dB")
    assert psnr >= MIN_PSNR_DB


# ---- our own files ----


#: The fewest fitting steps and pixels that still give a valid file; these tests check plumbing.
FAST = codec.EncodeOptions(fit=codec.FitOptions(iterations=3, batch_size=512, seed=1))


@pytest.fixture(scope="module")
def ours(scene) -> bytes:
    from gainmap_format.colour import PRIMARIES

    return codec.encode(scene, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, options=FAST).jpeg


def test_our_hdr_equals_the_codec_decode(ours, tmp_path):
    path = tmp_path / "ours.jpg"
    path.write_bytes(ours)
    image = Image.open(path)
    decoded = codec.decode(path)
    hdr = np.asarray(image.hdr)
    assert hdr.dtype == np.float32 and hdr.shape == decoded.pq.shape
    assert np.array_equal(hdr, decoded.linear("sdr-white"))
    assert not hdr.flags.writeable
    assert np.array_equal(image.hdr.pq(), decoded.pq)
    assert np.array_equal(image.hdr.absolute(), decoded.linear("absolute"))
    assert np.array_equal(image.hdr.render(1.0), codec.decode(path, display_headroom=1.0).linear("sdr-white"))
    meta = image.hdr.metadata
    assert (meta.kind, meta.primaries, meta.sdr_white_luminance) == ("gainmlp", "bt2020", 100.0)
    assert (meta.width, meta.height, meta.gain_map_width) == (decoded.pq.shape[1], decoded.pq.shape[0], None)
    assert meta.payload_bytes > 0 and meta.max_headroom == meta.alternate_headroom > 0


def test_nothing_is_computed_until_asked(ours, monkeypatch):
    calls = []
    real_decode = codec.decode
    monkeypatch.setattr(codec, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    image = _open(ours)
    assert calls == [] and "(computed)" not in repr(image.hdr)
    np.asarray(image.hdr)
    np.asarray(image.hdr)
    assert calls == [1]


def test_standard_hdr_is_the_standard_rendering():
    data = (shared_data("gainmaps") / "awe_ui_demo_app.jpg").read_bytes()
    image = _open(data)
    gain_map = standard.find_gain_map(data)
    assert np.array_equal(np.asarray(image.hdr), gain_map.render())
    assert np.array_equal(image.hdr.render(1.0), gain_map.render(1.0))
    assert np.allclose(image.hdr.absolute(), gain_map.render() * 203.0)
    meta = image.hdr.metadata
    assert (meta.kind, meta.version, meta.gain_map_width, meta.gain_map_channels) == (
        "ultrahdr-xmp",
        "1.0",
        697,
        3,
    )
    assert meta.sdr_white_luminance == 203.0 and meta.details == gain_map.metadata


# ---- options ----


def test_options_and_unknown_keys():
    with pytest.warns(UserWarning, match="unknown pillow_plugin option"):
        pillow_plugin.register(colour="blue")
    with pytest.raises(TypeError):
        pillow_plugin.register(standard_sdr_white="bright")
    data = (shared_data("gainmaps") / "awe_ui_demo_app.jpg").read_bytes()
    pillow_plugin.register(read_standard=False, standard_sdr_white=100.0)
    try:
        assert _open(data).hdr is None
    finally:
        pillow_plugin.register(read_standard=True, standard_sdr_white=203.0)
    assert _open(data).hdr.metadata.sdr_white_luminance == 203.0


# ---- hostile files ----


def test_damaged_gain_maps_open_as_sdr_with_a_warning():
    from tests.test_standard import HOSTILE, _hostile_variants

    for label in HOSTILE:
        data = _hostile_variants()[label]
        with pytest.warns(GainMapWarning):
            image = _open(data)
        assert image.tobytes() == _open_plain(data).tobytes(), label
        with pytest.raises(StandardGainMapError):
            image.hdr  # noqa: B018


def test_damaged_container_of_ours_warns_and_hdr_raises(ours):
    segment = next(s for s in parse_jpeg(ours).segments if s.payload.startswith(structs.SEGMENT_IDENTIFIER))
    at = segment.offset + 4 + structs.SEGMENT_HEADER_SIZE + 40
    damaged = ours[:at] + bytes([ours[at] ^ 0xFF]) + ours[at + 1 :]
    with pytest.warns(GainMapWarning, match="checksum"):
        image = _open(damaged)
    with pytest.raises(ContainerError):
        image.hdr  # noqa: B018


def test_a_base_of_another_size_is_the_container_error_codec_raises(ours):
    from tests.test_codec import _tamper

    def resize(body):
        body[16:20] = (65).to_bytes(4, "big")

    damaged = _tamper(ours, resize)
    with pytest.raises(ContainerError, match="made for 65x48") as from_codec:
        codec.decode(damaged)
    with pytest.warns(GainMapWarning, match="made for 65x48"):
        image = _open(damaged)
    with pytest.raises(ContainerError, match="made for 65x48") as from_plugin:
        image.hdr  # noqa: B018
    assert type(from_plugin.value) is type(from_codec.value)


# ---- saving ----


def test_save_with_hdr_writes_a_gainmlp_file(scene, tmp_path):
    from gainmap_format.colour import PRIMARIES, convert_primaries
    from gainmap_format.residual import hdr_to_pq
    from gainmap_format.tonemap import default_sdr

    relative = convert_primaries(scene / 100.0, PRIMARIES["bt2020"], PRIMARIES["bt709"])
    sdr = Image.fromarray(default_sdr(hdr_to_pq(scene, PRIMARIES["bt2020"], 1.0)), "RGB")
    path = tmp_path / "out.jpg"
    exif = Image.Exif()
    exif[0x010F] = "gainmap test"
    sdr.save(path, hdr=relative, hdr_options=FAST, exif=exif, quality=92)
    image = Image.open(path)
    assert image.hdr.metadata.kind == "gainmlp" and image.getexif()[0x010F] == "gainmap test"
    decoded = codec.decode(path)
    wanted = hdr_to_pq(relative, PRIMARIES["bt709"], 100.0)
    assert pq_psnr(wanted, decoded.pq) > 25.0  # three fitting steps: a valid file, not a good fit
    again = tmp_path / "again.jpg"
    image.save(again, hdr=image.hdr, hdr_options=FAST)
    assert Image.open(again).hdr.metadata.kind == "gainmlp"


def test_missing_init_warning_of_a_save_points_at_the_save(tmp_path):
    from gainmap_format.colour import PRIMARIES
    from gainmap_format.initweights import MissingInitWarning

    image, hdr = _sdr_and_hdr()
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=0, hidden_width=8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image.save(tmp_path / "out.jpg", hdr=hdr, hdr_primaries=list(PRIMARIES["bt709"]), hdr_options=options)
    warned = [w for w in caught if issubclass(w.category, MissingInitWarning)]
    assert [w.filename for w in warned] == [__file__]
    assert Image.open(tmp_path / "out.jpg").hdr.metadata.details.hidden_width == 8


def test_unchanged_save_keeps_our_gain_map(ours):
    image = _open(ours)
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.save(out, "JPEG", quality=95, subsampling=0)
    again = _open(out.getvalue())
    assert again.hdr.metadata.kind == "gainmlp"
    assert pq_psnr(image.hdr.pq(), again.hdr.pq()) > 35.0


@pytest.mark.parametrize(
    "name",
    [
        "awe_ui_demo_app.jpg",
        "acr17_small_uhdr.jpg",
        "libultrahdr_iso_1280x720.jpg",
        "libavif_apple_gainmap_new.jpg",
    ],
)
def test_unchanged_save_keeps_standard_gain_maps(name):
    data = (shared_data("gainmaps") / name).read_bytes()
    image = _open(data)
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.save(out, "JPEG", quality=95, icc_profile=image.info.get("icc_profile"))
    again = _open(out.getvalue())
    before, after = standard.find_gain_map(data), standard.find_gain_map(out.getvalue())
    assert after.gain_map_jpeg == before.gain_map_jpeg
    assert after.metadata.kind == before.metadata.kind and again.hdr.primaries == image.hdr.primaries
    assert psnr_after_scale(np.asarray(again.hdr), np.asarray(image.hdr)) > 40.0


def test_changed_pixels_drop_the_gain_map_with_a_warning(ours):
    """Geometric edits keep the map (tests/test_plugin_edits.py); changed pixel values drop it."""
    image = _open(ours)
    out = io.BytesIO()
    with pytest.warns(HdrDroppedWarning, match="pixels differ"):
        image.point(lambda v: 255 - v).save(out, "JPEG")
    assert _open(out.getvalue()).hdr is None
    edited = image.copy()
    edited.putpixel((0, 0), (0, 0, 0))
    with pytest.warns(HdrDroppedWarning):
        edited.save(io.BytesIO(), "JPEG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.point(lambda v: 255 - v).save(io.BytesIO(), "JPEG", hdr=False)
        image.save(io.BytesIO(), "PNG", hdr=False)


def test_keep_on_save_off_warns(ours):
    pillow_plugin.register(keep_on_save=False)
    try:
        with pytest.warns(HdrDroppedWarning, match="keep_on_save"):
            _open(ours).save(io.BytesIO(), "JPEG")
    finally:
        pillow_plugin.register(keep_on_save=True)


def test_apple_headroom_in_the_maker_note_needs_the_exif():
    data = (shared_data("gainmaps") / "libavif_apple_gainmap_old.jpg").read_bytes()
    image = _open(data)
    with pytest.warns(HdrDroppedWarning, match="exif"):
        image.save(io.BytesIO(), "JPEG", quality=90)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=image.info["exif"], icc_profile=image.info["icc_profile"])
    assert _open(out.getvalue()).hdr.metadata.kind == "apple"


def test_plain_jpeg_save_is_pillows():
    data = _generated_jpegs()["baseline"]
    ours, plain = io.BytesIO(), io.BytesIO()
    _open(data).save(ours, "JPEG", quality=80)
    _open_plain(data).save(plain, "JPEG", quality=80)
    assert ours.getvalue() == plain.getvalue()


# ---- failed saves never damage a file ----


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _must_not_fit(*args, **kwargs):
    raise AssertionError("the fit ran although the save could not succeed")


def _sdr_and_hdr() -> tuple[Image.Image, np.ndarray]:
    """An SDR image (24x16 RGB) and a relative HDR rendition of it, float32 (16, 24, 3)."""
    code = np.random.default_rng(4).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    return Image.fromarray(code, "RGB"), (code.astype(np.float32) / 255.0) ** 2.4 * 4.0


def _wrong_shape(image, hdr, monkeypatch):
    return image, {"hdr": hdr[:8]}, InputError


def _not_finite(image, hdr, monkeypatch):
    hdr = hdr.copy()
    hdr[3, 4, 1] = np.nan
    return image, {"hdr": hdr}, InputError


def _bogus_primaries(image, hdr, monkeypatch):
    return image, {"hdr": hdr, "hdr_primaries": "bogus"}, InputError


def _primaries_not_numbers(image, hdr, monkeypatch):
    return image, {"hdr": hdr, "hdr_primaries": 5}, InputError


def _options_not_encode_options(image, hdr, monkeypatch):
    return image, {"hdr": hdr, "hdr_options": {"iterations": 3}}, InputError


def _progress_not_callable(image, hdr, monkeypatch):
    return image, {"hdr": hdr, "hdr_progress": "bar"}, InputError


def _rgba_image(image, hdr, monkeypatch):
    return image.convert("RGBA"), {"hdr": hdr}, InputError


def _ctrl_c_during_the_fit(image, hdr, monkeypatch):
    monkeypatch.setattr(fitting, "fit", _interrupt)
    return image, {"hdr": hdr}, KeyboardInterrupt


FAILED_SAVES = {
    f.__name__.strip("_").replace("_", " "): f
    for f in (
        _wrong_shape,
        _not_finite,
        _bogus_primaries,
        _primaries_not_numbers,
        _options_not_encode_options,
        _progress_not_callable,
        _rgba_image,
        _ctrl_c_during_the_fit,
    )
}


@pytest.mark.parametrize("case", FAILED_SAVES)
def test_a_failed_hdr_save_leaves_the_existing_file_byte_identical(case, ours, tmp_path, monkeypatch):
    image, save_options, error = FAILED_SAVES[case](*_sdr_and_hdr(), monkeypatch)
    path = tmp_path / "existing.jpg"
    path.write_bytes(ours)
    save_options = {"hdr_options": FAST, **save_options}
    with pytest.raises(error) as raised:
        image.save(path, **save_options)
    assert path.read_bytes() == ours
    assert list(tmp_path.iterdir()) == [path]
    if error is InputError:
        assert str(path) in str(raised.value)
    stream = io.BytesIO(b"existing")
    with pytest.raises(error):
        image.save(stream, "JPEG", **save_options)
    assert stream.getvalue() == b"existing"


@pytest.mark.parametrize("interrupted", [False, True])
def test_saving_over_the_opened_source_keeps_it_until_the_new_file_is_complete(
    interrupted, ours, tmp_path, monkeypatch
):
    path = tmp_path / "photo.jpg"
    path.write_bytes(ours)
    image = Image.open(path)
    hdr = np.asarray(image.hdr).copy()
    if interrupted:
        monkeypatch.setattr(fitting, "fit", _interrupt)
        with pytest.raises(KeyboardInterrupt):
            image.save(path, hdr=hdr, hdr_options=FAST)
    else:
        hdr[0, 0, 0] = np.inf
        with pytest.raises(InputError, match="photo.jpg: HDR pixels contain NaN or infinite"):
            image.save(path, hdr=hdr, hdr_options=FAST)
    assert path.read_bytes() == ours
    monkeypatch.undo()
    hdr[0, 0, 0] = 1.0
    image.save(path, hdr=hdr, hdr_options=FAST)
    assert Image.open(path).hdr.metadata.kind == "gainmlp" and list(tmp_path.iterdir()) == [path]


def test_an_interrupted_save_that_carries_the_gain_map_keeps_the_file(ours, tmp_path, monkeypatch):
    path = tmp_path / "photo.jpg"
    path.write_bytes(ours)
    image = Image.open(path)
    monkeypatch.setattr(pillow_plugin.HdrImage, "carry_to", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        image.save(path, quality=90)
    assert path.read_bytes() == ours and list(tmp_path.iterdir()) == [path]


def test_impossible_targets_fail_before_the_fit(tmp_path, monkeypatch):
    image, hdr = _sdr_and_hdr()
    monkeypatch.setattr(fitting, "fit", _must_not_fit)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image.save(tmp_path / "missing" / "out.jpg", hdr=hdr)
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(IsADirectoryError):
        image.save(tmp_path / "folder.jpg", hdr=hdr)
    png = tmp_path / "out.png"
    png.write_bytes(b"existing")
    with pytest.raises(InputError, match="out.png: hdr= writes a gain-map JPEG, not PNG"):
        image.save(png, hdr=hdr)
    with pytest.raises(InputError, match="not MPO"):
        image.save(io.BytesIO(), "MPO", hdr=hdr)
    assert png.read_bytes() == b"existing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.jpg", "out.png"]


def test_unregister_gives_pillow_its_save_back():
    wrapped = Image.Image.save
    pillow_plugin.unregister()
    try:
        assert Image.Image.save is wrapped.__wrapped__ and not hasattr(Image.Image.save, "__wrapped__")
    finally:
        pillow_plugin.register()
    assert Image.Image.save is not wrapped and Image.Image.save.__wrapped__ is wrapped.__wrapped__


def test_errors_are_gainmap_errors():
    assert issubclass(StandardGainMapError, GainmapError) and issubclass(HdrDroppedWarning, GainMapWarning)
    assert issubclass(pillow_plugin.GainMapJpegImageFile, JpegImagePlugin.JpegImageFile)
    assert issubclass(pillow_plugin.GainMapMpoImageFile, MpoImagePlugin.MpoImageFile)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(("awe_rgba_uhdr.jpg", "acr17_small_uhdr.jpg", "libavif_apple_gainmap_new.jpg")),
    position=st.floats(0.0, 1.0),
    value=st.binary(min_size=1, max_size=8),
    truncate=st.booleans(),
)
def test_mutated_files_open_whenever_pillow_opens_them(name, position, value, truncate):
    data = (shared_data("gainmaps") / name).read_bytes()
    at = int(position * (len(data) - 1))
    mutated = data[:at] if truncate else data[:at] + value + data[at + len(value) :]
    try:
        plain = _open_plain(mutated)
    except (OSError, SyntaxError, ValueError):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GainMapWarning)
        image = _open(mutated)
    assert image.tobytes() == plain.tobytes()
    try:
        hdr = image.hdr
        if hdr is not None:
            assert np.asarray(hdr).shape == (image.height, image.width, 3)
    except GainmapError:
        pass
