"""The runner's contract for the reference library: decode a file with ``gainmap_format`` to .npy.

``python -m gainmap_format.cli decode`` writes OpenEXR in cd/m²; this adapter writes what the
conformance suite compares directly, float32 (H, W, 3) BT.2020 PQ code values, and maps the
library's exceptions to the exit statuses of the reference decoder, so that the runner can
check that "no gain map" and "unsupported version" are told apart from damage::

    python conformance/gainmap_decode.py INPUT.jpg OUTPUT.npy [--display-headroom H]

Exit status: 0 decoded, 1 rejected, 2 usage error, 3 no gain map, 4 unsupported version.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gainmap_format import codec
from gainmap_format.atomic import atomic_output
from gainmap_format.errors import GainmapError, NoGainMapError, UnsupportedVersionError

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_NO_GAINMAP = 3
EXIT_UNSUPPORTED_VERSION = 4


def exit_status(error: GainmapError) -> int:
    """The exit status that tells the runner which kind of rejection this was."""
    if isinstance(error, NoGainMapError):
        return EXIT_NO_GAINMAP
    if isinstance(error, UnsupportedVersionError):
        return EXIT_UNSUPPORTED_VERSION
    return EXIT_REJECTED


def main(argv: Sequence[str] | None = None) -> int:
    """Decode INPUT to OUTPUT.npy; returns the exit status."""
    parser = argparse.ArgumentParser(description="Decode a GainMLP JPEG with gainmap_format to PQ .npy.")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--display-headroom", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        decoded = codec.decode(args.input, display_headroom=args.display_headroom)
    except GainmapError as exc:
        print(f"gainmap_decode: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_status(exc)
    assert decoded.pq is not None  # decode keeps the PQ values unless told with_pq=False
    with atomic_output(args.output) as temporary, open(temporary, "wb") as stream:
        np.save(stream, decoded.pq.astype(np.float32))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
