import pytest

from gainmap_format.errors import InputError
from gainmap_format.evaluation.options import METHOD_NAMES, BenchOptions


def test_defaults_run_every_method_in_both_protocols():
    options = BenchOptions()
    assert options.methods == METHOD_NAMES and options.protocols == ("paper", "real")
    assert options.base_quality == 98 and options.widths == (16,)


@pytest.mark.parametrize(
    "fields",
    [
        {"methods": ("gamma-png",)},
        {"methods": ()},
        {"widths": (12,)},
        {"activations": ("tanh",)},
        {"residuals": ("ratio",)},
        {"inits": ("zeros",)},
        {"protocols": ("lab",)},
        {"sizes": (0,)},
        {"sizes": ()},
        {"steps": -1},
        {"max_megapixels": 0.0},
        {"base_quality": 101},
        {"device": "tpu"},
    ],
)
def test_bad_options(fields):
    with pytest.raises(InputError):
        BenchOptions(**fields)
