"""Run any GainMLP decoder over the conformance vectors and report what it got right.

The decoder is a command-line template; the runner fills in the file names and runs it once per
vector, with no shell in between::

    python -m conformance --decoder "my-decoder {input} {output}"

The contract (README.md, "Runner contract"):

- ``{input}`` is a JPEG; ``{output}`` is the path to write the HDR rendition to: a ``.npy``
  holding (H, W, 3) floats, BT.2020 PQ code values (the default), or with ``--output-format exr``
  an OpenEXR file of linear BT.2020 light whose value times ``whiteLuminance`` (1 if absent) is
  cd/m². A decoder decodes the full rendition (no display adaptation) and exits 0.
- On a file it must reject, the decoder exits non-zero and writes nothing at ``{output}``.
- Vectors that decode for a display headroom run ``--headroom-decoder``, a template that also has
  ``{headroom}`` (log2 of the display's peak over SDR white); without it they are skipped.
- ``--exit-code KIND=STATUS`` tells the runner how the decoder reports the kinds of rejection
  the spec wants told apart: ``no_gainmap`` ([CAR-9]), ``unsupported_version`` ([VER-4]) and
  ``reject`` (everything else, damage). Without it, any non-zero status counts as a rejection.
- ``--format-version`` names the newest format version the decoder implements (default: the
  suite's, 2.1). A vector that needs a newer version (``needs_version`` in its case.json) must
  then be refused as an unsupported version ([VER-3]) instead of decoded.

The runner needs numpy, and OpenEXR for ``--output-format exr``; it does not import the library
it tests. Exit status: 0 when every MUST-level check passes (and, with ``--strict``, every
SHOULD-level check too), 1 otherwise, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

VECTORS = Path(__file__).resolve().parent / "vectors"

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

REJECTIONS = ("reject", "no_gainmap", "unsupported_version")

#: The format versions a decoder may implement, newest last: the suite's own is the last.
FORMAT_VERSIONS = ("1.0", "2.0", "2.1")

#: How much a wrong kind of rejection weighs: the spec makes telling "no gain map" apart a MUST
#: ([CAR-9]) and telling an unsupported version apart a SHOULD ([VER-4]).
KIND_LEVEL = {"reject": "must", "no_gainmap": "must", "unsupported_version": "should"}

PLACEHOLDERS = ("{input}", "{output}", "{headroom}")

#: BT.2020 xy chromaticities (R, G, B, white), which an EXR output must have when it says.
BT2020 = (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)

#: SMPTE ST 2084 constants.
M1, M2 = 2610 / 16384, 2523 / 4096 * 128
C1, C2, C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32


class UsageError(Exception):
    """A command-line or suite problem that stops the run before any vector."""


@dataclass
class Result:
    """What happened on one vector.

    Attributes:
        name: the vector.
        expected_result: "decode", "reject", "no_gainmap" or "unsupported_version".
        level: "must" or "should".
        requirements: the spec identifiers the vector exercises.
        status: "pass", "fail", "warn" (a SHOULD-level failure) or "skip".
        message: why it failed, warned or was skipped.
        exit_status: the decoder's exit status (None if it did not run or timed out).
        seconds: the decoder's wall time.
        max_abs: largest absolute error on PQ code values (valid vectors).
        rms: root-mean-square error on PQ code values (valid vectors).
        stderr: the end of the decoder's standard error.
    """

    name: str
    expected_result: str
    level: str
    requirements: list[str]
    status: str = "pass"
    message: str = ""
    exit_status: int | None = None
    seconds: float = 0.0
    max_abs: float | None = None
    rms: float | None = None
    stderr: str = ""


@dataclass(frozen=True)
class Options:
    """The run's settings, from the command line."""

    decoder: list[str]
    headroom_decoder: list[str] | None
    output_format: str
    timeout: float
    exit_codes: dict[str, int] = field(default_factory=dict)
    strict: bool = False
    memory_limit_mb: int | None = None
    format_version: str = FORMAT_VERSIONS[-1]


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def expected_result(case: dict, options: Options) -> str:
    """What the decoder must do with a vector: its own expectation, or refusing a newer version."""
    needs = case.get("needs_version")
    if needs is not None and _version(needs) > _version(options.format_version):
        return "unsupported_version"
    return str(case["expected_result"])


def parse_template(text: str, required: Sequence[str]) -> list[str]:
    """Split a decoder template into arguments, checking its placeholders."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot split decoder template {text!r}: {exc}") from None
    if not words:
        raise UsageError("the decoder template is empty")
    for placeholder in required:
        if not any(placeholder in word for word in words):
            raise UsageError(f"decoder template {text!r} has no {placeholder} placeholder")
    for word in words:
        unknown = [p for p in re.findall(r"\{[^{}]*\}", word) if p not in PLACEHOLDERS]
        if unknown:
            raise UsageError(f"decoder template {text!r} has unknown placeholder(s) {unknown}")
    return words


def fill(template: list[str], values: dict[str, str]) -> list[str]:
    """Substitute the placeholders of every argument."""
    words = []
    for word in template:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        words.append(word)
    return words


def parse_exit_codes(pairs: Sequence[str]) -> dict[str, int]:
    """``KIND=STATUS`` pairs to a dict, each kind one of :data:`REJECTIONS` and status non-zero."""
    codes = {}
    for pair in pairs:
        kind, _, status = pair.partition("=")
        if kind not in REJECTIONS or not status.lstrip("-").isdigit() or int(status) == 0:
            raise UsageError(f"--exit-code {pair!r} is not KIND=STATUS with KIND in {REJECTIONS}, STATUS non-zero")
        codes[kind] = int(status)
    return codes


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_cases(root: Path, only: Sequence[str] | None) -> list[tuple[Path, dict]]:
    """Every vector folder with its case.json, checked against its checksums."""
    if not root.is_dir():
        raise UsageError(f"vectors folder {root} does not exist")
    cases = []
    for folder in sorted(p for p in root.iterdir() if (p / "case.json").is_file()):
        case = json.loads((folder / "case.json").read_text())
        if case.get("expected_result") not in ("decode", *REJECTIONS):
            raise UsageError(f"{folder}/case.json: unknown expected_result {case.get('expected_result')!r}")
        cases.append((folder, case))
    if not cases:
        raise UsageError(f"no vectors (folders with case.json) in {root}")
    if only:
        unknown = set(only) - {case["name"] for _, case in cases}
        if unknown:
            raise UsageError(f"unknown vector(s): {sorted(unknown)}")
        cases = [(folder, case) for folder, case in cases if case["name"] in only]
    return cases


def pq(luminance: np.ndarray) -> np.ndarray:
    """PQ inverse EOTF of luminance in cd/m², float64."""
    y = np.clip(luminance / 10_000.0, 0.0, 1.0) ** M1
    return ((C1 + C2 * y) / (1.0 + C3 * y)) ** M2


def read_output(path: Path, output_format: str) -> np.ndarray:
    """The decoder's output as float64 PQ code values.

    Raises:
        ValueError: the file is not an output of the contract.
    """
    if output_format == "npy":
        array = np.load(path, allow_pickle=False)
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"output holds {array.dtype}, not floats")
        return array.astype(np.float64)
    return read_exr(path)


def read_exr(path: Path) -> np.ndarray:
    """An OpenEXR output, linear BT.2020 times whiteLuminance in cd/m², as PQ code values."""
    import OpenEXR

    try:
        exr = OpenEXR.File(str(path), separate_channels=True)
        header, channels = exr.header(), exr.channels()
    except Exception as exc:  # the binding raises bare RuntimeError on unreadable files
        raise ValueError(f"not a readable OpenEXR file: {exc}") from exc
    if not {"R", "G", "B"} <= channels.keys():
        raise ValueError(f"OpenEXR channels {sorted(channels)} lack R, G and B")
    chromaticities = header.get("chromaticities")
    if chromaticities is not None and not np.allclose(np.ravel(chromaticities), BT2020, atol=1e-3):
        raise ValueError(f"OpenEXR chromaticities {chromaticities} are not BT.2020")
    white = float(header.get("whiteLuminance", 1.0))
    linear = np.stack([channels[c].pixels.astype(np.float64) for c in "RGB"], axis=-1)
    return pq(linear * white)


def _can_limit_memory() -> bool:
    try:
        import resource
    except ImportError:
        return False
    return hasattr(resource, "prlimit")


def _limit_memory(pid: int, megabytes: int) -> None:
    """Limit a started process's address space (Linux); prlimit, since preexec_fn is unsafe with threads."""
    import resource

    limit = megabytes << 20
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))


def run_decoder(args: list[str], options: Options) -> tuple[int | None, str, float]:
    """Run one decoder command: (exit status or None on timeout, stderr tail, seconds)."""
    start = time.perf_counter()
    try:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return 127, f"cannot start {args[0]!r}: {exc}", 0.0
    if options.memory_limit_mb is not None:
        try:
            _limit_memory(process.pid, options.memory_limit_mb)
        except ProcessLookupError:
            pass  # it has already finished
    try:
        _, stderr = process.communicate(timeout=options.timeout)
        status: int | None = process.returncode
    except subprocess.TimeoutExpired:
        # The whole process group, so that a wrapper script's children stop too.
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        status = None
    tail = stderr.decode("utf-8", "replace")[-2000:]
    return status, tail, time.perf_counter() - start


def run_case(folder: Path, case: dict, options: Options) -> Result:
    """Run the decoder on one vector and judge the outcome."""
    result = Result(case["name"], expected_result(case, options), case.get("level", "must"),
                    case.get("requirements", []))
    damaged = _check_checksums(folder, case)
    if damaged:
        return _judge(result, damaged, options, level="must")
    headroom = case.get("display_headroom") if result.expected_result == "decode" else None
    template = options.decoder
    if headroom is not None:
        if options.headroom_decoder is None:
            result.status, result.message = "skip", "decodes for a display headroom: no --headroom-decoder given"
            return result
        template = options.headroom_decoder
    with tempfile.TemporaryDirectory(prefix="gainmlp-conformance-") as tmp:
        source, output = Path(tmp) / "input.jpg", Path(tmp) / f"output.{options.output_format}"
        shutil.copyfile(folder / case["input"], source)
        values = {"input": str(source), "output": str(output)}
        if headroom is not None:
            values["headroom"] = repr(float(headroom))
        status, result.stderr, result.seconds = run_decoder(fill(template, values), options)
        result.exit_status = status
        if status is None:
            return _judge(result, f"timed out after {options.timeout:g} s", options)
        if result.expected_result == "decode":
            return _judge(result, _check_decoded(folder, case, status, output, options, result), options)
        return _judge(result, _check_rejected(result.expected_result, status, output, options), options)


def _check_checksums(folder: Path, case: dict) -> str | None:
    for key in ("input", "expected"):
        if key in case and sha256(folder / case[key]) != case[f"{key}_sha256"]:
            return f"suite damaged: {case[key]} does not match its sha256 in case.json"
    return None


def _check_decoded(folder: Path, case: dict, status: int, output: Path, options: Options, result: Result) -> str | None:
    if status != 0:
        return f"the decoder exited with status {status} on a valid file"
    if not output.is_file():
        return "the decoder exited 0 but wrote no output"
    try:
        actual = read_output(output, options.output_format)
    except (ValueError, OSError) as exc:
        return f"unreadable output: {exc}"
    expected = np.load(folder / case["expected"]).astype(np.float64)
    if actual.shape != expected.shape:
        return f"output shape {actual.shape}, expected {expected.shape}"
    if not np.all(np.isfinite(actual)):
        return f"{int(np.sum(~np.isfinite(actual)))} output samples are not finite"
    error = np.abs(actual - expected)
    result.max_abs, result.rms = float(error.max()), float(np.sqrt(np.mean(error**2)))
    tolerance = case["tolerance"]
    if result.max_abs > tolerance["max_abs"] or result.rms > tolerance["rms"]:
        worst = np.unravel_index(int(np.argmax(error)), error.shape)
        return (f"error max {result.max_abs:.3g} (tolerance {tolerance['max_abs']:g}) at row {worst[0]}, "
                f"column {worst[1]}, channel {worst[2]}; rms {result.rms:.3g} (tolerance {tolerance['rms']:g})")
    return None


def _check_rejected(kind: str, status: int, output: Path, options: Options) -> str | tuple[str, str] | None:
    if status == 0:
        return f"the decoder accepted a file it must reject ({kind})"
    if output.exists():
        return "the decoder wrote output for a file it rejected [GEN-2]"
    wanted = options.exit_codes.get(kind)
    if wanted is not None and status != wanted:
        said = {code: name for name, code in options.exit_codes.items()}.get(status, f"status {status}")
        return f"rejected with {said}, expected {kind} (status {wanted})", KIND_LEVEL[kind]
    return None


def _judge(result: Result, problem: str | tuple[str, str] | None, options: Options, level: str | None = None) -> Result:
    """Turn a problem (message, or message and its level) into the result's status."""
    if problem is None:
        return result
    message, problem_level = problem if isinstance(problem, tuple) else (problem, None)
    level = level or ("should" if "should" in (problem_level, result.level) else "must")
    result.message = message
    result.status = "warn" if level == "should" and not options.strict else "fail"
    return result


def summarise(results: list[Result]) -> dict[str, int]:
    """Counts by status."""
    return {status: sum(r.status == status for r in results) for status in ("pass", "fail", "warn", "skip")}


def text_report(results: list[Result], options: Options, summary: dict[str, int], seconds: float) -> str:
    """The human report: one line per vector, then the problems, then the totals."""
    lines = [f"GainMLP conformance: {' '.join(options.decoder)}", ""]
    for r in results:
        error = f"  max {r.max_abs:.2e} rms {r.rms:.2e}" if r.max_abs is not None else ""
        lines.append(f"{r.status.upper():4s}  {r.name:48s} {r.expected_result:20s} {r.seconds:6.2f} s{error}")
    problems = [r for r in results if r.status in ("fail", "warn")]
    if problems:
        lines += ["", "Problems:"]
        for r in problems:
            lines.append(f"- {r.name} ({r.status}, {r.level}; {', '.join(r.requirements)}): {r.message}")
            if r.stderr.strip():
                lines.append(f"    stderr: {r.stderr.strip().splitlines()[-1][:200]}")
    lines += ["", f"{len(results)} vectors in {seconds:.1f} s: " + ", ".join(f"{v} {k}" for k, v in summary.items())]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The runner's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", required=True, help='command template, e.g. "dec {input} {output}"')
    parser.add_argument("--headroom-decoder", help='template for display-adapted vectors, with {headroom}')
    parser.add_argument("--output-format", choices=("npy", "exr"), default="npy", help="what the decoder writes")
    parser.add_argument("--vectors", type=Path, default=VECTORS, help="vectors folder (default: the suite's own)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these vectors")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per vector (default 60)")
    parser.add_argument("--memory-limit", type=int, metavar="MB", help="address-space limit for the decoder")
    parser.add_argument("--jobs", type=int, default=1, help="vectors run at once (default 1)")
    parser.add_argument("--exit-code", action="append", default=[], metavar="KIND=STATUS",
                        help=f"the decoder's exit status for a kind of rejection, one of {REJECTIONS}")
    parser.add_argument("--strict", action="store_true", help="SHOULD-level problems fail the run too")
    parser.add_argument("--format-version", choices=FORMAT_VERSIONS, default=FORMAT_VERSIONS[-1],
                        help="newest format version the decoder implements (default: the suite's)")
    parser.add_argument("--json", type=Path, default=Path("conformance-report.json"), help="JSON report path")
    parser.add_argument("--report", type=Path, default=Path("conformance-report.txt"), help="text report path")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    """Check the arguments and turn them into :class:`Options`."""
    if args.timeout <= 0 or args.jobs < 1 or (args.memory_limit is not None and args.memory_limit < 1):
        raise UsageError("--timeout, --jobs and --memory-limit must be positive")
    if args.memory_limit is not None and not _can_limit_memory():
        raise UsageError("--memory-limit needs Linux (resource.prlimit)")
    headroom = parse_template(args.headroom_decoder, PLACEHOLDERS) if args.headroom_decoder else None
    return Options(
        decoder=parse_template(args.decoder, PLACEHOLDERS[:2]),
        headroom_decoder=headroom,
        output_format=args.output_format,
        timeout=args.timeout,
        exit_codes=parse_exit_codes(args.exit_code),
        strict=args.strict,
        memory_limit_mb=args.memory_limit,
        format_version=args.format_version,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        options = options_from(args)
        cases = load_cases(args.vectors, args.only)
    except UsageError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda item: run_case(item[0], item[1], options), cases))
    seconds = time.perf_counter() - start
    summary = summarise(results)
    report = text_report(results, options, summary, seconds)
    args.report.write_text(report)
    document = {
        "decoder": args.decoder,
        "headroom_decoder": args.headroom_decoder,
        "output_format": options.output_format,
        "vectors": str(args.vectors),
        "strict": options.strict,
        "format_version": options.format_version,
        "seconds": round(seconds, 3),
        "summary": summary,
        "passed": summary["fail"] == 0,
        "results": [asdict(r) for r in results],
    }
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(report, end="")
    return EXIT_PASS if summary["fail"] == 0 else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
