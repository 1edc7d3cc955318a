import construct as cs
import pytest

from gainmap_format import structs


def test_segment_payload_bytes():
    built = structs.SEGMENT_PAYLOAD.build({"sequence": 1, "count": 2, "chunk": b"abc"})
    assert built == b"GainMLP\x00\x01\x02abc"
    assert structs.SEGMENT_HEADER_SIZE == 10
    with pytest.raises(cs.ConstructError):
        structs.SEGMENT_PAYLOAD.parse(b"NotOurs\x00\x01\x01")


def test_prefix_layout():
    assert structs.CONTAINER_PREFIX.sizeof() == 8
    parsed = structs.CONTAINER_PREFIX.parse(b"GMLP\x01\x00\x01\x02")
    assert (parsed.minimum_version, parsed.writer_version) == (0x0100, 0x0102)


def test_body_layout_is_big_endian_with_fixed_offsets():
    fields = {
        "minimum_version": 0x0100, "writer_version": 0x0100, "flags": 0, "residual_kind": 0,
        "residual_domain": 1, "activation": 0, "hidden_width": 16, "frequencies": 12,
        "base_transfer": 2, "base_primaries": 1, "width": 0x01020304, "height": 5,
        "epsilon": 1 / 64, "sdr_white_luminance": 100.0, "input_mean": 0.5, "input_range": 1.0,
        "residual_mean": 0.0, "residual_range": 2.0,
        "base_headroom": {"numerator": 0, "denominator": 1},
        "alternate_headroom": {"numerator": 3, "denominator": 1},
        "graph": b"ONNX",
        "extensions": b"",
    }
    body = structs.CONTAINER_BODY_V1.build(fields)
    assert body[:16] == b"GMLP\x01\x00\x01\x00\x00\x00\x01\x00\x10\x0c\x02\x01"
    assert body[16:20] == b"\x01\x02\x03\x04"
    assert body[24:28] == b"\x3c\x80\x00\x00"  # 1/64 as float32
    assert body[-8:] == b"\x00\x00\x00\x04ONNX"
    assert len(body) == 64 + 4 + len(b"ONNX")  # fixed fields, graph length, graph
    assert structs.CONTAINER_BODY_V1.parse(body + b"\x00\x01").extensions == b"\x00\x01"
