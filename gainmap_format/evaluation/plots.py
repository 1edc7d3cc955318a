"""The report's figures: rate-distortion curves and a crop comparison (matplotlib, the ``bench`` extra).

The crop is the window where the traditional maps err most, on the image where they err most:
that is where their banding (8-bit steps in smooth gradients), halos (a quarter-resolution map
bleeding across a bright edge) and blocks show. It is drawn in PQ code values stretched to the
reference's range there, so that steps of one code value are visible, above each method's
absolute error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic import atomic_output
from .protocols import PROTOCOL_TITLES
from .report import SummaryRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Side of the crop in pixels (smaller images give their whole shorter side).
CROP_SIZE = 128

#: The byte budget whose traditional maps the crop figure shows: the paper's 10 KB.
CROP_BUDGET = 10240


@dataclass(frozen=True)
class Crop:
    """A window of one image and what each method made of it.

    Attributes:
        image: the image's name.
        protocol: the protocol the reconstructions come from.
        top: the window's first row.
        left: the window's first column.
        artefact_error: mean absolute PQ error of the traditional maps in the window.
        reference: float32 (s, s, 3), the reference's PQ values.
        panels: label to float32 (s, s, 3) reconstruction, in report order.
    """

    image: str
    protocol: str
    top: int
    left: int
    artefact_error: float
    reference: np.ndarray
    panels: dict[str, np.ndarray]


def matplotlib_unavailable() -> str | None:
    """Why the figures cannot be drawn, or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'gainmap-format[bench]')"
    return None


def select_crop(
    image: str,
    protocol: str,
    reference: np.ndarray,
    decoded: Mapping[str, np.ndarray],
    artefact_labels: Sequence[str],
    shown_labels: Sequence[str],
) -> Crop:
    """The window where the ``artefact_labels`` reconstructions err most, and every shown one's crop.

    Args:
        image: the image's name.
        protocol: the protocol of ``decoded``.
        reference: float32 (H, W, 3), the reference in PQ.
        decoded: label to float32 (H, W, 3) reconstruction.
        artefact_labels: the reconstructions whose error picks the window (the traditional maps;
            all of ``decoded`` when empty).
        shown_labels: the reconstructions the figure shows.

    Returns:
        The crop.
    """
    labels = list(artefact_labels) or list(decoded)
    error = sum(np.mean(np.abs(decoded[label] - reference), axis=2) for label in labels) / len(labels)
    size = min(CROP_SIZE, *reference.shape[:2])
    # Window sums from a summed-area table, then the window with the largest.
    table = np.pad(np.cumsum(np.cumsum(error, axis=0), axis=1), ((1, 0), (1, 0)))
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    window = np.s_[top : top + size, left : left + size]
    return Crop(
        image,
        protocol,
        int(top),
        int(left),
        float(sums[top, left]) / (size * size),
        reference[window].copy(),
        {label: decoded[label][window].copy() for label in shown_labels},
    )


def draw_rd_curves(summary: Sequence[SummaryRow], path: Path) -> None:
    """PQ-PSNR against bytes added, one line per method curve, one panel per protocol.

    Args:
        summary: the report's means.
        path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(row.protocol for row in summary))
    figure, axes = plt.subplots(
        1, len(protocols), figsize=(6.5 * len(protocols), 4.8), squeeze=False, layout="constrained"
    )
    for axis, protocol in zip(axes[0], protocols, strict=True):
        rows = [row for row in summary if row.protocol == protocol]
        for curve in dict.fromkeys(row.curve for row in rows):
            points = sorted((row.added_bytes, row.scores["pq_psnr"]) for row in rows if row.curve == curve)
            x, y = zip(*points, strict=True)
            axis.plot(x, y, marker="o", linestyle="-" if len(points) > 1 else "none", label=curve)
        axis.set_xscale("log")
        axis.set_xlabel("bytes added to the SDR file")
        axis.set_ylabel("PQ-PSNR (dB), mean over images")
        axis.set_title(PROTOCOL_TITLES[protocol].split(":")[0], fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    _save(figure, path)


def draw_crops(crop: Crop, path: Path) -> None:
    """The reference and each reconstruction in the crop (top row) above their errors (bottom row).

    Args:
        crop: from :func:`select_crop`.
        path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = np.percentile(crop.reference, [1.0, 99.0])
    span = max(float(high - low), 1e-6)
    errors = {label: np.mean(np.abs(panel - crop.reference), axis=2) for label, panel in crop.panels.items()}
    error_max = max([float(np.percentile(e, 99.5)) for e in errors.values()] + [1e-6])
    columns = 1 + len(crop.panels)
    figure, axes = plt.subplots(2, columns, figsize=(1.9 * columns + 0.8, 4.4), squeeze=False, layout="constrained")
    for index, (label, panel) in enumerate([("reference", crop.reference), *crop.panels.items()]):
        axes[0, index].imshow(np.clip((panel - low) / span, 0.0, 1.0))
        axes[0, index].set_title(label, fontsize=7)
        if label in errors:
            shown = axes[1, index].imshow(errors[label], cmap="inferno", vmin=0.0, vmax=error_max)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    axes[1, 0].set_visible(False)
    if crop.panels:
        figure.colorbar(shown, ax=axes[1, -1], label="|error| (PQ)")
    figure.suptitle(
        f"{crop.image}, {crop.protocol} protocol, rows {crop.top}+ columns {crop.left}+: PQ stretched to the "
        f"reference's range (top), absolute PQ error (bottom)",
        fontsize=8,
    )
    _save(figure, path)


def _save(figure: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
