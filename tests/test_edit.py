"""``gainmap_format.edit`` and ``gainmap edit``: geometric edits of a gain-map file of any kind."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gainmap_format import codec, geometry
from gainmap_format.cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from gainmap_format.colour import PRIMARIES
from gainmap_format.edit import AutoOrient, Crop, Resize, Rotate, Transpose, edit, edit_file
from gainmap_format.errors import InputError, JpegError, NoGainMapError
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.jpeg import (
    APP0,
    Segment,
    estimate_quality,
    ijg_table,
    parse_jpeg,
    quantisation_tables,
    replace_segments,
)
from gainmap_format.scenes import hdr_scene
from gainmap_format.standard import find_gain_map
from tests.conftest import jpeg_bytes
from tests.standard_fixtures import standard_fixture


@pytest.fixture(scope="module")
def ours() -> bytes:
    """A 96x64 GainMLP file with Exif orientation 6, fitted briefly."""
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=40, seed=1))
    data = codec.encode(hdr_scene(64, 96, seed=5), chromaticities=PRIMARIES["bt2020"], white_luminance=1.0,
                        options=options).jpeg
    exif = Image.Exif()
    exif[0x0112] = 6
    segment = Segment(APP0 + 1, b"Exif\x00\x00" + exif.tobytes())
    return replace_segments(parse_jpeg(data), [segment], lambda s: False).to_bytes()


def _hdr(data: bytes) -> np.ndarray:
    return Image.open(io.BytesIO(data)).hdr.pq()


def test_estimate_quality_is_exact_for_libjpeg_tables():
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for quality in (5, 30, 50, 75, 90, 95, 98, 100):
        for subsampling in (0, 2):
            assert estimate_quality(jpeg_bytes(pixels, quality=quality, subsampling=subsampling)) == quality
    tables = quantisation_tables(jpeg_bytes(pixels, quality=75))
    assert tables[0] == ijg_table(75, 0) and tables[1] == ijg_table(75, 1)


def test_estimate_quality_refuses_a_jpeg_without_tables():
    data = jpeg_bytes(np.zeros((8, 8, 3), np.uint8))
    layout = parse_jpeg(data)
    without = replace_segments(layout, [], lambda s: s.marker == 0xDB).to_bytes()
    with pytest.raises(JpegError, match="no quantisation table 0"):
        estimate_quality(without)
    broken = replace_segments(layout, [Segment(0xDB, b"\x00\x01\x02")], lambda s: s.marker == 0xDB).to_bytes()
    with pytest.raises(JpegError, match="DQT segment"):
        estimate_quality(broken)


def test_operations_apply_in_order_for_every_kind(ours):
    operations = [AutoOrient(), Crop(4, 6, 50, 40), Rotate(90), Transpose("flip-left-right"), Resize(20, 25)]
    expected = geometry.Placement.identity((96, 64)).transpose(geometry.ROTATE_270)
    expected = expected.crop((4, 6, 54, 46)).rotate(90, expand=True).transpose(0).resize((20, 25))
    out = edit(ours, operations)
    assert codec.read_container(out).placement == expected
    assert Image.open(io.BytesIO(out)).getexif().get(0x0112, 1) == 1
    standard = edit(standard_fixture("apple-xmp").data, operations[1:])
    found = find_gain_map(standard)
    assert found is not None and found.base_size == (20, 25) and found.metadata.kind == "iso21496-1"


def test_the_order_matters(ours):
    crop_then_turn = edit(ours, [Crop(0, 0, 40, 20), Transpose("rotate-90")])
    turn_then_crop = edit(ours, [Transpose("rotate-90"), Crop(0, 0, 40, 20)])
    assert Image.open(io.BytesIO(crop_then_turn)).size == (20, 40)
    assert Image.open(io.BytesIO(turn_then_crop)).size == (40, 20)


def test_edit_matches_the_same_edit_of_the_hdr(ours):
    out = edit(ours, [Transpose("rotate-180")])
    source = _hdr(ours)
    assert pq_psnr(source[::-1, ::-1], _hdr(out)) >= 44.0


def test_metadata_and_quality(ours):
    icc = Image.open(io.BytesIO(standard_fixture("apple-xmp").data)).info["icc_profile"]
    out = edit(standard_fixture("apple-xmp").data, [Crop(0, 0, 32, 32)])
    assert Image.open(io.BytesIO(out)).info["icc_profile"] == icc
    assert estimate_quality(out) == estimate_quality(standard_fixture("apple-xmp").data)
    assert estimate_quality(edit(ours, [Crop(0, 0, 32, 32)], quality=70)) == 70
    kept_exif = Image.open(io.BytesIO(edit(ours, [Crop(0, 0, 32, 32)]))).getexif()
    assert kept_exif.get(0x0112) == 6  # only auto-orient changes the orientation


def test_refusals(ours):
    with pytest.raises(InputError, match="no operation"):
        edit(ours, [])
    with pytest.raises(InputError, match="quality"):
        edit(ours, [Rotate(90)], quality=0)
    with pytest.raises(InputError, match="operation 1 .crop.: crop size"):
        edit(ours, [Crop(0, 0, 0, 10)])
    with pytest.raises(InputError, match="operation 2 .resize.: .*exceeds the limit"):
        edit(ours, [Rotate(1), Resize(200_000, 200_000)])
    with pytest.raises(InputError, match="transpose 'sideways'"):
        edit(ours, [Transpose("sideways")])
    with pytest.raises(NoGainMapError, match="holds no gain map"):
        edit(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)), [Rotate(90)])
    with pytest.raises(InputError, match="not an image"):
        edit(b"not an image at all", [Rotate(90)])


def test_edit_file_is_atomic(ours, tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"previous")
    source = tmp_path / "in.jpg"
    source.write_bytes(ours)
    with pytest.raises(InputError):
        edit_file(source, target, [Resize(200_000, 200_000)])
    assert target.read_bytes() == b"previous"
    written = edit_file(source, target, [Rotate(37)])
    assert target.read_bytes() == written


def test_cli(ours, tmp_path, capsys):
    source = tmp_path / "in.jpg"
    source.write_bytes(ours)
    out = tmp_path / "out.jpg"
    arguments = ["edit", str(source), "-o", str(out), "--auto-orient", "--crop", "2,2,40,30", "--rotate", "15",
                 "--transpose", "transverse", "--resize", "30x20"]
    assert main(arguments) == EXIT_OK
    assert "autoorient, crop, rotate, transpose, resize" in capsys.readouterr().out
    assert Image.open(out).size == (30, 20) and Image.open(out).hdr.metadata.kind == "gainmlp"
    with pytest.raises(SystemExit) as exited:
        main(["edit", str(source), "-o", str(tmp_path / "none.jpg")])
    assert exited.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exited:
        main(["edit", str(source), "-o", str(tmp_path / "bad.jpg"), "--crop", "1,2,3"])
    assert exited.value.code == EXIT_USAGE and "X,Y,W,H" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["edit", str(source), "-o", str(tmp_path / "bad.png"), "--rotate", "90"])
    assert exited.value.code == EXIT_USAGE and "give the output a name ending in .jpg" in capsys.readouterr().err
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    assert main(["edit", str(plain), "-o", str(tmp_path / "p.jpg"), "--rotate", "90"]) == EXIT_REJECTED
    error = capsys.readouterr().err
    assert error.startswith(f"gainmap: {plain}: ") and error.count("\n") == 1
    assert not (tmp_path / "p.jpg").exists()


def test_damaged_files_fail_with_the_librarys_errors_naming_the_file():
    """Bytes overwritten anywhere: the edit succeeds or raises a GainmapError that names the input."""
    from gainmap_format.errors import GainmapError

    data = standard_fixture("iso-and-xmp").data
    rng = np.random.default_rng(7)
    for at in rng.integers(2, len(data) - 8, size=24):
        damaged = data[:at] + rng.integers(0, 256, size=8, dtype=np.uint8).tobytes() + data[at + 8 :]
        try:
            edit(damaged, [Rotate(30)])
        except GainmapError as exc:
            assert str(exc).startswith("the JPEG: "), exc
