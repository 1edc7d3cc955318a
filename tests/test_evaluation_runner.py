import csv
import io
from contextlib import redirect_stdout

import numpy as np
import pytest

from gainmap_format.cli import EXIT_OK, EXIT_USAGE, main
from gainmap_format.colour import PRIMARIES
from gainmap_format.evaluation import BenchOptions, run_bench
from gainmap_format.evaluation.methods import build_methods
from gainmap_format.evaluation.plots import matplotlib_unavailable
from gainmap_format.hdrio import write_exr, write_radiance
from gainmap_format.scenes import hdr_scene
from tests.conftest import jpeg_bytes

ARGS = ["--sizes", "1k,3k", "--widths", "8", "--init", "random", "--steps", "2", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    write_exr(folder / "scene.exr", hdr_scene(32, 48, seed=1), chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)
    write_radiance(folder / "pair.hdr", hdr_scene(32, 48, seed=2) / 100.0)
    (folder / "pair.jpg").write_bytes(jpeg_bytes(np.full((32, 48, 3), 110, np.uint8), quality=90))
    return folder


@pytest.fixture(scope="module")
def bench(images):
    out = images / "report"
    printed = io.StringIO()
    with redirect_stdout(printed):
        status = main(["bench", str(images), "--out", str(out), "--keep-files", *ARGS])
    return status, out, printed.getvalue()


def test_the_command_writes_every_output(bench):
    status, out, _ = bench
    assert status == EXIT_OK
    expected = {"results.csv", "table.txt"}
    if matplotlib_unavailable() is None:
        expected |= {"rd_curves.png", "crops.png"}
    assert expected <= {p.name for p in out.iterdir()}
    for name in expected - {"results.csv", "table.txt"}:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_the_csv_has_a_row_per_image_protocol_and_method(bench):
    _, out, _ = bench
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    methods, _ = build_methods(BenchOptions(sizes=(1024, 3072), widths=(8,), inits=("random",)))
    per_image = sum(len(m.protocols) for m in methods)
    assert len(rows) == 2 * per_image
    assert {r["image"] for r in rows} == {"scene.exr", "pair.hdr"}
    assert {r["protocol"] for r in rows} == {"paper", "real"}
    for row in rows:
        if row["budget"]:
            assert int(row["bytes"]) <= int(row["budget"]) or row["quality"] == "1"
        assert float(row["pq_psnr"]) > 15.0


def test_the_table_is_printed(bench):
    _, out, printed = bench
    table = (out / "table.txt").read_text()
    assert table in printed and "paper protocol" in table and "real-file protocol" in table
    assert "Gamma-JPEG ≤1 KB" in table and "Gamma-MLP random-init w8" in table
    assert "libultrahdr: real-file protocol only" in table
    assert "HDR-VDP-3" in table
    assert len(table.splitlines()) < 50


def test_files_are_kept(bench):
    _, out, _ = bench
    kept = sorted(p.name for p in (out / "files" / "real" / "scene.exr").iterdir())
    assert "Gain-JPEG_le1_KB.jpg" in kept and "Gamma-MLP_random-init_w8.jpg" in kept


def test_the_api_without_outputs(images):
    options = BenchOptions(methods=("gamma-jpeg",), sizes=(2048,), protocols=("real",))
    report = run_bench([images / "scene.exr"], options, progress=False)
    assert report.outputs == [] and len(report.rows) == 1 and report.rows[0].protocol == "real"


@pytest.mark.parametrize(
    "args",
    [["--sizes", "0"], ["--sizes", "ten"], ["--methods", "gamma-png"], ["--widths", "12"], ["--protocol", "lab"],
     ["--init", "zeros"], ["--steps", "0"], ["--max-megapixels", "-1"], ["--base-quality", "0"]],
)
def test_bad_arguments_exit_2(images, args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(images), *args])
    assert exit_info.value.code == EXIT_USAGE
    capsys.readouterr()


def test_missing_input_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(tmp_path / "missing.exr"), "--out", str(tmp_path / "r"), "--quiet"])
    assert exit_info.value.code == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
