"""A long mutation-fuzzing run of every reader that takes files from strangers.

Seeds are the conformance vectors and, when present, the gain-map JPEGs of ../shared/data. Each
input is a seed after a few random mutations: bit flips, interesting bytes, truncation, inserted
or deleted blocks, swapped, duplicated, dropped or transplanted marker segments, and, through the
container, changed fields, graphs and weights with the CRC recomputed so that the damage reaches
the checks behind the checksum. Standard gain-map metadata gets its own mutations: interesting
integers written into MPF, Exif (maker notes), ISO 21496-1, ICC and frame-header fields wherever
they sit in the file, and XMP packets that declare odd encodings, carry hostile values or are
re-encoded in UTF-16 or UTF-32. Every input goes to one of the targets:

- ``decode``: ``gainmap_format.codec.decode``, with or without a display headroom;
- ``standard``: ``gainmap_format.standard.find_gain_map``, then ``render`` for bases up to 4 MP;
- ``plugin``: ``Image.open`` with ``pillow_plugin`` on a file that Pillow alone opens, then
  ``im.hdr`` for bases up to 4 MP; opening must succeed, ``im.hdr`` may raise ``GainmapError``;
- ``reference``: the conformance suite's independent numpy decoder;
- ``convert``: ``gainmap_format.convert.convert`` to ISO 21496-1 and, with a two-step fit, to
  GainMLP, for bases up to 4 MP; the output must be a gain-map file its reader finds.

The targets run in a worker process under an address-space limit (``--memory-mb``); the parent
kills and restarts it when an input takes longer than ``--timeout`` seconds. An outcome is
documented when the target returns or raises the library's ``GainmapError`` (the reference
decoder's ``RejectedError``); anything else, a timeout or a dead worker is a finding, and its input is
saved under ``--findings`` with a note. The summary gives inputs tried, outcomes by target and
exception type, the slowest inputs and the worker's peak memory::

    nice -n 10 python benchmarks/fuzz_long.py --seconds 600 --seed 1
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import random
import re
import struct
import sys
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "conformance" / "vectors"
SHARED = ROOT.parent / "shared" / "data" / "gainmaps"

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
INTERESTING_U32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 65_535, 65_536, 1 << 20, (1 << 20) + 1)
INTERESTING_F32 = (0.0, -0.0, 1.0, -1.0, 1e-45, 3.4e38, -3.4e38, float("inf"), float("-inf"), float("nan"), 0.5)

#: Table 3 of the spec: (offset, size) of the container's header fields.
FIELDS = [(4, 2), (6, 2), (8, 1), (9, 1), (10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1), (16, 4), (20, 4),
          (24, 4), (28, 4), (32, 4), (36, 4), (40, 4), (44, 4), (48, 4), (52, 4), (56, 4), (60, 4), (64, 4)]
FLOAT_FIELDS = [24, 28, 32, 36, 40, 44]

#: Bases above this many pixels are not rendered by the standard target (it decodes the whole image).
RENDER_PIXELS = 4 << 20

#: Where binary metadata starts: identifiers of MPF, Exif, ISO 21496-1 and ICC APP segments, and
#: the SOF0 and SOF2 frame-header markers.
METADATA_MARKS = re.compile(rb"MPF\x00|Exif\x00\x00|urn:iso:std:iso:ts:21496:-1\x00|ICC_PROFILE\x00|\xff[\xc0\xc2]")

#: Encoding names an XML declaration may give: ones expat cannot use, unknown ones, the right one.
DECLARED_ENCODINGS = (b"utf-32", b"shift_jis", b"x-bogus", b"UTF-16", b"ebcdic", b"ISO-8859-1", b"UTF-8", b"")

#: XMP values that Python's float() and int() take or choke on.
HOSTILE_VALUES = (b"NaN", b"inf", b"1e999", b"1e-300", b"2_0", "\u0662".encode(), b"0x10", b"", b"-0", b"1" * 5000,
                  b"\xff\xfe", b"&amp;", b"<")

#: Codecs an XMP packet may be re-encoded in, and whether a byte-order mark goes first.
XMP_RECODINGS = (("utf-16-le", True), ("utf-16-be", False), ("utf-32-le", False), ("utf-32-be", True))

#: The APP1 identifier of an XMP packet.
XMP_IDENTIFIER = b"http://ns.adobe.com/xap/1.0/\x00"


# ---- JPEG and container surgery, independent of the code under test ----


def split_segments(data: bytes) -> tuple[list[bytes], bytes] | None:
    """The raw marker segments between SOI and the first SOS, and the rest; None if unparsable."""
    if data[:2] != b"\xff\xd8":
        return None
    segments, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:
            return segments, data[pos:]
        if marker in (0x01, *range(0xD0, 0xD9)) or marker == 0xFF:
            return None
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if end > len(data):
            return None
        segments.append(data[pos:end])
        pos = end
    return None


def join_segments(segments: list[bytes], rest: bytes) -> bytes:
    """SOI, the segments, the rest."""
    return b"\xff\xd8" + b"".join(segments) + rest


def is_ours(segment: bytes) -> bool:
    """A GainMLP APP15 segment."""
    return segment[1] == 0xEF and segment[4:12] == b"GainMLP\x00"


def container_of(data: bytes) -> tuple[list[bytes], bytes, bytes] | None:
    """(other segments, container, rest) of a file with a complete one-piece-per-sequence container."""
    parts = split_segments(data)
    if parts is None:
        return None
    segments, rest = parts
    ours = sorted((s for s in segments if is_ours(s) and len(s) >= 14), key=lambda s: s[12])
    if not ours:
        return None
    return [s for s in segments if not is_ours(s)], b"".join(s[14:] for s in ours), rest


def with_container(others: list[bytes], container: bytes, rest: bytes) -> bytes:
    """Carry ``container`` in fresh APP15 segments right after SOI and APP0."""
    chunks = [container[i : i + 65_523] for i in range(0, len(container), 65_523)] or [b""]
    ours = []
    for index, chunk in enumerate(chunks[:255], start=1):
        payload = b"GainMLP\x00" + bytes((index, len(chunks[:255]))) + chunk
        ours.append(b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload)
    head = others[:1] if others and others[0][1] == 0xE0 else []
    return join_segments(head + ours + others[len(head) :], rest)


def fix_crc(container: bytes) -> bytes:
    """Recompute the CRC-32 trailer."""
    if len(container) < 4:
        return container
    body = container[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


# ---- mutators ----


class Mutator:
    """Random mutations of whole files, of their segments and of their container."""

    def __init__(self, rng: random.Random, seeds: list[bytes]) -> None:
        """Mutations draw from ``rng`` and may transplant segments from ``seeds``."""
        self.rng = rng
        self.seeds = seeds

    def mutate(self, data: bytes) -> tuple[bytes, list[str]]:
        """Apply one to four mutations; returns the input and their names."""
        names = []
        for _ in range(self.rng.randint(1, 4)):
            name, mutation = self.rng.choice(self.MUTATIONS)
            changed = mutation(self, data)
            if changed is not None:
                data = changed
                names.append(name)
        return data, names

    def _flip(self, data: bytes) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.randint(1, 8)):
            if out:
                out[self.rng.randrange(len(out))] ^= 1 << self.rng.randrange(8)
        return bytes(out)

    def _interesting(self, data: bytes) -> bytes | None:
        if not data:
            return None
        out = bytearray(data)
        out[self.rng.randrange(len(out))] = self.rng.choice(INTERESTING_BYTES)
        return bytes(out)

    def _truncate(self, data: bytes) -> bytes:
        return data[: self.rng.randrange(len(data) + 1)]

    def _insert(self, data: bytes) -> bytes:
        at = self.rng.randrange(len(data) + 1)
        block = self.rng.randbytes(self.rng.choice((1, 2, 4, 16, 300)))
        return data[:at] + block + data[at:]

    def _delete(self, data: bytes) -> bytes:
        at = self.rng.randrange(len(data) + 1)
        return data[:at] + data[at + self.rng.choice((1, 2, 4, 16, 300)) :]

    def _segments(self, data: bytes) -> bytes | None:
        parts = split_segments(data)
        if parts is None or not parts[0]:
            return None
        segments, rest = parts
        action = self.rng.choice(("swap", "duplicate", "drop", "transplant"))
        i, j = self.rng.randrange(len(segments)), self.rng.randrange(len(segments))
        if action == "swap":
            segments[i], segments[j] = segments[j], segments[i]
        elif action == "duplicate":
            segments.insert(j, segments[i])
        elif action == "drop":
            del segments[i]
        else:
            donor = split_segments(self.rng.choice(self.seeds))
            if donor is None or not donor[0]:
                return None
            segments.insert(j, self.rng.choice(donor[0]))
        return join_segments(segments, rest)

    def _container(self, data: bytes) -> bytes | None:
        found = container_of(data)
        if found is None:
            return None
        others, container, rest = found
        out = bytearray(container)
        if len(out) < 72:
            return None
        action = self.rng.choice(("field", "float", "bytes", "graph-bytes", "weights", "truncate", "extend"))
        if action in ("graph-bytes", "weights") and len(out) < 80:
            return None  # no graph to speak of
        if action == "field":
            offset, size = self.rng.choice(FIELDS)
            value = self.rng.choice(INTERESTING_U32) & ((1 << (8 * size)) - 1)
            out[offset : offset + size] = value.to_bytes(size, "big")
        elif action == "float":
            struct.pack_into(">f", out, self.rng.choice(FLOAT_FIELDS), self.rng.choice(INTERESTING_F32))
        elif action == "bytes":
            out = bytearray(self._flip(bytes(out)))
        elif action == "graph-bytes":
            at = self.rng.randrange(68, len(out) - 4)
            out[at] = self.rng.randrange(256)
        elif action == "weights":
            at = self.rng.randrange(68, len(out) - 8) & ~3
            out[at : at + 4] = struct.pack("<f", self.rng.choice(INTERESTING_F32[4:7] + (1e30, -1e30, 65504.0)))
        elif action == "truncate":
            out = out[: self.rng.randrange(len(out))] + out[-4:]
        else:
            out = out[:-4] + self.rng.randbytes(self.rng.choice((1, 8, 100))) + out[-4:]
        return with_container(others, fix_crc(bytes(out)), rest)

    def _metadata_field(self, data: bytes) -> bytes | None:
        """An interesting integer in the first 64 bytes after a metadata identifier or frame marker."""
        marks = [m.end() for m in METADATA_MARKS.finditer(data)]
        if not marks:
            return None
        size = self.rng.choice((1, 2, 4))
        at = min(self.rng.choice(marks) + self.rng.randrange(64), max(0, len(data) - size))
        value = self.rng.choice(INTERESTING_U32 + (0x7FFF, 0x8000, 0xFFFF)) & ((1 << (8 * size)) - 1)
        return data[:at] + value.to_bytes(size, self.rng.choice(("big", "little"))) + data[at + size :]

    def _xmp(self, data: bytes) -> bytes | None:
        """An odd encoding declaration, a hostile attribute value, or a packet in UTF-16 or UTF-32."""
        action = self.rng.choice(("declaration", "value", "value", "recode"))
        if action == "declaration":
            declaration = b'<?xml version="1.0" encoding="%s"?>' % self.rng.choice(DECLARED_ENCODINGS)
            headers = [m for m in re.finditer(rb"<\?xpacket begin=[^>]*\?>", data) if len(m[0]) >= len(declaration)]
            if headers:  # same length, so that MPF offsets still hold
                header = self.rng.choice(headers)
                return data[: header.start()] + declaration.ljust(len(header[0])) + data[header.end() :]
            at = data.find(b"<x:xmpmeta")
            return None if at < 0 else data[:at] + declaration + data[at:]
        if action == "value":
            values = list(re.finditer(rb'="([^"<>]{0,40})"', data))
            if not values:
                return None
            spot = self.rng.choice(values)
            return data[: spot.start(1)] + self.rng.choice(HOSTILE_VALUES) + data[spot.end(1) :]
        return self._recode_xmp(data)

    def _recode_xmp(self, data: bytes) -> bytes | None:
        """The primary's first XMP packet re-encoded in UTF-16 or UTF-32, when it still fits a segment."""
        parts = split_segments(data)
        if parts is None:
            return None
        segments, rest = parts
        for index, segment in enumerate(segments):
            if segment[1] == 0xE1 and segment[4:].startswith(XMP_IDENTIFIER):
                codec, bom = self.rng.choice(XMP_RECODINGS)
                text = segment[4 + len(XMP_IDENTIFIER) :].decode("utf-8", "replace")
                payload = XMP_IDENTIFIER + (("\ufeff" if bom else "") + text).encode(codec)
                if len(payload) > 65_533:
                    return None
                segments[index] = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
                return join_segments(segments, rest)
        return None

    MUTATIONS: list[tuple[str, Callable[[Mutator, bytes], bytes | None]]] = [
        ("flip", _flip), ("interesting", _interesting), ("truncate", _truncate), ("insert", _insert),
        ("delete", _delete), ("segments", _segments), ("container", _container), ("container", _container),
        ("container", _container), ("metadata-field", _metadata_field), ("metadata-field", _metadata_field),
        ("xmp", _xmp), ("xmp", _xmp),
    ]


# ---- the worker ----


def _target_decode(data: bytes, headroom: float | None) -> str:
    from gainmap_format import codec

    codec.decode(data, display_headroom=headroom)
    return "decoded"


def _target_standard(data: bytes, headroom: float | None) -> str:
    from gainmap_format import standard

    found = standard.find_gain_map(data)
    if found is None:
        return "none"
    width, height = found.base_size
    if width * height > RENDER_PIXELS:
        return "found (not rendered: large base)"
    found.render(headroom)
    return "rendered"


def _target_plugin(data: bytes, headroom: float | None) -> str:
    import numpy as np
    from PIL import Image

    import pillow_plugin

    pillow_plugin.unregister()
    try:
        Image.open(io.BytesIO(data)).close()
    except Exception:
        return "Pillow refuses it"
    finally:
        pillow_plugin.register()
    try:
        image = Image.open(io.BytesIO(data))
    except Exception as exc:  # even a GainmapError: what Pillow opens, the plugin must open
        raise AssertionError(f"Pillow alone opens the file; with the plugin Image.open raised {exc!r}") from exc
    hdr = getattr(image, "hdr", None)
    if hdr is None:
        return "opened, no gain map"
    if image.size[0] * image.size[1] > RENDER_PIXELS:
        return "opened (not rendered: large base)"
    pixels = np.asarray(hdr if headroom is None else hdr.render(display_headroom=headroom))
    assert pixels.shape == (image.size[1], image.size[0], 3), pixels.shape
    return "opened, rendered"


def _target_reference(data: bytes, headroom: float | None) -> str:
    sys.path.insert(0, str(ROOT))
    from conformance import reference_decoder

    reference_decoder.decode(data, headroom)
    return "decoded"


def _target_convert(data: bytes, headroom: float | None) -> str:
    from gainmap_format import codec, convert, standard
    from gainmap_format.options import FitOptions

    found = standard.find_gain_map(data)
    if found is None:
        return "no standard map"
    width, height = found.base_size
    if width * height > RENDER_PIXELS:
        return "found (not converted: large base)"
    to = "iso" if headroom is None else "gainmlp"  # the headroom's draw picks the target, reproducibly
    options = codec.EncodeOptions(fit=FitOptions(iterations=2, batch_size=256))
    result = convert.convert(data, to=to, options=options)
    written = standard.find_gain_map(result.jpeg) if to == "iso" else codec.read_container(result.jpeg)
    assert written is not None, f"convert to {to} wrote a file without a gain map"
    return f"converted to {to}"


TARGETS = {"decode": _target_decode, "standard": _target_standard, "plugin": _target_plugin,
           "reference": _target_reference, "convert": _target_convert}


def _documented(target: str) -> tuple[type[BaseException], ...]:
    if target == "reference":
        from conformance.reference_decoder import RejectedError

        return (RejectedError,)
    from gainmap_format.errors import GainmapError

    return (GainmapError,)


def worker(connection, memory_mb: int) -> None:
    """Run inputs from the parent until it closes the pipe."""
    import resource
    import warnings

    warnings.simplefilter("ignore")
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, str(ROOT))
    for target in TARGETS:  # import everything before the clock starts
        _documented(target)
    from gainmap_format import codec, fitting, standard  # noqa: F401 (convert's fit)

    connection.send("ready")
    while True:
        try:
            target, data, headroom = connection.recv()
        except EOFError:
            return
        start = time.perf_counter()
        try:
            outcome, detail = TARGETS[target](data, headroom), ""
            documented = True
        except _documented(target) as exc:
            outcome, detail, documented = type(exc).__name__, str(exc)[:200], True
        except BaseException as exc:  # every other exception is the finding we look for
            outcome, detail, documented = type(exc).__name__, traceback.format_exc()[-3000:], False
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        connection.send((outcome, detail, documented, seconds, peak_mb))


class Worker:
    """A worker process the parent can kill and replace."""

    def __init__(self, memory_mb: int) -> None:
        """Start it."""
        self.memory_mb = memory_mb
        self.context = mp.get_context("spawn")
        self.start()

    def start(self) -> None:
        """(Re)start the process and wait until it has imported everything."""
        self.connection, child = self.context.Pipe()
        self.process = self.context.Process(target=worker, args=(child, self.memory_mb), daemon=True)
        self.process.start()
        child.close()
        if not self.connection.poll(300.0) or self.connection.recv() != "ready":
            raise RuntimeError("the fuzzing worker did not start")

    def run(self, target: str, data: bytes, headroom: float | None, timeout: float) -> tuple:
        """The worker's answer, or ("timeout" | "worker died", ...) after which it is restarted."""
        self.connection.send((target, data, headroom))
        if self.connection.poll(timeout):
            try:
                return self.connection.recv()
            except EOFError:
                pass
        outcome = "timeout" if self.process.is_alive() else f"worker died (exit {self.process.exitcode})"
        self.process.kill()
        self.process.join()
        self.start()
        return outcome, "", False, timeout, 0.0

    def stop(self) -> None:
        """Close the pipe and wait."""
        self.connection.close()
        self.process.join(timeout=10)


# ---- the campaign ----


@dataclass
class Campaign:
    """What the run has seen."""

    tried: int = 0
    outcomes: Counter = field(default_factory=Counter)
    findings: list[dict] = field(default_factory=list)
    slowest: list[tuple[float, str]] = field(default_factory=list)
    peak_mb: float = 0.0


def load_seeds(extra: list[Path]) -> list[tuple[str, bytes]]:
    """Conformance vectors, shared gain-map JPEGs and any extra files."""
    seeds = [(f"vectors/{p.parent.name}", p.read_bytes()) for p in sorted(VECTORS.glob("*/input.jpg"))]
    if SHARED.is_dir():
        seeds += [(f"shared/{p.name}", p.read_bytes()) for p in sorted(SHARED.glob("*.jpg"))]
    seeds += [(str(p), p.read_bytes()) for p in extra]
    return seeds


def save_finding(folder: Path, campaign: Campaign, target: str, data: bytes, note: dict) -> Path:
    """Write a reproducer and its note."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"finding-{len(campaign.findings):04d}-{target}.jpg"
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(note, indent=2) + "\n")
    return path


def campaign_step(rng: random.Random, seeds: list[tuple[str, bytes]], mutator: Mutator, pool: Worker,
                  campaign: Campaign, args: argparse.Namespace) -> None:
    """Mutate one seed, run it on one target, record the outcome."""
    seed_name, seed = rng.choice(seeds)
    data, mutations = mutator.mutate(seed)
    large = seed_name.startswith("shared/")
    target = rng.choice(("standard", "plugin", "decode", "convert") if large else
                        ("decode", "decode", "reference", "standard", "plugin", "convert"))
    headroom = rng.choice((None, None, 0.0, 1.0, 3.5, -2.0, 100.0))
    outcome, detail, documented, seconds, peak = pool.run(target, data, headroom, args.timeout)
    campaign.tried += 1
    campaign.outcomes[(target, outcome)] += 1
    campaign.peak_mb = max(campaign.peak_mb, peak)
    description = f"{target} on {seed_name} after {'+'.join(mutations) or 'nothing'}"
    campaign.slowest = sorted([*campaign.slowest, (seconds, description)], reverse=True)[:5]
    if not documented:
        note = {"target": target, "seed": seed_name, "mutations": mutations, "display_headroom": headroom,
                "outcome": outcome, "seconds": round(seconds, 3), "detail": detail}
        path = save_finding(args.findings, campaign, target, data, note)
        campaign.findings.append({**note, "reproducer": str(path)})
        print(f"FINDING {outcome}: {description} -> {path}", flush=True)


def report(campaign: Campaign, seconds: float, args: argparse.Namespace) -> dict:
    """Print the summary and return it as a dict."""
    rate = campaign.tried / max(seconds, 1e-9)
    print(f"\n{campaign.tried} inputs in {seconds:.0f} s ({rate:.1f}/s), seed {args.seed}")
    print(f"worker peak memory (max RSS): {campaign.peak_mb:.0f} MiB under a {args.memory_mb} MiB address-space limit")
    print("outcomes by target:")
    for (target, outcome), count in sorted(campaign.outcomes.items()):
        print(f"  {target:10s} {outcome:40s} {count}")
    print("slowest inputs:")
    for seconds_taken, description in campaign.slowest:
        print(f"  {seconds_taken:7.3f} s  {description}")
    print(f"findings: {len(campaign.findings)}" + (f" (reproducers in {args.findings})" if campaign.findings else ""))
    for finding in campaign.findings:
        print(f"  {finding['outcome']}: {finding['target']} on {finding['seed']} -> {finding['reproducer']}")
    return {
        "inputs": campaign.tried, "seconds": round(seconds, 1), "seed": args.seed, "peak_rss_mb": campaign.peak_mb,
        "outcomes": {f"{t}: {o}": n for (t, o), n in sorted(campaign.outcomes.items())},
        "slowest": [{"seconds": round(s, 3), "input": d} for s, d in campaign.slowest],
        "findings": campaign.findings,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the campaign; exit 1 when it found anything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to run (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds one input may take (default 20)")
    parser.add_argument("--memory-mb", type=int, default=4096, help="worker address-space limit (default 4096)")
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"), help="where reproducers go")
    parser.add_argument("--extra-seed", type=Path, action="append", default=[], help="more seed files")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    seeds = load_seeds(args.extra_seed)
    mutator = Mutator(rng, [data for _, data in seeds])
    pool = Worker(args.memory_mb)
    campaign = Campaign()
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < args.seconds:
            campaign_step(rng, seeds, mutator, pool, campaign, args)
    finally:
        pool.stop()
    summary = report(campaign, time.perf_counter() - start, args)
    args.findings.mkdir(parents=True, exist_ok=True)
    (args.findings / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if campaign.findings else 0


if __name__ == "__main__":
    sys.exit(main())
