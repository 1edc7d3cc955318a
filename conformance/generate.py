"""Rebuild every conformance vector, reproducibly: ``python -m conformance.generate``.

The writer: runs the builders of :mod:`conformance.catalogue` and writes each vector's folder
(``input.jpg``, ``case.json``, ``expected.npy`` for a valid vector, and its extra files such as
``source.npy`` or ``writer_input.jpg``), then the vector table of ``conformance/README.md``.

The expected output of a valid vector is what ``gainmap_format.codec.decode`` gives, as float32
BT.2020 PQ code values. Its last bits depend on the CPU, so a committed expected output is kept
when a new decode is within :data:`REPRODUCTION` of it; everything else is the same bytes on
every CPU (see :mod:`conformance.catalogue`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from conformance.catalogue import (
    REJECT_COMMON,
    SETTINGS,
    VALID_COMMON,
    VECTORS,
    Case,
    beside_iso,
    build,
    encoded,
    neighbours,
    npy_bytes,
    requirement_order,
)
from gainmap_format import codec
from gainmap_format.errors import GainmapError, NoGainMapError, UnsupportedVersionError

README = Path(__file__).resolve().parent / "README.md"

#: Tolerance on PQ code values for every valid vector. Two binary32 decoders differ by about
#: 1e-6; a decoder that reads a field wrongly is off by 1e-3 or more.
TOLERANCE = {"max_abs": 2e-4, "rms": 5e-5}

#: A new decode within this largest absolute difference of a committed expected output is the
#: same result on another CPU: the committed file is kept (a tenth of the tolerance).
REPRODUCTION = TOLERANCE["max_abs"] / 10


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def expected_output(case: Case) -> np.ndarray:
    """The reference library's decode of a valid vector, float32 PQ; the committed one when it agrees.

    A decode's last bits depend on the CPU (ONNX Runtime's and numpy's kernels round differently
    with another SIMD width), so the committed expected output is kept when the new decode is
    within :data:`REPRODUCTION` of it: the files stay the same bytes on every machine.
    """
    # ONNX Runtime runs the graph itself, the normative definition; the C kernel would do as well
    # (to float32 rounding).
    fresh = codec.decode(case.data, display_headroom=case.display_headroom, engine="onnxruntime").pq
    assert fresh is not None
    committed = SETTINGS.reference / case.name / "expected.npy"
    if committed.is_file():
        stored = np.load(io.BytesIO(committed.read_bytes()))
        if stored.shape == fresh.shape and float(np.max(np.abs(stored - fresh), initial=0.0)) <= REPRODUCTION:
            return stored
    return fresh.astype(np.float32)


def check_rejection(case: Case) -> str | None:
    """Whether the reference library rejects an invalid vector as expected; a message if not."""
    try:
        codec.decode(case.data)
    except NoGainMapError:
        return None if case.expected_result == "no_gainmap" else "gainmap_format says no gain map"
    except UnsupportedVersionError:
        return None if case.expected_result == "unsupported_version" else "gainmap_format says unsupported version"
    except GainmapError:
        return None if case.expected_result == "reject" else "gainmap_format rejects it as damage"
    return "gainmap_format decodes it"


def write_case(case: Case, root: Path) -> dict:
    """Write a vector's folder and return its case.json content."""
    # The committed expected output is read before the folder is cleared: it may be this folder.
    expected = npy_bytes(expected_output(case)) if case.expected_result == "decode" else b""
    folder = root / case.name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    (folder / "input.jpg").write_bytes(case.data)
    record: dict[str, Any] = {
        "name": case.name,
        "expected_result": case.expected_result,
        "level": case.level,
        "requirements": case.requirements,
        "description": case.description,
        "note": case.note,
        "input": "input.jpg",
        "input_sha256": sha256(case.data),
    }
    if case.expected_result == "decode":
        (folder / "expected.npy").write_bytes(expected)
        height, width = np.load(io.BytesIO(expected)).shape[:2]
        record.update(expected="expected.npy", expected_sha256=sha256(expected), shape=[height, width, 3],
                      tolerance=TOLERANCE, display_headroom=case.display_headroom)
    else:
        problem = check_rejection(case)
        if problem:
            print(f"generate: note: {case.name} ({case.level}): {problem}")
    if case.writer_checks:
        record["writer_checks"] = True
    if case.needs_version:
        record["needs_version"] = case.needs_version
    for name, data in case.extra_files.items():
        (folder / name).write_bytes(data)
        record.setdefault("extra_files", {})[name] = sha256(data)
    (folder / "case.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def table(records: list[dict]) -> str:
    """The README's vector table; the requirements every vector of a kind shares are listed once."""
    lines = [f"Every valid vector also exercises {', '.join(sorted(VALID_COMMON, key=requirement_order))}; "
             f"every other vector also {', '.join(REJECT_COMMON)}. `case.json` lists them all.", "",
             "| Vector | Expected | Level | Requirements | What it tests |", "|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["expected_result"] != "decode", r["name"])):
        common = VALID_COMMON if r["expected_result"] == "decode" else REJECT_COMMON
        requirements = ", ".join(i for i in r["requirements"] if i not in common) or "(shared only)"
        lines.append(f"| `{r['name']}` | {r['expected_result']} | {r['level']} | {requirements} | "
                     f"{r['description']} |")
    return "\n".join(lines)


def update_readme(records: list[dict]) -> None:
    """Replace the vector table between its markers in conformance/README.md."""
    text = README.read_text()
    pattern = re.compile(r"(<!-- vectors:begin -->\n).*?(<!-- vectors:end -->)", re.S)
    counts = (f"{sum(r['expected_result'] == 'decode' for r in records)} valid vectors, "
              f"{sum(r['expected_result'] != 'decode' for r in records)} to be rejected.\n\n")
    README.write_text(pattern.sub(lambda m: m.group(1) + counts + table(records) + "\n" + m.group(2), text))


def main(argv: list[str] | None = None) -> int:
    """Command line: rebuild the vectors (all, or --only some) under --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=VECTORS, help="vectors folder (default conformance/vectors)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="rebuild only these vectors")
    parser.add_argument("--refit", action="store_true",
                        help="fit every network again instead of taking the committed encoder files")
    parser.add_argument("--reference", type=Path, default=VECTORS,
                        help="the committed vectors: fits and expected outputs to keep (default conformance/vectors)")
    args = parser.parse_args(argv)
    SETTINGS.refit, SETTINGS.reference = args.refit, args.reference
    for memoised in (encoded, neighbours, beside_iso):  # made under other settings by an earlier call
        memoised.cache_clear()
    cases = build(args.only)
    records = [write_case(case, args.out) for case in cases]
    if args.only is None:
        names = {c.name for c in cases}
        for folder in args.out.iterdir():
            if folder.is_dir() and folder.name not in names:
                raise SystemExit(f"generate: {folder} is not a vector any more; remove it")
        if args.out.resolve() == VECTORS.resolve():
            update_readme(records)
    print(f"generate: wrote {len(records)} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
