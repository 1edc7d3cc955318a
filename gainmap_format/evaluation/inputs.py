"""The bench's inputs: which files, and how each becomes an HDR master and its SDR.

- An HDR file alone (OpenEXR or Radiance) is mastered the way the paper's images were: exposed
  so that its log-average luminance sits at 26 cd/m² (ITU-R BT.2408's 18% grey), in BT.2020,
  each channel clipped at 1000 cd/m²; its SDR is the default tone curve (``tonemap.py``).
- An HDR file with an SDR image of the same stem beside it (``.png``, ``.jpg``, ``.jpeg``) is a
  pair: the HDR is taken as its file says (its whiteLuminance, else 100 cd/m² for 1.0) and the
  SDR as given. A JPEG SDR stays byte for byte what it was, unless it has to be shrunk.
- An image above ``max_megapixels`` is shrunk with an area filter, HDR in linear light; a
  paired SDR is shrunk by the same factor and is no longer a JPEG kept as is.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec import DEFAULT_WHITE_LUMINANCE, decode_base
from ..colour import PRIMARIES, convert_primaries, luminance_weights
from ..errors import InputError
from ..hdrio import HdrImage, read_hdr
from ..jpeg import is_jpeg
from ..residual import hdr_to_pq
from ..tonemap import default_sdr
from .baselines import resize_planes

HDR_SUFFIXES = (".exr", ".hdr")
SDR_SUFFIXES = (".png", ".jpg", ".jpeg")

#: cd/m² of the mastered log-average luminance: BT.2408's 18% grey for 203 cd/m² white, rounded.
GREY_LUMINANCE = 26.0
#: cd/m² at which a mastered channel is clipped.
PEAK_LUMINANCE = 1000.0


@dataclass(frozen=True)
class BenchInput:
    """One image to run: an HDR file and, for a pair, its SDR.

    Attributes:
        name: the HDR file's name, as the report names the image.
        hdr_path: the HDR file (.exr or .hdr).
        sdr_path: the paired SDR image, or None to master the HDR and tone-map it.
    """

    name: str
    hdr_path: Path
    sdr_path: Path | None = None


@dataclass(frozen=True)
class BenchImage:
    """An image ready for every method.

    Attributes:
        name: as the report names it.
        hdr_pq: float32 (H, W, 3), the HDR reference in BT.2020 PQ code values.
        sdr: the SDR: JPEG bytes to keep byte for byte, or uint8 (H, W, 3) code values
            (BT.709, gamma 2.4 for the default tone curve).
        paired: whether the SDR came with the HDR rather than from the tone curve.
    """

    name: str
    hdr_pq: np.ndarray
    sdr: bytes | np.ndarray
    paired: bool

    def sdr_pixels(self) -> np.ndarray:
        """The SDR's 8-bit code values, uint8 (H, W, 3): a JPEG's as Pillow decodes them."""
        return decode_base(self.sdr) if isinstance(self.sdr, bytes) else self.sdr


def find_inputs(paths: Sequence[Path]) -> list[BenchInput]:
    """The images named by files and folders, pairing each HDR file with an SDR of its stem.

    Folders contribute their HDR files (not recursively) and ignore everything else; a file
    given by name must be an HDR file or the SDR of one given or found beside it.

    Args:
        paths: files and folders.

    Returns:
        The inputs, sorted by name, each once.

    Raises:
        InputError: a path does not exist, a named file is neither HDR nor paired SDR, or no
            HDR file was found at all.
    """
    hdr_files: set[Path] = set()
    for path in paths:
        if path.is_dir():
            hdr_files.update(p for p in path.iterdir() if p.suffix.lower() in HDR_SUFFIXES and p.is_file())
        elif not path.is_file():
            raise InputError(f"{path} does not exist")
        elif path.suffix.lower() in HDR_SUFFIXES:
            hdr_files.add(path)
        elif path.suffix.lower() not in SDR_SUFFIXES:
            raise InputError(f"{path} is not an HDR image ({', '.join(HDR_SUFFIXES)}) or an SDR image to pair")
    inputs = [BenchInput(p.name, p, _paired_sdr(p)) for p in sorted(hdr_files)]
    paired = {i.sdr_path.resolve() for i in inputs if i.sdr_path is not None}
    for path in paths:
        if path.is_file() and path.suffix.lower() in SDR_SUFFIXES and path.resolve() not in paired:
            raise InputError(f"{path} is an SDR image without an HDR image of the same stem beside it")
    if not inputs:
        raise InputError(f"no HDR images ({', '.join(HDR_SUFFIXES)}) in {', '.join(str(p) for p in paths)}")
    return inputs


def _paired_sdr(hdr_path: Path) -> Path | None:
    for suffix in SDR_SUFFIXES:
        for candidate in (hdr_path.with_suffix(suffix), hdr_path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def master_hdr(image: HdrImage) -> np.ndarray:
    """Master an HDR image as the paper's were: BT.2020, grey at 26 cd/m², channels clipped at 1000.

    Args:
        image: as read from its file; its own luminance scale is replaced by the exposure.

    Returns:
        float32 (H, W, 3), linear BT.2020 in cd/m².
    """
    bt2020 = np.clip(convert_primaries(image.pixels, image.chromaticities, PRIMARIES["bt2020"]), 0.0, None)
    luminance = bt2020 @ luminance_weights(PRIMARIES["bt2020"]).astype(np.float32)
    # The small offset keeps black pixels from sending the log-average to zero.
    log_average = float(np.exp(np.mean(np.log(luminance + 1e-4))))
    mastered: np.ndarray = np.minimum(bt2020 * (GREY_LUMINANCE / max(log_average, 1e-6)), PEAK_LUMINANCE)
    return mastered.astype(np.float32)


def load_image(item: BenchInput, max_megapixels: float | None = None) -> BenchImage:
    """Read, master or pair, and shrink one input.

    Args:
        item: the input.
        max_megapixels: shrink larger images to this many megapixels; None keeps every size.

    Returns:
        The image ready for the methods.

    Raises:
        InputError: unreadable files, or an SDR whose size differs from its HDR's.
    """
    image = read_hdr(item.hdr_path)
    height, width, _ = image.pixels.shape
    size = _shrunk_size(width, height, max_megapixels)
    if item.sdr_path is None:
        hdr = _resize_linear(master_hdr(image), size)
        hdr_pq = hdr_to_pq(hdr, PRIMARIES["bt2020"], 1.0)
        return BenchImage(item.name, hdr_pq, default_sdr(hdr_pq), paired=False)
    hdr_pq = hdr_to_pq(
        _resize_linear(image.pixels, size), image.chromaticities, image.white_luminance or DEFAULT_WHITE_LUMINANCE
    )
    return BenchImage(item.name, hdr_pq, _read_sdr(item.sdr_path, (width, height), size), paired=True)


def _shrunk_size(width: int, height: int, max_megapixels: float | None) -> tuple[int, int]:
    if max_megapixels is None or width * height <= max_megapixels * 1e6:
        return width, height
    factor = math.sqrt(max_megapixels * 1e6 / (width * height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def _resize_linear(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if size == (pixels.shape[1], pixels.shape[0]):
        return pixels
    return resize_planes(pixels, size, Image.Resampling.BOX)


def _read_sdr(path: Path, hdr_size: tuple[int, int], size: tuple[int, int]) -> bytes | np.ndarray:
    """The paired SDR: its JPEG bytes when kept as is, else its code values at ``size``."""
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.size != hdr_size:
                raise InputError(
                    f"{path} is {image.size[0]}x{image.size[1]} but its HDR image is {hdr_size[0]}x{hdr_size[1]}"
                )
            if is_jpeg(data) and size == hdr_size:
                return data
            return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BOX))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read the SDR image {path}: {exc}") from exc
