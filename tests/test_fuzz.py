"""Property-based fuzzing of every reader that takes bytes from strangers, on a fixed budget.

Every input either parses (or decodes) or raises the library's documented ``GainmapError``, within
a time bound and, for the parsers, a memory bound. Inputs are random bytes and mutations of the
conformance vectors: bit flips, truncations, swapped, duplicated and dropped segments, container
fields and graphs changed with the CRC recomputed (so that the damage gets past the checksum).
Standard gain-map files also get interesting integers in their MPF, Exif, ISO 21496-1, ICC and
frame-header fields, XML declarations of odd encodings and hostile XMP values, and the Pillow
plugin must open every such file that Pillow alone opens. ``derandomize`` makes the budget fixed
and the run reproducible; ``benchmarks/fuzz_long.py`` is the long run.
"""

from __future__ import annotations

import html
import importlib.util
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, JpegImagePlugin

import pillow_plugin
from conformance import reference_decoder as rd
from gainmap_format import codec, convert, standard, structs
from gainmap_format import container as ctr
from gainmap_format.codec import EncodeOptions
from gainmap_format.errors import ContainerError, GainmapError, GraphContractError, JpegError, StandardGainMapError
from gainmap_format.graph import check_graph
from gainmap_format.jpeg import APP0, JpegLayout, Segment, parse_jpeg, replace_segments
from gainmap_format.options import FitOptions
from tests.conftest import SHARED_DATA, jpeg_bytes
from tests.test_hostile_metadata import apple_file, declared_file, ultrahdr_file, values_packet

VECTORS = Path(__file__).resolve().parents[1] / "conformance" / "vectors"

#: Seconds any one input may take; a small file that takes longer is a finding.
TIME_BOUND = 5.0

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
QUICK = settings(FUZZ, max_examples=100)


def vector(name: str) -> bytes:
    return (VECTORS / name / "input.jpg").read_bytes()


SEEDS = {name: vector(name) for name in ("valid-gamma-sine-w16", "valid-w128-two-segments", "valid-gain-relu-w8",
                                         "valid-metadata-neighbours", "valid-greyscale-base")}
CONTAINER = ctr.from_layout(parse_jpeg(SEEDS["valid-gamma-sine-w16"]))
GRAPH = CONTAINER[68:-4]


def bounded(call: Callable[[], object], documented: type[BaseException] | tuple = GainmapError,
            memory: int | None = None) -> object | None:
    """Run ``call``; return its result, or None when it raised a documented error.

    Any other exception propagates (hypothesis then reports the input). The call must finish
    within :data:`TIME_BOUND` and, when ``memory`` is given, allocate at most that many bytes at
    its peak (as tracemalloc sees Python and numpy allocations).
    """
    if memory is not None:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        return call()
    except documented:
        return None
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] if memory is not None else 0
        if memory is not None:
            tracemalloc.stop()
        assert elapsed < TIME_BOUND, f"took {elapsed:.2f} s"
        assert memory is None or peak <= memory, f"allocated {peak} bytes at its peak, bound {memory}"


def with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def carry(container: bytes, jpeg: bytes = SEEDS["valid-gamma-sine-w16"]) -> bytes:
    """``jpeg`` carrying ``container`` instead of its own."""
    return replace_segments(parse_jpeg(jpeg), ctr.to_segments(container), ctr.is_our_segment).to_bytes()


# ---- strategies ----

edits = st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=8)


def apply_edits(data: bytes, changes: list[tuple[int, int]], start: int = 0, end: int | None = None) -> bytes:
    out = bytearray(data)
    end = len(out) if end is None else end
    for position, value in changes:
        if end > start:
            out[start + position % (end - start)] = value
    return bytes(out)


@st.composite
def mutated_files(draw) -> bytes:
    """A conformance vector after one structural or byte-level mutation."""
    data = draw(st.sampled_from(sorted(SEEDS.values())))
    kind = draw(st.sampled_from(["flip", "truncate", "segments", "container", "field", "graph", "weights"]))
    if kind == "flip":
        return apply_edits(data, [(p, v) for p, v in draw(edits)])
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "segments":
        layout = parse_jpeg(data)
        segments = list(layout.segments)
        order = draw(st.lists(st.integers(0, len(segments) - 1), max_size=len(segments) + 2))
        return JpegLayout(tuple(segments[i] for i in order), layout.scan).to_bytes()
    container = ctr.from_layout(parse_jpeg(data))
    if kind == "container":
        return carry(with_crc(apply_edits(container[:-4], draw(edits))), data)
    if kind == "field":
        offset = draw(st.sampled_from([4, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52,
                                       56, 60, 64]))
        value = draw(st.binary(min_size=4, max_size=4))
        return carry(with_crc(container[:offset] + value + container[offset + 4 : -4]), data)
    graph_end = len(container) - 4
    if kind == "graph":
        return carry(with_crc(apply_edits(container[:-4], draw(edits), 68, graph_end)), data)
    value = draw(st.sampled_from([np.float32(v).tobytes() for v in (3.4e38, -3.4e38, 1e-45, 65504.0, -1e20)]))
    at = 68 + draw(st.integers(0, (graph_end - 72) // 4)) * 4
    return carry(with_crc(container[:at] + value + container[at + 4 : -4]), data)


# ---- the container and segment readers ----

def _check_metadata_invariants(parsed: ctr.Container) -> None:
    m = parsed.metadata
    assert m.hidden_width in ctr.HIDDEN_WIDTHS and m.frequencies == ctr.FREQUENCIES
    assert 1 <= m.width <= ctr.MAX_IMAGE_SIDE and 1 <= m.height <= ctr.MAX_IMAGE_SIDE
    assert 0.0 <= m.input_mean <= 1.0 and 0.0 < m.input_range <= 1.0 and 0.0 < m.epsilon < 1.0
    assert np.isfinite(m.residual_mean) and np.isfinite(m.residual_range) and m.residual_range > 0
    assert 0.0 <= m.base_headroom <= m.alternate_headroom <= ctr.MAX_HEADROOM
    assert len(parsed.graph) <= ctr.MAX_GRAPH_BYTES


@FUZZ
@given(st.binary(max_size=4096))
def test_parse_container_random_bytes(data):
    parsed = bounded(lambda: ctr.parse_container(data), ContainerError, memory=(1 << 20) + 8 * len(data))
    if parsed is not None:
        _check_metadata_invariants(parsed)


@FUZZ
@given(edits, st.integers(-80, 80))
def test_parse_container_mutations_behind_a_valid_crc(changes, resize):
    body = apply_edits(CONTAINER[:-4], changes)
    body = body[:resize] if resize < 0 else body + bytes(resize)
    parsed = bounded(lambda: ctr.parse_container(with_crc(body)), ContainerError, memory=1 << 21)
    if parsed is not None:
        _check_metadata_invariants(parsed)


pieces = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.binary(max_size=64)), max_size=8)


@FUZZ
@given(pieces, st.booleans())
def test_from_layout_random_segments(parts, foreign):
    segments = [Segment(0xEF, structs.SEGMENT_IDENTIFIER + bytes((seq, count)) + chunk) for seq, count, chunk in parts]
    if foreign:
        segments.append(Segment(0xEF, b"GainMLP"))  # one byte short of the identifier: not ours
    layout = JpegLayout(tuple(segments), b"\xff\xda")
    joined = bounded(lambda: ctr.from_layout(layout), ContainerError, memory=1 << 20)
    if joined is not None:
        count = parts[0][1]
        assert sorted(seq for seq, _, _ in parts) == list(range(1, count + 1))
        assert joined == b"".join(chunk for _, _, chunk in sorted(parts))
    elif not parts:
        assert ctr.from_layout(layout) is None


def test_from_layout_refuses_oversized_pieces_before_joining():
    chunk = bytes(65_523)
    layout = JpegLayout(tuple(Segment(0xEF, structs.SEGMENT_IDENTIFIER + bytes((n, 255)) + chunk)
                              for n in range(1, 18)), b"\xff\xda")
    with pytest.raises(ContainerError, match="bound"):
        bounded(lambda: ctr.from_layout(layout), (), memory=4 << 20)


# ---- the JPEG segment reader ----

@FUZZ
@given(st.one_of(st.binary(max_size=512), st.binary(max_size=512).map(lambda b: b"\xff\xd8\xff" + b)))
def test_parse_jpeg_random_bytes(data):
    layout = bounded(lambda: parse_jpeg(data), JpegError, memory=(1 << 20) + 16 * len(data))
    if layout is not None:
        assert parse_jpeg(layout.to_bytes()) == layout


@FUZZ
@given(mutated_files())
def test_parse_jpeg_mutated_files(data):
    layout = bounded(lambda: parse_jpeg(data), JpegError, memory=(1 << 20) + 16 * len(data))
    if layout is not None:
        assert layout.scan.startswith(b"\xff\xda")


# ---- the whole decoder ----

@FUZZ
@given(mutated_files(), st.sampled_from([None, None, 0.0, 1.5, -3.0, 80.0]))
def test_decode_mutated_files(data, headroom):
    decoded = bounded(lambda: codec.decode(data, display_headroom=headroom), memory=256 << 20)
    if decoded is not None:
        assert decoded.pq.dtype == np.float32 and decoded.pq.shape == decoded.sdr.shape
        assert np.all(np.isfinite(decoded.pq)) and decoded.pq.min() >= 0.0 and decoded.pq.max() <= 1.0


@QUICK
@given(mutated_files())
def test_reference_decoder_mutated_files(data):
    out = bounded(lambda: rd.decode(data), rd.RejectedError, memory=256 << 20)
    if out is not None:
        assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0


# ---- graphs ----

def _model() -> onnx.ModelProto:
    return onnx.load_model_from_string(GRAPH)


OPS = ["Sin", "Relu", "Add", "MatMul", "Identity", "Loop", "If", "Einsum", "Cos", "Custom"]


@st.composite
def random_graphs(draw) -> bytes:
    """The canonical model after random structural edits made with the onnx package."""
    model = _model()
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["op", "domain", "io", "dims", "dtype", "raw", "opset", "extra", "attribute"]))
        node = model.graph.node[draw(st.integers(0, len(model.graph.node) - 1))]
        tensor = model.graph.initializer[draw(st.integers(0, len(model.graph.initializer) - 1))]
        if edit == "op":
            node.op_type = draw(st.sampled_from(OPS))
        elif edit == "domain":
            node.domain = draw(st.sampled_from(["", "com.microsoft", "ai.onnx.ml", "x"]))
        elif edit == "io":
            node.input[0] = draw(st.sampled_from(["lv", "Wc", "res", "zz", ""]))
        elif edit == "dims":
            del tensor.dims[:]
            tensor.dims.extend(draw(st.lists(st.integers(-1, 1 << 40), max_size=4)))
        elif edit == "dtype":
            tensor.data_type = draw(st.sampled_from([0, 1, 2, 6, 7, 10, 11, 16, 99]))
        elif edit == "raw":
            tensor.raw_data = draw(st.binary(max_size=256))
        elif edit == "opset":
            model.opset_import[0].version = draw(st.integers(1, 30))
        elif edit == "extra":
            model.graph.initializer.append(numpy_helper.from_array(np.zeros(draw(st.integers(0, 64)), np.float32),
                                                                   draw(st.sampled_from(["b3", "Wc", "x"]))))
        else:
            node.attribute.append(helper.make_attribute(draw(st.sampled_from(["axis", "to", "g"])),
                                                        draw(st.integers(-2, 20))))
    return model.SerializeToString()


@FUZZ
@given(st.one_of(st.binary(max_size=2048), random_graphs()))
def test_check_graph_random_graphs(graph):
    weights = bounded(lambda: check_graph(graph, "sine", 16), GraphContractError, memory=(4 << 20) + 8 * len(graph))
    if weights is not None:
        assert all(np.all(np.isfinite(a)) for a in weights.arrays().values())


@QUICK
@given(random_graphs())
def test_decode_random_graphs(graph):
    body = CONTAINER[:64] + struct.pack(">I", len(graph)) + graph
    bounded(lambda: codec.decode(carry(with_crc(body))), memory=256 << 20)


# ---- the standard gain-map reader ----

def _synthetic_iso_file() -> bytes:
    metadata = standard.StandardGainMapMetadata(kind="iso21496-1", version="0.0", base_headroom=0.0,
                                                alternate_headroom=2.0, gain_map_min=(0.0, 0.0, 0.0),
                                                gain_map_max=(2.0, 2.0, 2.0))
    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.arange(12, dtype=np.uint8)[None, :] * 20, (8, 1)), "L").save(buffer, "JPEG")
    iso = Segment(APP0 + 2, standard.iso_metadata_payload(metadata))
    secondary = replace_segments(parse_jpeg(buffer.getvalue()), [iso], lambda s: False).to_bytes()
    template = standard.StandardGainMap(metadata=metadata, base_size=(24, 16), gain_map_size=(12, 8),
                                        gain_map_channels=1, base_primaries="bt709", alternate_primaries="bt709",
                                        gain_map_offset=0, gain_map_jpeg=secondary, announced_by=frozenset({"iso"}))
    base = np.full((16, 24, 3), 128, np.uint8)
    return standard.attach_gain_map(jpeg_bytes(base, quality=90), template)


def _standard_seeds() -> list[bytes]:
    """Synthetic ISO 21496-1, Ultra HDR XMP and Apple files, and the small real ones of ../shared/data."""
    seeds = [_synthetic_iso_file(), ultrahdr_file(), apple_file((1519, 1000), (0, 1))]
    folder = SHARED_DATA / "gainmaps"
    if folder.is_dir():
        seeds += [p.read_bytes() for p in sorted(folder.glob("*.jpg")) if p.stat().st_size < 100_000]
    return seeds


STANDARD_SEEDS = _standard_seeds()


BINARY_METADATA = (structs.MPF_IDENTIFIER, structs.EXIF_IDENTIFIER, structs.ISO_IDENTIFIER, structs.ICC_IDENTIFIER)


def _metadata_spans(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of the binary metadata payloads (MPF, Exif, ISO 21496-1, ICC, frame headers).

    In the primary image and in the gain-map image, where field overwrites reach the parsers.
    """
    found = standard.find_gain_map(data)
    spans = []
    for start in (0, found.gain_map_offset):
        for segment in parse_jpeg(data[start:]).segments:
            if segment.payload.startswith(BINARY_METADATA) or segment.marker in structs.SOF_MARKERS:
                spans.append((start + segment.offset + 4, len(segment.payload)))
    return spans


METADATA_SPANS = {seed: _metadata_spans(seed) for seed in STANDARD_SEEDS}

#: What a TIFF, ISO or ICC field is most likely to choke on.
INTERESTING_U32 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)

#: Encodings an XML declaration may name: ones expat cannot use, unknown ones, and the packet's own.
DECLARED_ENCODINGS = ("utf-32", "shift_jis", "x-bogus", "UTF-16", "ebcdic", "ISO-8859-1", "UTF-8", "")

#: XMP values that Python's float() and int() take or choke on.
HOSTILE_TEXT = ("NaN", "inf", "1e999", "-1e999", "1e-300", "2_0", "\u0662", "0x10", "", " ", "-0", "1" * 5000, "\ud800")


@st.composite
def mutated_standard_files(draw) -> bytes:
    """A standard gain-map file after a byte-level mutation or a change of one metadata field."""
    data = draw(st.sampled_from(STANDARD_SEEDS))
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "field", "declaration", "value"]))
    if kind == "flip":
        return apply_edits(data, draw(edits), 0, min(len(data), 4096) if draw(st.booleans()) else len(data))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "field":
        offset, length = draw(st.sampled_from(METADATA_SPANS[data]))
        size = draw(st.sampled_from([1, 2, 4]))
        at = offset + draw(st.integers(0, max(0, length - size)))
        value = draw(st.sampled_from(INTERESTING_U32)) & ((1 << (8 * size)) - 1)
        return data[:at] + value.to_bytes(size, draw(st.sampled_from(["big", "little"]))) + data[at + size :]
    if kind == "declaration":
        # An xpacket header becomes an XML declaration of the same length, or one goes before a
        # packet's root element; either way the rest of the file stays where it was or shifts whole.
        declaration = f'<?xml version="1.0" encoding="{draw(st.sampled_from(DECLARED_ENCODINGS))}"?>'.encode()
        headers = [m for m in re.finditer(rb"<\?xpacket begin=[^>]*\?>", data) if len(m[0]) >= len(declaration)]
        if headers:
            header = draw(st.sampled_from(headers))
            return data[: header.start()] + declaration.ljust(len(header[0])) + data[header.end() :]
        at = data.find(b"<x:xmpmeta")
        return data if at < 0 else data[:at] + declaration + data[at:]
    if kind == "value":
        values = list(re.finditer(rb'="([^"<>]{0,40})"', data))
        if values:
            spot = draw(st.sampled_from(values))
            text = draw(st.sampled_from(HOSTILE_TEXT)).encode("utf-8", "surrogatepass")
            return data[: spot.start(1)] + text + data[spot.end(1) :]
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]


def test_standard_seeds_are_gain_map_files():
    assert standard.find_gain_map(STANDARD_SEEDS[0]) is not None


@pytest.mark.filterwarnings("ignore:Truncated File Read")  # Pillow's warning on a damaged Exif block
@FUZZ
@given(mutated_standard_files(), st.sampled_from([None, 0.0, 1.0, 9.0]))
def test_standard_reader_mutated_files(data, headroom):
    found = bounded(lambda: standard.find_gain_map(data), (JpegError, StandardGainMapError), memory=64 << 20)
    if found is not None and found.base_size[0] * found.base_size[1] <= 1 << 21:
        rendered = bounded(lambda: found.render(headroom), (JpegError, StandardGainMapError))
        if rendered is not None:
            assert rendered.shape == (found.base_size[1], found.base_size[0], 3) and np.all(np.isfinite(rendered))


def _plain_pillow_opens(data: bytes) -> bool:
    """Whether Pillow, without the plugin, opens the file."""
    pillow_plugin.unregister()
    try:
        Image.open(io.BytesIO(data)).close()
    except Exception:
        return False
    finally:
        pillow_plugin.register()
    return True


def opens_like_pillow(data: bytes) -> None:
    """A file that plain Pillow opens opens with the plugin; its ``hdr`` works or raises GainmapError."""
    if not _plain_pillow_opens(data):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = bounded(lambda: Image.open(io.BytesIO(data)), (), memory=64 << 20)
        hdr = bounded(lambda: image.hdr)
        if hdr is not None and image.size[0] * image.size[1] <= 1 << 21:
            pixels = bounded(lambda: np.asarray(hdr))
            assert pixels is None or (pixels.shape == (image.size[1], image.size[0], 3) and np.all(np.isfinite(pixels)))


@pytest.mark.filterwarnings("ignore:Truncated File Read")
@QUICK
@given(mutated_standard_files())
def test_plugin_opens_mutated_standard_files(data):
    opens_like_pillow(data)


#: Converting fits a network; a few steps exercise every stage of the path at fuzzing speed. The
#: fitting module is imported now, before any example's clock starts.
importlib.import_module("gainmap_format.fitting")
CONVERT_OPTIONS = EncodeOptions(fit=FitOptions(iterations=2, batch_size=256))


def converts_or_refuses(data: bytes, to: convert.Target) -> None:
    """``convert`` of a damaged file gives a gain-map file its readers read, or a documented error.

    Files whose base is over 2 MP are left to the long run, as for the standard reader.
    """
    found = bounded(lambda: standard.find_gain_map(data), (JpegError, StandardGainMapError))
    if found is None or found.base_size[0] * found.base_size[1] > 1 << 21:
        return
    result = bounded(lambda: convert.convert(data, to=to, options=CONVERT_OPTIONS), memory=256 << 20)
    if isinstance(result, convert.ConvertResult):
        if to == "iso":
            assert standard.find_gain_map(result.jpeg) is not None
        else:
            assert codec.decode(result.jpeg).linear().shape == (found.base_size[1], found.base_size[0], 3)


@pytest.mark.filterwarnings("ignore:Truncated File Read")
@QUICK
@given(mutated_standard_files())
def test_convert_to_iso_mutated_files(data):
    converts_or_refuses(data, "iso")


@pytest.mark.filterwarnings("ignore:Truncated File Read")
@settings(QUICK, max_examples=40)
@given(mutated_standard_files())
def test_convert_to_gainmlp_mutated_files(data):
    converts_or_refuses(data, "gainmlp")


# ---- hostile metadata (issue 10): the escapes the audit found, as targets of their own ----

encoding_names = st.one_of(st.sampled_from(DECLARED_ENCODINGS),
                           st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,15}", fullmatch=True))


@QUICK
@given(encoding_names, st.sampled_from(["primary", "gain map"]))
def test_xmp_declaring_any_encoding(encoding, image):
    """expat raised ValueError or LookupError from a declaration naming a codec it cannot use."""
    data = declared_file(encoding, image)
    found = bounded(lambda: standard.find_gain_map(data), StandardGainMapError)
    assert found is None or encoding.lower().replace("-", "").replace("_", "") == "utf8"
    opens_like_pillow(data)


hdrgm_properties = st.sampled_from(["GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR", "HDRCapacityMin",
                                    "HDRCapacityMax", "BaseRenditionIsHDR", "Version"])


@FUZZ
@given(hdrgm_properties, st.one_of(st.sampled_from(HOSTILE_TEXT[:-1]), st.text(max_size=40)))
def test_any_hdrgm_value(name, value):
    data = ultrahdr_file(map_text=values_packet(**{name: html.escape(value)}))
    found = bounded(lambda: standard.find_gain_map(data), StandardGainMapError)
    if found is not None:
        rendered = bounded(lambda: found.render(), StandardGainMapError)
        assert rendered is None or np.all(np.isfinite(rendered))


rationals = st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))


@FUZZ
@given(rationals, rationals)
def test_apple_maker_note_any_rationals(tag33, tag48):
    """2.0 ** stops raised OverflowError for a tag 48 far below zero."""
    found = bounded(lambda: standard.find_gain_map(apple_file(tag33, tag48)), StandardGainMapError)
    assert found is None or 1.0 <= found.metadata.apple_headroom <= standard.apple.MAX_APPLE_HEADROOM


# ---- holes the fuzzing found, now fixed: these keep them closed ----

def test_size_mismatch_is_rejected_before_the_base_is_decoded(monkeypatch):
    """[DEC-6], [GEN-6]: the frame header is compared with the container before any pixel is decoded."""
    loads = []
    original = JpegImagePlugin.JpegImageFile.load

    def load(self):
        loads.append(self.size)
        return original(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    with pytest.raises(ContainerError, match="made for"):
        codec.decode(vector("invalid-base-size-mismatch"))
    assert loads == []


@pytest.mark.parametrize(("codec", "bom"), [("utf-16-be", True), ("utf-16-le", False), ("utf-32-le", True),
                                           ("utf-8", False)])
def test_xmp_with_a_dtd_is_refused_in_any_encoding(codec, bom):
    text = (f'<?xml version="1.0" encoding="{codec[:6].upper()}"?><!DOCTYPE x [<!ENTITY v "1.0">]><x:xmpmeta '
            f'xmlns:x="adobe:ns:meta/" xmlns:hdrgm="{standard.HDRGM_NS}"><r>&v;</r></x:xmpmeta>')
    packet = (("\ufeff" if bom else "") + text).encode(codec)
    layout = parse_jpeg(jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    data = JpegLayout((Segment(APP0 + 1, structs.XMP_IDENTIFIER + packet), *layout.segments), layout.scan).to_bytes()
    with pytest.raises(StandardGainMapError, match="DOCTYPE"):
        standard.find_gain_map(data)


def test_graph_with_external_data_never_reaches_the_file_system(tmp_path, monkeypatch):
    """ONNX Runtime runs a graph rebuilt from checked weights, so a path in the file is never opened."""
    model = _model()
    tensor = next(t for t in model.graph.initializer if t.name == "Wc")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=str(tmp_path / "weights.bin"))
    monkeypatch.chdir(tmp_path)
    body = CONTAINER[:64] + struct.pack(">I", len(model.SerializeToString())) + model.SerializeToString()
    with pytest.raises(GraphContractError, match="external"):
        codec.decode(carry(with_crc(body)))
    assert not (tmp_path / "weights.bin").exists()


# ---- the long run's own machinery ----

FUZZ_LONG = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_long.py"


def test_long_run_mutators_never_fail(monkeypatch):
    spec = importlib.util.spec_from_file_location("fuzz_long", FUZZ_LONG)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fuzz_long", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    seeds = [data for _, data in module.load_seeds([])]
    mutator = module.Mutator(random.Random(5), seeds)
    for index in range(3000):
        data, _ = mutator.mutate(seeds[index % len(seeds)])
        assert isinstance(data, bytes)


def test_long_run_smoke(tmp_path):
    completed = subprocess.run([sys.executable, str(FUZZ_LONG), "--seconds", "4", "--seed", "3", "--findings",
                                str(tmp_path)], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": str(FUZZ_LONG.parents[1])})
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["inputs"] > 0 and summary["findings"] == []
