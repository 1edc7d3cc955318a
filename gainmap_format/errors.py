"""The library's exception hierarchy.

Every error the library raises on bad input is a :class:`GainmapError`. The
subclasses also derive from the closest built-in exception (``ValueError``,
``LookupError``) so that callers who already catch those keep working.

Messages say what was wrong and where: a byte offset, a segment, a field.
"""

from __future__ import annotations


class GainmapError(Exception):
    """Base class of every error this library raises on bad input."""


class InputError(GainmapError, ValueError):
    """A caller's argument or an input file (HDR image, SDR image) is unusable."""


class JpegError(GainmapError, ValueError):
    """The bytes are not a well-formed JPEG (bad marker, truncated segment)."""


class NoGainMapError(GainmapError, LookupError):
    """The JPEG is valid but carries no gain map of a kind this library reads."""


class ContainerError(GainmapError, ValueError):
    """Our gain-map container is damaged: bad checksum, missing or duplicate piece, bad field."""


class UnsupportedVersionError(ContainerError):
    """The container's minimum version is newer than this reader supports."""


class GraphContractError(ContainerError):
    """The embedded ONNX graph breaks the spec's graph contract (spec §6)."""


class StandardGainMapError(GainmapError, ValueError):
    """A standard gain map (ISO 21496-1, Ultra HDR XMP, Apple) is inconsistent or damaged."""


class InputRepairWarning(UserWarning):
    """An input was usable only after a repair, e.g. NaN or infinite HDR samples replaced.

    The message names the file and counts the pixels changed. Turn it into an error with
    ``warnings.simplefilter("error", InputRepairWarning)`` to refuse such inputs instead.
    """
