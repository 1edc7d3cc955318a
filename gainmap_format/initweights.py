"""Shipped initial weights: where they live, how they are read and checked, how they are written.

``gainmap_format/init/`` holds one ``.npz`` per configuration, named
``{residual}-{activation}-{width}.npz`` (for instance ``gamma-sine-16.npz``), whose arrays are
the :class:`~gainmap_format.network.MlpWeights` parameters by name, and beside it a ``.json``
record of how it was made (``metainit.py`` writes both). Encoding starts its fit from these
weights unless told otherwise. This module needs numpy only, never torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .atomic import write_bytes
from .errors import InputError
from .network import PARAMETER_NAMES, MlpWeights, parameter_shapes
from .registries import Activation, ResidualKind

#: The folder of shipped weights, inside the package.
INIT_FOLDER = Path(__file__).resolve().parent / "init"

#: Packages whose frames lie between a library warning and the line of the caller's that caused it.
_LIBRARY_PACKAGES = ("gainmap_format", "pillow_plugin", "PIL")


class MissingInitWarning(UserWarning):
    """Meta-initialisation was asked for, but none ships for the configuration: random weights were used."""


def warn_missing_init(residual: ResidualKind, activation: Activation, width: int) -> None:
    """Warn with :class:`MissingInitWarning`, pointing at the caller's line outside the library."""
    warnings.warn(
        f"no meta-initialisation ships for {initial_weights_name(residual, activation, width)}; "
        "starting from random weights",
        MissingInitWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` at which the function calling this sees the first frame outside the library.

    The depth differs by entry point (``encode``, ``encode_file``, ``encode_prepared``, a Pillow
    save through the plugin), so it is counted rather than fixed; Python 3.12's
    ``skip_file_prefixes`` would do the same, but 3.10 is supported.
    """
    level = 1
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] in _LIBRARY_PACKAGES:
        frame = frame.f_back
        level += 1
    return level


def initial_weights_name(residual: ResidualKind, activation: Activation, width: int) -> str:
    """The file stem of a configuration, e.g. "gamma-sine-16"."""
    return f"{residual}-{activation}-{width}"


def _read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    archive = np.load(path, allow_pickle=False)
    # np.load also reads a bare .npy, which gives one array rather than named ones.
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError("not an .npz archive of named arrays")
    with archive:
        return {name: archive[name] for name in archive.files}


def read_initial_weights(path: str | os.PathLike[str], width: int | None = None) -> MlpWeights:
    """Read and check one weights file.

    Args:
        path: an ``.npz`` holding exactly the arrays of ``network.PARAMETER_NAMES``.
        width: the hidden width expected; None takes it from the file's ``b1``.

    Returns:
        The weights, float32 arrays of the shapes of spec §6.2.

    Raises:
        InputError: the file cannot be read, lacks or adds arrays, or holds arrays of the
            wrong shape or dtype, or non-finite values.
    """
    try:
        arrays = _read_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read initial weights {path}: {exc}") from exc
    if set(arrays) != set(PARAMETER_NAMES):
        raise InputError(f"initial weights {path} hold arrays {sorted(arrays)}, expected {sorted(PARAMETER_NAMES)}")
    if width is None:
        if arrays["b1"].ndim != 1:
            raise InputError(f"initial weights {path}: b1 has shape {arrays['b1'].shape}, expected (width,)")
        width = int(arrays["b1"].shape[0])
    for name, shape in parameter_shapes(width).items():
        array = arrays[name]
        if array.shape != shape or array.dtype != np.float32:
            raise InputError(
                f"initial weights {path}: {name} is {array.dtype} {array.shape}, expected float32 {shape}"
            )
        if not np.all(np.isfinite(array)):
            raise InputError(f"initial weights {path}: {name} holds NaN or infinite values")
    return MlpWeights(**arrays)


def load_initial_weights(
    residual: ResidualKind, activation: Activation, width: int, folder: str | os.PathLike[str] | None = None
) -> MlpWeights | None:
    """The shipped initialisation of a configuration, or None when none ships.

    Args:
        residual: "gamma" or "gain".
        activation: "sine" or "relu".
        width: hidden width.
        folder: where to look; None for :data:`INIT_FOLDER` (read at call time).

    Returns:
        The checked weights, or None when the file does not exist.

    Raises:
        InputError: the file exists but is damaged (see :func:`read_initial_weights`).
    """
    path = Path(INIT_FOLDER if folder is None else folder) / f"{initial_weights_name(residual, activation, width)}.npz"
    if not path.is_file():
        return None
    return read_initial_weights(path, width)


def weights_bytes(weights: MlpWeights) -> bytes:
    """The ``.npz`` file of some weights, uncompressed, arrays by parameter name."""
    buffer = io.BytesIO()
    arrays = {name: np.asarray(a, dtype=np.float32) for name, a in weights.arrays().items()}
    # numpy's stubs let the ** arrays reach savez's allow_pickle: bool too. Passing allow_pickle
    # explicitly is no way out: the older numpy releases we support would store it as an array.
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def write_initial_weights(path: str | os.PathLike[str], weights: MlpWeights, record: dict[str, object]) -> Path:
    """Write a weights file and its JSON record beside it, each atomically.

    Args:
        path: the ``.npz`` to write; the record goes to the same name with ``.json``.
        weights: the weights.
        record: JSON-ready facts of how the weights were made; the SHA-256 of the bytes
            written is added as "weights_sha256".

    Returns:
        The record's path.
    """
    path = Path(path)
    record_path = path.with_suffix(".json")
    data = weights_bytes(weights)
    record = {**record, "weights_sha256": hashlib.sha256(data).hexdigest()}
    write_bytes(path, data)
    write_bytes(record_path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return record_path
