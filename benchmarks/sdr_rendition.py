"""Issue 15's measurement: does our SDR base look like the camera's own SDR of the same HDR?

For each camera or editor gain-map JPEG in ``../shared/data/gainmaps``: take the file's HDR through
the Pillow plugin (1.0 = SDR white, placed at 203 cd/m², BT.2408), shrink it with an area filter
to at most ``--max-width`` pixels wide, render our base from it with each tone map, and compare
every base with the camera's SDR (the file's primary image, shrunk the same way in linear light)
as a colour-managed viewer shows each: a base with an ICC profile through that profile's
transfer and primaries, a base without one as sRGB (what viewers assume; the old default's
pure gamma 2.4 is shown this way). Prints the mean CIEDE2000 and mean L* per file and tone map
(white = 100 cd/m²), then each map's mean against today's, and the files where it is worse.

"Today" is the default before issue 15 as a user met it: the plugin's HDR (1.0 = SDR white)
given to ``encode`` with its default ``white_luminance`` of 100 cd/m², then the paper's curve in
gamma 2.4 with no profile (column ``old@100``: the issue's "dim, flat and desaturated" base, its
L* 5 to 19 below the camera's). Column ``old`` is the same curve with SDR white at 203 cd/m², for
reference. Side-by-side PNGs (camera, today's default, the new default; sRGB, 512 px wide each)
go to ``docs/results/sdr_rendition/``.

With ``--fidelity``, issue 15's other check instead: on ``../shared/data/hdr`` under the bench's
real-file protocol (each scene mastered as ``gainmap bench`` masters it, the base a q98 JPEG that
the encoder renders, the default Gamma-MLP fitted to that base as decoded and decoded from the
file), the PQ-PSNR of the HDR with the former default base (the paper's curve, gamma 2.4) and
with each tone map's.

    python benchmarks/sdr_rendition.py [--max-width N] [--maps NAME ...] [--no-png]
    python benchmarks/sdr_rendition.py --fidelity [--limit N] [--maps NAME ...]
    python benchmarks/sdr_rendition.py --timing

With ``--timing``, the seconds of process CPU time each tone map takes to render a 12 MP base.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image

import pillow_plugin
from gainmap_format import codec
from gainmap_format.colour import (
    PRIMARIES,
    PrimariesName,
    convert_primaries,
    pq_decode,
    pq_encode,
    srgb_decode,
    srgb_encode,
)
from gainmap_format.evaluation.baselines import resize_planes
from gainmap_format.evaluation.inputs import find_inputs, load_image
from gainmap_format.evaluation.metrics import linear_to_lab, mean_delta_e_2000, pq_psnr
from gainmap_format.tonemap import REFERENCE_WHITE_LUMINANCE, TONE_MAPS, ToneMapName, default_sdr, render_sdr

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gainmaps"
HDR_DATA = ROOT.parent / "shared" / "data" / "hdr"
OUT = ROOT / "docs" / "results" / "sdr_rendition"

#: Gain-map JPEGs made by a camera or a photo editor from a real photograph (MANIFEST.tsv);
#: encoder test images and synthetic scenes are left out.
CAMERA_FILES = (
    "pixel_uhdr_01.jpg",
    "pixel_uhdr_02.jpg",
    "acr16_old.jpg",
    "acr17_small_uhdr.jpg",
    "libavif_apple_gainmap_new.jpg",
    "libavif_paris_gainmap_le.jpg",
    "awe_tokyo_neon.jpg",
    "awe_phi_falls.jpg",
    "awe_colorful_daisies.jpg",
)

#: cd/m² of SDR display white for the comparison: CIELAB's L* = 100.
DISPLAY_WHITE = 100.0

#: The column of today's default (see the module's notes).
TODAY = "old@100"


@dataclass(frozen=True)
class Scene:
    """One file, shrunk: its HDR and the camera's SDR.

    Attributes:
        name: the file's name.
        hdr_pq: float32 (H, W, 3), BT.2020 PQ, SDR white at 203 cd/m².
        camera: float32 (H, W, 3), the camera's SDR as shown: linear BT.2020, 1.0 = display white.
    """

    name: str
    hdr_pq: np.ndarray
    camera: np.ndarray


def shrink(linear: np.ndarray, max_width: int) -> np.ndarray:
    """float32 (H, W, 3) linear light, area-filtered to at most ``max_width`` wide."""
    height, width = linear.shape[:2]
    if width <= max_width:
        return linear.astype(np.float32)
    size = (max_width, max(1, round(height * max_width / width)))
    return resize_planes(linear.astype(np.float32), size, Image.Resampling.BOX)


def load(path: Path, max_width: int) -> Scene:
    """The file's HDR and the camera's SDR, both shrunk in linear light."""
    with Image.open(path) as image:
        hdr = image.hdr
        primaries: PrimariesName = hdr.primaries
        relative = np.asarray(hdr)
        # The base is shown through its profile; camera profiles (sRGB, Display P3) use the sRGB curve.
        camera_linear = srgb_decode(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
    hdr_bt2020 = convert_primaries(shrink(relative, max_width), PRIMARIES[primaries], PRIMARIES["bt2020"])
    hdr_pq = pq_encode(np.clip(hdr_bt2020, 0.0, None) * REFERENCE_WHITE_LUMINANCE).astype(np.float32)
    camera = convert_primaries(shrink(camera_linear, max_width), PRIMARIES[primaries], PRIMARIES["bt2020"])
    return Scene(path.name, hdr_pq, camera)


def as_shown(code: np.ndarray, primaries: PrimariesName) -> np.ndarray:
    """How a colour-managed viewer shows uint8 sRGB-curve code values: linear BT.2020, 1.0 = white."""
    linear = srgb_decode(code.astype(np.float32) / 255.0)
    return convert_primaries(linear, PRIMARIES[primaries], PRIMARIES["bt2020"])


def renditions(scene: Scene, maps: list[str]) -> dict[str, np.ndarray]:
    """Each rendition as shown: linear BT.2020, 1.0 = white.

    "old" is the former default; "old@100" (today's) the same with the HDR's SDR white at
    100 cd/m², where ``encode``'s default ``white_luminance`` and the Pillow plugin's save put it.
    """
    at_100 = pq_encode(pq_decode(scene.hdr_pq.astype(np.float64)) * (100.0 / REFERENCE_WHITE_LUMINANCE))
    shown = {"old": as_shown(default_sdr(scene.hdr_pq), "bt709"),
             "old@100": as_shown(default_sdr(at_100.astype(np.float32)), "bt709")}
    for name in maps:
        shown[name] = as_shown(render_sdr(scene.hdr_pq, name), "bt709")
        shown[f"{name}-p3"] = as_shown(render_sdr(scene.hdr_pq, name, primaries="display-p3"), "display-p3")
    return shown


def measure(camera: np.ndarray, shown: np.ndarray) -> tuple[float, float]:
    """(mean CIEDE2000 against the camera's SDR, mean L*) of one rendition."""
    delta = mean_delta_e_2000(camera * DISPLAY_WHITE, shown * DISPLAY_WHITE, "bt2020", DISPLAY_WHITE)
    lightness = float(np.mean(linear_to_lab(shown * DISPLAY_WHITE, "bt2020", DISPLAY_WHITE)[..., 0]))
    return delta, lightness


def srgb_code(linear_bt2020: np.ndarray) -> np.ndarray:
    """uint8 sRGB code values of linear BT.2020 light (1.0 = white), clipped into sRGB's gamut."""
    bt709 = np.clip(convert_primaries(linear_bt2020, PRIMARIES["bt2020"], PRIMARIES["bt709"]), 0.0, 1.0)
    return np.round(srgb_encode(bt709) * 255.0).astype(np.uint8)


def side_by_side(name: str, panels: list[np.ndarray], width: int = 512) -> Path:
    """Write the panels (linear BT.2020) next to each other, each ``width`` wide, as an sRGB PNG."""
    images = []
    for panel in panels:
        image = Image.fromarray(srgb_code(panel), "RGB")
        height = max(1, round(image.height * width / image.width))
        images.append(image.resize((width, height), Image.Resampling.LANCZOS))
    canvas = Image.new("RGB", (width * len(images) + 8 * (len(images) - 1), images[0].height), "white")
    for index, image in enumerate(images):
        canvas.paste(image, (index * (width + 8), 0))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{Path(name).stem}.png"
    canvas.save(path, optimize=True)
    return path


def fidelity_psnr(hdr_pq: np.ndarray, options: codec.EncodeOptions) -> float:
    """PQ-PSNR (dB) of the HDR decoded from the file ``encode`` makes of ``hdr_pq`` with a base it renders."""
    options = options.for_base(rendered=True)
    base, code = codec.prepare_base(None, hdr_pq, options.quality, options)
    result = codec.encode_prepared(codec.fit_inputs(base, code, hdr_pq, options), options)
    return pq_psnr(hdr_pq, codec.decode(result.jpeg).pq)


def fidelity(limit: int | None, maps: list[str]) -> int:
    """Print the HDR fidelity with the former default base and with each of ``maps``; 1 when no file was found."""
    items = [item for item in find_inputs([HDR_DATA]) if item.sdr_path is None][:limit] if HDR_DATA.is_dir() else []
    if not items:
        print(f"no HDR files under {HDR_DATA}", file=sys.stderr)
        return 1
    variants = {"paper (former)": codec.EncodeOptions(tone_map="paper", sdr_transfer="gamma2.4")}
    variants.update({name: codec.EncodeOptions(tone_map=cast(ToneMapName, name)) for name in maps})
    print(f"{'file':34s} " + " ".join(f"{name:>15s}" for name in variants))
    totals: dict[str, list[float]] = {name: [] for name in variants}
    for item in items:
        hdr_pq = load_image(item).hdr_pq
        cells = []
        for name, options in variants.items():
            totals[name].append(fidelity_psnr(hdr_pq, options))
            cells.append(f"{totals[name][-1]:15.2f}")
        print(f"{item.name:34s} " + " ".join(cells), flush=True)
    print(f"{'mean PQ-PSNR (dB)':34s} " + " ".join(f"{statistics.mean(v):15.2f}" for v in totals.values()))
    return 0


def timing() -> int:
    """Print the process CPU seconds of rendering a 12 MP (4000 x 3000) base with each tone map."""
    rng = np.random.default_rng(0)
    hdr_pq = pq_encode(rng.uniform(0.0, 2000.0, (3000, 4000, 3)).astype(np.float32))
    for name in TONE_MAPS:
        start = time.process_time()
        render_sdr(hdr_pq, name)
        print(f"{name:10s} {time.process_time() - start:6.2f} s CPU for 12 MP")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table; 1 when no file was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-width", type=int, default=1024, help="shrink each file to this width (default 1024)")
    parser.add_argument("--maps", nargs="+", default=[m for m in TONE_MAPS if m != "paper"], choices=TONE_MAPS)
    parser.add_argument("--no-png", action="store_true", help="do not write the side-by-side PNGs")
    parser.add_argument("--fidelity", action="store_true", help="measure the HDR fidelity on ../shared/data/hdr")
    parser.add_argument("--limit", type=int, default=None, help="with --fidelity: only the first N files")
    parser.add_argument("--timing", action="store_true", help="time each tone map on a 12 MP image")
    args = parser.parse_args(argv)
    if args.timing:
        return timing()
    if args.fidelity:
        return fidelity(args.limit, args.maps)
    pillow_plugin.register()
    paths = [DATA / name for name in CAMERA_FILES if (DATA / name).is_file()]
    if not paths:
        print(f"no camera gain-map JPEGs under {DATA}", file=sys.stderr)
        return 1
    columns = ["old", "old@100", *[f"{m}{suffix}" for m in args.maps for suffix in ("", "-p3")]]
    print(f"{'file':32s} {'camera L*':>9s} " + " ".join(f"{c + ' dE00/L*':>22s}" for c in columns))
    totals: dict[str, list[float]] = {c: [] for c in columns}
    for path in paths:
        scene = load(path, args.max_width)
        shown = renditions(scene, args.maps)
        camera_lightness = float(np.mean(linear_to_lab(scene.camera * DISPLAY_WHITE, "bt2020", DISPLAY_WHITE)[..., 0]))
        cells = []
        for column in columns:
            delta, lightness = measure(scene.camera, shown[column])
            totals[column].append(delta)
            cells.append(f"{delta:12.2f} / {lightness:6.1f}")
        print(f"{path.name:32s} {camera_lightness:9.1f} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
        if not args.no_png:
            side_by_side(path.name, [scene.camera, shown[TODAY], shown[args.maps[0]]])
    print(f"{'mean dE00':32s} {'':9s} " + " ".join(f"{statistics.mean(totals[c]):22.2f}" for c in columns))
    summarise(totals, [path.name for path in paths])
    return 0


def summarise(totals: dict[str, list[float]], names: list[str]) -> None:
    """Print each column's mean as a fraction of today's, and the files where it is worse than today."""
    today = totals[TODAY]
    for column, deltas in totals.items():
        pairs = list(zip(names, deltas, today, strict=True))
        worse = [f"{name} ({delta:.2f} > {old:.2f})" for name, delta, old in pairs if delta > old]
        ratio = statistics.mean(deltas) / statistics.mean(today)
        worst = max(delta / old for _, delta, old in pairs)
        print(f"{column:>12s}: mean {ratio:5.1%} of today's, worst file {worst:5.1%} of its own;"
              f" worse than today: {', '.join(worse) or 'none'}")


if __name__ == "__main__":
    raise SystemExit(main())
