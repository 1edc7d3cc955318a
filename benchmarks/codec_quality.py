"""Issue 2's acceptance measurement: Gamma-MLP against a traditional gamma map, same base.

For each HDR file: master it to 1000 cd/m² BT.2020 (exposure so that the log-average
luminance sits at 26 cd/m², BT.2408's 18% grey, then each channel clipped at 1000 cd/m²),
render the SDR with the default tone curve as an 8-bit PNG, and run exactly what
`gainmap encode MASTER.exr --sdr SDR.png -o out.jpg` and `gainmap decode` do, with default
settings. The traditional gamma map (quarter resolution per axis and per area, 8-bit, JPEG
q95) is computed against the same decoded base. Prints PQ-PSNR, sizes and times per image
and the means.

    python benchmarks/codec_quality.py [FILES...] [--iterations N] [--limit N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gainmap_format import codec
from gainmap_format.colour import PRIMARIES
from gainmap_format.evaluation.baselines import traditional_map
from gainmap_format.evaluation.inputs import master_hdr
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.hdrio import read_hdr
from gainmap_format.residual import hdr_to_pq, sdr_to_pq
from gainmap_format.tonemap import default_sdr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hdr"


def master(path: Path) -> np.ndarray:
    """float32 (H, W, 3) linear BT.2020 in cd/m², peak 1000, as ``gainmap bench`` masters it."""
    return master_hdr(read_hdr(path))


def png_bytes(code: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(code, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def measure(path: Path, iterations: int) -> dict:
    hdr = master(path)
    hdr_pq = hdr_to_pq(hdr, PRIMARIES["bt2020"], 1.0)
    sdr_png = png_bytes(default_sdr(hdr_pq))
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=iterations))
    result = codec.encode(hdr, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, sdr=sdr_png, options=options)
    start = time.perf_counter()
    decoded = codec.decode(result.jpeg)
    decode_seconds = time.perf_counter() - start
    base_pq = sdr_to_pq(decoded.sdr, "gamma2.4", "bt709")
    row = {
        "image": path.name,
        "pixels": hdr.shape[0] * hdr.shape[1],
        "mlp_db": pq_psnr(hdr_pq, decoded.pq),
        "mlp_bytes": result.metadata_bytes,
        "fit_s": result.fit_seconds,
        "decode_s": decode_seconds,
    }
    for scale in (4, 2):
        baseline = traditional_map(hdr_pq, base_pq, "gamma", scale=scale, quality=95)
        row[f"gj{scale}_db"] = pq_psnr(hdr_pq, baseline.hdr_pq)
        row[f"gj{scale}_bytes"] = len(baseline.jpeg)
    return row


def benchmark_files(files: list[Path], limit: int) -> list[Path]:
    """The files given, or every file in ../shared/data/hdr; the first ``limit`` of them when limit > 0."""
    files = files or sorted(DATA.glob("*"))
    return files[:limit] if limit else files


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args(argv)
    files = benchmark_files(args.files, args.limit)
    if not files:
        print(f"no HDR files given and {DATA} is absent", file=sys.stderr)
        return 1
    header = (
        f"{'image':34} {'MP':>5} {'MLP dB':>7} {'bytes':>6} {'GJ/4 dB':>7} {'bytes':>6} "
        f"{'GJ/2 dB':>7} {'bytes':>6} {'fit s':>6} {'dec s':>6}"
    )
    print(header)
    rows = []
    for path in files:
        row = measure(path, args.iterations)
        rows.append(row)
        print(
            f"{row['image']:34} {row['pixels'] / 1e6:5.2f} {row['mlp_db']:7.2f} {row['mlp_bytes']:6d} "
            f"{row['gj4_db']:7.2f} {row['gj4_bytes']:6d} {row['gj2_db']:7.2f} {row['gj2_bytes']:6d} "
            f"{row['fit_s']:6.1f} {row['decode_s']:6.2f}",
            flush=True,
        )
    mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0] if key != "image"}
    print(
        f"{'MEAN':34} {mean['pixels'] / 1e6:5.2f} {mean['mlp_db']:7.2f} {mean['mlp_bytes']:6.0f} "
        f"{mean['gj4_db']:7.2f} {mean['gj4_bytes']:6.0f} {mean['gj2_db']:7.2f} {mean['gj2_bytes']:6.0f} "
        f"{mean['fit_s']:6.1f} {mean['decode_s']:6.2f}"
    )
    print(f"MLP lead over Gamma-JPEG: {mean['mlp_db'] - mean['gj4_db']:+.2f} dB (1/4 per axis), "
          f"{mean['mlp_db'] - mean['gj2_db']:+.2f} dB (1/2 per axis)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
