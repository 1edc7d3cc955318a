"""Decode time by kind of placement (format 2.1, spec §4.7), for each engine.

Crops and resizes keep the C kernel's per-row and per-column tables, transposes and quarter turns
swap them; any other rotation evaluates the network per pixel. The network is the shipped
meta-initialisation (its weights do not change the time); the base is random pixels::

    python benchmarks/bench_placement.py [--width 2000 --height 1500] [--repeats 3]

Prints milliseconds per megapixel of output, the median over the repeats, and the kernel build.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gainmap_format import native, runtime
from gainmap_format.container import GainMapMetadata
from gainmap_format.geometry import Placement
from gainmap_format.initweights import load_initial_weights


def edits(source: Placement) -> dict[str, Placement]:
    """One placement of each kind the decoder treats differently."""
    width, height = source.size
    return {
        "identity": source,
        "crop": source.crop((width // 20, height // 15, width - width // 20, height - height // 15)),
        "transpose": source.transpose(2),
        "resize 1/2": source.resize((width // 2, height // 2)),
        "rotate 37, expand": source.rotate(37, expand=True),
    }


def seconds(placement: Placement, engine: runtime.Engine, repeats: int) -> float:
    """Median wall time of ``repeats`` decodes of a random base through ``placement``."""
    width, height = placement.size
    metadata = GainMapMetadata(
        residual="gamma", activation="sine", hidden_width=16, width=width, height=height, base_transfer="srgb",
        base_primaries="bt709", input_mean=0.4, input_range=0.8, residual_mean=0.7, residual_range=0.5,
    )
    weights = load_initial_weights("gamma", "sine", 16)
    if weights is None:
        raise SystemExit("the shipped meta-initialisation gamma/sine/16 is missing")
    code = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runtime.render(weights, metadata, code, engine=engine, placement=placement, with_pq=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"kernel build: {native.variant()}, threads: {native.thread_count()}")
    print(f"{'placement':20s} {'output':>11s} {'native ms/MP':>13s} {'onnxruntime ms/MP':>18s}")
    for name, placement in edits(Placement.identity((args.width, args.height))).items():
        width, height = placement.size
        megapixels = width * height / 1e6
        row = [seconds(placement, engine, args.repeats) / megapixels * 1000 for engine in ("native", "onnxruntime")]
        print(f"{name:20s} {f'{width}x{height}':>11s} {row[0]:13.0f} {row[1]:18.0f}")


if __name__ == "__main__":
    main()
