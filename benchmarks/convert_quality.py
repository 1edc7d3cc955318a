"""Issue 11's report: converting the standard gain-map JPEGs of ../shared/data/gainmaps to GainMLP.

For every JPEG there (the HEIC is not a JPEG and is skipped):

1. ``convert`` to GainMLP with the default options: PQ-PSNR of the output's HDR against the
   source's (both full renditions, both relative to SDR white placed at 203 cd/m²), bytes before
   and after, metadata added to the base, whether the base's entropy-coded data is byte-identical,
   wall time of the conversion and of its fit alone.
2. ``convert --to iso`` of that GainMLP file for each map setting (scale, quality): the file's
   size, PQ-PSNR of our reader's decode of it against our decode of the GainMLP file, and of
   libultrahdr's decode (imagecodecs 2026.3.6) against the same, libultrahdr's output taken as
   linear light in the base's primaries, scaled by least squares (it reports no unit).

    python benchmarks/convert_quality.py [--files pixel_uhdr_01.jpg ...] [--iterations 1000]
        [--maps 1x95,2x90,4x85] [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from gainmap_format import codec, standard
from gainmap_format.colour import PRIMARIES, convert_primaries
from gainmap_format.convert import convert, primary_image
from gainmap_format.errors import GainmapError
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.export import STANDARD_SDR_WHITE, render_any
from gainmap_format.jpeg import parse_jpeg
from gainmap_format.residual import hdr_to_pq
from gainmap_format.standard.write import strip_standard

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "gainmaps"


def libultrahdr_psnr(iso: bytes, reference_pq: np.ndarray) -> float | None:
    """PQ-PSNR of libultrahdr's decode of ``iso`` against ``reference_pq``; None without imagecodecs."""
    try:
        import imagecodecs
    except ImportError:
        return None
    linear = imagecodecs.ultrahdr_decode(iso)[..., :3].astype(np.float32)
    ours = standard.find_gain_map(iso)
    mine = ours.render()
    # libultrahdr's output has no stated unit; scale it onto our reader's by least squares.
    scale = float(np.vdot(linear, mine) / max(np.vdot(linear, linear), 1e-12))
    bt2020 = convert_primaries(linear * np.float32(scale), PRIMARIES[ours.primaries], PRIMARIES["bt2020"])
    return pq_psnr(reference_pq, hdr_to_pq(bt2020, PRIMARIES["bt2020"], STANDARD_SDR_WHITE))


def one_file(path: Path, options: codec.EncodeOptions, maps: list[tuple[int, int]]) -> dict[str, object]:
    data = path.read_bytes()
    start = time.perf_counter()
    result = convert(data, options=options)
    seconds = time.perf_counter() - start
    source_pq = render_any(data).pq()
    ours_pq = render_any(result.jpeg).pq()
    primary = primary_image(data, standard.find_gain_map(data))
    row: dict[str, object] = {
        "file": path.name,
        "kind": result.source_kind,
        "size": f"{source_pq.shape[1]}x{source_pq.shape[0]}",
        "psnr_db": round(pq_psnr(source_pq, ours_pq), 2),
        "bytes_before": len(data),
        "bytes_after": len(result.jpeg),
        "metadata_added": len(result.jpeg) - len(strip_standard(primary)),
        "base_identical": parse_jpeg(result.jpeg).scan == parse_jpeg(primary).scan,
        "seconds": round(seconds, 2),
        "fit_seconds": round(result.fit_seconds, 2),
        "iso": [],
    }
    for scale, quality in maps:
        iso = convert(result.jpeg, to="iso", map_scale=scale, map_quality=quality).jpeg
        lib = libultrahdr_psnr(iso, ours_pq)
        row["iso"].append(  # type: ignore[attr-defined]
            {
                "map": f"1/{scale} q{quality}",
                "bytes": len(iso),
                "ours_db": round(pq_psnr(ours_pq, render_any(iso).pq()), 2),
                "libultrahdr_db": None if lib is None else round(lib, 2),
            }
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="*", help="file names in ../shared/data/gainmaps (default: every JPEG)")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--maps", default="1x95,2x90,4x85", help="ISO map settings, scale x quality")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    names = args.files or sorted(p.name for p in FOLDER.glob("*.jpg"))
    maps = [tuple(int(v) for v in m.split("x")) for m in args.maps.split(",")]
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=args.iterations))
    rows = []
    for name in names:
        try:
            row = one_file(FOLDER / name, options, maps)  # type: ignore[arg-type]
        except GainmapError as exc:
            row = {"file": name, "error": f"{type(exc).__name__}: {exc}"}
        else:
            rows.append(row)
        print(json.dumps(row), flush=True)
    psnrs = [float(r["psnr_db"]) for r in rows]  # type: ignore[arg-type]
    finite = [p for p in psnrs if math.isfinite(p)]
    print(f"mean PQ-PSNR {sum(finite) / len(finite):.2f} dB over {len(finite)} files")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
