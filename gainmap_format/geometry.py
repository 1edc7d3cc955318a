"""Where an edited image's pixels lie in the pixel space its network was fitted on (spec §4.7).

A GainMLP map is a function of position, so a crop, resize, rotation or flip of the base changes
only which source position each output pixel asks the network about, never the weights. A
:class:`Placement` records that as one affine map from the output image's continuous pixel
coordinates to the source image's; each edit composes its own map onto it, so chained edits stay
one transform.

Coordinates are continuous pixel coordinates with pixel (i, j)'s centre at (i + 0.5, j + 0.5):
the convention of Pillow's ``Image.transform(size, Transform.AFFINE, data)``, whose ``data`` is
exactly this module's :data:`Matrix`. Each method returns the size that the Pillow operation of
the same name gives, and the tests check every one against Pillow itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

#: An affine map (a, b, c, d, e, f): (x, y) -> (a x + b y + c, d x + e y + f).
Matrix = tuple[float, float, float, float, float, float]

IDENTITY: Matrix = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# Image.Transpose's values, which are also the Exif orientations' building blocks.
FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM, ROTATE_90, ROTATE_180, ROTATE_270, TRANSPOSE, TRANSVERSE = range(7)

#: The transpose that ``ImageOps.exif_transpose`` applies for each Exif orientation (1 needs none).
EXIF_TRANSPOSES: dict[int, int] = {
    2: FLIP_LEFT_RIGHT,
    3: ROTATE_180,
    4: FLIP_TOP_BOTTOM,
    5: TRANSPOSE,
    6: ROTATE_270,
    7: TRANSVERSE,
    8: ROTATE_90,
}


def compose(outer: Matrix, inner: Matrix) -> Matrix:
    """The map p -> outer(inner(p)).

    Args:
        outer: applied second.
        inner: applied first.

    Returns:
        The composed matrix.
    """
    a, b, c, d, e, f = outer
    p, q, r, s, t, u = inner
    return (a * p + b * s, a * q + b * t, a * r + b * u + c, d * p + e * s, d * q + e * t, d * r + e * u + f)


def apply(matrix: Matrix, x: float, y: float) -> tuple[float, float]:
    """The image of the point (x, y) under ``matrix``."""
    a, b, c, d, e, f = matrix
    return a * x + b * y + c, d * x + e * y + f


def _scale(sx: float, sy: float) -> Matrix:
    return (sx, 0.0, 0.0, 0.0, sy, 0.0)


def _transpose_matrix(method: int, width: int, height: int) -> tuple[Matrix, tuple[int, int]]:
    """Output-to-input matrix and output size of ``Image.transpose(method)`` on a (width, height) image."""
    w, h = float(width), float(height)
    table: dict[int, tuple[Matrix, tuple[int, int]]] = {
        FLIP_LEFT_RIGHT: ((-1.0, 0.0, w, 0.0, 1.0, 0.0), (width, height)),
        FLIP_TOP_BOTTOM: ((1.0, 0.0, 0.0, 0.0, -1.0, h), (width, height)),
        # Counter-clockwise: output pixel (x, y) shows input (w - y, x).
        ROTATE_90: ((0.0, -1.0, w, 1.0, 0.0, 0.0), (height, width)),
        ROTATE_180: ((-1.0, 0.0, w, 0.0, -1.0, h), (width, height)),
        ROTATE_270: ((0.0, 1.0, 0.0, -1.0, 0.0, h), (height, width)),
        TRANSPOSE: ((0.0, 1.0, 0.0, 1.0, 0.0, 0.0), (height, width)),
        TRANSVERSE: ((0.0, -1.0, w, -1.0, 0.0, h), (height, width)),
    }
    if method not in table:
        raise InputError(f"transpose method {method!r} is not one of Image.Transpose's values 0..6")
    return table[method]


def _check_size(size: tuple[int, int], what: str) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise InputError(f"{what} {size!r} is not a (width, height) pair of positive integers")
    return (int(size[0]), int(size[1]))


def _check_matrix(matrix: tuple[float, ...], what: str) -> Matrix:
    if len(matrix) != 6 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in matrix):
        raise InputError(f"{what} {matrix!r} is not six finite numbers")
    a, b, c, d, e, f = (float(v) for v in matrix)
    return (a, b, c, d, e, f)


@dataclass(frozen=True)
class Placement:
    """Where an image's pixels lie in the pixel space the network was fitted on.

    Attributes:
        source_size: (width, height) of the image the network was fitted on.
        size: (width, height) of the image this placement describes.
        matrix: output (x, y) -> source (a x + b y + c, d x + e y + f), in continuous pixel
            coordinates with pixel (i, j)'s centre at (i + 0.5, j + 0.5): Pillow's AFFINE
            ``data`` convention.

    Raises:
        InputError: a size that is not two positive integers, or a matrix entry that is not finite.
    """

    source_size: tuple[int, int]
    size: tuple[int, int]
    matrix: Matrix

    def __post_init__(self) -> None:
        """Check the fields and store them as plain ints and floats."""
        object.__setattr__(self, "source_size", _check_size(self.source_size, "source size"))
        object.__setattr__(self, "size", _check_size(self.size, "size"))
        object.__setattr__(self, "matrix", _check_matrix(self.matrix, "placement matrix"))

    @classmethod
    def identity(cls, size: tuple[int, int]) -> Placement:
        """The placement of the unedited image of ``size`` (width, height)."""
        return cls(size, size, IDENTITY)

    @property
    def is_identity(self) -> bool:
        """True when the image is the source itself: same size, identity matrix."""
        return self.size == self.source_size and self.matrix == IDENTITY

    @property
    def is_axis_aligned(self) -> bool:
        """True when source x depends on output x only and source y on output y only (b = d = 0)."""
        return self.matrix[1] == 0.0 and self.matrix[3] == 0.0

    @property
    def is_swapped(self) -> bool:
        """True when source x depends on output y only and source y on output x only (a = e = 0)."""
        return self.matrix[0] == 0.0 and self.matrix[4] == 0.0

    def source_positions(self, top: int, bottom: int) -> tuple[np.ndarray, np.ndarray]:
        """Spec §6.1: where the pixel centres of output rows top..bottom - 1 lie in the source.

        Evaluated as the spec orders it, (a x + b y) + c and (d x + e y) + f, in binary64.

        Returns:
            x_s and y_s, float64 (bottom - top, W) each, continuous source pixel coordinates.
        """
        a, b, c, d, e, f = self.matrix
        across, down = np.arange(self.size[0]) + 0.5, np.arange(top, bottom)[:, None] + 0.5
        return a * across + b * down + c, d * across + e * down + f

    @property
    def reaches_outside(self) -> bool:
        """True when some pixel lies outside the source (spec §6.1 [NET-14]), to skip the test per pixel.

        x_s and y_s are monotone in each output coordinate, also after binary64 rounding, and the
        bounds they are tested against are constants, so the four corner pixels decide for them all.
        """
        height = self.size[1]
        return any(bool(self.outside_source(row, row + 1)[0, [0, -1]].any()) for row in {0, height - 1})

    def outside_source(self, top: int, bottom: int) -> np.ndarray:
        """Spec §6.1 [NET-14]: which pixels of output rows top..bottom - 1 lie outside the source.

        A pixel lies outside when its centre (x_s, y_s) maps outside the closed source rectangle
        grown by its margins (:meth:`outside_margins`): x_s < -m_x, x_s > W0 + m_x, y_s < -m_y or
        y_s > H0 + m_y.

        Returns:
            bool (bottom - top, W).
        """
        a, b, c, d, e, f = self.matrix
        across, down = np.arange(self.size[0]) + 0.5, np.arange(top, bottom)[:, None] + 0.5
        # Where each of x_s, y_s follows one output axis, the outside set is whole rows and columns:
        # test a row and a column only (the zero terms of the full sum change no value).
        if self.is_axis_aligned:
            x, y = a * across + c, e * down + f
        elif self.is_swapped:
            x, y = b * down + c, d * across + f
        else:
            x, y = self.source_positions(top, bottom)
        width, height = self.source_size
        margin_x, margin_y = self.outside_margins
        outside: np.ndarray = np.broadcast_to(
            (x < -margin_x) | (x > width + margin_x) | (y < -margin_y) | (y > height + margin_y),
            (bottom - top, self.size[0]),
        )
        return outside

    @property
    def outside_margins(self) -> tuple[float, float]:
        """Spec §6.1 [NET-14]: (m_x, m_y), how far past the source's edges a pixel centre still holds content.

        An output pixel that steps n = sqrt(a² + b²) > 1 source columns (a reduction, a downscale)
        summarises a run of about n source pixels, its centre (n - 1) / 2 from the first and from
        the last of their centres: a reduction's partial last block, whose run starts inside the
        source, has its centre within m_x = (n - 1) / 2 of the edge; a run wholly outside has it
        at least half a source pixel further. A pixel that steps at most one source pixel (crops,
        rotations, transposes, enlargements) gets m_x = 0: the centre rule, by which Pillow's own
        transforms fill. m_y likewise from (d, e).

        Returns:
            (m_x, m_y) in source pixels, each ≥ 0, computed in binary64 as max(0, sqrt(a a + b b) - 1) / 2.
        """
        a, b, _, d, e, _ = self.matrix
        return max(0.0, math.sqrt(a * a + b * b) - 1.0) / 2.0, max(0.0, math.sqrt(d * d + e * e) - 1.0) / 2.0

    def _then(self, size: tuple[int, int], inner: Matrix) -> Placement:
        """The placement after an edit whose own output-to-input map is ``inner``."""
        return Placement(self.source_size, size, compose(self.matrix, inner))

    def crop(self, box: tuple[int, int, int, int]) -> Placement:
        """``Image.crop(box)``: the (left, upper, right, lower) window, which may extend outside.

        Raises:
            InputError: right < left or lower < upper, or an empty window.
        """
        # Pillow rounds the box to whole pixels.
        left, upper, right, lower = (int(round(v)) for v in box)
        size = _check_size((right - left, lower - upper), "crop size")
        return self._then(size, (1.0, 0.0, float(left), 0.0, 1.0, float(upper)))

    def resize(self, size: tuple[int, int], box: tuple[float, float, float, float] | None = None) -> Placement:
        """``Image.resize(size, box=box)``: the box (default the whole image) scaled to ``size``.

        This is also the geometry of ``reduce`` (see :meth:`reduce`) and ``thumbnail``.
        """
        size = _check_size(size, "resize size")
        x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(self.size[0]), float(self.size[1]))
        return self._then(size, ((x1 - x0) / size[0], 0.0, float(x0), 0.0, (y1 - y0) / size[1], float(y0)))

    def reduce(self, factor: int | tuple[int, int], box: tuple[int, int, int, int] | None = None) -> Placement:
        """``Image.reduce(factor, box)``: whole blocks of factor pixels averaged into one.

        Pillow's last column (row) averages a partial block when the box's width (height) is not
        a multiple of the factor; that pixel is placed as if its block were whole.
        """
        fx, fy = (factor, factor) if isinstance(factor, int) else factor
        x0, y0, x1, y1 = box if box is not None else (0, 0, self.size[0], self.size[1])
        width, height = -(-(x1 - x0) // fx), -(-(y1 - y0) // fy)
        return self.resize((width, height), (x0, y0, x0 + width * fx, y0 + height * fy))

    def rotate(
        self,
        angle: float,
        expand: bool = False,
        center: tuple[float, float] | None = None,
        translate: tuple[float, float] | None = None,
    ) -> Placement:
        """``Image.rotate(angle, expand=, center=, translate=)``, counter-clockwise in degrees.

        The matrix and output size are Pillow's own, fast paths included (angles of 0, 90, 180
        and 270 degrees that Pillow serves with ``transpose``).
        """
        width, height = self.size
        angle = angle % 360.0
        if not (center or translate):
            if angle == 0:
                return self._then(self.size, IDENTITY)
            if angle == 180:
                return self.transpose(ROTATE_180)
            if angle in (90, 270) and (expand or width == height):
                return self.transpose(ROTATE_90 if angle == 90 else ROTATE_270)
        post_x, post_y = translate if translate is not None else (0.0, 0.0)
        cx, cy = center if center is not None else (width / 2, height / 2)
        radians = -math.radians(angle)
        cos, sin = round(math.cos(radians), 15), round(math.sin(radians), 15)
        rotation: Matrix = (cos, sin, 0.0, -sin, cos, 0.0)
        tx, ty = apply(rotation, -cx - post_x, -cy - post_y)
        matrix: Matrix = (cos, sin, tx + cx, -sin, cos, ty + cy)
        if expand:
            corners = [apply(matrix, x, y) for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
            xs, ys = [x for x, _ in corners], [y for _, y in corners]
            new_width = math.ceil(max(xs)) - math.floor(min(xs))
            new_height = math.ceil(max(ys)) - math.floor(min(ys))
            tx, ty = apply(matrix, -(new_width - width) / 2.0, -(new_height - height) / 2.0)
            matrix = (cos, sin, tx, -sin, cos, ty)
            width, height = new_width, new_height
        return self._then((width, height), matrix)

    def transpose(self, method: int) -> Placement:
        """``Image.transpose(method)`` with ``Image.Transpose``'s values 0..6.

        Raises:
            InputError: ``method`` is not one of them.
        """
        inner, size = _transpose_matrix(int(method), *self.size)
        return self._then(size, inner)

    def affine(self, size: tuple[int, int], data: Matrix) -> Placement:
        """``Image.transform(size, Transform.AFFINE, data)``."""
        return self._then(_check_size(size, "transform size"), _check_matrix(data, "affine data"))

    def map_matrix(self, source_map_size: tuple[int, int], map_size: tuple[int, int]) -> Matrix:
        """The AFFINE ``data`` that takes a standard gain map to this placement's edit.

        A standard map covers its base edge to edge at its own resolution. The result maps an
        output map pixel to the output base, then to the source base, then to the source map.

        Args:
            source_map_size: (width, height) of the source file's map image.
            map_size: (width, height) wanted for the edited map image.

        Returns:
            Matrix for ``Image.transform(map_size, Transform.AFFINE, data)`` on the source map.
        """
        (mw0, mh0), (mw, mh) = _check_size(source_map_size, "source map size"), _check_size(map_size, "map size")
        to_base = _scale(self.size[0] / mw, self.size[1] / mh)
        to_map = _scale(mw0 / self.source_size[0], mh0 / self.source_size[1])
        return compose(to_map, compose(self.matrix, to_base))
