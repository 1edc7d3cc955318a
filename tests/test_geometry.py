"""Placement (geometry.py) against Pillow itself: each edit must point every output pixel at the
source pixel that Pillow's own operation sampled."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageOps

from gainmap_format.errors import InputError
from gainmap_format.geometry import EXIF_TRANSPOSES, IDENTITY, ROTATE_90, Placement, apply, compose

SOURCE = (23, 17)
N = Image.Resampling.NEAREST
# A source position this close to a pixel edge may round either way in Pillow's float32 arithmetic.
EDGE = 1e-3


def index_image(size: tuple[int, int] = SOURCE) -> Image.Image:
    """Mode I image whose pixel (x, y) holds 1 + y W + x; 0 is Pillow's fill outside the source."""
    width, height = size
    values = 1 + np.arange(width * height, dtype=np.int32).reshape(height, width)
    return Image.fromarray(values, mode="I")


def check_sampling(placement: Placement, out: Image.Image, window: tuple[int, int, int, int] | None = None) -> int:
    """Every output pixel whose mapped centre is clearly inside one source pixel (or clearly
    outside the source ``window`` that the edits kept) holds that pixel's index (or the fill).
    Returns the number of pixels checked."""
    assert placement.size == out.size
    width0, height0 = placement.source_size
    left, top, right, bottom = window or (0, 0, width0, height0)
    got = np.asarray(out, dtype=np.int64)
    ys, xs = np.mgrid[0 : out.size[1], 0 : out.size[0]] + 0.5
    a, b, c, d, e, f = placement.matrix
    sx, sy = a * xs + b * ys + c, d * xs + e * ys + f
    clear = (np.abs(sx - np.round(sx)) > EDGE) & (np.abs(sy - np.round(sy)) > EDGE)
    inside = (sx >= left) & (sx < right) & (sy >= top) & (sy < bottom)
    expected = np.where(inside, 1 + np.floor(sy) * width0 + np.floor(sx), 0).astype(np.int64)
    np.testing.assert_array_equal(got[clear], expected[clear])
    return int(clear.sum())


EDITS: dict[str, tuple[Callable[[Image.Image], Image.Image], Callable[[Placement], Placement]]] = {
    "crop": (lambda im: im.crop((3, 2, 15, 11)), lambda p: p.crop((3, 2, 15, 11))),
    "crop-outside": (lambda im: im.crop((-4, -3, 30, 12)), lambda p: p.crop((-4, -3, 30, 12))),
    "resize-half": (lambda im: im.resize((11, 8), N), lambda p: p.resize((11, 8))),
    "resize-up": (lambda im: im.resize((50, 41), N), lambda p: p.resize((50, 41))),
    "resize-box": (
        lambda im: im.resize((9, 7), N, box=(2.5, 1.25, 20.0, 15.5)),
        lambda p: p.resize((9, 7), (2.5, 1.25, 20.0, 15.5)),
    ),
    "rotate-37": (lambda im: im.rotate(37, N), lambda p: p.rotate(37)),
    "rotate-37-expand": (lambda im: im.rotate(37, N, expand=True), lambda p: p.rotate(37, expand=True)),
    "rotate-90": (lambda im: im.rotate(90, N), lambda p: p.rotate(90)),
    "rotate-90-expand": (lambda im: im.rotate(90, N, expand=True), lambda p: p.rotate(90, expand=True)),
    "rotate-270-expand": (lambda im: im.rotate(-90, N, expand=True), lambda p: p.rotate(-90, expand=True)),
    "rotate-180": (lambda im: im.rotate(180, N), lambda p: p.rotate(180)),
    "rotate-0": (lambda im: im.rotate(360, N), lambda p: p.rotate(360)),
    "rotate-center-translate": (
        lambda im: im.rotate(-21.5, N, center=(4, 6), translate=(3, -2)),
        lambda p: p.rotate(-21.5, center=(4, 6), translate=(3, -2)),
    ),
    "rotate-expand-center": (
        lambda im: im.rotate(120, N, expand=True, center=(0, 0)),
        lambda p: p.rotate(120, expand=True, center=(0, 0)),
    ),
    "affine": (
        lambda im: im.transform((19, 21), Image.Transform.AFFINE, (0.7, 0.2, 1.5, -0.3, 0.9, 4.0), N),
        lambda p: p.affine((19, 21), (0.7, 0.2, 1.5, -0.3, 0.9, 4.0)),
    ),
}
EDITS.update(
    {
        f"transpose-{method.name}": (
            lambda im, m=method: im.transpose(m),
            lambda p, m=method: p.transpose(m),
        )
        for method in Image.Transpose
    }
)


@pytest.mark.parametrize("name", sorted(EDITS))
def test_each_edit_samples_where_pillow_does(name: str) -> None:
    edit_image, edit_placement = EDITS[name]
    placement = edit_placement(Placement.identity(SOURCE))
    assert check_sampling(placement, edit_image(index_image())) > 0.5 * math.prod(placement.size)


def test_chained_edits_compose_into_one_placement() -> None:
    # Crops and transposes move whole pixels, so one resampling at the end samples the source
    # exactly where the composed placement says. Pillow fills what the first crop cut away; the
    # placement still points there (the network is defined there).
    image = index_image().crop((2, 1, 21, 16)).transpose(Image.Transpose.ROTATE_90)
    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(37, N, expand=True).crop((1, 2, 20, 18))
    placement = Placement.identity(SOURCE).crop((2, 1, 21, 16)).transpose(Image.Transpose.ROTATE_90)
    placement = placement.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(37, expand=True).crop((1, 2, 20, 18))
    assert check_sampling(placement, image, window=(2, 1, 21, 16)) > 100


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_are_transposes(orientation: int) -> None:
    image = index_image()
    image.getexif()[0x0112] = orientation
    turned = ImageOps.exif_transpose(image)
    method = EXIF_TRANSPOSES.get(orientation)
    placement = Placement.identity(SOURCE)
    if method is not None:
        placement = placement.transpose(method)
    assert check_sampling(placement, turned) == math.prod(SOURCE)


@pytest.mark.parametrize(("factor", "box"), [(2, None), ((3, 2), None), (4, (1, 2, 21, 15))])
def test_reduce_places_each_block_at_its_centre(factor: int | tuple[int, int], box: tuple[int, ...] | None) -> None:
    # Averaging a ramp of pixel-centre x (y) over a block gives the block's centre.
    width, height = SOURCE
    ramp_x = Image.fromarray(np.tile(np.arange(width, dtype=np.float32) + 0.5, (height, 1)), mode="F")
    ramp_y = Image.fromarray(np.tile(np.arange(height, dtype=np.float32)[:, None] + 0.5, (1, width)), mode="F")
    placement = Placement.identity(SOURCE).reduce(factor, box)  # type: ignore[arg-type]
    out_x, out_y = (np.asarray(r.reduce(factor, box)) for r in (ramp_x, ramp_y))  # type: ignore[arg-type]
    assert placement.size == (out_x.shape[1], out_x.shape[0])
    fx, fy = (factor, factor) if isinstance(factor, int) else factor
    # Pillow averages a partial last block over fewer pixels: compare whole blocks only.
    x0, y0, x1, y1 = box or (0, 0, width, height)
    whole = np.s_[: (y1 - y0) // fy, : (x1 - x0) // fx]
    ys, xs = np.mgrid[0 : out_x.shape[0], 0 : out_x.shape[1]] + 0.5
    sx, sy = apply(placement.matrix, xs, ys)  # type: ignore[arg-type]
    np.testing.assert_allclose(out_x[whole], np.asarray(sx)[whole], atol=1e-4)
    np.testing.assert_allclose(out_y[whole], np.asarray(sy)[whole], atol=1e-4)


def test_identity_and_its_properties() -> None:
    placement = Placement.identity((40, 30))
    assert placement.is_identity and placement.is_axis_aligned and not placement.is_swapped
    assert placement.matrix == IDENTITY
    assert placement.rotate(0).is_identity
    assert placement.transpose(Image.Transpose.FLIP_LEFT_RIGHT).transpose(Image.Transpose.FLIP_LEFT_RIGHT).is_identity
    assert not placement.crop((0, 0, 40, 29)).is_identity
    assert placement.transpose(Image.Transpose.ROTATE_90).is_swapped
    rotated = placement.rotate(37)
    assert not rotated.is_axis_aligned and not rotated.is_swapped


def test_compose_applies_inner_first() -> None:
    inner = (2.0, 0.0, 1.0, 0.0, 3.0, -1.0)
    outer = (0.0, 1.0, 5.0, -1.0, 0.0, 7.0)
    composed = compose(outer, inner)
    for point in ((0.0, 0.0), (1.5, -2.0), (10.0, 3.25)):
        assert apply(composed, *point) == pytest.approx(apply(outer, *apply(inner, *point)))


@pytest.mark.parametrize("edit", ["rotate-37-expand", "crop", "transpose-ROTATE_90", "resize-box"])
def test_map_matrix_follows_the_base_at_the_maps_resolution(edit: str) -> None:
    # The source map covers the base at a quarter of its resolution; each map pixel holds the base
    # x coordinate of its centre. The edited map must show the base position its pixel covers.
    base0, map0 = (48, 36), (12, 9)
    placement = EDITS[edit][1](Placement.identity(base0))
    map_size = (max(1, placement.size[0] // 4), max(1, placement.size[1] // 4))
    centres = (np.arange(map0[0], dtype=np.float32) + 0.5) * (base0[0] / map0[0])
    source_map = Image.fromarray(np.tile(centres, (map0[1], 1)), mode="F")
    data = placement.map_matrix(map0, map_size)
    edited = np.asarray(source_map.transform(map_size, Image.Transform.AFFINE, data, N))
    ys, xs = np.mgrid[0 : map_size[1], 0 : map_size[0]] + 0.5
    bx, by = xs * placement.size[0] / map_size[0], ys * placement.size[1] / map_size[1]
    a, b, c, d, e, f = placement.matrix
    sx, sy = a * bx + b * by + c, d * bx + e * by + f
    inside = (sx > 0) & (sx < base0[0]) & (sy > 0) & (sy < base0[1])
    # Nearest sampling: within half a source map pixel, in base pixels.
    assert np.abs(edited[inside] - sx[inside]).max() <= 0.5 * base0[0] / map0[0] + 1e-3


@pytest.mark.parametrize(
    "call",
    [
        lambda: Placement((0, 5), (5, 5), IDENTITY),
        lambda: Placement((5, 5), (5, 5), (1.0, 0.0, float("nan"), 0.0, 1.0, 0.0)),
        lambda: Placement((5, 5), (5, 5), (1.0, 0.0)),  # type: ignore[arg-type]
        lambda: Placement.identity((5, 5)).crop((3, 0, 2, 5)),
        lambda: Placement.identity((5, 5)).resize((0, 3)),
        lambda: Placement.identity((5, 5)).transpose(7),
        lambda: Placement.identity((5, 5)).affine((4, 4), (1.0, 0.0, 0.0, 0.0, float("inf"), 0.0)),
    ],
)
def test_bad_arguments_raise_input_error(call: Callable[[], object]) -> None:
    with pytest.raises(InputError):
        call()


@pytest.mark.parametrize("name", sorted(EDITS))
def test_outside_source_is_what_pillow_fills(name: str) -> None:
    """Spec §6.1 [NET-14]: where an output pixel steps at most one source pixel (no margin), the pixels
    outside the source are those Pillow's own edit fills (index 0); with a margin, a subset of them."""
    edit_image, edit_placement = EDITS[name]
    placement = edit_placement(Placement.identity(SOURCE))
    filled = np.asarray(edit_image(index_image())) == 0
    outside = placement.outside_source(0, placement.size[1])
    x, y = placement.source_positions(0, placement.size[1])
    # Pillow's rectangle is half-open and its arithmetic float32: judge only centres clear of the edges.
    clear = (np.minimum(np.abs(x), np.abs(x - SOURCE[0])) > EDGE) & (
        np.minimum(np.abs(y), np.abs(y - SOURCE[1])) > EDGE
    )
    assert outside.shape == filled.shape and not (outside & clear & ~filled).any()
    if placement.outside_margins == (0.0, 0.0):
        assert np.array_equal(outside[clear], filled[clear])
    # The separable shortcut gives what the full formula gives, and the corners decide for the whole image.
    mx, my = placement.outside_margins
    assert np.array_equal(outside, (x < -mx) | (x > SOURCE[0] + mx) | (y < -my) | (y > SOURCE[1] + my))
    assert placement.reaches_outside == bool(outside.any())
    assert np.array_equal(placement.outside_source(2, 5), outside[2:5])


def test_outside_margins_are_half_the_step_beyond_one_source_pixel() -> None:
    identity = Placement.identity((64, 48))
    assert identity.outside_margins == (0.0, 0.0)
    assert identity.rotate(37, expand=True).outside_margins == (0.0, 0.0)  # |step| = 1 up to rounding
    assert identity.resize((128, 96)).outside_margins == (0.0, 0.0)  # enlargement
    assert identity.reduce(3).outside_margins == (1.0, 1.0)
    assert identity.reduce((4, 2)).transpose(ROTATE_90).outside_margins == (1.5, 0.5)  # in source axes
    # A rotation of a reduction by 3: the step's length, not its components, decides.
    assert np.allclose(identity.reduce(3).rotate(37).outside_margins, (1.0, 1.0), atol=1e-12)


def test_outside_source_at_the_grown_rectangle_edges() -> None:
    # x_s = 2 x - 1.5, y_s = 2 y - 0.25, margins 1/2: column 0's centre (x_s = -0.5) lies on the grown
    # rectangle's edge, inside (closed); column 33 (x_s = 65.5) and row 24 (y_s = 48.75, a quarter
    # past H0 + 1/2) lie outside, row 23 (y_s = 46.75) inside.
    placement = Placement.identity((64, 48)).affine((34, 26), (2.0, 0.0, -1.5, 0.0, 2.0, -0.25))
    outside = placement.outside_source(0, 26)
    expected = np.zeros((26, 34), dtype=bool)
    expected[24:, :] = expected[:, 33] = True
    assert np.array_equal(outside, expected) and placement.reaches_outside
    assert not placement.crop((0, 0, 33, 24)).reaches_outside
    assert not Placement.identity((5, 3)).reaches_outside
    # Without a margin the rectangle is the source's, closed: a crop one pixel past an edge puts that
    # pixel's centre at -0.5, outside.
    assert np.array_equal(Placement.identity((5, 3)).crop((-1, 0, 5, 3)).outside_source(0, 3)[0], [1, 0, 0, 0, 0, 0])


def test_reduce_with_a_partial_block_has_no_pixel_outside() -> None:
    """Pillow's reduce of 64 columns by 3: the last block holds source column 63 alone, its centre at 64.5."""
    placement = Placement.identity((64, 48)).reduce(3)
    assert placement.size == (22, 16) and placement.source_positions(0, 1)[0][0, -1] == 64.5
    assert not placement.reaches_outside
    # The first block wholly past the edge would have its centre at 67.5, beyond W0 + m_x = 65.
    widened = placement.affine((23, 16), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    assert widened.outside_source(0, 1)[0].tolist() == [False] * 22 + [True]
