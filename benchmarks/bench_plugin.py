"""Issue 3's speed measurements: what the Pillow plugin costs, and HDR decode against libultrahdr.

1. Opening a plain JPEG with and without the plugin, interleaved in one run: ``Image.open``
   alone (where the plugin does its work) and open + load. Medians per open and their ratio.
2. The HDR decode of a 12-megapixel GainMLP file (``np.asarray(Image.open(f).hdr)``, which is
   ``codec.decode``) against libultrahdr's linear decode of a 12-megapixel Ultra HDR JPEG
   encoded by libultrahdr from the same scene, and our reader on that same Ultra HDR file.
   The GainMLP file is fitted with few steps: decoding costs the same whatever the fit.

    python benchmarks/bench_plugin.py [--width 4000 --height 3000] [--repeats 5] [--opens 400]

Needs imagecodecs (2026.3.6, with libultrahdr) for part 2; part 1 runs without it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

import pillow_plugin
from gainmap_format import codec
from gainmap_format.colour import PRIMARIES, convert_primaries
from gainmap_format.scenes import hdr_scene

#: Alternating timing blocks per configuration; their medians are compared.
BLOCKS = 21


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_jpeg() -> bytes:
    """A 12 MP camera-like JPEG: Exif, 4:2:0, quality 90, textured content."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    image = Image.fromarray(small, "RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    exif = image.getexif()
    exif[0x010F] = "bench"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def open_cost(data: bytes, opens: int, load: bool) -> tuple[float, float]:
    """Median seconds per open without and with the plugin, measured in alternating blocks."""

    def block() -> float:
        start = time.perf_counter()
        for _ in range(opens):
            image = Image.open(io.BytesIO(data))
            if load:
                image.load()
        return (time.perf_counter() - start) / opens

    without, with_plugin = [], []
    for _ in range(BLOCKS):
        pillow_plugin.unregister()
        without.append(block())
        pillow_plugin.register()
        with_plugin.append(block())
    return statistics.median(without), statistics.median(with_plugin)


def wrapper_overhead(data: bytes, number: int = 5000) -> float:
    """Seconds the plugin's factory adds to Pillow's per call, alternating the two, without Image.open."""
    factory = Image.OPEN["JPEG"][0]
    original = factory.__wrapped__

    def per_call(open_jpeg: Callable) -> float:
        start = time.perf_counter()
        for _ in range(number):
            open_jpeg(io.BytesIO(data))
        return (time.perf_counter() - start) / number

    wrapped, plain = [], []
    for _ in range(BLOCKS):
        wrapped.append(per_call(factory))
        plain.append(per_call(original))
    return statistics.median(wrapped) - statistics.median(plain)


def our_file(width: int, height: int) -> bytes:
    scene = hdr_scene(height, width, seed=0)
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=2, batch_size=4096, seed=0))
    return codec.encode(scene, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, options=options).jpeg


def ultrahdr_file(width: int, height: int) -> bytes:
    import imagecodecs

    scene = hdr_scene(height, width, seed=0)
    # libultrahdr takes linear BT.709-or-wider RGBA half floats; 1.0 is its SDR white (203 cd/m²).
    bt709 = np.clip(convert_primaries(scene, PRIMARIES["bt2020"], PRIMARIES["bt709"]), 0.0, None) / 203.0
    rgba = np.ones((height, width, 4), dtype=np.float16)
    rgba[..., :3] = np.minimum(bt709, 65000.0)
    return imagecodecs.ultrahdr_encode(rgba)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5, help="timed decodes per decoder")
    parser.add_argument("--opens", type=int, default=400, help="opens per timing block")
    args = parser.parse_args()

    data = plain_jpeg()
    for load in (False, True):
        without, with_plugin = open_cost(data, args.opens if not load else max(args.opens // 40, 3), load)
        what = "open + load" if load else "open"
        print(
            f"plain 12 MP JPEG, {what:11s}: without plugin {without * 1e3:8.3f} ms, "
            f"with {with_plugin * 1e3:8.3f} ms, ratio {with_plugin / without:.3f}"
        )

    print(f"the plugin's factory adds {wrapper_overhead(data) * 1e6:.2f} µs per plain-JPEG open")

    megapixels = args.width * args.height / 1e6
    ours = our_file(args.width, args.height)
    ours_time = median_seconds(lambda: np.asarray(Image.open(io.BytesIO(ours)).hdr), args.repeats)
    print(f"GainMLP {megapixels:.1f} MP, np.asarray(im.hdr): median {ours_time:.3f} s")
    try:
        import imagecodecs
    except ImportError:
        print("imagecodecs is not installed: no libultrahdr comparison")
        return
    reference = ultrahdr_file(args.width, args.height)
    libultrahdr_time = median_seconds(lambda: imagecodecs.ultrahdr_decode(reference), args.repeats)
    standard_time = median_seconds(lambda: np.asarray(Image.open(io.BytesIO(reference)).hdr), args.repeats)
    version = imagecodecs.ultrahdr_version()
    print(f"{version} on a {megapixels:.1f} MP Ultra HDR JPEG: median {libultrahdr_time:.3f} s")
    print(f"our reader on the same Ultra HDR JPEG: median {standard_time:.3f} s")
    print(f"ratio GainMLP decode / libultrahdr decode: {ours_time / libultrahdr_time:.2f}")
    print(f"ratio our Ultra HDR decode / libultrahdr decode: {standard_time / libultrahdr_time:.2f}")


if __name__ == "__main__":
    main()
