"""The bench's results: one row per image, method and protocol; their means as a table and a CSV.

The table is shaped like the paper's Table 1: for each protocol, one row per method variant
with the mean of each metric over the images, the mean bytes the method adds to the SDR file,
and the mean fit and decode times.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_bytes
from .protocols import PROTOCOL_TITLES
from .scoring import Metric


@dataclass(frozen=True)
class ResultRow:
    """One method on one image under one protocol.

    Attributes:
        protocol: "paper" or "real".
        image: the image's name.
        method: the method variant's label.
        family: its family (Table 1's name).
        curve: the rate-distortion line it belongs to.
        budget: the byte budget of a traditional map, else None.
        width: the MLP's hidden width, else None.
        quality: the map codec's quality chosen for the budget, else None.
        added_bytes: bytes the method adds to the SDR file.
        fit_seconds: encoding time (the fit for MLPs).
        decode_seconds: decoding time, from the file's bytes to the HDR.
        scores: metric values by :class:`~.scoring.Metric` key.
    """

    protocol: str
    image: str
    method: str
    family: str
    curve: str
    budget: int | None
    width: int | None
    quality: int | None
    added_bytes: int
    fit_seconds: float
    decode_seconds: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SummaryRow:
    """The mean of one method variant over the images of one protocol.

    Attributes:
        protocol: "paper" or "real".
        method: the variant's label.
        curve: its rate-distortion line.
        images: how many images it ran on.
        added_bytes: mean bytes added.
        fit_seconds: mean encoding time.
        decode_seconds: mean decoding time.
        scores: mean metric values by key (NaN values are left out of the mean).
    """

    protocol: str
    method: str
    curve: str
    images: int
    added_bytes: float
    fit_seconds: float
    decode_seconds: float
    scores: dict[str, float]


_FIXED_COLUMNS = (
    "protocol", "image", "method", "family", "budget", "width", "quality", "bytes", "fit_s", "decode_s",
)


def summarise(rows: Sequence[ResultRow]) -> list[SummaryRow]:
    """Means per protocol and method variant, in the order the rows first name them."""
    groups: dict[tuple[str, str], list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.protocol, row.method), []).append(row)
    return [
        SummaryRow(
            protocol=protocol,
            method=method,
            curve=group[0].curve,
            images=len(group),
            added_bytes=statistics.fmean(r.added_bytes for r in group),
            fit_seconds=statistics.fmean(r.fit_seconds for r in group),
            decode_seconds=statistics.fmean(r.decode_seconds for r in group),
            scores={key: _mean([r.scores[key] for r in group]) for key in group[0].scores},
        )
        for (protocol, method), group in groups.items()
    ]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else float("nan")


def format_table(summary: Sequence[SummaryRow], metrics: Sequence[Metric], notes: Sequence[str] = ()) -> str:
    """The report as text: one block per protocol, then the notes (skips, substitutions).

    Args:
        summary: from :func:`summarise`.
        metrics: the metric columns, in order.
        notes: lines printed under the tables.

    Returns:
        The text, lines of at most about 100 characters.
    """
    width = max([len(row.method) for row in summary] + [len("method")])
    header = f"{'method':<{width}} " + " ".join(f"{m.title:>8}" for m in metrics)
    header += f" {'bytes':>7} {'fit s':>6} {'dec s':>6}"
    lines: list[str] = []
    for protocol in dict.fromkeys(row.protocol for row in summary):
        block = [row for row in summary if row.protocol == protocol]
        images = max(row.images for row in block)
        lines += [f"{PROTOCOL_TITLES[protocol]} ({images} image{'s' if images != 1 else ''}; means)", header]
        for row in block:
            values = " ".join(f"{row.scores.get(m.key, math.nan):>8.{m.digits}f}" for m in metrics)
            lines.append(
                f"{row.method:<{width}} {values} {row.added_bytes:>7.0f} {row.fit_seconds:>6.1f} "
                f"{row.decode_seconds:>6.2f}"
            )
        lines.append("")
    return "\n".join(lines + list(notes)).rstrip() + "\n"


def write_csv(rows: Sequence[ResultRow], metrics: Sequence[Metric], path: Path) -> None:
    """Write one line per row: what ran, its bytes and times, and each metric.

    Args:
        rows: the results.
        metrics: the metric columns, in order.
        path: the CSV file, replaced atomically.
    """
    lines: list[list[object]] = [[*_FIXED_COLUMNS, *(m.key for m in metrics)]]
    for r in rows:
        fixed: list[object] = [r.protocol, r.image, r.method, r.family, r.budget, r.width, r.quality,
                               r.added_bytes, f"{r.fit_seconds:.3f}", f"{r.decode_seconds:.3f}"]
        lines.append(fixed + [f"{r.scores.get(m.key, math.nan):.6g}" for m in metrics])
    write_bytes(path, _csv_text(lines).encode())


def _csv_text(lines: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(["" if v is None else v for v in line] for line in lines)
    return buffer.getvalue()
