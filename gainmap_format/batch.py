"""Encode or convert many files: on this machine's cores, or on a Dask cluster; resumable.

:func:`encode_batch` and :func:`convert_batch` find the files (folders walked recursively, a
glob to choose), name the outputs (the tree mirrored under one output folder, ``.jpg`` names),
and yield one :class:`FileResult` per file as each completes. A file that fails is a result
with its error; the others go on.

Resuming: every output carries a provenance comment (a JPEG COM segment, spec appendix
"Provenance comment") with the SHA-256 of its source file and of the settings that shape the
output. An output that is a valid file of the expected kind and carries the comment of the same
source and settings is skipped (``force=True`` redoes it); each task checks this itself just
before working, so a task that runs again, after a worker died or after Ctrl-C, never writes a
file twice. Outputs are written atomically (:mod:`~gainmap_format.atomic`).

Where the work runs:

- ``jobs=1``: in this process, the kernels on every core.
- ``jobs=N``: N worker processes (``spawn``: torch is not safe across ``fork``), each fitting
  with ``cores // N`` kernel threads (``GAINMAP_THREADS``), so the machine is used fully and
  never oversubscribed.
- ``client=``: a ``dask.distributed.Client``; workers read and write by path, so inputs and the
  output folder must be on a filesystem every worker sees. Each worker's kernels get its host's
  cores divided by the worker threads on that host, unless ``GAINMAP_THREADS`` is set there.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import container as ctr
from . import native
from .atomic import write_bytes
from .codec import encode_hdr_file, read_container
from .convert import convert
from .errors import InputError, NoGainMapError
from .graph import check_graph
from .jpeg import check_decodable, comments, with_comment
from .options import EncodeOptions, checked_encode_options
from .standard import find_gain_map
from .standard.write import DEFAULT_MAP_QUALITY, DEFAULT_MAP_SCALE

if TYPE_CHECKING:  # pragma: no cover - typing only; distributed is the optional 'dask' extra
    from distributed import Client

Status = Literal["written", "skipped", "failed"]

#: The first word of the provenance comment; the number after it is the comment's version.
PROVENANCE_WORD = b"gainmap-provenance"
PROVENANCE_VERSION = 1

#: What a folder walk picks when no glob is given, by command.
HDR_SUFFIXES = (".exr", ".hdr")
JPEG_SUFFIXES = (".jpg", ".jpeg")

#: Retries of a Dask task that raised; a task whose worker died is rerun by the scheduler
#: itself (up to its ``distributed.scheduler.allowed-failures``, 3 by default).
DASK_RETRIES = 2

_HASH_CHUNK = 1 << 20

#: A worker's own GAINMAP_THREADS, read when this module is first imported there: before any
#: Dask task of a batch has set it to the worker's share.
_CONFIGURED_THREADS = os.environ.get("GAINMAP_THREADS") or None


# ---- What is made from one file, and how an output is known to be valid ----


@dataclass(frozen=True)
class Made:
    """One output file in memory and how its fit went.

    Attributes:
        jpeg: the whole file, without the provenance comment.
        fit_seconds: wall time of the fit; None when nothing was fitted.
        fit_loss: final training MSE on the normalised residual; None when nothing was fitted.
    """

    jpeg: bytes
    fit_seconds: float | None
    fit_loss: float | None


@dataclass(frozen=True)
class EncodeRecipe:
    """What ``gainmap encode`` does to each file: an HDR image (.exr, .hdr) to a GainMLP JPEG.

    Attributes:
        options: the encoding options, the same for every file.
        white_luminance: cd/m² of HDR value 1.0 for files that do not say (None: 100).
        sdr: an SDR base to use instead of rendering one (single-file use only; its bytes are
            part of the settings the provenance records).
    """

    options: EncodeOptions = field(default_factory=EncodeOptions)
    white_luminance: float | None = None
    sdr: Path | None = None

    def __post_init__(self) -> None:
        """Check the options now, before any file is read."""
        checked_encode_options(self.options)

    def settings(self) -> dict[str, Any]:
        """What shapes the output, as a JSON-ready dict (the provenance hashes it).

        The fit's device is left out: a fit on another device is as valid an output.
        """
        options = dataclasses.asdict(self.options)
        del options["fit"]["device"]
        return {
            "operation": "encode",
            "options": options,
            "white_luminance": self.white_luminance,
            "sdr_sha256": None if self.sdr is None else file_digest(self.sdr),
        }

    def make(self, source: Path) -> Made:
        """Encode ``source``.

        Raises:
            GainmapError, OSError: as :func:`~gainmap_format.codec.encode_hdr_file` raises them.
        """
        result = encode_hdr_file(
            source, sdr_path=self.sdr, white_luminance=self.white_luminance, options=self.options
        )
        return Made(result.jpeg, result.fit_seconds, result.fit_loss)

    def headroom(self, data: bytes) -> float:
        """The HDR headroom (stops) an output records; raises if it is not a valid GainMLP file."""
        return _gainmlp_headroom(data)


@dataclass(frozen=True)
class ConvertRecipe:
    """What ``gainmap convert`` does to each file: a gain-map JPEG to GainMLP or to ISO 21496-1.

    Attributes:
        to: "gainmlp" or "iso".
        options: GainMLP only: the fit and residual (see :func:`~gainmap_format.convert.convert`).
        keep_standard: GainMLP only: keep the standard map as well.
        map_scale: ISO only: the map is this many times smaller per side.
        map_quality: ISO only: the map's JPEG quality.
    """

    to: Literal["gainmlp", "iso"] = "gainmlp"
    options: EncodeOptions = field(default_factory=EncodeOptions)
    keep_standard: bool = False
    map_scale: int = DEFAULT_MAP_SCALE
    map_quality: int = DEFAULT_MAP_QUALITY

    def __post_init__(self) -> None:
        """Check the target and options now, before any file is read."""
        if self.to not in ("gainmlp", "iso"):
            raise InputError(f"conversion target {self.to!r} is not one of ['gainmlp', 'iso']")
        checked_encode_options(self.options)

    def settings(self) -> dict[str, Any]:
        """What shapes the output, as a JSON-ready dict: only the settings of the chosen target."""
        if self.to == "iso":
            return {"operation": "convert", "to": "iso", "map_scale": self.map_scale, "map_quality": self.map_quality}
        options = dataclasses.asdict(self.options)
        del options["fit"]["device"]
        return {"operation": "convert", "to": "gainmlp", "options": options, "keep_standard": self.keep_standard}

    def make(self, source: Path) -> Made:
        """Convert ``source``.

        Raises:
            GainmapError, OSError: as :func:`~gainmap_format.convert.convert` raises them.
        """
        result = convert(
            source, to=self.to, options=self.options, keep_standard=self.keep_standard,
            map_scale=self.map_scale, map_quality=self.map_quality,
        )
        if self.to == "iso":
            return Made(result.jpeg, None, None)
        return Made(result.jpeg, result.fit_seconds, result.fit_loss)

    def headroom(self, data: bytes) -> float:
        """The HDR headroom (stops) an output records; raises if it is not a valid file of the target kind."""
        if self.to == "gainmlp":
            return _gainmlp_headroom(data)
        check_decodable(data, "output")
        gain_map = find_gain_map(data)
        if gain_map is None:
            raise NoGainMapError("the output holds no standard gain map")
        return float(gain_map.metadata.max_headroom)


Recipe = EncodeRecipe | ConvertRecipe


def _gainmlp_headroom(data: bytes) -> float:
    """The alternate headroom of a whole, valid GainMLP file (graph checked as a decoder checks it)."""
    check_decodable(data, "output")
    container = read_container(data)
    check_graph(container.graph, container.metadata.activation, container.metadata.hidden_width)
    return float(container.metadata.alternate_headroom)


# ---- Provenance ----


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB pieces, as 64 hex digits.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def settings_digest(recipe: Recipe) -> str:
    """SHA-256 of the canonical JSON of ``recipe.settings()`` and the container format version.

    Canonical: keys sorted, no spaces, floats as Python's shortest round-trip repr.
    """
    record = {**recipe.settings(), "format_version": "{}.{}".format(*ctr.FORMAT_VERSION)}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def provenance(source_sha256: str, settings_sha256: str) -> bytes:
    """The provenance comment: ``gainmap-provenance 1 source-sha256=<hex> options-sha256=<hex>``."""
    return b"%s %d source-sha256=%s options-sha256=%s" % (
        PROVENANCE_WORD, PROVENANCE_VERSION, source_sha256.encode(), settings_sha256.encode()
    )


def stamp(jpeg: bytes, comment: bytes) -> bytes:
    """``jpeg`` carrying ``comment`` as its one provenance comment (any other one replaced)."""
    return with_comment(jpeg, comment)


def valid_output(path: Path, comment: bytes, recipe: Recipe) -> float | None:
    """The headroom of ``path`` if it is a valid output of ``recipe`` carrying ``comment``; else None.

    Valid: it can be read, it is a whole JPEG, it holds exactly one provenance comment, equal to
    ``comment``, and it is a valid file of the recipe's kind (a GainMLP file whose container and
    graph pass a decoder's checks, or a standard gain-map file).
    """
    try:
        data = path.read_bytes()
        if comments(data, PROVENANCE_WORD + b" ") != [comment]:
            return None
        return recipe.headroom(data)
    except (OSError, ValueError, LookupError):
        # Missing, unreadable, damaged or of another kind: the output is made again. The
        # library's errors derive from ValueError and LookupError.
        return None


# ---- Finding the files ----


@dataclass(frozen=True)
class BatchItem:
    """One file to work on.

    Attributes:
        source: the input file.
        output: the file to write.
    """

    source: Path
    output: Path


def discover(
    inputs: Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    suffixes: Sequence[str] = HDR_SUFFIXES,
) -> list[BatchItem]:
    """The files to work on and their outputs.

    A file named in ``inputs`` is taken whatever its name, its output ``OUTDIR/NAME.jpg``. A
    folder is walked recursively, in sorted order; hidden files and folders (names starting with
    ".") and ``output_dir`` itself are left out, and a file is taken when its path matches
    ``pattern`` (:meth:`pathlib.PurePath.match`: "*.exr" matches at any depth) or, without one,
    when its suffix is one of ``suffixes`` (case-insensitive). Its output mirrors its path
    under the folder: ``OUTDIR/sub/NAME.jpg``.

    Args:
        inputs: files and folders.
        output_dir: the output folder (it need not exist yet).
        pattern: a glob that chooses the files in folders.
        suffixes: the suffixes taken without a pattern.

    Returns:
        The items, in the order of ``inputs`` and, within a folder, sorted.

    Raises:
        InputError: an input that does not exist or is neither file nor folder, an output
            folder that is a file, two inputs with the same output, or an output that is its
            own input.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is not a folder; with several inputs or a folder, -o names the output folder")
    items: list[BatchItem] = []
    for given in map(Path, inputs):
        if given.is_dir():
            for source in _walk(given, pattern, suffixes, out):
                items.append(BatchItem(source, out / source.relative_to(given).with_suffix(".jpg")))
        elif given.is_file():
            items.append(BatchItem(given, out / f"{given.stem}.jpg"))
        elif given.exists():
            raise InputError(f"{given}: not a file or folder")
        else:
            raise InputError(f"{given}: does not exist")
    _check_distinct(items)
    return items


def _walk(folder: Path, pattern: str | None, suffixes: Sequence[str], skip: Path) -> Iterator[Path]:
    """The files under ``folder`` that :func:`discover` takes."""
    skip_real = os.path.realpath(skip)
    wanted = tuple(s.lower() for s in suffixes)
    for root, folders, files in os.walk(folder):
        # Pruned in place so that os.walk does not descend into them.
        folders[:] = sorted(
            name for name in folders
            if not name.startswith(".") and os.path.realpath(os.path.join(root, name)) != skip_real
        )
        for name in sorted(files):
            path = Path(root, name)
            if name.startswith("."):
                continue
            if pattern is not None and path.relative_to(folder).match(pattern):
                yield path
            elif pattern is None and path.suffix.lower() in wanted:
                yield path


def _check_distinct(items: Sequence[BatchItem]) -> None:
    """Refuse two items with one output, and an output that is its own input."""
    seen: dict[str, Path] = {}
    for item in items:
        key = os.path.realpath(item.output)
        if key in seen:
            raise InputError(f"{seen[key]} and {item.source} would both be written to {item.output}")
        if key == os.path.realpath(item.source):
            raise InputError(f"{item.source}: its output {item.output} is the input itself")
        seen[key] = item.source


# ---- One file ----


@dataclass(frozen=True)
class FileResult:
    """What happened to one file (one record of the report).

    Attributes:
        input: the source file.
        output: the output file.
        status: "written", "skipped" (a valid output of the same source and settings was
            there) or "failed".
        error: one line saying what was wrong, for a failure; else None.
        input_bytes: size of the source file; None when it could not be read.
        output_bytes: size of the output file; None for a failure.
        fit_seconds: wall time of the fit; None when nothing was fitted here.
        final_loss: the fit's final training MSE on the normalised residual; None likewise.
        headroom: the HDR headroom the output records, log2 of its peak over SDR white
            (stops); None for a failure.
        seconds: wall time spent on the file, checks included.
    """

    input: str
    output: str
    status: Status
    error: str | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    fit_seconds: float | None = None
    final_loss: float | None = None
    headroom: float | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """Whether the file failed."""
        return self.status == "failed"

    @property
    def problem(self) -> str:
        """For a failure, ``INPUT: error`` (the error alone when it already names the input)."""
        error = self.error or ""
        return error if error.startswith(f"{self.input}: ") else f"{self.input}: {error}"


def process(item: BatchItem, recipe: Recipe, force: bool = False, settings_sha256: str | None = None) -> FileResult:
    """Make one output, unless a valid one of the same source and settings is already there.

    Never raises on a bad file: every error is a failed result (KeyboardInterrupt still
    propagates, leaving no partial output).

    Args:
        item: the source and output.
        recipe: what to make.
        force: make it even when a valid output is there.
        settings_sha256: :func:`settings_digest` of ``recipe``, computed once by the caller;
            None computes it here.

    Returns:
        The file's result.
    """
    start = time.perf_counter()
    source, output = str(item.source), str(item.output)
    input_bytes: int | None = None
    try:
        input_bytes = item.source.stat().st_size
        comment = provenance(file_digest(item.source), settings_sha256 or settings_digest(recipe))
        done = None if force else _skipped(item, comment, recipe, start)
        if done is not None:
            return done
        made = recipe.make(item.source)
        data = stamp(made.jpeg, comment)
        headroom = recipe.headroom(data)
        item.output.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(item.output, data)
    except Exception as exc:  # noqa: BLE001 - one file's failure, whatever it is, must not stop the batch
        return FileResult(
            source, output, status="failed", error=one_line(exc), input_bytes=input_bytes,
            seconds=time.perf_counter() - start,
        )
    return FileResult(
        source, output, status="written", input_bytes=input_bytes, output_bytes=len(data), fit_seconds=made.fit_seconds,
        final_loss=made.fit_loss, headroom=headroom, seconds=time.perf_counter() - start,
    )


def skipped(item: BatchItem, recipe: Recipe, settings_sha256: str) -> FileResult | None:
    """The "skipped" result of an item whose output is already valid (see :func:`valid_output`); else None.

    Any error (an unreadable source, say) is None too: :func:`process` then reports it.
    """
    start = time.perf_counter()
    try:
        comment = provenance(file_digest(item.source), settings_sha256)
        return _skipped(item, comment, recipe, start)
    except OSError:
        return None


def _skipped(item: BatchItem, comment: bytes, recipe: Recipe, start: float) -> FileResult | None:
    """The "skipped" result when ``item.output`` is valid and carries ``comment``; else None."""
    headroom = valid_output(item.output, comment, recipe)
    if headroom is None:
        return None
    return FileResult(
        str(item.source), str(item.output), status="skipped", input_bytes=item.source.stat().st_size,
        output_bytes=item.output.stat().st_size, headroom=headroom, seconds=time.perf_counter() - start,
    )


def one_line(error: BaseException) -> str:
    """An error as one line: an OSError's reason and file, else its message, whitespace folded."""
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


# ---- Running many ----


def default_jobs() -> int:
    """Files at once by default: one per two cores the kernels may use, at least one.

    Measured on 2 cores (README, "Many files"): a fit on two threads costs the same CPU time as
    on one, so two-thread workers lose nothing, and each worker saved saves its start (about
    1.5 CPU seconds of imports) and an image's working set; one job, in this process, was the
    fastest setting there. On more cores, more workers overlap the one-thread work around each
    fit (reading, tone mapping, JPEG coding).
    """
    return max(1, native.thread_count() // 2)


def run_batch(
    items: Sequence[BatchItem],
    recipe: Recipe,
    *,
    jobs: int | None = None,
    client: Client | None = None,
    force: bool = False,
) -> Generator[FileResult, None, None]:
    """Work on ``items``, yielding each file's result as it completes.

    Args:
        items: from :func:`discover`.
        recipe: what to make.
        jobs: files at once on this machine (default :func:`default_jobs`); ignored with ``client``.
        client: a ``dask.distributed.Client``: run the files as tasks on its cluster.
        force: remake outputs that are already valid.

    Yields:
        One result per item, in the order they complete; closing the generator stops the work
        as Ctrl-C does.

    Raises:
        InputError: ``jobs`` < 1.
        KeyboardInterrupt: passed on after running files were stopped (local) or cancelled
            (Dask); no partial output is left.
    """
    digest = settings_digest(recipe)
    if client is not None:
        return _run_dask(items, recipe, force, digest, client)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise InputError(f"jobs {jobs} must be at least 1")
    if jobs == 1 or len(items) <= 1:
        return (process(item, recipe, force, digest) for item in items)
    return _run_pool(items, recipe, force, digest, min(jobs, len(items)))


def encode_batch(
    inputs: Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    options: EncodeOptions | None = None,
    *,
    white_luminance: float | None = None,
    pattern: str | None = None,
    jobs: int | None = None,
    client: Client | None = None,
    force: bool = False,
) -> Generator[FileResult, None, None]:
    """Encode HDR files (.exr, .hdr) and folders of them to GainMLP JPEGs under ``output_dir``.

    Args:
        inputs: files and folders (see :func:`discover`).
        output_dir: the output folder; made when missing.
        options: encoding options for every file (None: the defaults).
        white_luminance: cd/m² of HDR value 1.0 for files that do not say (None: 100).
        pattern: glob choosing the files in folders (default: .exr and .hdr).
        jobs: files at once on this machine (default :func:`default_jobs`).
        client: a ``dask.distributed.Client`` to run on instead.
        force: remake outputs that are already valid.

    Yields:
        One :class:`FileResult` per file, as each completes.

    Raises:
        InputError: bad options or inputs (see :func:`discover`), before any file is encoded.
    """
    recipe = EncodeRecipe(checked_encode_options(options), white_luminance)
    items = discover(inputs, output_dir, pattern=pattern, suffixes=HDR_SUFFIXES)
    return run_batch(items, recipe, jobs=jobs, client=client, force=force)


def convert_batch(
    inputs: Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    recipe: ConvertRecipe | None = None,
    *,
    pattern: str | None = None,
    jobs: int | None = None,
    client: Client | None = None,
    force: bool = False,
) -> Generator[FileResult, None, None]:
    """Convert gain-map JPEGs and folders of them (see :class:`ConvertRecipe`) to files under ``output_dir``.

    Args:
        inputs: files and folders (see :func:`discover`).
        output_dir: the output folder; made when missing; files under it are never inputs.
        recipe: the target and its options (None: to GainMLP with the default options).
        pattern: glob choosing the files in folders (default: .jpg and .jpeg).
        jobs: files at once on this machine (default :func:`default_jobs`).
        client: a ``dask.distributed.Client`` to run on instead.
        force: remake outputs that are already valid.

    Yields:
        One :class:`FileResult` per file, as each completes.

    Raises:
        InputError: bad inputs (see :func:`discover`), before any file is converted.
    """
    items = discover(inputs, output_dir, pattern=pattern, suffixes=JPEG_SUFFIXES)
    return run_batch(items, recipe or ConvertRecipe(), jobs=jobs, client=client, force=force)


def _failure(item: BatchItem, error: BaseException) -> FileResult:
    """The result of a file whose task itself failed (its worker died, say)."""
    return FileResult(str(item.source), str(item.output), "failed", f"{type(error).__name__}: {one_line(error)}")


# ---- Local worker processes ----


def _run_pool(
    items: Sequence[BatchItem], recipe: Recipe, force: bool, digest: str, jobs: int
) -> Generator[FileResult, None, None]:
    """:func:`run_batch` on ``jobs`` worker processes, each with its share of the cores.

    Files without an output go to the workers at once. Files with one are checked here, while
    the workers fit, and only those not valid are sent on: a resumed run over finished outputs
    starts no worker at all (starting one, torch's import included, costs seconds).
    """
    threads = max(1, native.thread_count() // jobs)
    pool: ProcessPoolExecutor | None = None
    futures: dict[Future[FileResult], BatchItem] = {}

    def submit(item: BatchItem) -> None:
        nonlocal pool
        if pool is None:
            pool = ProcessPoolExecutor(
                jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(threads,)
            )
        futures[pool.submit(_pool_task, item, recipe, force, digest)] = item

    existing = []
    try:
        for item in items:
            if force or not item.output.exists():
                submit(item)
            else:
                existing.append(item)
        for item in existing:
            done = skipped(item, recipe, digest)
            if done is None:
                submit(item)
            else:
                yield done
        for future in as_completed(futures):
            yield _pool_outcome(future, futures[future])
    except BaseException:
        # Ctrl-C, or the caller stopped reading: stop the running files (each cleans up its
        # temporary output), then let the pool drop the rest.
        _interrupt_workers()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _pool_outcome(future: Future[FileResult], item: BatchItem) -> FileResult:
    try:
        return future.result()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a dead worker (BrokenProcessPool) fails its files only
        return _failure(item, exc)


@dataclass
class _WorkerState:
    """A worker process's Ctrl-C state: whether it is working on a file, whether it was interrupted."""

    busy: bool = False
    interrupted: bool = False


_WORKER = _WorkerState()


def _start_worker(threads: int) -> None:
    """Give a worker process its share of the cores, and its Ctrl-C handler."""
    os.environ["GAINMAP_THREADS"] = str(threads)
    # torch (the fallback without the C kernels) reads this when it is first imported.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    signal.signal(signal.SIGINT, _worker_interrupt)


def _worker_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C in a worker: stop the file it works on, and start no other.

    An idle worker only remembers it: a KeyboardInterrupt there would print a traceback.
    """
    _WORKER.interrupted = True
    if _WORKER.busy:
        raise KeyboardInterrupt


def _pool_task(item: BatchItem, recipe: Recipe, force: bool, digest: str) -> FileResult:
    """:func:`process` in a worker process; after a Ctrl-C it starts no file."""
    if _WORKER.interrupted:
        raise KeyboardInterrupt
    _WORKER.busy = True
    try:
        return process(item, recipe, force, digest)
    finally:
        _WORKER.busy = False


def _interrupt_workers() -> None:
    """Send Ctrl-C to this process's worker processes (a terminal sends it to them too; ``kill`` does not)."""
    for child in multiprocessing.active_children():
        if child.pid is not None:
            os.kill(child.pid, signal.SIGINT)


# ---- Dask ----


def dask_missing() -> str | None:
    """None when ``distributed`` can be imported, else what to install."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "the Dask scheduler needs the 'dask' extra: pip install 'gainmap-format[dask]'"
    return None


def _run_dask(
    items: Sequence[BatchItem], recipe: Recipe, force: bool, digest: str, client: Client
) -> Generator[FileResult, None, None]:
    """:func:`run_batch` as one Dask task per file."""
    from distributed import as_completed as dask_completed

    threads = thread_shares(client)
    futures = {
        client.submit(_dask_task, item, recipe, force, digest, threads, pure=False, retries=DASK_RETRIES): item
        for item in items
    }
    try:
        for future in dask_completed(futures):
            item = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: that file fails, the rest go on
                yield _failure(item, exc)
    finally:
        # Interrupted, or the caller stopped reading: drop what has not run. A running task
        # finishes on its own; its output is whole (atomic) and the next run skips it.
        client.cancel(list(futures))


def thread_shares(client: Client) -> dict[str, int]:
    """Kernel threads for each of the client's workers: its host's cores over the worker threads there.

    A worker whose process has ``GAINMAP_THREADS`` set keeps that.

    Returns:
        Worker address -> threads.
    """
    facts: Mapping[str, tuple[str, int, str | None]] = client.run(_cpu_facts)
    slots: Mapping[str, int] = client.nthreads()
    per_host: Counter[str] = Counter()
    for address, (host, _, _) in facts.items():
        per_host[host] += slots.get(address, 1)
    return {
        address: int(configured) if configured else max(1, cores // per_host[host])
        for address, (host, cores, configured) in facts.items()
    }


def _cpu_facts() -> tuple[str, int, str | None]:
    """On a worker: its host's name, the CPUs it may use, and its own GAINMAP_THREADS (None if unset)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        cores = os.cpu_count() or 1
    return socket.gethostname(), cores, _CONFIGURED_THREADS


def _dask_task(item: BatchItem, recipe: Recipe, force: bool, digest: str, threads: Mapping[str, int]) -> FileResult:
    """:func:`process` on a Dask worker, with the kernel threads :func:`thread_shares` gave it."""
    from distributed import get_worker

    share = threads.get(get_worker().address)
    if share is not None:
        os.environ["GAINMAP_THREADS"] = str(share)
    return process(item, recipe, force, digest)


# ---- Reports ----

REPORT_FIELDS = tuple(f.name for f in dataclasses.fields(FileResult))
REPORT_SUFFIXES = (".json", ".csv")


def report_bytes(results: Iterable[FileResult], fmt: Literal["json", "csv"]) -> bytes:
    """The report: one record per file with :data:`REPORT_FIELDS`, as JSON (a list of objects) or CSV.

    Numbers are as measured (seconds, bytes, stops); a missing value is null in JSON and empty in CSV.
    """
    records = [dataclasses.asdict(result) for result in results]
    if fmt == "json":
        return (json.dumps(records, indent=2) + "\n").encode()
    text = io.StringIO()
    writer = csv.DictWriter(text, REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return text.getvalue().encode()


def write_report(results: Iterable[FileResult], path: str | os.PathLike[str]) -> None:
    """Write the report atomically, as JSON or CSV by ``path``'s suffix.

    Raises:
        InputError: the suffix is neither .json nor .csv.
        OSError: it cannot be written.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise InputError(f"{path}: a report is .json or .csv")
    write_bytes(path, report_bytes(results, "json" if suffix == ".json" else "csv"))


def summary_table(results: Sequence[FileResult]) -> str:
    """A table of the files by status (count, megabytes in and out, fit seconds), then every failure.

    Returns:
        Lines ending in a newline.
    """
    rows = []
    for status in ("written", "skipped", "failed", "total"):
        chosen = [r for r in results if status in (r.status, "total")]
        megabytes_in = sum(r.input_bytes or 0 for r in chosen) / 1e6
        megabytes_out = sum(r.output_bytes or 0 for r in chosen) / 1e6
        fit = sum(r.fit_seconds or 0.0 for r in chosen)
        rows.append(f"{status:<8} {len(chosen):>7} {megabytes_in:>10.1f} {megabytes_out:>10.2f} {fit:>9.1f}")
    lines = [f"{'status':<8} {'files':>7} {'input MB':>10} {'output MB':>10} {'fit s':>9}", *rows]
    lines += [f"failed: {r.problem}" for r in results if r.failed]
    return "\n".join(lines) + "\n"


def log_line(result: FileResult) -> str:
    """One line about a file, for ``--quiet`` runs and logs."""
    if result.failed:
        return f"failed  {result.problem}"
    fit = "" if result.fit_seconds is None else f", fit {result.fit_seconds:.1f} s, loss {result.final_loss:.3e}"
    return f"{result.status:<7} {result.output} ({result.output_bytes} bytes, headroom {result.headroom:.2f}{fit})"
