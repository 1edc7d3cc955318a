"""The options objects: every mistake is an InputError when the options are made, nothing later."""

import subprocess
import sys

import numpy as np
import pytest

import gainmap_format
from gainmap_format import codec, fitting
from gainmap_format.errors import InputError
from gainmap_format.options import MAX_SEED, EncodeOptions, FitOptions


@pytest.mark.parametrize(
    "options",
    [
        {"hidden_width": 12},
        {"hidden_width": 16.0},
        {"hidden_width": True},
        {"hidden_width": "16"},
        {"activation": "tanh"},
        {"activation": 0},
        {"iterations": -1},
        {"iterations": 1.5},
        {"iterations": True},
        {"batch_size": 0},
        {"batch_size": False},
        {"learning_rate": 0.0},
        {"learning_rate": -1e-2},
        {"learning_rate": float("nan")},
        {"learning_rate": float("inf")},
        {"learning_rate": True},
        {"learning_rate": "0.01"},
        {"seed": -1},
        {"seed": MAX_SEED + 1},
        {"seed": 1.0},
        {"seed": None},
        {"device": "tpu"},
        {"device": None},
        {"method": "fast"},
    ],
    ids=repr,
)
def test_bad_fit_options_fail_at_construction(options):
    with pytest.raises(InputError):
        FitOptions(**options)
    with pytest.raises(InputError):
        EncodeOptions(fit=FitOptions(**options))


@pytest.mark.parametrize(
    "options",
    [
        {"residual": "ratio"},
        {"quality": 0},
        {"quality": 101},
        {"quality": 98.0},
        {"quality": True},
        {"sdr_transfer": "pq"},
        {"sdr_primaries": "p3"},
        {"init": "learned"},
        {"fit": {"iterations": 3}},
        {"fit": None},
    ],
    ids=repr,
)
def test_bad_encode_options_fail_at_construction(options):
    with pytest.raises(InputError):
        EncodeOptions(**options)


def test_fit_options_given_to_encode_options_directly_are_refused():
    # The fit's options live in EncodeOptions.fit; passing them flat is Python's TypeError.
    with pytest.raises(TypeError, match="hidden_width"):
        EncodeOptions(hidden_width=12)  # type: ignore[call-arg]


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    options = FitOptions(iterations=np.int64(3), seed=np.uint64(MAX_SEED), learning_rate=np.float32(0.5))
    assert (options.iterations, options.seed, options.learning_rate) == (3, MAX_SEED, 0.5)
    assert type(options.iterations) is int and type(options.seed) is int and type(options.learning_rate) is float
    assert type(EncodeOptions(quality=np.int32(90)).quality) is int


def test_encode_options_hold_the_fit_options():
    fit = FitOptions(iterations=40, hidden_width=8, method="tables")
    options = EncodeOptions(residual="gain", fit=fit)
    assert options.fit is fit and EncodeOptions().fit == FitOptions()
    assert EncodeOptions(fit=FitOptions(seed=MAX_SEED)).fit.seed == MAX_SEED


def test_one_class_under_every_name():
    assert codec.EncodeOptions is EncodeOptions is gainmap_format.EncodeOptions
    assert codec.FitOptions is fitting.FitOptions is FitOptions is gainmap_format.FitOptions
    assert gainmap_format.PRIMARIES is codec.PRIMARIES
    assert {"Engine", "FitOptions", "PRIMARIES"} <= set(gainmap_format.__all__)


def test_options_import_no_torch():
    code = "import sys, gainmap_format.options; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_encode_refuses_options_of_another_type(scene):
    with pytest.raises(InputError, match="EncodeOptions"):
        codec.encode(scene, options={"fit": {"iterations": 3}})  # type: ignore[arg-type]


# ---- the tone map and the base's transfer (issue 15) ----


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tone_map": "aces"}, "tone map"),
        ({"tone_map": None}, "tone map"),
        ({"exposure": float("nan")}, "exposure"),
        ({"exposure": float("inf")}, "exposure"),
        ({"exposure": 16.5}, "exposure"),
        ({"exposure": True}, "exposure"),
        ({"exposure": "1"}, "exposure"),
        ({"sdr_transfer": "pq"}, "SDR transfer"),
    ],
)
def test_tone_map_options_are_checked_when_made(options, message):
    with pytest.raises(InputError, match=message):
        EncodeOptions(**options)


def test_tone_map_defaults_and_exposure_is_stored_as_a_float():
    options = EncodeOptions(exposure=np.float32(-1.5))
    assert options.tone_map == "reinhard" and options.exposure == -1.5 and type(options.exposure) is float
    assert EncodeOptions(tone_map="paper", exposure=-16).exposure == -16.0


def test_the_base_transfer_is_srgb_for_a_rendered_base_and_gamma_for_a_given_one():
    options = EncodeOptions()
    assert options.sdr_transfer is None
    assert options.for_base(rendered=True).sdr_transfer == "srgb"
    assert options.for_base(rendered=False).sdr_transfer == "gamma2.4"
    assert options.base_transfer == "gamma2.4"
    chosen = EncodeOptions(sdr_transfer="gamma2.4")
    assert chosen.for_base(rendered=True) is chosen and chosen.base_transfer == "gamma2.4"


@pytest.mark.parametrize("value", [-0.5, 14.5, float("nan"), True, "2"])
def test_max_headroom_is_checked_when_made(value):
    with pytest.raises(InputError, match="max headroom"):
        EncodeOptions(max_headroom=value)


def test_max_headroom_defaults_to_none_and_is_stored_as_a_float():
    assert EncodeOptions().max_headroom is None
    assert EncodeOptions(max_headroom=np.int64(2)).max_headroom == 2.0
