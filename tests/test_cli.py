import json

import numpy as np
import pytest

from gainmap_format.cli import EXIT_OK, EXIT_REJECTED, main
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
    assert "GainMLP gain map, format 1.0" in capsys.readouterr().out


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
    assert "not a JPEG" in capsys.readouterr().err
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    assert main(["decode", str(plain), "-o", str(out)]) == EXIT_REJECTED
    assert "no GainMLP gain map" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "missing.exr"), "-o", str(tmp_path / "o.jpg"), "--quiet"]) == EXIT_REJECTED
    assert sorted(tmp_path.iterdir()) == sorted([not_jpeg, plain])


def test_truncated_file_exits_1(tmp_path, encoded_file, capsys):
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(encoded_file.read_bytes()[:3000])
    assert main(["decode", str(truncated), "-o", str(tmp_path / "x.exr")]) == EXIT_REJECTED
    assert "gainmap: error:" in capsys.readouterr().err
    assert not (tmp_path / "x.exr").exists()


def test_demo_prints_quality_and_size(capsys):
    assert main(["demo", "--size", "48x32", "--iterations", "20"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "PQ-PSNR" in out and "gain map" in out and "48x32" in out
