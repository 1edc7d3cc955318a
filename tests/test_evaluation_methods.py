import sys

import numpy as np
import pytest

from gainmap_format import codec
from gainmap_format.colour import PRIMARIES
from gainmap_format.evaluation.inputs import BenchImage
from gainmap_format.evaluation.mapcoding import JPEG
from gainmap_format.evaluation.methods import (
    DirectMlpMethod,
    LibUltraHdrMethod,
    MapMethod,
    MlpMethod,
    build_methods,
)
from gainmap_format.evaluation.metrics import pq_psnr
from gainmap_format.evaluation.options import BenchOptions
from gainmap_format.evaluation.protocols import make_base
from gainmap_format.residual import hdr_to_pq
from gainmap_format.standard import find_gain_map
from gainmap_format.tonemap import default_sdr

QUICK = {"steps": 3, "seed": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def image(scene):
    hdr_pq = hdr_to_pq(scene, PRIMARIES["bt2020"], 1.0)
    return BenchImage("scene", hdr_pq, default_sdr(hdr_pq), paired=False)


@pytest.fixture(scope="module", params=["paper", "real"])
def base(request, image):
    return make_base(image, request.param, 95)


@pytest.mark.parametrize("residual", ["gain", "gamma"])
def test_jpeg_maps_are_files_within_their_budget(image, base, residual):
    method = MapMethod(residual, JPEG, 1500)
    encoded = method.encode(image, base)
    assert encoded.added_bytes <= 1500 and encoded.added_bytes == len(encoded.file) - len(base.jpeg)
    assert 1 <= encoded.quality <= 100
    assert (find_gain_map(encoded.file) is not None) == (residual == "gain")
    assert pq_psnr(image.hdr_pq, method.decode(encoded, base)) > 25.0
    assert method.label == f"{residual.capitalize()}-JPEG ≤1.46 KB" and method.curve == method.family


def test_a_larger_budget_buys_quality(image, base):
    small, large = MapMethod("gamma", JPEG, 900), MapMethod("gamma", JPEG, 4000)
    decoded = [m.decode(m.encode(image, base), base) for m in (small, large)]
    assert pq_psnr(image.hdr_pq, decoded[1]) > pq_psnr(image.hdr_pq, decoded[0])


def test_paper_protocol_applies_maps_to_the_lossless_base(image):
    paper = make_base(image, "paper", 60)
    method = MapMethod("gamma", JPEG, 4000)
    encoded = method.encode(image, paper)
    on_lossless = pq_psnr(image.hdr_pq, method.decode(encoded, paper))
    on_jpeg = pq_psnr(image.hdr_pq, method.decode(encoded, make_base(image, "real", 60)))
    assert on_lossless > on_jpeg + 1.0


@pytest.mark.parametrize("residual", ["gain", "gamma"])
def test_mlp_methods(image, base, residual):
    method = MlpMethod(residual, 8, "sine", "random", **QUICK)
    encoded = method.encode(image, base)
    assert encoded.added_bytes == len(encoded.file) - len(base.jpeg) < 10240
    assert codec.read_container(encoded.file).metadata.residual == residual
    assert method.decode(encoded, base).shape == image.hdr_pq.shape
    curve = f"{residual.capitalize()}-MLP random-init"
    assert (method.label, method.curve) == (f"{curve} w8", curve)


def test_mlp_in_the_paper_protocol_decodes_against_the_lossless_base(image):
    paper = make_base(image, "paper", 95)
    method = MlpMethod("gamma", 8, "sine", "random", **QUICK)
    encoded = method.encode(image, paper)
    assert np.array_equal(method.decode(encoded, paper), codec.decode(encoded.file, base_pixels=paper.code).pq)


def test_direct_mlp_predicts_the_hdr(image, base):
    method = DirectMlpMethod(8, "relu", **QUICK)
    encoded = method.encode(image, base)
    assert encoded.file is None and encoded.added_bytes < 10240
    decoded = method.decode(encoded, base)
    assert decoded.shape == image.hdr_pq.shape and 0.0 <= decoded.min() and decoded.max() <= 1.0
    assert method.label == "Direct-MLP relu w8"


def test_libultrahdr_is_the_real_world_peer(image):
    pytest.importorskip("imagecodecs", reason="imagecodecs 2026.3.6 brings libultrahdr")
    method = LibUltraHdrMethod()
    base = make_base(image, "real", 95)
    encoded = method.encode(image, base)
    assert 0 < encoded.added_bytes < len(encoded.file) and method.protocols == ("real",)
    assert pq_psnr(image.hdr_pq, method.decode(encoded, base)) > 25.0


def test_build_methods_follows_the_options():
    options = BenchOptions(methods=("gamma-jpeg", "gain-jpeg", "gamma-mlp"), residuals=("gamma",),
                           sizes=(9000, 3000), widths=(32, 8), inits=("meta", "random"))
    methods, skipped = build_methods(options)
    assert [m.label for m in methods] == [
        "Gamma-JPEG ≤2.93 KB", "Gamma-JPEG ≤8.79 KB",
        "Gamma-MLP w8", "Gamma-MLP w32", "Gamma-MLP random-init w8", "Gamma-MLP random-init w32",
    ]
    assert skipped == []


def test_heic_methods_skip_with_a_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    methods, skipped = build_methods(BenchOptions(methods=("gain-heic", "gamma-heic")))
    assert methods == [] and [s.family for s in skipped] == ["Gain-HEIC", "Gamma-HEIC"]
    assert "pillow-heif is not installed" in skipped[0].reason
