import io

import numpy as np
import pytest
from PIL import Image

from gainmap_format.errors import InputError, NoGainMapError
from gainmap_format.evaluation.mapcoding import JPEG
from gainmap_format.evaluation.methods import DirectMlpMethod, Encoded, LibUltraHdrMethod, MapMethod, _added_to_primary
from gainmap_format.evaluation.protocols import Base


def _plain_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture()
def base():
    return Base("paper", _plain_jpeg(), np.full((16, 16, 3), 100, dtype=np.uint8))


@pytest.mark.parametrize("residual", ["gain", "gamma"])
def test_map_methods_reject_an_encoding_without_their_map(base, residual):
    method = MapMethod(residual, JPEG, 10240)
    with pytest.raises(InputError, match="no coded map"):
        method.decode(Encoded(0, 0.0), base)
    with pytest.raises(InputError, match="no coded map"):
        method.decode(Encoded(0, 0.0, payload=b"container bytes"), base)


def test_gain_map_method_names_a_file_without_a_gain_map(base):
    with pytest.raises(NoGainMapError):
        MapMethod("gain", JPEG, 10240).decode(Encoded(0, 0.0, file=base.jpeg), base)
    with pytest.raises(NoGainMapError):
        _added_to_primary(base.jpeg)


def test_direct_mlp_and_libultrahdr_reject_an_encoding_without_their_bytes(base):
    with pytest.raises(InputError, match="Direct-MLP container"):
        DirectMlpMethod(8, "sine", 1, 0, "cpu").decode(Encoded(0, 0.0, file=base.jpeg), base)
    pytest.importorskip("imagecodecs")
    with pytest.raises(InputError, match="no file"):
        LibUltraHdrMethod().decode(Encoded(0, 0.0), base)
