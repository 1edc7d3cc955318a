"""Colour maths: PQ (SMPTE ST 2084), SDR transfer functions, primaries and RGB conversions.

Every function here is a plain numpy function on float arrays; none clips unless it says so.
Conventions: linear light is in cd/m² where a function's name or argument says ``luminance``;
otherwise linear RGB is relative (1.0 = the encoding's reference white).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .errors import InputError

PrimariesName = Literal["bt709", "display-p3", "bt2020"]
TransferName = Literal["srgb", "gamma2.4"]

#: (rx, ry, gx, gy, bx, by, wx, wy), CIE 1931 xy.
Chromaticities = tuple[float, float, float, float, float, float, float, float]

D65_WHITE = (0.3127, 0.3290)

#: ITU-R BT.709-6 table 1 item 1.3; SMPTE EG 432-1 (P3-D65); ITU-R BT.2020-2 table 3 item 3.3.
PRIMARIES: dict[PrimariesName, Chromaticities] = {
    "bt709": (0.640, 0.330, 0.300, 0.600, 0.150, 0.060, *D65_WHITE),
    "display-p3": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, *D65_WHITE),
    "bt2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, *D65_WHITE),
}

#: What the API takes for the primaries of linear RGB: a key of :data:`PRIMARIES`, or 8 numbers.
PrimariesLike = PrimariesName | Chromaticities

#: SMPTE ST 2084 constants, exactly as the standard writes them.
PQ_M1 = 2610 / 16384
PQ_M2 = 2523 / 4096 * 128
PQ_C1 = 3424 / 4096
PQ_C2 = 2413 / 4096 * 32
PQ_C3 = 2392 / 4096 * 32
PQ_PEAK_LUMINANCE = 10000.0

#: Bradford cone response matrix, used for white-point adaptation.
_BRADFORD: NDArray[np.float64] = np.array(
    [
        [0.8951, 0.2664, -0.1614],
        [-0.7502, 1.7135, 0.0367],
        [0.0389, -0.0685, 1.0296],
    ]
)


def pq_encode(luminance: np.ndarray) -> np.ndarray:
    """Encode absolute luminance with the PQ inverse EOTF (ST 2084 eq. 5.2).

    Args:
        luminance: float array, linear light in cd/m²; values are clipped to [0, 10000].

    Returns:
        PQ code values in [0, 1], same shape, float32 when the input is float32.
    """
    # In place on one new array: the formula's temporaries each cost an image-sized
    # allocation and its page faults. Same operations, same order, same result bits.
    y = np.asarray(np.divide(luminance, PQ_PEAK_LUMINANCE))
    np.clip(y, 0.0, 1.0, out=y)
    np.power(y, PQ_M1, out=y)
    numerator = np.multiply(y, PQ_C2, out=np.empty_like(y))
    numerator += PQ_C1
    y *= PQ_C3
    y += 1.0
    numerator /= y
    code: np.ndarray = np.power(numerator, PQ_M2, out=numerator)
    return _scalar_if_0d(code)


def pq_decode(code: np.ndarray) -> np.ndarray:
    """Decode PQ code values to absolute luminance (ST 2084 eq. 5.1, the EOTF).

    Args:
        code: float array of PQ code values; values are clipped to [0, 1].

    Returns:
        Linear light in cd/m², same shape, in [0, 10000].
    """
    # In place, as pq_encode; c2 - c3 e is computed as its own rounding, so the bits are the formula's.
    e = np.asarray(np.clip(code, 0.0, 1.0))
    np.power(e, 1.0 / PQ_M2, out=e)
    y = np.subtract(e, PQ_C1, out=np.empty_like(e))
    np.maximum(y, 0.0, out=y)
    e *= PQ_C3
    np.subtract(PQ_C2, e, out=e)
    y /= e
    np.power(y, 1.0 / PQ_M1, out=y)
    y *= PQ_PEAK_LUMINANCE
    return _scalar_if_0d(y)


def _scalar_if_0d(values: np.ndarray) -> np.ndarray:
    """A numpy scalar for a 0-d array, as the ufuncs themselves return; the array otherwise."""
    result: np.ndarray = values if values.ndim else values[()]
    return result


def srgb_decode(code: np.ndarray) -> np.ndarray:
    """sRGB EOTF (IEC 61966-2-1 piecewise curve): code values in [0, 1] to relative linear."""
    code = np.asarray(code)
    return np.where(code <= 0.04045, code / 12.92, np.power((np.abs(code) + 0.055) / 1.055, 2.4))


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Inverse sRGB EOTF: relative linear in [0, 1] to code values in [0, 1]."""
    linear = np.asarray(linear)
    curve = 1.055 * np.power(np.abs(linear), 1.0 / 2.4) - 0.055
    return np.where(linear <= 0.0031308, linear * 12.92, curve)


def bt709_inverse_oetf(code: np.ndarray) -> np.ndarray:
    """Inverse of ITU-R BT.709's OETF (BT.709-6 table 1 item 1.2): code values in [0, 1] to relative linear.

    Camera light, not display light: BT.709 defines no EOTF (that is BT.1886's). Apple's gain
    maps are encoded with this curve.

    Args:
        code: float array of code values V.

    Returns:
        L = V / 4.5 below V = 0.081, else ((V + 0.099) / 1.099)^(1 / 0.45); same shape.
    """
    code = np.asarray(code)
    return np.where(code < 0.081, code / 4.5, np.power((np.abs(code) + 0.099) / 1.099, 1.0 / 0.45))


def gamma24_decode(code: np.ndarray) -> np.ndarray:
    """Pure power 2.4 (the BT.1886 display with zero black level): code to relative linear."""
    linear: np.ndarray = np.power(np.clip(code, 0.0, None), 2.4)
    return linear


def gamma24_encode(linear: np.ndarray) -> np.ndarray:
    """Inverse of :func:`gamma24_decode`: relative linear to code values."""
    code: np.ndarray = np.power(np.clip(linear, 0.0, None), 1.0 / 2.4)
    return code


def transfer_decode(code: np.ndarray, transfer: TransferName) -> np.ndarray:
    """Apply the named SDR transfer's EOTF: code values in [0, 1] to relative linear."""
    if transfer == "srgb":
        return srgb_decode(code)
    if transfer == "gamma2.4":
        return gamma24_decode(code)
    raise InputError(f"unknown SDR transfer {transfer!r}; expected 'srgb' or 'gamma2.4'")


def transfer_encode(linear: np.ndarray, transfer: TransferName) -> np.ndarray:
    """Apply the named SDR transfer's inverse EOTF: relative linear to code values."""
    if transfer == "srgb":
        return srgb_encode(linear)
    if transfer == "gamma2.4":
        return gamma24_encode(linear)
    raise InputError(f"unknown SDR transfer {transfer!r}; expected 'srgb' or 'gamma2.4'")


def _xy_to_xyz(x: float, y: float) -> NDArray[np.float64]:
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def rgb_to_xyz_matrix(chromaticities: Chromaticities) -> NDArray[np.float64]:
    """The 3x3 matrix taking linear RGB to CIE XYZ, white mapping to Y = 1 (SMPTE RP 177).

    Each primary enters as its (x, y, 1 - x - y) column and is scaled so that RGB (1, 1, 1)
    lands on the white point; unlike dividing by y, this also accepts primaries with y = 0,
    such as those of XYZ itself (Radiance xyze files) or ACES AP0's blue.

    Args:
        chromaticities: (rx, ry, gx, gy, bx, by, wx, wy).

    Returns:
        float64 (3, 3); ``xyz = M @ rgb``.

    Raises:
        InputError: non-finite values, a white with y <= 0, or collinear primaries.
    """
    values = np.asarray(chromaticities, dtype=np.float64)
    if values.shape != (8,) or not np.all(np.isfinite(values)):
        raise InputError(f"chromaticities {chromaticities} are not 8 finite numbers")
    rx, ry, gx, gy, bx, by, wx, wy = values
    if wy <= 0.0:
        raise InputError(f"chromaticities {chromaticities} have a white point with y <= 0")
    columns = np.array([[rx, gx, bx], [ry, gy, by], [1 - rx - ry, 1 - gx - gy, 1 - bx - by]])
    if abs(np.linalg.det(columns)) < 1e-9:
        raise InputError(f"chromaticities {chromaticities} have collinear primaries")
    return columns * np.linalg.solve(columns, _xy_to_xyz(wx, wy))


def resolve_chromaticities(primaries: str | Iterable[float], what: str = "chromaticities") -> Chromaticities:
    """The chromaticities a caller means: a primaries name looked up, or 8 numbers checked.

    Args:
        primaries: a key of :data:`PRIMARIES` ("bt709", "display-p3", "bt2020"), or the 8
            numbers (rx, ry, gx, gy, bx, by, wx, wy) in CIE 1931 xy.
        what: the argument's name, for messages.

    Returns:
        (rx, ry, gx, gy, bx, by, wx, wy) as floats.

    Raises:
        InputError: an unknown name, not 8 numbers, or numbers that define no colour space
            (see :func:`rgb_to_xyz_matrix`).
    """
    if isinstance(primaries, str):
        for name, chromaticities in PRIMARIES.items():
            if name == primaries:
                return chromaticities
        raise InputError(f"{what} {primaries!r} is not one of {sorted(PRIMARIES)}")
    try:
        values = tuple(float(v) for v in primaries)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 8:
        raise InputError(
            f"{what} must be one of {sorted(PRIMARIES)} or 8 numbers (rx, ry, gx, gy, bx, by, wx, wy), "
            f"not {primaries!r:.80}"
        )
    rx, ry, gx, gy, bx, by, wx, wy = values
    chromaticities = (rx, ry, gx, gy, bx, by, wx, wy)
    rgb_to_xyz_matrix(chromaticities)  # raises InputError unless they define a colour space
    return chromaticities


def _bradford_adaptation(
    source_white: tuple[float, float], target_white: tuple[float, float]
) -> NDArray[np.float64]:
    source_cone = _BRADFORD @ _xy_to_xyz(*source_white)
    target_cone = _BRADFORD @ _xy_to_xyz(*target_white)
    return np.linalg.inv(_BRADFORD) @ np.diag(target_cone / source_cone) @ _BRADFORD


def conversion_matrix(source: Chromaticities, target: Chromaticities) -> NDArray[np.float64]:
    """The 3x3 matrix taking linear RGB in ``source`` primaries to ``target`` primaries.

    When the white points differ, colours are adapted with the Bradford transform, so that
    the source white lands on the target white.

    Returns:
        float64 (3, 3); ``rgb_target = M @ rgb_source``.
    """
    to_xyz = rgb_to_xyz_matrix(source)
    from_xyz = np.linalg.inv(rgb_to_xyz_matrix(target))
    source_white, target_white = source[6:8], target[6:8]
    if np.allclose(source_white, target_white, atol=1e-4):
        return from_xyz @ to_xyz
    return from_xyz @ _bradford_adaptation(source_white, target_white) @ to_xyz


def convert_primaries(rgb: np.ndarray, source: Chromaticities, target: Chromaticities) -> NDArray[np.float32]:
    """Convert linear RGB pixels between primaries.

    Args:
        rgb: float (..., 3), linear light in ``source`` primaries.
        source: chromaticities of ``rgb``.
        target: chromaticities wanted.

    Returns:
        float32 (..., 3), linear light in ``target`` primaries (not clipped).
    """
    matrix = conversion_matrix(source, target).astype(np.float32)
    converted: NDArray[np.float32] = np.asarray(rgb, dtype=np.float32) @ matrix.T
    return converted


def luminance_weights(chromaticities: Chromaticities) -> NDArray[np.float64]:
    """The Y row of the RGB-to-XYZ matrix: float64 (3,), relative luminance of each primary."""
    weights: NDArray[np.float64] = rgb_to_xyz_matrix(chromaticities)[1]
    return weights


#: CIE 15:2004 §8.2.1: below (6/29)^3 the cube root of CIELAB becomes a line.
_LAB_DELTA = 6.0 / 29.0


def _lab_f(t: NDArray[np.float64]) -> NDArray[np.float64]:
    # CIE 15:2004 eq. 8.11: cube root above delta^3, a line below (also keeps negatives finite).
    return np.where(t > _LAB_DELTA**3, np.cbrt(t), t / (3.0 * _LAB_DELTA**2) + 4.0 / 29.0)


def _lab_f_inverse(f: NDArray[np.float64]) -> NDArray[np.float64]:
    # The two pieces of _lab_f meet at f = delta, so the inverse switches there.
    return np.where(f > _LAB_DELTA, f**3, 3.0 * _LAB_DELTA**2 * (f - 4.0 / 29.0))


def xyz_to_lab(xyz: np.ndarray, white_xyz: np.ndarray) -> NDArray[np.float64]:
    """CIE XYZ to CIELAB relative to a white (CIE 15:2004 §8.2.1).

    Args:
        xyz: float (..., 3), X, Y, Z on the scale of ``white_xyz``.
        white_xyz: float (3,), the reference white.

    Returns:
        float64 (..., 3): L*, a*, b*.
    """
    fx, fy, fz = np.moveaxis(_lab_f(np.asarray(xyz, dtype=np.float64) / white_xyz), -1, 0)
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_xyz(lab: np.ndarray, white_xyz: np.ndarray) -> NDArray[np.float64]:
    """CIELAB to CIE XYZ relative to a white: the inverse of :func:`xyz_to_lab`.

    Args:
        lab: float (..., 3), L*, a*, b*.
        white_xyz: float (3,), the reference white.

    Returns:
        float64 (..., 3), X, Y, Z on the scale of ``white_xyz``; colours outside the real
        ones (large a* or b*) may give negative values.
    """
    lightness, a, b = np.moveaxis(np.asarray(lab, dtype=np.float64), -1, 0)
    fy = (lightness + 16.0) / 116.0
    f = np.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz: NDArray[np.float64] = _lab_f_inverse(f) * white_xyz
    return xyz


#: ICC.1:2022 §7.2.16: the profile connection space's illuminant, D50, as the header stores it.
ICC_D50_XYZ = (0.9642, 1.0, 0.8249)
#: ICC parametric curves (ICC.1:2022 §10.18): function type and parameters of each SDR transfer.
_ICC_CURVES: dict[TransferName, tuple[int, tuple[float, ...]]] = {
    "srgb": (3, (2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045)),
    "gamma2.4": (0, (2.4,)),
}
_ICC_NAMES = {"bt709": "sRGB", "display-p3": "Display P3", "bt2020": "BT.2020"}


def _s15f16(*values: float) -> bytes:
    """ICC s15Fixed16Number values, big-endian."""
    return b"".join(int(round(v * 65536.0)).to_bytes(4, "big", signed=True) for v in values)


def _mluc(text: str) -> bytes:
    """An ICC multiLocalizedUnicodeType holding one en-US string."""
    utf16 = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + (1).to_bytes(4, "big") + (12).to_bytes(4, "big") + b"enUS" + \
        len(utf16).to_bytes(4, "big") + (28).to_bytes(4, "big") + utf16


def icc_profile(primaries: PrimariesName, transfer: TransferName) -> bytes:
    """An ICC v4.3 display profile of RGB in ``primaries`` (D65) encoded with ``transfer``.

    A matrix/TRC profile (ICC.1:2022 §F.3): the primaries adapted to the D50 connection space
    with the Bradford transform (recorded in its ``chad`` tag), one parametric curve for the
    three channels. "srgb" with "bt709" describes the same colours as IEC 61966-2-1's sRGB;
    "srgb" with "display-p3" those of Apple's Display P3. The bytes depend on nothing but the
    arguments (a fixed date, no profile ID), so that an encode is reproducible.

    Args:
        primaries: a key of :data:`PRIMARIES`.
        transfer: "srgb" or "gamma2.4".

    Returns:
        The profile's bytes.
    """
    white_xy = (ICC_D50_XYZ[0] / sum(ICC_D50_XYZ), ICC_D50_XYZ[1] / sum(ICC_D50_XYZ))
    chromaticities = PRIMARIES[primaries]
    adaptation = _bradford_adaptation(chromaticities[6:8], white_xy)
    columns = adaptation @ rgb_to_xyz_matrix(chromaticities)
    kind, parameters = _ICC_CURVES[transfer]
    curve = b"para" + bytes(4) + kind.to_bytes(2, "big") + bytes(2) + _s15f16(*parameters)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _mluc(f"{_ICC_NAMES[primaries]} ({transfer}), gainmap_format")),
        (b"cprt", _mluc("No copyright, use freely")),
        (b"wtpt", b"XYZ " + bytes(4) + _s15f16(*ICC_D50_XYZ)),
        (b"chad", b"sf32" + bytes(4) + _s15f16(*adaptation.ravel())),
        *((name, b"XYZ " + bytes(4) + _s15f16(*column))
          for name, column in zip((b"rXYZ", b"gXYZ", b"bXYZ"), columns.T, strict=True)),
    ]
    table_end = 128 + 4 + 12 * (len(tags) + 3)
    entries, data = [], b""
    for signature, body in tags:
        entries.append(signature + (table_end + len(data)).to_bytes(4, "big") + len(body).to_bytes(4, "big"))
        data += body + bytes(-len(body) % 4)
    # The three channels share one curve, stored once.
    curve_offset = table_end + len(data)
    curve_entry = curve_offset.to_bytes(4, "big") + len(curve).to_bytes(4, "big")
    entries += [name + curve_entry for name in (b"rTRC", b"gTRC", b"bTRC")]
    data += curve + bytes(-len(curve) % 4)
    size = table_end + len(data)
    header = (
        size.to_bytes(4, "big") + bytes(4) + bytes([4, 0x30, 0, 0]) + b"mntrRGB XYZ "
        + b"".join(v.to_bytes(2, "big") for v in (2026, 1, 1, 0, 0, 0)) + b"acsp" + bytes(24)
        + bytes(4) + _s15f16(*ICC_D50_XYZ) + bytes(4 + 16 + 28)
    )
    return header + len(entries).to_bytes(4, "big") + b"".join(entries) + data
