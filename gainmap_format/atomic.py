"""Writing output files so that a failure never leaves a half-written or damaged file."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_target(path: str | os.PathLike[str]) -> None:
    """Raise the error that writing ``path`` would end in, before any work is done for it.

    Lets a caller refuse an impossible output at once rather than after a long computation.

    Args:
        path: the file to be written (it may exist; it is replaced).

    Raises:
        IsADirectoryError: ``path`` is a folder.
        FileNotFoundError: the folder that would hold it does not exist.
        NotADirectoryError: that folder's path names a file.
        PermissionError: the file exists and is read-only (a rename could replace it, but a
            plain ``open()`` would refuse, and so do we), or no file can be created in that
            folder.
        Each carries ``path`` as its ``filename`` and says what is wrong in ``strerror``.
    """
    name = os.fsdecode(path)
    target = Path(os.path.realpath(name))
    folder = target.parent
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", name)
    if not folder.exists():
        raise FileNotFoundError(errno.ENOENT, f"folder {folder} does not exist", name)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{folder} is not a folder", name)
    if target.exists() and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "the file is read-only", name)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"no file can be created in folder {folder}", name)


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic: a
    reader sees the old file or the new one, never a mix. On any exception (KeyboardInterrupt
    included) the temporary file is removed and ``path`` is left as it was.

    A symbolic link is followed, so the file it points to is replaced and the link stays. The
    new file gets the permission bits of the file it replaces, or those a plain ``open()``
    would give a new one. Other hard links to the old file keep the old contents.

    Raises:
        OSError: as :func:`check_target` says, before anything is created; or from writing.
    """
    check_target(path)
    target = Path(os.path.realpath(os.fsdecode(path)))
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        # mkstemp makes the file private (0600); a private file must stay private, a new one
        # gets what open() would give it.
        os.chmod(temporary, _mode_for(target))
        yield Path(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    """Permission bits for the file that replaces ``target``."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as temporary:
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
