import sys

import numpy as np
import pytest

from gainmap_format.evaluation.mapcoding import JPEG, heic_codec


def _map():
    y, x = np.mgrid[0:24, 0:32]
    return np.stack([x * 7, y * 9, (x + y) * 4], axis=-1).astype(np.uint8)


def test_jpeg_round_trip_at_full_chroma():
    code = _map()
    decoded = JPEG.decode(JPEG.encode(code, 95))
    assert decoded.shape == code.shape and np.abs(decoded.astype(int) - code).mean() < 2.0


def test_heic_round_trip():
    try:
        codec = heic_codec()
    except ImportError as error:
        pytest.skip(str(error))
    code = _map()
    data = codec.encode(code, 90)
    decoded = codec.decode(data)
    assert codec.name == "HEIC" and decoded.shape == code.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - code).mean() < 3.0
    assert len(codec.encode(code, 10)) < len(data)


def test_heic_says_why_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    with pytest.raises(ImportError, match="pillow-heif is not installed"):
        heic_codec()
