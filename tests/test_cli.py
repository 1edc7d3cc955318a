import errno
import json
import re

import numpy as np
import pytest

from gainmap_format import cli, codec, fitting, hdrio, metainit
from gainmap_format.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, MAX_SEED, main
from gainmap_format.colour import PRIMARIES
from gainmap_format.hdrio import read_hdr, write_exr
from gainmap_format.scenes import hdr_scene
from tests.conftest import jpeg_bytes, shared_data


@pytest.fixture(scope="module")
def exr(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "scene.exr"
    write_exr(path, hdr_scene(32, 40, seed=5), chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)
    return path


@pytest.fixture(scope="module")
def encoded_file(exr):
    out = exr.parent / "scene.jpg"
    assert main(["encode", str(exr), "-o", str(out), "--iterations", "20", "--quiet"]) == EXIT_OK
    return out


def test_encode_decode_info(tmp_path, encoded_file, capsys):
    decoded = tmp_path / "dec.exr"
    assert main(["decode", str(encoded_file), "-o", str(decoded)]) == EXIT_OK
    image = read_hdr(decoded)
    assert image.pixels.shape == (32, 40, 3) and image.white_luminance == 1.0
    assert main(["info", str(encoded_file), "--json"]) == EXIT_OK
    out = capsys.readouterr().out
    info = json.loads(out[out.index("{") :])
    assert info["gain_map"] == "gainmlp" and info["residual"] == "gamma" and info["network"]["hidden_width"] == 16
    assert info["width"] == 40 and info["height"] == 32 and info["container_bytes"] < 10240
    assert main(["info", str(encoded_file)]) == EXIT_OK
    version = "{}.{}".format(*codec.read_container(encoded_file).metadata.writer_version)
    assert f"GainMLP gain map, format {version}" in capsys.readouterr().out


def test_encode_options_and_sdr(tmp_path, exr, capsys):
    sdr = tmp_path / "base.jpg"
    sdr.write_bytes(jpeg_bytes(np.full((32, 40, 3), 120, np.uint8)))
    out = tmp_path / "gain.jpg"
    args = ["encode", str(exr), "--sdr", str(sdr), "-o", str(out), "--residual", "gain", "--hidden", "8",
            "--activation", "relu", "--iterations", "5", "--seed", "3", "--device", "cpu", "--sdr-transfer", "srgb"]
    assert main(args) == EXIT_OK
    assert "gain map" in capsys.readouterr().out
    main(["info", str(out), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert (info["residual"], info["network"]["activation"], info["network"]["hidden_width"]) == ("gain", "relu", 8)
    assert info["base"] == {"transfer": "srgb", "primaries": "bt709"}


def test_info_on_a_plain_jpeg(tmp_path, capsys):
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    assert main(["info", str(plain)]) == EXIT_OK
    assert "no gain map (neither GainMLP nor a standard one)" in capsys.readouterr().out
    assert main(["info", str(plain), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["gain_map"] is None


def test_info_on_a_standard_gain_map(capsys):
    path = shared_data("gainmaps") / "libultrahdr_iso_1280x720.jpg"
    assert main(["info", str(path)]) == EXIT_OK
    assert "a standard gain map (iso21496-1" in capsys.readouterr().out
    assert main(["info", str(path), "--json"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["gain_map"] == "iso21496-1" and (info["width"], info["height"]) == (1280, 720)
    assert info["map"]["channels"] in (1, 3) and info["hdr_headroom_log2"] > 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["encode"],
        ["encode", "x.exr"],
        ["encode", "x.exr", "-o", "y.jpg", "--hidden", "12"],
        ["encode", "x.exr", "-o", "y.jpg", "--iterations", "0"],
        ["encode", "x.exr", "-o", "y.jpg", "--quality", "101"],
        ["encode", "x.exr", "-o", "y.jpg", "--residual", "ratio"],
        ["encode", "x.exr", "-o", "y.jpg", "--device", "tpu"],
        ["decode", "x.jpg"],
        ["demo", "--size", "12"],
        ["frobnicate"],
    ],
)
def test_wrong_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_rejected_inputs_exit_1_and_leave_no_output(tmp_path, capsys):
    out = tmp_path / "out.exr"
    not_jpeg = tmp_path / "not.jpg"
    not_jpeg.write_bytes(b"GIF89a....")
    assert main(["decode", str(not_jpeg), "-o", str(out)]) == EXIT_REJECTED
    assert re.fullmatch(rf"gainmap: {re.escape(str(not_jpeg))}: .*not a JPEG.*\n", capsys.readouterr().err)
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    assert main(["decode", str(plain), "-o", str(out)]) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith(f"gainmap: {plain}: ")
    assert sorted(tmp_path.iterdir()) == sorted([not_jpeg, plain])


@pytest.mark.parametrize("cut", ["half", "tail"])
def test_truncated_file_exits_1(cut, tmp_path, encoded_file, capsys):
    data = encoded_file.read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(data[: len(data) // 2] if cut == "half" else data[:-100])
    assert main(["decode", str(truncated), "-o", str(tmp_path / "x.exr")]) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith(f"gainmap: {truncated}: ")
    assert main(["info", str(truncated)]) == EXIT_REJECTED
    captured = capsys.readouterr()
    assert captured.out == "" and re.fullmatch(rf"gainmap: {re.escape(str(truncated))}: .*truncated.*\n", captured.err)
    assert main(["info", str(truncated), "--json"]) == EXIT_REJECTED
    assert "truncated" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == [truncated]


def test_an_unreadable_sdr_is_named(tmp_path, exr, capsys):
    text = tmp_path / "notimage.txt"
    text.write_text("hello")
    out = tmp_path / "out.jpg"
    assert main(["encode", str(exr), "--sdr", str(text), "-o", str(out), "--quiet"]) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith(f"gainmap: {text}: cannot read the SDR image")
    assert not out.exists()


def test_decode_prints_the_maximum_it_wrote(tmp_path, encoded_file, capsys):
    for half in (False, True):
        out = tmp_path / f"half-{half}.exr"
        assert main(["decode", str(encoded_file), "-o", str(out), *(["--half"] if half else [])]) == EXIT_OK
        printed = capsys.readouterr().out
        maximum = float(re.search(r"maximum ([0-9.]+) cd/m²", printed).group(1))
        assert maximum == pytest.approx(float(hdrio.read_hdr(out).pixels.max()), abs=0.05)
        recorded = codec.read_container(encoded_file).metadata.peak_luminance
        assert "recorded headroom" in printed and f"{recorded:.1f} cd/m²" in printed


def _must_not_run(*args, **kwargs):
    raise AssertionError("work started although the arguments were wrong")


def _usage_error(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == EXIT_USAGE
    return capsys.readouterr().err.splitlines()[-1]


@pytest.fixture
def no_work(monkeypatch):
    """Make every command fail the test if it gets as far as reading an input."""
    work = ((hdrio, "read_hdr"), (codec, "decode"), (codec, "encode"), (codec, "read_container"),
            (metainit, "meta_initialise"))
    for module, name in work:
        monkeypatch.setattr(module, name, _must_not_run)


def test_wrong_outputs_exit_2_before_any_work(tmp_path, exr, encoded_file, no_work, capsys):
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    sdr = tmp_path / "base.jpg"
    sdr.write_bytes(b"precious")
    link = tmp_path / "link.jpg"
    link.symlink_to(sdr)
    encode = ["encode", str(exr), "--quiet", "-o"]
    cases = {
        str(tmp_path / "missing" / "x.jpg"): (encode, "folder " + str(tmp_path / "missing") + " does not exist"),
        str(folder): (encode, "is a folder"),
        str(tmp_path / "x.png"): (encode, "writes a JPEG; give the output a name ending in .jpg or .jpeg"),
        str(sdr): ([*encode[:2], "--sdr", str(sdr), "-o"], f"is the input {sdr}"),
        str(link): ([*encode[:2], "--sdr", str(sdr), "-o"], f"is the input {sdr}"),
        str(tmp_path / "y.tif"): (["decode", str(encoded_file), "-o"], "writes an OpenEXR, a PQ PNG or a PQ AVIF file"),
        str(tmp_path / "z.exr"): (["demo", "--iterations", "1", "-o"], "writes a JPEG"),
        str(tmp_path / "w.pt"): (["meta-init", "--quiet", "-o"], "name ending in .npz"),
    }
    for output, (args, message) in cases.items():
        last_line = _usage_error([*args, output], capsys)
        assert last_line.startswith(f"gainmap {args[0]}: error: {output}: ") and message in last_line, last_line
    exr_copy = tmp_path / "scene.exr"
    exr_copy.write_bytes(exr.read_bytes())
    assert "is the input" in _usage_error(["decode", str(exr_copy), "-o", str(exr_copy)], capsys)
    assert exr_copy.read_bytes() == exr.read_bytes() and sdr.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.jpg", "folder.jpg", "link.jpg", "scene.exr"]


def test_wrong_inputs_exit_2_before_any_work(tmp_path, exr, no_work, capsys):
    missing = tmp_path / "missing.exr"
    out = str(tmp_path / "o.jpg")
    assert _usage_error(["encode", str(missing), "-o", out], capsys).endswith(f"{missing}: does not exist")
    assert _usage_error(["encode", str(exr), "--sdr", str(tmp_path), "-o", out], capsys).endswith(
        f"{tmp_path}: not a file"
    )
    assert _usage_error(["info", str(missing)], capsys).endswith(f"{missing}: does not exist")
    assert _usage_error(["decode", str(tmp_path), "-o", str(tmp_path / "x.exr")], capsys).endswith("not a file")
    assert "step size 2.0 is outside" in _usage_error(["meta-init", "--step-size", "2", "--method", "reptile"], capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--seed", str(MAX_SEED + 1)],
        ["--seed", "-1"],
        ["--seed", "1.5"],
        ["--white-luminance", "inf"],
        ["--white-luminance", "nan"],
        ["--white-luminance", "bright"],
    ],
)
def test_out_of_range_numbers_exit_2(args, tmp_path, exr, no_work, capsys):
    last_line = _usage_error(["encode", str(exr), "-o", str(tmp_path / "o.jpg"), *args], capsys)
    assert last_line.startswith(f"gainmap encode: error: argument {args[0]}: ")


def test_the_largest_seed_is_accepted(tmp_path, exr):
    out = tmp_path / "o.jpg"
    args = ["encode", str(exr), "-o", str(out), "--seed", str(MAX_SEED), "--iterations", "2", "--quiet"]
    assert main(args) == EXIT_OK
    assert codec.read_container(out).metadata.width == 40


def test_an_interrupted_encode_keeps_the_existing_output(tmp_path, exr, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "o.jpg"
    out.write_bytes(b"precious")
    monkeypatch.setattr(fitting, "fit", interrupt)
    try:
        status = main(["encode", str(exr), "-o", str(out), "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("main() let the interrupt through")
    assert status == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "gainmap: interrupted\n"
    assert out.read_bytes() == b"precious" and list(tmp_path.iterdir()) == [out]


def test_a_failed_write_names_the_output(tmp_path, encoded_file, monkeypatch, capsys):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hdrio, "atomic_output", disk_full)
    out = tmp_path / "x.exr"
    assert main(["decode", str(encoded_file), "-o", str(out)]) == EXIT_REJECTED
    assert capsys.readouterr().err == f"gainmap: {out}: No space left on device\n"


def test_help_documents_the_exit_status(capsys):
    for args in (["--help"], ["encode", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0
        help_text = capsys.readouterr().out
        assert "exit status:" in help_text and "2    wrong arguments" in help_text
    assert "gainmap: FILE: message" in cli.EXIT_STATUS


def test_demo_prints_quality_and_size(capsys):
    assert main(["demo", "--size", "48x32", "--iterations", "20"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "PQ-PSNR" in out and "gain map" in out and "48x32" in out


# ---- convert, and decode of any gain-map JPEG (#11) ----


def _standard_file(tmp_path):
    from tests.standard_fixtures import standard_fixture

    path = tmp_path / "uhdr.jpg"
    path.write_bytes(standard_fixture("iso-and-xmp").data)
    return path


def test_convert_then_decode_to_png(tmp_path, capsys):
    from gainmap_format.export import render_any

    source = _standard_file(tmp_path)
    out = tmp_path / "out.jpg"
    assert main(["convert", str(source), "-o", str(out), "--iterations", "50", "--quiet"]) == EXIT_OK
    assert codec.read_container(out).metadata.sdr_white_luminance == 203.0
    iso = tmp_path / "iso.jpg"
    assert main(["convert", str(out), "-o", str(iso), "--to", "iso", "--map-scale", "2"]) == EXIT_OK
    assert "gainmlp" in capsys.readouterr().out and render_any(iso).kind == "iso21496-1"
    for path in (source, out):
        png = tmp_path / f"{path.stem}.png"
        assert main(["decode", str(path), "-o", str(png), "--headroom", "1.5"]) == EXIT_OK
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG") and b"cICP\x09\x10\x00\x01" in data
        assert "PQ 16-bit PNG" in capsys.readouterr().out
    exr = tmp_path / "uhdr.exr"
    assert main(["decode", str(source), "-o", str(exr)]) == EXIT_OK
    assert "SDR white 203 cd/m²" in capsys.readouterr().out
    assert np.allclose(read_hdr(exr).pixels, render_any(source).absolute(), rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "IN", "-o", "OUT.png"], "writes a JPEG"),
        (["convert", "IN", "-o", "OUT.jpg", "--map-scale", "0"], "map scale 0 is outside"),
        (["convert", "IN", "-o", "OUT.jpg", "--to", "avif"], "invalid choice"),
        (["decode", "IN", "-o", "OUT.jpg"], "writes an OpenEXR, a PQ PNG or a PQ AVIF file"),
        (["decode", "IN", "-o", "OUT.png", "--headroom", "-1"], "outside 0 to 14"),
        (["decode", "IN", "-o", "OUT.png", "--headroom", "nan"], "outside 0 to 14"),
    ],
)
def test_convert_and_decode_arguments_exit_2(tmp_path, no_work, args, message, capsys):
    source = _standard_file(tmp_path)
    args = [str(source) if a == "IN" else str(tmp_path / a) if a.startswith("OUT") else a for a in args]
    assert message in _usage_error(args, capsys)
    assert not any(p.name.startswith("OUT") for p in tmp_path.iterdir())


def test_convert_of_a_plain_jpeg_exits_1_and_keeps_the_output(tmp_path, capsys):
    source = tmp_path / "plain.jpg"
    source.write_bytes(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    out = tmp_path / "out.jpg"
    out.write_bytes(b"precious")
    assert main(["convert", str(source), "-o", str(out), "--quiet"]) == EXIT_REJECTED
    assert capsys.readouterr().err.startswith(f"gainmap: {source}: ") and out.read_bytes() == b"precious"
    assert main(["decode", str(source), "-o", str(tmp_path / "x.png")]) == EXIT_REJECTED
    assert "holds no gain map" in capsys.readouterr().err


def test_decode_to_avif_or_its_refusal(tmp_path, monkeypatch, capsys):
    from gainmap_format import export

    source = _standard_file(tmp_path)
    out = tmp_path / "x.avif"
    if export.avif_available():
        assert main(["decode", str(source), "-o", str(out)]) == EXIT_OK
        assert b"colrnclx\x00\x09\x00\x10\x00\x00" in out.read_bytes() and "10-bit AVIF" in capsys.readouterr().out
        out.unlink()
    monkeypatch.setattr(export, "avif_available", lambda: False)
    assert "needs the optional 'avif' extra" in _usage_error(["decode", str(source), "-o", str(out)], capsys)
    assert not out.exists()
