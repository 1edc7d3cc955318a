import pytest

from gainmap_format import adaptation
from gainmap_format.errors import InputError


@pytest.mark.parametrize(
    ("display", "base", "alternate", "weight"),
    [(0.0, 0.0, 3.0, 0.0), (1.5, 0.0, 3.0, 0.5), (3.0, 0.0, 3.0, 1.0), (9.0, 0.0, 3.0, 1.0), (-1.0, 0.0, 3.0, 0.0),
     (2.0, 2.0, 2.0, 1.0), (3.0, 3.0, 0.0, 0.0), (0.0, 3.0, 0.0, 1.0), (1.0, 3.0, 0.0, 2 / 3)],
)
def test_iso21496_weight(display, base, alternate, weight):
    assert adaptation.iso21496_weight(display, base, alternate) == pytest.approx(weight)


def test_iso21496_weight_rejects_nan():
    with pytest.raises(InputError):
        adaptation.iso21496_weight(float("nan"), 0.0, 2.0)
