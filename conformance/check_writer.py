"""Check a file against the spec's requirements on writers and encoders.

A decoder cannot show that a writer did its job, so the valid vectors written by the reference
encoder are checked here, requirement by requirement, with the independent parsers of
:mod:`conformance.reference_decoder` (this module imports neither ``gainmap_format`` nor onnx).
Some checks need what the writer was given: ``--writer-input`` (the JPEG it inserted the gain
map into) for [CAR-23] to [CAR-26], ``--source`` (the HDR rendition as float32 (H, W, 3) BT.2020
PQ, .npy) for [ENC-3] to [ENC-5] and [ENC-7]::

    python -m conformance.check_writer FILE.jpg [--writer-input BASE.jpg] [--source HDR.npy]

Exit status: 0 when every check that could run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import math
import struct
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from conformance import reference_decoder as rd

#: A check returns None when the requirement is met, or what is wrong.
Outcome = str | None

CHUNK = 65_523

#: Every requirement these checks can verify, given the writer's input and the encoder's source.
REQUIREMENTS = frozenset({
    "CAR-1", "CAR-2", "CAR-3", "CAR-4", "CAR-5", "CAR-19", "CAR-20", "CAR-21", "CAR-22", "CAR-23", "CAR-24",
    "CAR-25", "CAR-26", "CON-1", "CON-4", "CON-6", "CON-7", "CON-14", "CON-20", "CON-31", "VER-1",
    "VER-2", "GRA-20", "GRA-22", "GRA-23", "ENC-1", "ENC-2", "ENC-3", "ENC-4", "ENC-5", "ENC-6", "ENC-7", "ENC-8",
})


class Parsed:
    """The parts of a file the checks look at, parsed once."""

    def __init__(self, data: bytes) -> None:
        """Parse ``data`` with the reference decoder's readers (which reject what readers must)."""
        self.data = data
        self.segments, self.sos = rd.split_at_sos(data)
        self.ours = [s for s in self.segments if rd.is_gainmlp(s)]
        self.container = rd.reassemble(self.segments)
        self.header, self.graph = rd.parse_container(self.container)
        self.params = rd.check_graph(self.graph, self.header.activation, self.header.hidden_width)

    def byte(self, offset: int) -> int:
        """A byte of the container."""
        return self.container[offset]

    def u32(self, offset: int) -> int:
        """A big-endian u32 of the container."""
        return struct.unpack_from(">I", self.container, offset)[0]


def _expect(condition: bool, message: str) -> Outcome:
    return None if condition else message


def _carriage(p: Parsed) -> dict[str, Callable[[], Outcome]]:
    """§3.1 and §3.2 on the file alone."""
    index = [i for i, s in enumerate(p.segments) if rd.is_gainmlp(s)]
    sequences = [s.payload[8] for s in p.ours]
    chunks = sorted((s.payload[8], len(s.payload) - 10) for s in p.ours)
    app2 = [i for i, s in enumerate(p.segments) if s.marker == 0xE2]
    leading = 0
    while leading < len(p.segments) and p.segments[leading].marker in (0xE0, 0xE1):
        leading += 1
    return {
        "CAR-1": lambda: _expect(bool(p.ours), "no APP15 GainMLP segment"),
        "CAR-2": lambda: _expect(all(len(s.payload) <= 65_533 for s in p.ours), "a payload over 65,533 bytes"),
        "CAR-3": lambda: None,  # Parsed already joined the chunks in sequence order into a valid container.
        "CAR-4": lambda: _expect({s.payload[9] for s in p.ours} == {len(p.ours)}, "count differs from the segments"),
        "CAR-5": lambda: _expect(all(size == CHUNK for _, size in chunks[:-1]), "a chunk before the last is short"),
        "CAR-19": lambda: None,  # only segments before the first SOS were read.
        "CAR-20": lambda: _expect(not app2 or max(index) < app2[0], "a GainMLP segment after the first APP2"),
        "CAR-21": lambda: _expect(index[0] == leading, f"first GainMLP segment at {index[0]}, not {leading}"),
        "CAR-22": lambda: _expect(index == list(range(index[0], index[0] + len(index)))
                                  and sequences == sorted(sequences), "segments apart or out of order"),
    }


def _container(p: Parsed) -> dict[str, Callable[[], Outcome]]:
    """§4, §5 and §6.4 to §6.5 on the container."""
    minimum, writer = struct.unpack_from(">HH", p.container, 4)
    return {
        "CON-1": lambda: _expect(p.container[:4] == rd.MAGIC, "magic is not GMLP"),
        "CON-4": lambda: _expect(p.byte(8) == 0, f"flags {p.byte(8)}"),
        "CON-6": lambda: _expect(p.byte(10) == 1, f"residual_domain {p.byte(10)}"),
        "CON-7": lambda: _expect(p.byte(13) == 12, f"frequencies {p.byte(13)}"),
        "CON-14": lambda: None,  # Parsed checked the CRC.
        "CON-20": lambda: _expect(p.u32(52) == p.u32(60) == 10_000, "a headroom denominator is not 10,000"),
        "CON-46": lambda: _expect(p.header.placed or len(p.container) == 72 + len(p.graph),
                                  f"{len(p.container) - 72 - len(p.graph)} bytes after the graph without a placement"),
        "CON-31": lambda: None,  # Parsed ran every reader check of §4 and §6.4 to §6.5 (2.0's ranges included).
        # Version 2.1's one feature is the placement: a file without it needs only a 1.0 reader and
        # says writer 2.0, the same bytes as a 2.0 writer's ([VER-1], [VER-2], [CON-46]).
        "VER-1": lambda: _expect(minimum == (rd.PLACEMENT_VERSION if p.header.placed else 0x0100),
                                 f"minimum_version 0x{minimum:04X}"),
        "VER-2": lambda: _expect(writer == (rd.READER_VERSION if p.header.placed else 0x0200),
                                 f"writer_version 0x{writer:04X}, this suite knows 2.1"),
        "GRA-20": lambda: None,  # check_graph rejects every field outside the contract.
        "GRA-22": lambda: None,  # check_graph reads every initializer from raw_data.
        "GRA-23": lambda: None,  # check_graph rejects typed data fields and segment.
        "ENC-6": lambda: _expect(p.header.base_headroom == 0.0, f"H_base {p.header.base_headroom}"),
        "ENC-8": lambda: _canonical_serialisation(p.graph),
    }


def _canonical_serialisation(graph: bytes) -> Outcome:
    """[ENC-8]: the reference writer's model: ir_version, empty producer_name, graph, opset; graph "g"."""
    model = rd.wire_fields(graph)
    if [number for number, _, _ in model] != [1, 2, 7, 8] or model[1][2] != b"":
        return f"model fields {[number for number, _, _ in model]}, expected [1, 2, 7, 8] with producer_name ''"
    body = rd.wire_fields(cast(bytes, model[2][2]))
    names = [value for number, _, value in body if number == 2]
    if names != [b"g"] or any(number in (10, 16) for number, _, _ in body):
        return "the graph's free-text fields are not just name 'g'"
    free_text = {1: (3, 6), 5: (12,)}  # node name and doc_string; initializer doc_string
    for number, _, value in body:
        if number in free_text and any(n in free_text[number] for n, _, _ in rd.wire_fields(cast(bytes, value))):
            return "a node or initializer sets a free-text field"
    return None


def _base(p: Parsed) -> tuple[np.ndarray, tuple[int, int, int]]:
    frame = rd.frame_size(p.segments)
    return rd.decode_base(p.data, p.segments, p.header), frame


def _encoder(p: Parsed, source: np.ndarray | None) -> dict[str, Callable[[], Outcome]]:
    """§9.1 from the file, and from the encoder's HDR input when given."""
    code, (width, height, _) = _base(p)
    values = code.astype(np.float32) / np.float32(255.0)
    checks: dict[str, Callable[[], Outcome]] = {
        "ENC-1": lambda: _expect((p.header.width, p.header.height) == (width, height), "size differs from SOF"),
        "ENC-2": lambda: _close((p.header.input_mean, p.header.input_range),
                                (float(np.mean(values, dtype=np.float64)), float(values.max() - values.min())),
                                "input normalisation"),
    }
    if source is not None:
        residual = _residual_check(p, code, source)
        checks.update({"ENC-3": residual, "ENC-4": residual, "ENC-5": residual,
                       "ENC-7": lambda: _headroom_check(p, source)})
    return checks


def _close(actual: tuple[float, ...], wanted: tuple[float, ...], what: str, tolerance: float = 1e-5) -> Outcome:
    if all(math.isclose(a, w, rel_tol=tolerance, abs_tol=1e-7) for a, w in zip(actual, wanted, strict=True)):
        return None
    return f"{what} {actual} in the container, {wanted} computed"


def _residual_check(p: Parsed, code: np.ndarray, source: np.ndarray) -> Callable[[], Outcome]:
    """[ENC-3] to [ENC-5]: the residual statistics are those of the decoded base and the source."""

    def check() -> Outcome:
        if source.shape != code.shape:
            return f"source is {source.shape}, base {code.shape}"
        s = rd.base_to_pq(code, p.header) + p.header.epsilon
        h = source.astype(np.float64) + p.header.epsilon
        f = (np.log(h) / np.log(s) if p.header.residual_kind == 0 else h / s).astype(np.float32)
        wanted = (float(np.mean(f, dtype=np.float64)), max(float(f.max() - f.min()), 1e-6))
        return _close((p.header.residual_mean, p.header.residual_range), wanted, "residual normalisation")

    return check


def _headroom_check(p: Parsed, source: np.ndarray) -> Outcome:
    """[ENC-7]: H_alt = max(0, log2(L_peak / L_w))."""
    e = np.clip(float(source.max()), 0.0, 1.0) ** (1.0 / rd.M2)
    peak = 10_000.0 * (max(e - rd.C1, 0.0) / (rd.C2 - rd.C3 * e)) ** (1.0 / rd.M1)
    wanted = max(0.0, math.log2(max(peak, 1e-6) / p.header.sdr_white))
    return _close((p.header.alternate_headroom,), (wanted,), "H_alt", tolerance=1e-4)


def _writer_input(p: Parsed, original: bytes) -> dict[str, Callable[[], Outcome]]:
    """[CAR-23] to [CAR-26]: what the writer kept of the file it was given."""
    before, sos = rd.split_at_sos(original)
    kept_in = [(s.marker, s.payload) for s in before if not rd.is_gainmlp(s)]
    kept_out = [(s.marker, s.payload) for s in p.segments if not rd.is_gainmlp(s)]
    stale = {s.payload for s in before if rd.is_gainmlp(s)}
    checks: dict[str, Callable[[], Outcome]] = {
        "CAR-24": lambda: _expect(p.data[p.sos :] == original[sos:], "bytes from the first SOS on changed"),
        "CAR-25": lambda: _expect(sorted(kept_out) == sorted(kept_in), "another segment changed or went missing"),
        "CAR-26": lambda: _expect(kept_out == kept_in, "other segments were reordered"),
    }
    if stale:  # only an input with GainMLP segments of its own can show [CAR-23]
        checks["CAR-23"] = lambda: _expect(not stale & {s.payload for s in p.ours}, "an old GainMLP segment survived")
    return checks


def check(data: bytes, writer_input: bytes | None = None, source: np.ndarray | None = None) -> dict[str, Outcome]:
    """Run every writer check that the inputs allow.

    Args:
        data: the writer's output file.
        writer_input: the JPEG the writer was given, if known.
        source: the HDR rendition the encoder was given, float32 (H, W, 3) BT.2020 PQ, if known.

    Returns:
        Requirement identifier to None (met) or a message (not met).

    Raises:
        reference_decoder.RejectedError: the file is not even readable; no writer requirement can hold.
    """
    parsed = Parsed(data)
    checks = {**_carriage(parsed), **_container(parsed), **_encoder(parsed, source)}
    if writer_input is not None:
        checks.update(_writer_input(parsed, writer_input))
    return {name: run() for name, run in sorted(checks.items())}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print each check and exit 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--writer-input", type=Path, help="the JPEG the writer was given")
    parser.add_argument("--source", type=Path, help="the encoder's HDR input, float32 (H, W, 3) PQ .npy")
    args = parser.parse_args(argv)
    writer_input = args.writer_input.read_bytes() if args.writer_input else None
    source = np.load(io.BytesIO(args.source.read_bytes())) if args.source else None
    try:
        outcomes = check(args.file.read_bytes(), writer_input, source)
    except rd.RejectedError as exc:
        print(f"check_writer: the file is rejected by readers: {exc}", file=sys.stderr)
        return 1
    for name, outcome in outcomes.items():
        print(f"{'PASS' if outcome is None else 'FAIL'}  {name}" + (f": {outcome}" if outcome else ""))
    return 0 if all(outcome is None for outcome in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
