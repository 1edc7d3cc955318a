"""What meta-initialisation buys: PQ-PSNR after N fitting steps from the shipped weights and from random ones.

Each HDR file is prepared as in codec_quality.py (mastered to 1000 cd/m² BT.2020, SDR by the
default tone curve as an 8-bit PNG), optionally box-downscaled first, then encoded and decoded
with default settings except the number of steps and the initialisation: one encode per step
count and per initialisation, so each number is exactly what `gainmap encode --iterations N
--init meta|random` gives. Prints a table per image and the means.

    python benchmarks/metainit_quality.py [FILES...] [--steps 100,300,1000] [--limit N] [--max-side PX]
        [--residual gamma] [--activation sine] [--hidden 16] [--init-folder DIR] [--device auto]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np
from codec_quality import DATA, benchmark_files, master, png_bytes

from gainmap_format import codec, initweights
from gainmap_format.colour import PRIMARIES
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.residual import hdr_to_pq
from gainmap_format.tonemap import default_sdr

INITS = ("meta", "random")


def downscale(hdr: np.ndarray, max_side: int) -> np.ndarray:
    """Box-average linear light by the smallest integer factor that brings the longer side to max_side or below."""
    factor = math.ceil(max(hdr.shape[:2]) / max_side) if max_side else 1
    if factor <= 1:
        return hdr
    height, width = hdr.shape[0] // factor, hdr.shape[1] // factor
    blocks = hdr[: height * factor, : width * factor].reshape(height, factor, width, factor, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def measure(path: Path, args: argparse.Namespace) -> dict:
    hdr = downscale(master(path), args.max_side)
    hdr_pq = hdr_to_pq(hdr, PRIMARIES["bt2020"], 1.0)
    sdr_png = png_bytes(default_sdr(hdr_pq))
    row = {"image": path.name, "pixels": hdr.shape[0] * hdr.shape[1]}
    for init in INITS:
        for steps in args.steps:
            fit = codec.FitOptions(
                hidden_width=args.hidden, activation=args.activation, iterations=steps, seed=args.seed,
                device=args.device,
            )
            options = codec.EncodeOptions(residual=args.residual, init=init, fit=fit)
            result = codec.encode(
                hdr, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, sdr=sdr_png, options=options
            )
            row[init, steps] = pq_psnr(hdr_pq, codec.decode(result.jpeg).pq)
    return row


def _steps(text: str) -> list[int]:
    values = [int(part) for part in text.split(",")]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive step counts")
    return values


def _print_row(name: str, megapixels: float, row: dict, steps: list[int]) -> None:
    cells = "".join(
        f" {row['meta', s]:7.2f} {row['random', s]:7.2f} {row['meta', s] - row['random', s]:+6.2f}" for s in steps
    )
    print(f"{name:34} {megapixels:5.2f}{cells}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--steps", type=_steps, default=[100, 300, 1000], help="step counts (default 100,300,1000)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files")
    parser.add_argument("--max-side", type=int, default=0, help="box-downscale so the longer side is at most PX")
    parser.add_argument("--residual", choices=("gamma", "gain"), default="gamma")
    parser.add_argument("--activation", choices=("sine", "relu"), default="sine")
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--init-folder", type=Path, help="weights folder to test instead of the shipped one")
    args = parser.parse_args(argv)
    if args.init_folder is not None:
        # The codec reads the folder at each encode, so this points "meta" at the weights under test.
        initweights.INIT_FOLDER = args.init_folder
    name = initweights.initial_weights_name(args.residual, args.activation, args.hidden)
    if initweights.load_initial_weights(args.residual, args.activation, args.hidden) is None:
        print(f"no {name}.npz in {initweights.INIT_FOLDER}: nothing to compare with random", file=sys.stderr)
        return 1
    files = benchmark_files(args.files, args.limit)
    if not files:
        print(f"no HDR files given and {DATA} is absent", file=sys.stderr)
        return 1
    print(f"{name}, PQ-PSNR in dB after N steps: from meta-initialisation, from random, and the gain")
    print(f"{'image':34} {'MP':>5}" + "".join(f" {f'meta@{s}':>7} {f'rand@{s}':>7} {'gain':>6}" for s in args.steps))
    rows = []
    for path in files:
        row = measure(path, args)
        rows.append(row)
        _print_row(row["image"], row["pixels"] / 1e6, row, args.steps)
    mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0] if key != "image"}
    _print_row("MEAN", mean["pixels"] / 1e6, mean, args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
