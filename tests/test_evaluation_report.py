import csv
import math

from gainmap_format.evaluation.report import ResultRow, format_table, summarise, write_csv
from gainmap_format.evaluation.scoring import METRICS


def _row(protocol, image, method, psnr, added):
    return ResultRow(protocol, image, method, method.split()[0], method.split()[0], None, 16, None, added, 1.0, 0.1,
                     {"pq_psnr": psnr, "delta_e00": 1.0, "ssim": math.nan if image == "b" else 0.99,
                      "delta_e_itp": 3.0})


ROWS = [
    _row("paper", "a", "Gamma-MLP w16", 50.0, 9869),
    _row("paper", "b", "Gamma-MLP w16", 46.0, 9869),
    _row("paper", "a", "Gamma-JPEG ≤10 KB", 40.0, 9000),
    _row("paper", "b", "Gamma-JPEG ≤10 KB", 42.0, 10000),
    _row("real", "a", "Gamma-MLP w16", 45.0, 9869),
]


def test_summary_means_per_protocol_and_method():
    summary = summarise(ROWS)
    assert [(s.protocol, s.method, s.images) for s in summary] == [
        ("paper", "Gamma-MLP w16", 2), ("paper", "Gamma-JPEG ≤10 KB", 2), ("real", "Gamma-MLP w16", 1),
    ]
    assert summary[0].scores["pq_psnr"] == 48.0 and summary[1].added_bytes == 9500.0
    assert summary[0].scores["ssim"] == 0.99


def test_table_fits_one_screen():
    table = format_table(summarise(ROWS), METRICS, ["skipped Gain-HEIC: no pillow-heif"])
    lines = table.splitlines()
    assert lines[0].startswith("paper protocol") and "(2 images; means)" in lines[0]
    assert lines[1].split()[:3] == ["method", "PQ-PSNR", "ΔE00"]
    assert lines[2].split()[:3] == ["Gamma-MLP", "w16", "48.00"]
    assert "real-file protocol" in table and lines[-1] == "skipped Gain-HEIC: no pillow-heif"
    assert max(len(line) for line in lines) <= 100


def test_csv_has_one_line_per_row(tmp_path):
    path = tmp_path / "results.csv"
    write_csv(ROWS, METRICS, path)
    with path.open() as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == len(ROWS)
    assert read[0]["method"] == "Gamma-MLP w16" and read[0]["bytes"] == "9869" and read[0]["budget"] == ""
    assert float(read[2]["pq_psnr"]) == 40.0 and read[1]["ssim"] == "nan"
