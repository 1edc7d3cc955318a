"""One bench run: every image, protocol and method; then the table, the CSV and the figures.

Outputs in the report folder: ``results.csv`` (one line per image, protocol and method),
``table.txt`` (what is printed), ``rd_curves.png`` and ``crops.png`` (when matplotlib is
installed), and with ``keep_files`` every file written under ``files/PROTOCOL/IMAGE/``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from .inputs import BenchImage, find_inputs, load_image
from .methods import MapMethod, Method, build_methods
from .options import BenchOptions
from .plots import CROP_BUDGET, Crop, draw_crops, draw_rd_curves, matplotlib_unavailable, select_crop
from .protocols import Base, make_base
from .report import ResultRow, format_table, summarise, write_csv
from .scoring import METRICS, VDP_METRIC, score, vdp_unavailable


@dataclass(frozen=True)
class BenchReport:
    """What a run produced.

    Attributes:
        rows: one per image, protocol and method.
        table: the text report (means per method, then notes).
        outputs: the files written.
    """

    rows: list[ResultRow]
    table: str
    outputs: list[Path]


def run_bench(
    paths: Sequence[Path], options: BenchOptions, out_dir: Path | None = None, progress: bool = True
) -> BenchReport:
    """Run every method on every image under every protocol asked for.

    Args:
        paths: HDR files, SDR files paired with them, and folders of them.
        options: what to run.
        out_dir: the report folder (created); None writes nothing.
        progress: show a progress bar on stderr.

    Returns:
        The results and the text report.

    Raises:
        InputError: no usable input, or bad options; any library error an image raises.
    """
    from tqdm import tqdm

    inputs = find_inputs(paths)
    methods, skipped = build_methods(options)
    notes = [f"skipped {s.family}: {s.reason}" for s in skipped]
    vdp_reason = vdp_unavailable() if options.vdp else "not asked for"
    metrics = METRICS
    if vdp_reason is None:
        metrics = (*METRICS, VDP_METRIC)
        notes.append("JOD: ColorVideoVDP (standard_hdr_pq display) in place of the paper's HDR-VDP-3")
    else:
        notes.append(f"no HDR visual metric (ColorVideoVDP in place of HDR-VDP-3): {vdp_reason}")
    notes += _protocol_notes(methods, options)
    runs = sum(1 for p in options.protocols for m in methods if p in m.protocols)
    rows: list[ResultRow] = []
    crop: Crop | None = None
    with tqdm(total=len(inputs) * runs, desc="bench", unit="run", file=sys.stderr, disable=not progress) as bar:
        for item in inputs:
            image = load_image(item, options.max_megapixels)
            for protocol in options.protocols:
                base = make_base(image, protocol, options.base_quality)
                decoded: dict[str, np.ndarray] = {}
                for method in (m for m in methods if protocol in m.protocols):
                    bar.set_postfix_str(f"{item.name} {protocol} {method.label}")
                    row, decoded[method.label] = _run_one(method, image, base, vdp_reason is None, options, out_dir)
                    rows.append(row)
                    bar.update()
                candidate = _crop(image, protocol, decoded, methods)
                if candidate is not None and (crop is None or _better_crop(candidate, crop)):
                    crop = candidate
    summary = summarise(rows)
    outputs: list[Path] = []
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(rows, metrics, out_dir / "results.csv")
        outputs.append(out_dir / "results.csv")
        figures_reason = matplotlib_unavailable()
        if figures_reason is None:
            draw_rd_curves(summary, out_dir / "rd_curves.png")
            outputs.append(out_dir / "rd_curves.png")
            if crop is not None:
                draw_crops(crop, out_dir / "crops.png")
                outputs.append(out_dir / "crops.png")
        else:
            notes.append(f"no figures: {figures_reason}")
    table = format_table(summary, metrics, notes)
    if out_dir is not None:
        write_bytes(out_dir / "table.txt", table.encode())
        outputs.append(out_dir / "table.txt")
    return BenchReport(rows, table, outputs)


def _run_one(
    method: Method, image: BenchImage, base: Base, vdp: bool, options: BenchOptions, out_dir: Path | None
) -> tuple[ResultRow, np.ndarray]:
    """Encode, decode and score one method; returns its row and its reconstruction."""
    encoded = method.encode(image, base)
    start = time.perf_counter()
    decoded = method.decode(encoded, base)
    decode_seconds = time.perf_counter() - start
    if options.keep_files and out_dir is not None and encoded.file is not None:
        folder = out_dir / "files" / base.protocol / _slug(image.name)
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes(folder / f"{_slug(method.label)}.jpg", encoded.file)
    row = ResultRow(
        protocol=base.protocol,
        image=image.name,
        method=method.label,
        family=method.family,
        curve=method.curve,
        budget=method.budget,
        width=method.width,
        quality=encoded.quality,
        added_bytes=encoded.added_bytes,
        fit_seconds=encoded.seconds,
        decode_seconds=decode_seconds,
        scores=score(image.hdr_pq, decoded, vdp),
    )
    return row, decoded


def _slug(text: str) -> str:
    """A file name from a label: letters, digits, dots and dashes only."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text.replace("≤", "le")).strip("_")


def _protocol_notes(methods: Sequence[Method], options: BenchOptions) -> list[str]:
    """Notes for methods that some asked-for protocol does not run."""
    families = dict.fromkeys(m.family for m in methods if not set(options.protocols) <= set(m.protocols))
    return [f"{family}: real-file protocol only (it makes its own base)" for family in families]


def _crop(image: BenchImage, protocol: str, decoded: dict[str, np.ndarray], methods: Sequence[Method]) -> Crop | None:
    """The crop of one image and protocol: one panel per curve, the point nearest 10 KB (or width 16)."""
    nearest: dict[str, Method] = {}
    for method in (m for m in methods if m.label in decoded):
        if method.curve not in nearest or _distance(method) < _distance(nearest[method.curve]):
            nearest[method.curve] = method
    if not nearest:
        return None
    artefacts = [m.label for m in nearest.values() if isinstance(m, MapMethod)]
    return select_crop(image.name, protocol, image.hdr_pq, decoded, artefacts, [m.label for m in nearest.values()])


def _distance(method: Method) -> float:
    """How far a method's point is from the one the crop figure shows for its curve."""
    if method.budget is not None:
        return abs(method.budget - CROP_BUDGET)
    return abs((method.width or 16) - 16)


def _better_crop(candidate: Crop, current: Crop) -> bool:
    """Prefer the real-file protocol (what users see), then the larger traditional error."""
    if candidate.protocol != current.protocol:
        return candidate.protocol == "real"
    return candidate.artefact_error > current.artefact_error
