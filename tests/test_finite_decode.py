"""Spec §7.7 [RES-21]: no container that a reader accepts decodes to a non-finite sample.

Every f32 field and both headrooms at either end of their ranges (spec §4.6), one at a time and
all together, with parameters of 0, of a fitted network's size and of the largest binary32
magnitude, for sine and ReLU networks and for gamma and gain maps: the ONNX Runtime graph, the C
kernel and the independent reference decoder decode every sample to a finite value, PQ in [0, 1]
and linear light within 10,000 cd/m² (absolute) or 10,000 / L_w (relative to SDR white).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from conformance import reference_decoder as rd
from gainmap_format import codec, native
from gainmap_format import container as ctr
from gainmap_format.geometry import Placement
from gainmap_format.graph import build_graph
from gainmap_format.jpeg import parse_jpeg, replace_segments
from gainmap_format.network import MlpWeights, parameter_shapes
from tests.conftest import jpeg_bytes

ENGINES = ["onnxruntime"] + (["native"] if native.available() else [])
HIDDEN_WIDTH = 8
HEIGHT, WIDTH = 12, 20

#: Conformance tolerance on PQ code values: where the decode is well conditioned, the engines
#: and the reference decoder agree within it even at the ends of the ranges.
AGREEMENT = 2e-4


def _base() -> bytes:
    """A JPEG base with black, white, the three primaries and random colours (the primaries of a
    Display P3 base go below 0 in BT.2020 before the clamp of spec §7.1)."""
    code = np.random.default_rng(5).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for column, colour in enumerate([(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        code[:4, 4 * column : 4 * column + 4] = colour
    return jpeg_bytes(code, quality=100, subsampling=0)


BASE = _base()


def _metadata(residual: str, activation: str, **fields: float) -> ctr.GainMapMetadata:
    values = {
        "residual": residual, "activation": activation, "hidden_width": HIDDEN_WIDTH, "width": WIDTH,
        "height": HEIGHT, "base_transfer": "srgb", "base_primaries": "display-p3", "input_mean": 0.5,
        "input_range": 0.8, "residual_mean": 0.7 if residual == "gamma" else 1.6, "residual_range": 0.5,
        "alternate_headroom": 3.0,
    }
    return ctr.GainMapMetadata(**(values | fields))


def extremes() -> list[tuple[str, dict[str, float]]]:
    """Each field at each end of its range, then every field at its low and at its high end."""
    cases = []
    for name, (low, high) in ctr.FIELD_RANGES.items():
        cases += [(f"{name}-low", {name: low}), (f"{name}-high", {name: high})]
    top = ctr.MAX_HEADROOM
    cases += [
        ("headrooms-high", {"base_headroom": top, "alternate_headroom": top}),
        ("alternate-headroom-high", {"base_headroom": 0.0, "alternate_headroom": top}),
        ("all-low", {name: low for name, (low, _) in ctr.FIELD_RANGES.items()}
         | {"base_headroom": 0.0, "alternate_headroom": 0.0}),
        ("all-high", {name: high for name, (_, high) in ctr.FIELD_RANGES.items()}
         | {"base_headroom": 0.0, "alternate_headroom": top}),
    ]
    return cases


def parameters(kind: str) -> MlpWeights:
    """Zero, a fitted network's size, or every parameter at the largest binary32 magnitude."""
    rng = np.random.default_rng(11)
    largest = np.finfo(np.float32).max
    arrays = {}
    for name, shape in parameter_shapes(HIDDEN_WIDTH).items():
        if kind == "zero":
            arrays[name] = np.zeros(shape, np.float32)
        elif kind == "fitted":
            arrays[name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        else:
            arrays[name] = np.where(rng.random(shape) < 0.5, -largest, largest).astype(np.float32)
    return MlpWeights(**arrays)


def gainmap_file(metadata: ctr.GainMapMetadata, weights: MlpWeights) -> bytes:
    """The base carrying a container of these fields and parameters, as a writer makes it."""
    container = ctr.build_container(metadata, build_graph(weights, metadata.activation))
    return replace_segments(parse_jpeg(BASE), ctr.to_segments(container), ctr.is_our_segment).to_bytes()


def assert_finite(decoded: codec.DecodedImage, label: str) -> None:
    white = decoded.metadata.sdr_white_luminance
    assert decoded.pq is not None
    for array, top in ((decoded.pq, 1.0), (decoded.relative, 10_000.0 / white), (decoded.absolute, 10_000.0)):
        assert np.all(np.isfinite(array)), label
        assert array.min() >= 0.0 and array.max() <= top * (1 + 1e-5), label


# The largest parameters overflow binary32 on purpose; numpy says so for every table it builds.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("weights", ["zero", "fitted", "largest"])
@pytest.mark.parametrize("activation", ["sine", "relu"])
@pytest.mark.parametrize("residual", ["gamma", "gain"])
def test_every_accepted_extreme_decodes_to_finite_samples(residual, activation, weights):
    network = parameters(weights)
    # The display weight matters where the residual is infinite or NaN (gain: f^w, gamma: 1 + w (f - 1)).
    headrooms = [None, 0.5] if weights == "largest" else [None]
    for label, fields in extremes():
        metadata = _metadata(residual, activation, **fields)
        data = gainmap_file(metadata, network)
        for headroom in headrooms:
            where = f"{label}, display headroom {headroom}"
            reference = rd.decode(data, headroom)
            assert np.all(np.isfinite(reference)) and 0.0 <= reference.min() <= reference.max() <= 1.0, where
            for engine in ENGINES:
                decoded = codec.decode(data, display_headroom=headroom, engine=engine)
                assert_finite(decoded, f"{engine}: {where}")
                # Zero parameters give f = residual_mean exactly; below 2^4 it keeps H' well
                # conditioned, so every decoder must agree there too.
                if weights == "zero" and abs(metadata.residual_mean) <= 16:
                    assert np.abs(decoded.pq - reference).max() <= AGREEMENT, f"{engine}: {where}"


def test_the_extremes_are_the_ends_of_the_accepted_ranges():
    """The property above is about accepted files: each extreme is accepted, a step beyond is not."""
    network = parameters("zero")
    for label, fields in extremes():
        assert ctr.parse_container(ctr.build_container(_metadata("gamma", "sine", **fields), b"g")), label
    for name, (low, high) in ctr.FIELD_RANGES.items():
        for value in (np.nextafter(np.float32(low), np.float32(-np.inf)),
                      np.nextafter(np.float32(high), np.float32(np.inf))):
            with pytest.raises(ctr.ContainerError, match=name):
                gainmap_file(_metadata("gamma", "sine", **{name: float(value)}), network)


def test_the_issues_container_is_rejected_not_decoded_to_infinity():
    """Issue 10 item 3: SDR white 1e-45 cd/m² passed version 1.0's checks and decoded to +inf."""
    data = gainmap_file(_metadata("gamma", "sine"), parameters("fitted"))
    container = bytearray(ctr.from_layout(parse_jpeg(data)) or b"")
    struct.pack_into(">f", container, 28, 1e-45)
    body = bytes(container[:-4])
    segments = ctr.to_segments(body + struct.pack(">I", zlib.crc32(body)))
    tampered = replace_segments(parse_jpeg(data), segments, ctr.is_our_segment).to_bytes()
    for engine in ENGINES:
        with pytest.raises(ctr.ContainerError, match=r"sdr_white_luminance is 1\.4\d*e-45, outside \[1, 10000\]"):
            codec.decode(tampered, engine=engine)
    with pytest.raises(rd.RejectedError, match=r"\[CON-41\]"):
        rd.decode(tampered)


def placed_file(metadata: ctr.GainMapMetadata, weights: MlpWeights, placement: Placement) -> bytes:
    """The base carrying a container with a placement record (spec §4.7)."""
    container = ctr.build_container(metadata, build_graph(weights, metadata.activation), placement)
    return replace_segments(parse_jpeg(BASE), ctr.to_segments(container), ctr.is_our_segment).to_bytes()


SCALE, SHIFT = ctr.MAX_PLACEMENT_SCALE, ctr.MAX_PLACEMENT_SHIFT
EXTREME_PLACEMENTS = {
    "largest-scales": ((65_535, 65_535), (SCALE, -SCALE, SHIFT, -SCALE, SCALE, -SHIFT)),
    "largest-shifts-1x1": ((1, 1), (0.0, 0.0, -SHIFT, 0.0, 0.0, SHIFT)),
    "singular": ((3, 65_535), (SCALE, SCALE, 0.0, SCALE, SCALE, 0.0)),
    "tiny-steps": ((2, 2), (2.0**-40, 0.0, 1.0, 0.0, -(2.0**-40), 1.0)),
}


@pytest.mark.parametrize("name", sorted(EXTREME_PLACEMENTS))
def test_placements_at_their_bounds_decode_to_finite_samples_that_agree(name):
    """Spec §4.7: within the bounds no coordinate is non-finite, so [RES-21] holds with a placement."""
    source, matrix = EXTREME_PLACEMENTS[name]
    placement = Placement(source, (WIDTH, HEIGHT), matrix)
    ctr.check_placement(placement)
    data = placed_file(_metadata("gamma", "sine"), parameters("fitted"), placement)
    reference = rd.decode(data)
    assert np.all(np.isfinite(reference))
    for engine in ENGINES:
        decoded = codec.decode(data, engine=engine)
        assert_finite(decoded, f"{engine}: {name}")
        assert np.abs(decoded.pq - reference).max() <= AGREEMENT, f"{engine}: {name}"
