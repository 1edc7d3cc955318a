import numpy as np
import pytest

from gainmap_format.codec import decode_base
from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import InputError
from gainmap_format.evaluation.inputs import BenchImage
from gainmap_format.evaluation.protocols import make_base
from gainmap_format.residual import hdr_to_pq
from gainmap_format.tonemap import default_sdr


@pytest.fixture(scope="module")
def image(scene):
    hdr_pq = hdr_to_pq(scene, PRIMARIES["bt2020"], 1.0)
    return BenchImage("scene", hdr_pq, default_sdr(hdr_pq), paired=False)


def test_paper_protocol_keeps_the_sdr_lossless(image):
    base = make_base(image, "paper", 90)
    assert base.lossless and np.array_equal(base.code, image.sdr)
    assert not np.array_equal(decode_base(base.jpeg), image.sdr)


def test_real_protocol_uses_the_jpeg_as_decoded(image):
    base = make_base(image, "real", 90)
    assert not base.lossless and np.array_equal(base.code, decode_base(base.jpeg))
    assert len(base.jpeg) < len(make_base(image, "real", 99).jpeg)


def test_unknown_protocol(image):
    with pytest.raises(InputError):
        make_base(image, "lab", 90)
