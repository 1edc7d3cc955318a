"""Edit quality: the HDR of an edited, saved and reopened gain-map JPEG against the same edit of the source's HDR.

    .venv/bin/python benchmarks/edit_quality.py [--iterations 300] [--master NAME] [--standard FILE ...]

For each file and operation (crop, resize to half, rotate 90, rotate 37 with expand, each
transpose, exif_transpose, thumbnail): open the file through the Pillow plugin, apply the
operation, save as JPEG, reopen, and compare the reopened file's HDR with the same Pillow
operation applied to the source's HDR, as PQ-PSNR. The reference edit is applied twice: to each
linear channel as a mode "F" image (table "linear"), and to each PQ channel (table "pq"); they
differ for operations that mix pixels (resize, thumbnail), where the edited base was resampled
in sRGB code values and a resampling in linear light averages differently. Decoders:
BT.2020 PQ for GainMLP files (the plugin's decode), PQ of libultrahdr's own linear output (SDR
white at 203 cd/m², its own primaries) for standard files when imagecodecs is installed, else
the plugin's decode. A GainMLP file is encoded first from an HDR master of ../shared/data/hdr.
Prints one table row per file; figures vary a little with the fit (seeded) and not with the CPU.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

import pillow_plugin
from gainmap_format import codec
from gainmap_format.colour import pq_encode
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.hdrio import read_hdr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Standard files of ../shared/data/gainmaps measured by default: one per writer, small enough to be quick.
STANDARD_FILES = (
    "libultrahdr_iso_1280x720.jpg",
    "acr17_small_uhdr.jpg",
    "hfy_moonless_golf_1k.ultrahdr.jpg",
    "awe_tokyo_neon.jpg",
    "libavif_apple_gainmap_new.jpg",
)

#: cd/m² of libultrahdr's linear 1.0 (its output is relative to BT.2408 reference white).
LIBULTRAHDR_WHITE = 203.0

Operation = Callable[[Image.Image], Image.Image]


def _thumbnail(image: Image.Image) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((image.width // 3, image.height // 3))
    return copy


def _orientation_6(image: Image.Image) -> Image.Image:
    """``exif_transpose`` of the image as if its Exif orientation were 6 (rotate 270)."""
    return image.transpose(Image.Transpose.ROTATE_270)


OPERATIONS: dict[str, Operation] = {
    "crop": lambda im: im.crop((im.width // 8, im.height // 6, im.width * 3 // 4, im.height * 5 // 6)),
    "resize 1/2": lambda im: im.resize((im.width // 2, im.height // 2)),
    "rotate 90": lambda im: im.rotate(90, expand=True),
    "rotate 37 expand": lambda im: im.rotate(37, expand=True),
    **{f"transpose {t.name.lower()}": (lambda im, t=t: im.transpose(t)) for t in Image.Transpose},
    "thumbnail 1/3": _thumbnail,
}


def same_edit(hdr: np.ndarray, operation: Operation) -> np.ndarray:
    """float32 (h, w, 3): ``operation`` applied to each channel of a linear HDR image as a mode "F" image."""
    planes = [np.asarray(operation(Image.fromarray(np.ascontiguousarray(hdr[..., c])))) for c in range(3)]
    return np.stack(planes, axis=-1)


def saved_and_reopened(image: Image.Image) -> bytes:
    """The JPEG the plugin writes for an edited image (warnings are errors: the map must be kept)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def encode_ours(master: Path, iterations: int) -> bytes:
    """A GainMLP file of an HDR master (tone-mapped base)."""
    hdr = read_hdr(master)
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=iterations, seed=1))
    luminance = hdr.white_luminance or codec.DEFAULT_WHITE_LUMINANCE
    return codec.encode(hdr.pixels, chromaticities=hdr.chromaticities, white_luminance=luminance, options=options).jpeg


def _plugin_relative(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).hdr)


def _libultrahdr_relative(data: bytes) -> np.ndarray | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    try:
        decoded: np.ndarray = imagecodecs.ultrahdr_decode(data)[..., :3].astype(np.float32)
    except imagecodecs.UltrahdrError:
        return None
    return decoded


def _pq(relative: np.ndarray, white: float) -> np.ndarray:
    pq: np.ndarray = pq_encode(np.clip(relative, 0.0, None) * white)
    return pq


def measure(data: bytes, kind: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """PQ-PSNR per operation for one file, against the linear and the PQ reference edit; and which decoder judged."""
    reference = _libultrahdr_relative(data) if kind != "gainmlp" else None
    decoder: Callable[[bytes], np.ndarray | None] = _libultrahdr_relative if reference is not None else _plugin_relative
    if reference is None:
        reference = _plugin_relative(data)
    white = LIBULTRAHDR_WHITE
    if decoder is _plugin_relative:
        white = Image.open(io.BytesIO(data)).hdr.metadata.sdr_white_luminance
    results = {}
    for name, operation in OPERATIONS.items():
        edited = operation(Image.open(io.BytesIO(data)))
        decoded = decoder(saved_and_reopened(edited))
        if decoded is None:
            results[name] = (float("nan"), float("nan"))
            continue
        test = _pq(decoded, white)
        results[name] = (
            pq_psnr(_pq(same_edit(reference, operation), white), test),
            pq_psnr(same_edit(_pq(reference, white), operation), test),
        )
    return ("libultrahdr" if decoder is _libultrahdr_relative else "plugin"), results


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="fit steps of the GainMLP file (default 300)")
    parser.add_argument("--master", default="ph_dancing_hall_1k.hdr", help="HDR master in ../shared/data/hdr")
    parser.add_argument("--standard", nargs="*", default=list(STANDARD_FILES), help="files in ../shared/data/gainmaps")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} is absent: this benchmark needs ../shared/data", file=sys.stderr)
        return 1
    pillow_plugin.register()
    files: list[tuple[str, bytes, str]] = []
    start = time.perf_counter()
    ours = encode_ours(DATA / "hdr" / args.master, args.iterations)
    files.append((f"GainMLP ({args.master}, {args.iterations} steps)", ours, "gainmlp"))
    print(f"encoded the GainMLP file in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    for name in args.standard:
        data = (DATA / "gainmaps" / name).read_bytes()
        files.append((name, data, Image.open(io.BytesIO(data)).hdr.metadata.kind))
    measured = [(label, kind, *measure(data, kind)) for label, data, kind in files]
    for index, domain in enumerate(("linear", "pq")):
        print(f"\nreference edit in {domain}: PQ-PSNR dB")
        print("| file | kind | judged by | " + " | ".join(OPERATIONS) + " |")
        print("|" + "---|" * (3 + len(OPERATIONS)))
        for label, kind, judge, results in measured:
            cells = " | ".join(f"{results[n][index]:.1f}" for n in OPERATIONS)
            print(f"| {label} | {kind} | {judge} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
