"""The ``gainmap`` command: encode, decode, convert, info, demo, meta-init and bench, each a thin layer over the API.

Every argument and output path is checked before any work starts. Output files are written to a
temporary file that is renamed over the target, so a failure or Ctrl-C leaves no half-written
file and never damages an existing one. Errors print one line, ``gainmap: FILE: what is wrong``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import codec, jpeg
from .atomic import check_target, write_bytes
from .colour import PRIMARIES
from .container import GainMapMetadata
from .errors import GainmapError, InputError, NoGainMapError
from .options import INITS, MAX_SEED
from .registries import ACTIVATION_CODES, HIDDEN_WIDTHS, PRIMARIES_CODES, RESIDUAL_CODES, TRANSFER_CODES
from .standard import StandardGainMap, find_gain_map
from .standard.write import DEFAULT_MAP_QUALITY, DEFAULT_MAP_SCALE, MAX_MAP_SCALE
from .tonemap import DEFAULT_TONE_MAP, TONE_MAPS

if TYPE_CHECKING:  # pragma: no cover - typing only; batch is imported when a command needs it
    from distributed import Client

    from .batch import BatchItem, FileResult, Recipe

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_STATUS = """\
exit status:
  0    success
  1    an input was rejected, or a file could not be read or written: the message names the
       file and says what is wrong (gainmap: FILE: message); with many files, any one of them
  2    wrong arguments, found before any work: an unknown option or value, an input that is
       not a file, an output in a missing folder, naming a folder or one of the inputs, or
       whose extension is not that of what the command writes
  130  interrupted (Ctrl-C); no partly written file is left behind
"""

_JPEG_SUFFIXES = (".jpg", ".jpeg")

#: Largest display headroom ``decode --headroom`` takes: PQ's 10,000 cd/m² over 1 cd/m² of SDR white.
_MAX_DISPLAY_HEADROOM = 14.0


class _UsageError(Exception):
    """A wrong argument found after parsing; reported the way argparse reports its own (exit 2)."""


class _FileError(Exception):
    """A library or I/O error while working on one file; reported as ``gainmap: FILE: message``."""

    def __init__(self, path: Path, error: GainmapError | OSError) -> None:
        """Keep the file and the error raised while working on it."""
        super().__init__(path, error)
        self.path = path
        self.error = error

    def __str__(self) -> str:
        """The message, starting with the file unless it already does."""
        error = self.error
        text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return text if text.startswith(f"{self.path}: ") else f"{self.path}: {text}"


@contextmanager
def _working_on(path: Path) -> Iterator[None]:
    """Report a library or I/O error raised inside as one about ``path``."""
    try:
        yield
    except (GainmapError, OSError) as exc:
        raise _FileError(path, exc) from exc


@contextmanager
def _arguments() -> Iterator[None]:
    """Report the library's InputError on options made from the arguments as a usage error."""
    try:
        yield
    except InputError as exc:
        raise _UsageError(str(exc)) from exc


def _check_input(path: Path) -> None:
    if not path.exists():
        raise _UsageError(f"{path}: does not exist")
    if not path.is_file():
        raise _UsageError(f"{path}: not a file")


def _check_output(path: Path, suffixes: Sequence[str], writes: str, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output that cannot be written, is not named for what is written, or is an input."""
    try:
        check_target(path)
    except OSError as exc:
        raise _UsageError(f"{path}: {exc.strerror}") from exc
    if path.suffix.lower() not in suffixes:
        raise _UsageError(
            f"{path}: this command writes {writes}; give the output a name ending in {' or '.join(suffixes)}"
        )
    for source in inputs:
        if path.exists() and os.path.samefile(path, source):
            raise _UsageError(f"{path}: is the input {source}; writing it would replace the input")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed {value} is outside 0 to 2**64 - 1 ({MAX_SEED})")
    return value


def _quality(text: str) -> int:
    value = _integer(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"quality {value} is outside 1-100")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a positive finite number")
    return value


def _finite_float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH, e.g. 768x512") from None
    if not (1 <= width <= 8192 and 1 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1x1 and 8192x8192")
    return width, height


def _add_encode(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "encode", help="encode HDR images (OpenEXR or Radiance), one or a whole library, as gain-map JPEGs"
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="linear HDR input: .exr or .hdr files, or folders of them (walked recursively)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTPUT",
                        help="output JPEG (.jpg or .jpeg) for one input; an output folder for several or a folder")
    parser.add_argument("--sdr", type=Path,
                        help="SDR base for one input: JPEG (kept byte for byte) or PNG (encoded at --quality)")
    parser.add_argument("--residual", choices=list(RESIDUAL_CODES), default="gamma", help="default gamma")
    parser.add_argument("--hidden", type=int, choices=HIDDEN_WIDTHS, default=16, help="hidden width (default 16)")
    parser.add_argument("--activation", choices=list(ACTIVATION_CODES), default="sine", help="default sine")
    parser.add_argument("--iterations", type=_positive_int, default=1000, help="fitting steps (default 1000)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="fitting device")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed for initialisation and sampling, 0 to 2**64-1 (default 0)")
    parser.add_argument(
        "--init", choices=("meta", "random"), default="meta",
        help="start from the shipped meta-initialised weights (default) or from random ones",
    )
    parser.add_argument("--quality", type=_quality, default=98, help="JPEG quality of a base encoded here (default 98)")
    parser.add_argument(
        "--sdr-transfer", choices=list(TRANSFER_CODES), default=None,
        help="how the base's code values map to light (default: srgb for a base rendered here, gamma2.4 for --sdr)",
    )
    parser.add_argument(
        "--sdr-primaries", choices=list(PRIMARIES_CODES), default="bt709",
        help="the base's primaries; a base rendered here carries their ICC profile (default bt709, as sRGB)",
    )
    parser.add_argument(
        "--tone-map", choices=list(TONE_MAPS), default=DEFAULT_TONE_MAP,
        help=f"how the base is rendered without --sdr (default {DEFAULT_TONE_MAP}; paper: the paper's curve)",
    )
    parser.add_argument(
        "--exposure", type=_finite_float, default=0.0, metavar="EV",
        help="stops added to the HDR before the tone map (default 0: the map's own anchoring)",
    )
    parser.add_argument(
        "--max-headroom", type=_finite_float, default=None, metavar="STOPS",
        help="cap the HDR at SDR white (100 cd/m²) times 2^STOPS, 0 to 14, tone-mapping brighter light "
             "down; the file records at most this headroom (default: the HDR's own)",
    )
    parser.add_argument(
        "--white-luminance", type=_positive_float, default=None,
        help="cd/m² of HDR value 1.0 when the file does not say (default 100, SDR reference white)",
    )
    _add_batch_options(parser, "*.exr and *.hdr")


def _add_decode(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "decode", help="decode any gain-map JPEG (GainMLP, ISO 21496-1, Ultra HDR, Apple) to OpenEXR, PQ PNG or PQ AVIF"
    )
    parser.add_argument("input", type=Path, help="gain-map JPEG")
    parser.add_argument(
        "-o", "--output", type=Path, required=True,
        help="output: .exr (linear BT.2020, cd/m²), .png (16-bit BT.2020 PQ with cICP, shown as HDR by Chrome) "
        "or .avif (10-bit BT.2020 PQ; needs the avif extra)",
    )
    parser.add_argument("--half", action="store_true", help="EXR: write 16-bit half floats instead of 32-bit")
    parser.add_argument("--headroom", type=_headroom, default=None,
                        help="render for a display of this headroom (log2 of its peak over SDR white; default: "
                        "the file's full HDR)")


def _headroom(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value <= _MAX_DISPLAY_HEADROOM):
        raise argparse.ArgumentTypeError(f"headroom {text} is outside 0 to {_MAX_DISPLAY_HEADROOM:g} stops")
    return value


def _add_convert(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "convert", help="convert a standard gain-map JPEG to GainMLP, or any gain-map JPEG to ISO 21496-1"
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="gain-map JPEG: ISO 21496-1, Ultra HDR, Apple (GainMLP with --to iso); or folders of them")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTPUT",
                        help="output JPEG (.jpg or .jpeg) for one input; an output folder for several or a folder")
    parser.add_argument("--to", choices=("gainmlp", "iso"), default="gainmlp",
                        help="gainmlp (default): fit the network to the source's HDR; iso: write an ISO 21496-1 + "
                        "Ultra HDR file")
    parser.add_argument("--keep-standard", action="store_true",
                        help="gainmlp: keep the standard gain map as well, for readers that only know it")
    parser.add_argument("--residual", choices=list(RESIDUAL_CODES), default="gamma", help="default gamma")
    parser.add_argument("--hidden", type=int, choices=HIDDEN_WIDTHS, default=16, help="hidden width (default 16)")
    parser.add_argument("--activation", choices=list(ACTIVATION_CODES), default="sine", help="default sine")
    parser.add_argument("--iterations", type=_positive_int, default=1000, help="fitting steps (default 1000)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="fitting device")
    parser.add_argument("--seed", type=_seed, default=0, help="fitting seed, 0 to 2**64-1 (default 0)")
    parser.add_argument("--init", choices=INITS, default="meta", help="where the fit starts (default meta)")
    parser.add_argument("--map-scale", type=_map_scale, default=DEFAULT_MAP_SCALE,
                        help=f"iso: the map is this many times smaller per side (1-{MAX_MAP_SCALE}, "
                        f"default {DEFAULT_MAP_SCALE})")
    parser.add_argument("--map-quality", type=_quality, default=DEFAULT_MAP_QUALITY,
                        help=f"iso: JPEG quality of the map (default {DEFAULT_MAP_QUALITY})")
    _add_batch_options(parser, "*.jpg and *.jpeg")


def _map_scale(text: str) -> int:
    value = _integer(text)
    if not 1 <= value <= MAX_MAP_SCALE:
        raise argparse.ArgumentTypeError(f"map scale {value} is outside 1-{MAX_MAP_SCALE}")
    return value


def _add_batch_options(parser: argparse.ArgumentParser, default_files: str) -> None:
    """The options of commands that work on many files (encode, convert); any of them means batch mode."""
    group = parser.add_argument_group(
        "many files",
        "Several inputs, a folder, an output folder or any of these options: every file is done, the tree\n"
        "mirrored under the output folder as .jpg; an output made from the same input with the same options\n"
        "is skipped. A file that fails is reported and the others go on.",
    )
    group.add_argument("--glob", metavar="PATTERN",
                       help=f"files to take in folders, e.g. '*.exr' or 'raw/*.hdr' (default {default_files})")
    group.add_argument("--jobs", type=_positive_int, default=None,
                       help="files at once, the cores shared between them (default: one per two cores; with "
                       "--scheduler local, the number of workers)")
    group.add_argument("--force", action="store_true", help="redo outputs that are already valid")
    group.add_argument("--report", type=Path, metavar="FILE",
                       help="write one record per file (status, error, bytes, fit seconds, loss, headroom) "
                       "to FILE.json or FILE.csv")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a Dask cluster: tcp://HOST:PORT of its scheduler, or 'local' for a "
                       "LocalCluster here (needs the dask extra)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar or summary; with many files, one log line per file")


class _EditOperation(argparse.Action):
    """Collect ``gainmap edit``'s operations into ``operations``, in the order given on the command line."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        """Append the operation this option stands for (its ``const`` for an option without a value)."""
        operation = self.const if self.nargs == 0 else values
        namespace.operations = [*(getattr(namespace, "operations", None) or []), operation]


def _crop_box(text: str) -> object:
    from .edit import Crop

    try:
        x, y, width, height = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,W,H, e.g. 100,50,640,480") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"crop {text!r} has no pixels: width and height must be at least 1")
    return Crop(x, y, width, height)


def _resize_to(text: str) -> object:
    from .edit import Resize

    return Resize(*_size(text))


def _rotate_by(text: str) -> object:
    from .edit import Rotate

    return Rotate(_finite_float(text))


def _transpose_by(text: str) -> object:
    from .edit import TRANSPOSES, Transpose

    if text not in TRANSPOSES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(TRANSPOSES)}")
    return Transpose(text)


def _add_edit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .edit import AutoOrient

    parser = commands.add_parser(
        "edit", help="crop, resize, rotate or flip a gain-map JPEG of any kind; its HDR gain map follows"
    )
    parser.add_argument("input", type=Path, help="gain-map JPEG: GainMLP, ISO 21496-1, Ultra HDR or Apple")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output JPEG (.jpg or .jpeg)")
    edits = parser.add_argument_group("operations, applied in the order given (at least one)")
    edits.add_argument("--crop", type=_crop_box, action=_EditOperation, dest="operations", metavar="X,Y,W,H",
                       help="keep W x H pixels at X,Y")
    edits.add_argument("--resize", type=_resize_to, action=_EditOperation, dest="operations", metavar="WxH",
                       help="scale to W x H (bicubic)")
    edits.add_argument("--rotate", type=_rotate_by, action=_EditOperation, dest="operations", metavar="DEG",
                       help="rotate DEG counter-clockwise (bicubic), the canvas grown to keep every pixel")
    edits.add_argument("--transpose", type=_transpose_by, action=_EditOperation, dest="operations", metavar="OP",
                       help="flip or turn: flip-left-right, flip-top-bottom, rotate-90, rotate-180, rotate-270, "
                       "transpose or transverse")
    edits.add_argument("--auto-orient", action=_EditOperation, nargs=0, const=AutoOrient(), dest="operations",
                       help="turn upright as the Exif orientation says, and remove the orientation")
    parser.set_defaults(operations=[])
    parser.add_argument("--quality", type=_quality, default=None,
                        help="JPEG quality of the new base (default: the source's, estimated from its tables)")
    parser.add_argument("--quiet", action="store_true", help="no summary")


def _add_info(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("info", help="say what a JPEG holds")
    parser.add_argument("input", type=Path, help="a JPEG")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="encode and decode a generated HDR scene; print quality and size")
    parser.add_argument("--size", type=_size, default=(768, 512), help="scene size WxH (default 768x512)")
    parser.add_argument("--iterations", type=_positive_int, default=1000, help="fitting steps (default 1000)")
    parser.add_argument("-o", "--output", type=Path, help="also write the JPEG here (.jpg or .jpeg)")


def _add_meta_init(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "meta-init", help="learn initial weights from chromatic noise (written with a JSON record of how)"
    )
    parser.add_argument(
        "-o", "--output", type=Path,
        help="output .npz (default: the shipped file of the configuration, gainmap_format/init/NAME.npz)",
    )
    parser.add_argument("--method", choices=("average", "reptile"), default="average",
                        help="average one fit per image (the authors', default) or reptile")
    parser.add_argument("--residual", choices=list(RESIDUAL_CODES), default="gamma", help="default gamma")
    parser.add_argument("--activation", choices=list(ACTIVATION_CODES), default="sine", help="default sine")
    parser.add_argument("--hidden", type=int, choices=HIDDEN_WIDTHS, default=16, help="hidden width (default 16)")
    parser.add_argument("--images", type=_positive_int, default=50, help="noise images (default 50)")
    parser.add_argument("--size", type=_size, default=(512, 512), help="noise image size WxH (default 512x512)")
    parser.add_argument("--steps", type=_positive_int, default=10000, help="fitting steps per image (default 10000)")
    parser.add_argument("--inner-steps", type=_positive_int, default=100, help="reptile: steps per round (default 100)")
    parser.add_argument("--step-size", type=_positive_float, default=0.1,
                        help="reptile: fraction of the way toward each round's fit, at most 1 (default 0.1)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed for noise, initialisation and sampling, 0 to 2**64-1 (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="fitting device")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _choice_list(
    allowed: Sequence[str], convert: Callable[[str], object] = str
) -> Callable[[str], list[object]]:
    """An argument type for a comma-separated list of values from ``allowed``."""

    def parse(text: str) -> list[object]:
        values = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [v for v in values if v not in allowed]
        if not values or unknown:
            raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of {', '.join(allowed)}")
        return [convert(v) for v in dict.fromkeys(values)]

    return parse


def _byte_sizes(text: str) -> list[int]:
    """Comma-separated byte counts; a "k" suffix counts KB of 1024 bytes (10k = 10240)."""
    sizes = []
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        try:
            size = round(float(part[:-1]) * 1024) if part.endswith("k") else int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a byte count such as 10240 or 10k") from None
        if size < 1:
            raise argparse.ArgumentTypeError(f"byte budget {part!r} must be at least 1 byte")
        sizes.append(size)
    if not sizes:
        raise argparse.ArgumentTypeError(f"{text!r} names no byte budget")
    return sizes


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .evaluation.options import DEFAULT_BASE_QUALITY, INIT_NAMES, METHOD_NAMES

    parser = commands.add_parser(
        "bench", help="compare every method on HDR images (the paper's Table 1, RD curves, crops)"
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="HDR files (.exr, .hdr), paired SDR files, folders")
    parser.add_argument("--methods", type=_choice_list(METHOD_NAMES), default=list(METHOD_NAMES),
                        help=f"comma-separated (default all): {','.join(METHOD_NAMES)}")
    parser.add_argument("--sizes", type=_byte_sizes, default=[5120, 10240, 20480],
                        help="byte budgets of the traditional maps (default 5k,10k,20k; k = 1024 bytes)")
    parser.add_argument("--widths", type=_choice_list([str(w) for w in HIDDEN_WIDTHS], int), default=[16],
                        help="MLP hidden widths (default 16; 8,16,32,64,128 for the RD curves)")
    parser.add_argument("--activations", type=_choice_list(list(ACTIVATION_CODES)), default=["sine"],
                        help="MLP activations (default sine; sine,relu for the ablation)")
    parser.add_argument("--residuals", type=_choice_list(list(RESIDUAL_CODES)), default=["gamma", "gain"],
                        help="residual kinds of the map and MLP methods (default gamma,gain)")
    parser.add_argument("--init", type=_choice_list(INIT_NAMES), default=["meta"],
                        help="how Gain/Gamma-MLP fits start (default meta; meta,random for the ablation)")
    parser.add_argument("--protocol", choices=("paper", "real", "both"), default="both",
                        help="lossless SDR base (paper), a JPEG base (real) or both (default)")
    parser.add_argument("--steps", type=_positive_int, default=1000, help="fitting steps per MLP (default 1000)")
    parser.add_argument("--max-megapixels", type=_positive_float, default=None,
                        help="shrink larger images to this size (default: keep every size)")
    parser.add_argument("--base-quality", type=_quality, default=DEFAULT_BASE_QUALITY,
                        help=f"JPEG quality of the bases encoded here (default {DEFAULT_BASE_QUALITY})")
    parser.add_argument("--seed", type=_seed, default=0, help="seed for every fit, 0 to 2**64-1 (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="fitting device")
    parser.add_argument("--no-vdp", action="store_true", help="leave out ColorVideoVDP even when it is installed")
    parser.add_argument("--keep-files", action="store_true", help="also write every method's file under OUT/files")
    parser.add_argument("--out", type=Path, default=Path("report"),
                        help="report folder: results.csv, table.txt, rd_curves.png, crops.png (default report/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


#: The examples each command's --help shows above the exit status.
_EXAMPLES = {
    "encode": """\
examples:
  gainmap encode photo.exr -o photo.jpg
  gainmap encode photo.exr --sdr graded.jpg -o photo.jpg --iterations 500
  gainmap encode masters/ -o jpegs/ --report report.json     (the tree mirrored; run again to resume)
  gainmap encode masters/ extra.hdr -o jpegs/ --glob '2024-*/*.exr' --jobs 2 --force
  gainmap encode masters/ -o /shared/jpegs/ --scheduler tcp://scheduler:8786

""",
    "decode": """\
examples:
  gainmap decode photo.jpg -o photo.exr
  gainmap decode photo.jpg -o photo.png --headroom 2     (for a display 2 stops above SDR white)

""",
    "convert": """\
examples:
  gainmap convert pixel.jpg -o pixel-gainmlp.jpg
  gainmap convert photo.jpg -o photo-iso.jpg --to iso
  gainmap convert phone/ -o gainmlp/ --jobs 2 --report report.csv

""",
    "edit": """\
examples:
  gainmap edit photo.jpg -o crop.jpg --crop 100,50,800,600
  gainmap edit photo.jpg -o small.jpg --resize 2040x1536 --quality 90
  gainmap edit photo.jpg -o upright.jpg --auto-orient --rotate 3     (Exif orientation, then level it)

""",
    "info": """\
examples:
  gainmap info photo.jpg
  gainmap info photo.jpg --json

""",
    "demo": """\
examples:
  gainmap demo
  gainmap demo --size 256x192 --iterations 200 -o demo.jpg

""",
    "meta-init": """\
examples:
  gainmap meta-init                              (rewrites the shipped default: 50 images x 10,000 steps)
  gainmap meta-init --images 4 --steps 500 --size 128x128 -o quick.npz

""",
    "bench": """\
examples:
  gainmap bench masters/ --out report/
  gainmap bench masters/ --methods gamma-mlp,gain-jpeg --widths 8,16,32 --protocol paper --quiet

""",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gainmap`` command."""
    from . import __version__
    from .container import FORMAT_VERSION

    parser = argparse.ArgumentParser(
        prog="gainmap", description=__doc__.splitlines()[0], epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version",
                        version=f"gainmap {__version__} (GainMLP format {FORMAT_VERSION[0]}.{FORMAT_VERSION[1]})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_encode(commands)
    _add_decode(commands)
    _add_convert(commands)
    _add_edit(commands)
    _add_info(commands)
    _add_demo(commands)
    _add_meta_init(commands)
    _add_bench(commands)
    for name, command in commands.choices.items():
        command.epilog = _EXAMPLES.get(name, "") + EXIT_STATUS
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        # main() reports wrong arguments found after parsing through the command's own parser.
        command.set_defaults(command_parser=command)
    return parser


def _progress_bar(total: int, quiet: bool) -> tuple[Callable[[int, int, float], None] | None, Callable[[], None]]:
    if quiet:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="fitting", unit="step", file=sys.stderr, leave=False)

    def update(step: int, _total: int, loss: float) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.2e}")

    return update, bar.close


def _encode_options(args: argparse.Namespace) -> codec.EncodeOptions:
    fit = codec.FitOptions(
        hidden_width=args.hidden, activation=args.activation, iterations=args.iterations, seed=args.seed,
        device=args.device,
    )
    return codec.EncodeOptions(
        residual=args.residual, quality=args.quality, sdr_transfer=args.sdr_transfer,
        sdr_primaries=args.sdr_primaries, init=args.init, fit=fit, tone_map=args.tone_map, exposure=args.exposure,
        max_headroom=args.max_headroom,
    )


def _run_encode(args: argparse.Namespace) -> int:
    from .batch import HDR_SUFFIXES, EncodeRecipe, file_digest, provenance, settings_digest, stamp
    from .hdrio import read_hdr

    if _batch_mode(args):
        if args.sdr is not None:
            raise _UsageError("--sdr: a base for one input; give one HDR file and -o FILE.jpg")
        with _arguments():
            recipe = EncodeRecipe(_encode_options(args), args.white_luminance)
        return _run_batch(args, recipe, HDR_SUFFIXES)
    hdr = args.inputs[0]
    inputs = [hdr] if args.sdr is None else [hdr, args.sdr]
    for path in inputs:
        _check_input(path)
    _check_output(args.output, _JPEG_SUFFIXES, "a JPEG", inputs)
    with _arguments():
        options = _encode_options(args)
        recipe = EncodeRecipe(options, args.white_luminance, args.sdr)
    with _working_on(hdr):
        image = read_hdr(hdr)
        source_sha256 = file_digest(hdr)
    progress, close = _progress_bar(args.iterations, args.quiet)
    try:
        # The HDR file has passed read_hdr's checks; with --sdr, what encode can still reject
        # (before it fits) is the SDR file, or its size.
        with _working_on(args.sdr or hdr):
            result = codec.encode(
                image.pixels,
                chromaticities=image.chromaticities,
                white_luminance=image.white_luminance or args.white_luminance or codec.DEFAULT_WHITE_LUMINANCE,
                sdr=None if args.sdr is None else args.sdr.read_bytes(),
                options=options,
                progress=progress,
            )
            data = stamp(result.jpeg, provenance(source_sha256, settings_digest(recipe)))
    finally:
        close()
    with _working_on(args.output):
        write_bytes(args.output, data)
    if not args.quiet:
        print(
            f"wrote {args.output}: {len(data)} bytes, gain map {result.metadata_bytes} bytes, "
            f"fit {result.fit_seconds:.1f} s on {result.device}, loss {result.fit_loss:.3e}"
        )
    return EXIT_OK


def _run_decode(args: argparse.Namespace) -> int:
    from .export import EXPORT_SUFFIXES, avif_available, encode, render_any
    from .hdrio import write_exr

    _check_input(args.input)
    _check_output(args.output, tuple(EXPORT_SUFFIXES), "an OpenEXR, a PQ PNG or a PQ AVIF file", [args.input])
    fmt = EXPORT_SUFFIXES[args.output.suffix.lower()]
    if fmt == "avif" and not avif_available():
        raise _UsageError(f"{args.output}: AVIF output needs the optional 'avif' extra (imagecodecs)")
    with _working_on(args.input):
        # EXR holds linear light only: no PQ image beside it.
        rendition = render_any(args.input, args.headroom, with_pq=fmt != "exr")
    absolute, white = rendition.relative, np.float32(rendition.sdr_white_luminance)
    # The maximum of what is written (float32 products, as written): rounding keeps the order.
    peak = absolute.max() * white
    peak = float(np.float16(peak)) if fmt == "exr" and args.half else float(peak)
    with _working_on(args.output):
        if fmt == "exr":
            # Scaled in place and written from that one array (the rendition is not used again):
            # a 50 MP image is 600 MB a copy.
            absolute *= white
            write_exr(args.output, absolute, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, half=args.half)
        else:
            write_bytes(args.output, encode(rendition, fmt, half=args.half))
    written = {"exr": "BT.2020 linear cd/m²", "png": "BT.2020 PQ 16-bit PNG (cICP 9/16/0/1)",
               "avif": "BT.2020 PQ 10-bit AVIF (CICP 9/16/0)"}[fmt]
    height, width, _ = absolute.shape
    recorded = rendition.sdr_white_luminance * 2.0**rendition.headroom
    print(
        f"wrote {args.output}: {width}x{height}, {written}, maximum {peak:.1f} cd/m² "
        f"(recorded headroom {rendition.headroom:.2f} stops, {recorded:.1f} cd/m²; "
        f"SDR white {rendition.sdr_white_luminance:g} cd/m²)"
    )
    return EXIT_OK


def _run_convert(args: argparse.Namespace) -> int:
    from .batch import JPEG_SUFFIXES, ConvertRecipe, file_digest, provenance, settings_digest, stamp
    from .convert import convert

    with _arguments():
        fit = codec.FitOptions(
            hidden_width=args.hidden, activation=args.activation, iterations=args.iterations, seed=args.seed,
            device=args.device,
        )
        options = codec.EncodeOptions(residual=args.residual, init=args.init, fit=fit)
        recipe = ConvertRecipe(args.to, options, args.keep_standard, args.map_scale, args.map_quality)
    if _batch_mode(args):
        return _run_batch(args, recipe, JPEG_SUFFIXES)
    source = args.inputs[0]
    _check_input(source)
    _check_output(args.output, _JPEG_SUFFIXES, "a JPEG", [source])
    progress, close = _progress_bar(args.iterations, args.quiet or args.to == "iso")
    start = time.perf_counter()
    try:
        with _working_on(source):
            result = convert(
                source, to=args.to, options=options, keep_standard=args.keep_standard,
                map_scale=args.map_scale, map_quality=args.map_quality, progress=progress,
            )
            data = stamp(result.jpeg, provenance(file_digest(source), settings_digest(recipe)))
    finally:
        close()
    with _working_on(args.output):
        write_bytes(args.output, data)
    if not args.quiet:
        print(
            f"wrote {args.output}: {result.source_kind} {result.source_bytes} bytes -> {args.to} "
            f"{len(data)} bytes in {time.perf_counter() - start:.1f} s"
        )
    return EXIT_OK


def _batch_mode(args: argparse.Namespace) -> bool:
    """Whether encode or convert works on many files: several inputs, a folder, an output folder, a batch option.

    An output folder is an existing folder or a name without a suffix; a name with another
    suffix than .jpg stays a (wrong) file name, refused as before.
    """
    output = args.output
    to_folder = output.suffix.lower() not in _JPEG_SUFFIXES and (output.is_dir() or not output.suffix)
    batch_options = (args.glob, args.jobs, args.report, args.scheduler)
    return len(args.inputs) > 1 or args.inputs[0].is_dir() or to_folder or args.force or batch_options != (None,) * 4


def _run_batch(args: argparse.Namespace, recipe: Recipe, suffixes: Sequence[str]) -> int:
    """Work on every file (``gainmap encode|convert INPUTS... -o OUTDIR``); exit status 1 if any failed."""
    from .batch import REPORT_SUFFIXES, run_batch, summary_table, write_report

    if args.report is not None:
        _check_output(args.report, REPORT_SUFFIXES, "a report", args.inputs)
    items = _batch_items(args, suffixes)
    results: list[FileResult] = []
    try:
        with _batch_client(args) as client:
            _collect(run_batch(items, recipe, jobs=args.jobs, client=client, force=args.force), len(items),
                     args.quiet, results)
    finally:
        # Interrupted too: the report then holds the files finished so far.
        if args.report is not None:
            with _working_on(args.report):
                write_report(results, args.report)
    if not args.quiet:
        print(summary_table(results), end="")
    return EXIT_REJECTED if any(result.failed for result in results) else EXIT_OK


def _batch_items(args: argparse.Namespace, suffixes: Sequence[str]) -> list[BatchItem]:
    """The files a batch works on and their outputs; wrong inputs or outputs are usage errors."""
    from .batch import BatchItem, discover

    first = args.inputs[0]
    if len(args.inputs) == 1 and first.is_file() and args.output.suffix.lower() in _JPEG_SUFFIXES:
        _check_output(args.output, _JPEG_SUFFIXES, "a JPEG", [first])
        return [BatchItem(first, args.output)]
    if args.output.suffix.lower() in _JPEG_SUFFIXES:
        raise _UsageError(f"{args.output}: with several inputs or a folder, -o names an output folder, not a JPEG")
    with _arguments():
        items = discover(args.inputs, args.output, pattern=args.glob, suffixes=suffixes)
    if not items:
        chosen = args.glob or " or ".join(f"*{suffix}" for suffix in suffixes)
        raise _UsageError(f"no input files: the folders hold no {chosen}")
    return items


@contextmanager
def _batch_client(args: argparse.Namespace) -> Iterator[Client | None]:
    """The Dask client of ``--scheduler`` (a LocalCluster's for 'local'), closed after; None without it."""
    from .batch import dask_missing, default_jobs

    if args.scheduler is None:
        yield None
        return
    missing = dask_missing()
    if missing is not None:
        raise _UsageError(f"--scheduler: {missing}")
    from distributed import Client, LocalCluster

    if args.scheduler == "local":
        workers = args.jobs or default_jobs()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                yield client
        return
    try:
        client = Client(args.scheduler)
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.scheduler}: cannot reach the Dask scheduler: {exc}") from exc
    with client:
        yield client


def _collect(results: Generator[FileResult, None, None], total: int, quiet: bool, into: list[FileResult]) -> None:
    """Gather the results into ``into`` under one progress bar (files, ETA, failures), or log lines with ``quiet``."""
    from tqdm import tqdm

    from .batch import log_line

    bar = None if quiet else tqdm(total=total, desc="files", unit="file", file=sys.stderr, dynamic_ncols=True)
    failed = 0
    try:
        with closing(results):
            for result in results:
                into.append(result)
                failed += result.failed
                if result.failed:
                    tqdm.write(f"gainmap: {result.problem}", file=sys.stderr)
                elif quiet:
                    print(log_line(result))
                if bar is not None:
                    bar.set_postfix(failed=failed, refresh=False)
                    bar.update()
    finally:
        if bar is not None:
            bar.close()


def _run_edit(args: argparse.Namespace) -> int:
    from .edit import edit

    _check_input(args.input)
    _check_output(args.output, _JPEG_SUFFIXES, "a JPEG", [args.input])
    if not args.operations:
        raise _UsageError("give at least one operation: --crop, --resize, --rotate, --transpose or --auto-orient")
    start = time.perf_counter()
    with _working_on(args.input):
        result = edit(args.input, args.operations, quality=args.quality)
    with _working_on(args.output):
        write_bytes(args.output, result)
    if not args.quiet:
        steps = ", ".join(type(operation).__name__.lower() for operation in args.operations)
        print(f"wrote {args.output}: {steps}; {len(result)} bytes in {time.perf_counter() - start:.1f} s")
    return EXIT_OK


def metadata_summary(metadata: GainMapMetadata, container_bytes: int, graph_bytes: int) -> dict[str, Any]:
    """The facts ``gainmap info`` reports, as a JSON-ready dict."""
    return {
        "gain_map": "gainmlp",
        "format_version": "{}.{}".format(*metadata.writer_version),
        "residual": metadata.residual,
        "network": {
            "hidden_width": metadata.hidden_width,
            "hidden_layers": 2,
            "activation": metadata.activation,
            "frequencies": metadata.frequencies,
            "graph_bytes": graph_bytes,
        },
        "container_bytes": container_bytes,
        "width": metadata.width,
        "height": metadata.height,
        "base": {"transfer": metadata.base_transfer, "primaries": metadata.base_primaries},
        "hdr_headroom_log2": round(metadata.alternate_headroom, 4),
        "recorded_peak_cd_m2": round(metadata.peak_luminance, 1),
        "sdr_white_cd_m2": metadata.sdr_white_luminance,
    }


def standard_summary(gain_map: StandardGainMap) -> dict[str, Any]:
    """The facts ``gainmap info`` reports on a standard gain map, as a JSON-ready dict."""
    metadata = gain_map.metadata
    return {
        "gain_map": metadata.kind,
        "format_version": metadata.version,
        "width": gain_map.base_size[0],
        "height": gain_map.base_size[1],
        "map": {"width": gain_map.gain_map_size[0], "height": gain_map.gain_map_size[1],
                "channels": gain_map.gain_map_channels},
        "hdr_headroom_log2": round(metadata.max_headroom, 4),
        "base_is_hdr": metadata.base_is_hdr,
    }


def _print_standard_info(args: argparse.Namespace, gain_map: StandardGainMap | None) -> int:
    """Say what a JPEG without a GainMLP gain map holds: a standard gain map, or none."""
    if gain_map is None:
        if args.json:
            print(json.dumps({"file": str(args.input), "gain_map": None}))
        else:
            print(f"{args.input}: a valid JPEG with no gain map (neither GainMLP nor a standard one)")
        return EXIT_OK
    summary = standard_summary(gain_map)
    if args.json:
        print(json.dumps({"file": str(args.input), **summary}, indent=2))
        return EXIT_OK
    size = summary["map"]
    print(f"{args.input}: a standard gain map ({summary['gain_map']}, version {summary['format_version']}), "
          "not a GainMLP one")
    print(f"  image        {summary['width']}x{summary['height']}")
    print(f"  gain map     {size['width']}x{size['height']}, {size['channels']} channel(s)")
    print(f"  headroom     {summary['hdr_headroom_log2']} stops")
    return EXIT_OK


def _run_info(args: argparse.Namespace) -> int:
    _check_input(args.input)
    with _working_on(args.input):
        data = args.input.read_bytes()
        # A file cut short still has whole headers and a container; only its image data tells.
        jpeg.check_decodable(data, str(args.input))
        try:
            container = codec.read_container(data)
        except NoGainMapError:
            return _print_standard_info(args, find_gain_map(data))
    summary = metadata_summary(container.metadata, container.size, len(container.graph))
    if args.json:
        print(json.dumps({"file": str(args.input), **summary}, indent=2))
        return EXIT_OK
    network = summary["network"]
    print(f"{args.input}: GainMLP gain map, format {summary['format_version']}")
    print(f"  residual     {summary['residual']} map")
    print(f"  network      2 x {network['hidden_width']} {network['activation']}, graph {network['graph_bytes']} bytes")
    print(f"  container    {summary['container_bytes']} bytes")
    base = summary["base"]
    print(f"  image        {summary['width']}x{summary['height']}, base {base['primaries']} {base['transfer']}")
    print(f"  headroom     {summary['hdr_headroom_log2']} stops as recorded ({summary['recorded_peak_cd_m2']} cd/m²; "
          "the decoded maximum can differ)")
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    from .evaluation.metrics import pq_psnr
    from .residual import hdr_to_pq
    from .scenes import hdr_scene

    if args.output is not None:
        _check_output(args.output, _JPEG_SUFFIXES, "a JPEG")
    width, height = args.size
    hdr = hdr_scene(height, width)
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=args.iterations))
    progress, close = _progress_bar(args.iterations, quiet=False)
    start = time.perf_counter()
    try:
        result = codec.encode(hdr, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0, options=options,
                              progress=progress)
    finally:
        close()
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(result.jpeg)
    assert decoded.pq is not None
    decode_seconds = time.perf_counter() - start
    psnr = pq_psnr(hdr_to_pq(hdr, PRIMARIES["bt2020"], 1.0), decoded.pq)
    if args.output is not None:
        with _working_on(args.output):
            write_bytes(args.output, result.jpeg)
    print(f"scene        {width}x{height} generated HDR, peak {float(hdr.max()):.0f} cd/m²")
    print(f"file         {len(result.jpeg)} bytes JPEG, of which gain map {result.metadata_bytes} bytes")
    print(f"quality      PQ-PSNR {psnr:.2f} dB (decoded HDR against the original)")
    print(f"time         encode {encode_seconds:.1f} s ({args.iterations} steps on {result.device}), "
          f"decode {decode_seconds:.2f} s")
    return EXIT_OK


def _meta_init_command(args: argparse.Namespace, output: Path) -> str:
    """The full command line, every option spelt out, that reproduces a meta-init run."""
    width, height = args.size
    return shlex.join([
        "gainmap", "meta-init", "-o", str(output), "--method", args.method, "--residual", args.residual,
        "--activation", args.activation, "--hidden", str(args.hidden), "--images", str(args.images),
        "--size", f"{width}x{height}", "--steps", str(args.steps), "--inner-steps", str(args.inner_steps),
        "--step-size", str(args.step_size), "--seed", str(args.seed), "--device", args.device,
    ])


def _run_meta_init(args: argparse.Namespace) -> int:
    from .initweights import INIT_FOLDER, write_initial_weights
    from .metainit import MetaInitOptions, meta_initialise, provenance

    if args.output is not None:
        _check_output(args.output, (".npz",), "initial weights (.npz, and a .json record beside them)")
    width, height = args.size
    with _arguments():
        options = MetaInitOptions(
            residual=args.residual, activation=args.activation, hidden_width=args.hidden, method=args.method,
            images=args.images, height=height, width=width, steps=args.steps, inner_steps=args.inner_steps,
            step_size=args.step_size, seed=args.seed, device=args.device,
        )
    output = args.output
    if output is None:
        output = INIT_FOLDER / f"{options.name}.npz"
        output.parent.mkdir(parents=True, exist_ok=True)
    progress, close = _progress_bar(options.total_steps, args.quiet)
    try:
        result = meta_initialise(options, progress)
    finally:
        close()
    record = provenance(options, result, _meta_init_command(args, output))
    with _working_on(output):
        record_path = write_initial_weights(output, result.weights, record)
    if not args.quiet:
        print(
            f"wrote {output} and {record_path}: {options.method} over {options.images} noise images, "
            f"{options.total_steps} steps in {result.seconds:.1f} s on {result.device}"
        )
    return EXIT_OK


def _run_bench(args: argparse.Namespace) -> int:
    from .evaluation import BenchOptions, run_bench

    for path in args.inputs:
        if not path.exists():
            raise _UsageError(f"{path}: does not exist")
    if args.out.exists() and not args.out.is_dir():
        raise _UsageError(f"{args.out}: not a folder; --out names the report folder")
    with _arguments():
        options = BenchOptions(
            methods=tuple(args.methods),
            sizes=tuple(args.sizes),
            widths=tuple(args.widths),
            activations=tuple(args.activations),
            residuals=tuple(args.residuals),
            inits=tuple(args.init),
            protocols=("paper", "real") if args.protocol == "both" else (args.protocol,),
            steps=args.steps,
            max_megapixels=args.max_megapixels,
            base_quality=args.base_quality,
            seed=args.seed,
            device=args.device,
            vdp=not args.no_vdp,
            keep_files=args.keep_files,
        )
    report = run_bench(args.inputs, options, args.out, progress=not args.quiet)
    print(report.table, end="")
    print(f"wrote {', '.join(str(path) for path in report.outputs)}")
    return EXIT_OK


_COMMANDS = {
    "encode": _run_encode,
    "decode": _run_decode,
    "convert": _run_convert,
    "edit": _run_edit,
    "info": _run_info,
    "demo": _run_demo,
    "meta-init": _run_meta_init,
    "bench": _run_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :data:`EXIT_STATUS`).

    Raises:
        SystemExit: with status 2, for wrong arguments (argparse's way of reporting them).
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        args.command_parser.error(str(exc))
    except (_FileError, GainmapError) as exc:
        print(f"gainmap: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"gainmap: {exc.filename or 'error'}: {exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("gainmap: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_REJECTED


if __name__ == "__main__":
    sys.exit(main())
