"""The conformance suite: its runner, its vectors, the independent decoder, and spec coverage."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from conformance import catalogue, check_writer, gainmap_decode, generate, mutations, run
from conformance import reference_decoder as rd
from gainmap_format import codec
from gainmap_format.errors import GainmapError, GraphContractError, NoGainMapError, UnsupportedVersionError

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "conformance" / "vectors"
SPEC = ROOT / "spec" / "gainmap-mlp.md"
README = ROOT / "conformance" / "README.md"
PYTHON = sys.executable

EXIT_CODES = ["--exit-code", "reject=1", "--exit-code", "no_gainmap=3", "--exit-code", "unsupported_version=4"]

#: Vectors of SHOULD-level graph rejections ([GRA-21]), which gainmap_format meets too.
SHOULD_GRAPH_VECTORS = {"invalid-graph-unknown-field", "invalid-graph-node-overload",
                       "invalid-graph-model-configuration"}


def cases() -> list[tuple[Path, dict]]:
    return [(folder, json.loads((folder / "case.json").read_text())) for folder in sorted(VECTORS.iterdir())
            if (folder / "case.json").is_file()]


def valid_cases() -> list[tuple[Path, dict]]:
    return [(folder, case) for folder, case in cases() if case["expected_result"] == "decode"]


def rejected_cases() -> list[tuple[Path, dict]]:
    return [(folder, case) for folder, case in cases() if case["expected_result"] != "decode"]


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    """Decoders started by the runner import conformance and gainmap_format from the repository."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def run_suite(tmp_path: Path, decoder: str, *extra: str, headroom: str | None = None) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    argv = ["--decoder", decoder, "--json", str(report), "--report", str(tmp_path / "report.txt"), *extra]
    if headroom:
        argv += ["--headroom-decoder", headroom]
    status = run.main(argv)
    return status, json.loads(report.read_text())


def statuses(report: dict, status: str) -> set[str]:
    return {r["name"] for r in report["results"] if r["status"] == status}


# ---- decoders run in this process ----
#
# A decoder the runner starts costs a Python start-up and its imports per vector (about a second
# for the library with ONNX Runtime); across every vector that was most of this file's time. Runs
# over every vector therefore call the decoders' own main() in this process, through the runner's
# one seam, run_decoder, and the runner judges the same exit statuses and output files. The
# subprocess path itself (the shell wrapper, the adapters' command lines, timeouts, the memory
# limit) is tested on a few vectors of each kind.

#: Program name of a decoder template that runs in this process: "inprocess:NAME {input} {output} ...".
IN_PROCESS = "inprocess:"

#: One vector of each expected result, and one decoded for a display headroom.
EACH_KIND = ["valid-gamma-sine-w16", "valid-placement-rotate-37-expand", "valid-display-headroom-gain",
             "invalid-container-crc-weights", "nogainmap-plain-jpeg", "unsupported-version-3.0"]


def in_process(monkeypatch: pytest.MonkeyPatch, decoders: dict[str, Callable[[Sequence[str]], int]]) -> None:
    """Make the runner call ``decoders[NAME](argv)`` for templates starting with "inprocess:NAME"."""
    def run_decoder(args: list[str], options: run.Options) -> tuple[int | None, str, float]:
        start, stderr = time.perf_counter(), io.StringIO()
        # stderr and the warning filters are process-wide: the runs that use this stay at --jobs 1.
        # A decoder process would print its warnings to stderr, unseen unless it fails; so here.
        with contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = decoders[args[0].removeprefix(IN_PROCESS)](args[1:])
        return status, stderr.getvalue()[-2000:], time.perf_counter() - start

    monkeypatch.setattr(run, "run_decoder", run_decoder)


def fresh_reference_decoder() -> object:
    """A private copy of conformance/reference_decoder.py, for a broken decoder to patch."""
    name = f"_reference_decoder_copy_{time.perf_counter_ns()}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "conformance" / "reference_decoder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


# ---- the runner against the two real decoders ----

def test_runner_passes_the_library(tmp_path, monkeypatch):
    """Every vector, through the library's adapter (its main(), in this process)."""
    in_process(monkeypatch, {"library": gainmap_decode.main})
    adapter = f"{IN_PROCESS}library {{input}} {{output}}"
    status, report = run_suite(tmp_path, adapter, *EXIT_CODES, headroom=adapter + " --display-headroom {headroom}")
    assert status == run.EXIT_PASS, (tmp_path / "report.txt").read_text()
    assert statuses(report, "fail") == set() and statuses(report, "skip") == set()
    assert statuses(report, "warn") == set()
    assert report["summary"]["pass"] == len(cases())


def test_runner_passes_the_reference_decoder_strictly(tmp_path, monkeypatch):
    """Every vector, with --strict: every SHOULD is met too."""
    in_process(monkeypatch, {"reference": rd.main})
    decoder = f"{IN_PROCESS}reference {{input}} {{output}}"
    status, report = run_suite(tmp_path, decoder, "--strict", *EXIT_CODES,
                               headroom=decoder + " --display-headroom {headroom}")
    assert status == run.EXIT_PASS, (tmp_path / "report.txt").read_text()
    assert report["summary"] == {"pass": len(cases()), "fail": 0, "warn": 0, "skip": 0}


@pytest.mark.parametrize("decoder", [f"{PYTHON} {ROOT}/conformance/reference_decoder.py {{input}} {{output}}",
                                     f"{PYTHON} -m conformance.gainmap_decode {{input}} {{output}}"],
                         ids=["reference", "library"])
def test_runner_passes_both_decoders_as_commands_through_the_shell_wrapper(tmp_path, decoder):
    """The decoders' command lines, started per vector by the runner's shell wrapper, on each kind of vector."""
    env = {**os.environ, "PYTHON": PYTHON}
    command = [str(ROOT / "conformance" / "run"), "--decoder", decoder, "--headroom-decoder",
               decoder + " --display-headroom {headroom}", "--strict", "--jobs", "2", *EXIT_CODES,
               "--json", str(tmp_path / "r.json"), "--report", str(tmp_path / "r.txt"), "--only", *EACH_KIND]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"pass": len(EACH_KIND), "fail": 0, "warn": 0, "skip": 0}


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_an_earlier_reader_refuses_placed_files_as_an_unsupported_version(tmp_path, monkeypatch, version):
    """Spec §5.2: a container with a placement needs 2.1; 1.0 and 2.0 readers refuse it ([VER-3])."""
    in_process(monkeypatch, {"reference": rd.main})
    decoder = f"{IN_PROCESS}reference {{input}} {{output}} --reader-version {version}"
    placed = {"valid-placement-crop", "valid-placement-rotate-37-expand", "valid-placement-transpose-transverse"}
    names = [*placed, "valid-gamma-sine-w16", "valid-minimum-version-2.0"]
    status, report = run_suite(tmp_path, decoder, "--strict", "--format-version", version, *EXIT_CODES, "--only",
                               *names)
    assert status == run.EXIT_PASS and statuses(report, "pass") == set(names)
    assert {r["name"] for r in report["results"] if r["expected_result"] == "unsupported_version"} == (
        placed | ({"valid-minimum-version-2.0"} if version == "1.0" else set()))
    # Judged as a 2.1 decoder, the same reader fails exactly the vectors it refused.
    status, report = run_suite(tmp_path, decoder, "--strict", *EXIT_CODES, "--only", *names)
    assert statuses(report, "fail") == placed | ({"valid-minimum-version-2.0"} if version == "1.0" else set())


def test_runner_reads_exr_outputs_of_the_library_cli(tmp_path):
    names = ["valid-gamma-sine-w16", "valid-custom-epsilon-white", "valid-size-29x1", "invalid-container-crc-weights",
             "nogainmap-plain-jpeg", "valid-display-headroom-gain"]
    status, report = run_suite(tmp_path, f"{PYTHON} -m gainmap_format.cli decode {{input}} -o {{output}}",
                               "--output-format", "exr", "--only", *names)
    assert status == run.EXIT_PASS
    assert statuses(report, "skip") == {"valid-display-headroom-gain"}
    assert len(statuses(report, "pass")) == len(names) - 1


# ---- the two decoders agree, in process ----

@pytest.mark.parametrize(("folder", "case"), valid_cases(), ids=lambda v: getattr(v, "name", ""))
def test_reference_decoder_agrees_with_onnxruntime(folder, case):
    data = (folder / "input.jpg").read_bytes()
    ours = codec.decode(data, display_headroom=case["display_headroom"]).pq.astype(np.float64)
    reference = rd.decode(data, case["display_headroom"]).astype(np.float64)
    expected = np.load(folder / "expected.npy").astype(np.float64)
    tolerance = case["tolerance"]
    for output in (ours, reference):
        error = np.abs(output - expected)
        assert error.max() <= tolerance["max_abs"] and np.sqrt(np.mean(error**2)) <= tolerance["rms"]
    # Well inside the tolerance, so that it has room for other honest implementations.
    assert np.abs(ours - reference).max() <= tolerance["max_abs"] / 10


_KINDS = {"reject": rd.RejectedError, "no_gainmap": rd.NoGainMapError,
          "unsupported_version": rd.UnsupportedVersionError}
_LIBRARY_KINDS = {"reject": GainmapError, "no_gainmap": NoGainMapError, "unsupported_version": UnsupportedVersionError}


@pytest.mark.parametrize(("folder", "case"), rejected_cases(), ids=lambda v: getattr(v, "name", ""))
def test_both_decoders_reject_what_they_must(folder, case):
    data = (folder / "input.jpg").read_bytes()
    with pytest.raises(rd.RejectedError) as caught:
        rd.decode(data)
    assert type(caught.value) is _KINDS[case["expected_result"]]
    # The reference decoder names the requirement it enforces: one the vector says it tests.
    assert set(re.findall(r"\[([A-Z]+-\d+)\]", str(caught.value))) & set(case["requirements"])
    with pytest.raises(GainmapError) as caught:
        codec.decode(data)
    assert isinstance(caught.value, _LIBRARY_KINDS[case["expected_result"]])
    if case["expected_result"] == "reject":
        assert not isinstance(caught.value, NoGainMapError | UnsupportedVersionError)


def test_library_rejects_fields_outside_the_graph_contract():
    for name in sorted(SHOULD_GRAPH_VECTORS):
        with pytest.raises(GraphContractError):
            codec.decode((VECTORS / name / "input.jpg").read_bytes())


# ---- deliberately broken decoders fail on the right vectors ----

BROKEN = {
    "ignores-crc": ("rd.check_crc = lambda body, stored: None",
                    {"invalid-container-crc-header", "invalid-container-crc-weights", "invalid-container-crc-trailer",
                     "invalid-crc-and-version-3.0"},
                    {"valid-gamma-sine-w16", "invalid-container-bad-magic"}),
    "fixed-epsilon": ("import dataclasses\n_r = rd.reconstruct\n"
                      "rd.reconstruct = lambda z, s, h, w: _r(z, s, dataclasses.replace(h, epsilon=1 / 64), w)",
                      {"valid-custom-epsilon-white", "valid-bounds-low", "valid-bounds-high"},
                      {"valid-gamma-sine-w16"}),
    "swaps-red-and-blue": ("_b = rd.decode_base\nrd.decode_base = lambda *a: _b(*a)[..., ::-1].copy()",
                           {"valid-gamma-sine-w16", "valid-subsampled-420-base", "valid-size-1x1"},
                           {"valid-greyscale-base"}),
    "accepts-newer-versions": ("_v = rd.check_version\nrd.check_version = lambda m, r: _v(min(m, 0x0200), r)",
                               {"unsupported-version-3.0", "unsupported-version-2.2"},
                               {"invalid-crc-and-version-3.0", "invalid-version-0.1", "unsupported-version-1.1"}),
    "knows-version-1.1": ("def check_version(m, r):\n"
                          "    if m >> 8 == 0: raise rd.RejectedError('[VER-6]')\n"
                          "    if m > rd.READER_VERSION: raise rd.UnsupportedVersionError('[VER-3]')\n"
                          "rd.check_version = check_version",
                          {"unsupported-version-1.1"}, {"unsupported-version-2.2", "valid-minimum-version-2.0"}),
    "ignores-placement": ("rd._placed = lambda header, record: header",
                          {"valid-placement-crop", "valid-placement-rotate-37-expand",
                           "valid-placement-transpose-rotate-90", "valid-placement-resize"},
                          {"valid-gamma-sine-w16", "invalid-placement-short"}),
    "no-clamp": ("rd.placed_coordinates = lambda n, p: (p - 0.5) * (2.0 / (n - 1)) - 1.0",
                 {"valid-placement-scale-2-edges", "valid-placement-rotate-37-expand"},
                 {"valid-placement-crop", "valid-placement-crop-beyond-edges", "valid-placement-resize",
                  "valid-placement-transpose-transverse"}),
    "network-outside-the-source": ("rd.outside_source = lambda h: np.zeros((h.height, h.width), bool)",
                                   {"valid-placement-crop-beyond-edges", "valid-placement-rotate-37-expand",
                                    "valid-placement-rotate-20-expand-white", "valid-placement-scale-2-edges"},
                                   {"valid-placement-crop", "valid-placement-resize"}),
    # The draft rule: the pixel's centre outside [0, W0] x [0, H0], with no margin for a reduction.
    "no-margins": ("def outside_source(h):\n"
                   "    a, b, c, d, e, f = h.matrix\n"
                   "    y, x = np.mgrid[0 : h.height, 0 : h.width] + 0.5\n"
                   "    xs, ys = a * x + b * y + c, d * x + e * y + f\n"
                   "    return (xs < 0) | (xs > h.source_width) | (ys < 0) | (ys > h.source_height)\n"
                   "rd.outside_source = outside_source",
                   {"valid-placement-reduce", "valid-placement-scale-2-edges"},
                   {"valid-placement-crop-beyond-edges", "valid-placement-rotate-90",
                    "valid-placement-rotate-37-expand", "valid-placement-resize"}),
    # Margins of half the footprint's extent, (|a| + |b|) / 2: a rotation's fill by the edges gets the network.
    "footprint-margins": ("def outside_source(h):\n"
                          "    a, b, c, d, e, f = h.matrix\n"
                          "    y, x = np.mgrid[0 : h.height, 0 : h.width] + 0.5\n"
                          "    xs, ys = a * x + b * y + c, d * x + e * y + f\n"
                          "    mx, my = (abs(a) + abs(b)) / 2, (abs(d) + abs(e)) / 2\n"
                          "    return (xs < -mx) | (xs > h.source_width + mx) | (ys < -my)"
                          " | (ys > h.source_height + my)\n"
                          "rd.outside_source = outside_source",
                          {"valid-placement-crop-beyond-edges", "valid-placement-rotate-90",
                           "valid-placement-rotate-37-expand", "valid-placement-scale-2-edges"},
                          {"valid-placement-reduce", "valid-placement-resize", "valid-placement-crop"}),
    # The grown rectangle taken as open: a centre on its edge counted outside.
    "open-grown-rectangle": ("_outside = rd.outside_source\n"
                             "def outside_source(h):\n"
                             "    a, b, c, d, e, f = h.matrix\n"
                             "    y, x = np.mgrid[0 : h.height, 0 : h.width] + 0.5\n"
                             "    xs = a * x + b * y + c\n"
                             "    mx = max(0.0, (a * a + b * b) ** 0.5 - 1) / 2\n"
                             "    return _outside(h) | (xs == -mx) | (xs == h.source_width + mx)\n"
                             "rd.outside_source = outside_source",
                             {"valid-placement-scale-2-edges"},
                             {"valid-placement-reduce", "valid-placement-crop-beyond-edges"}),
    "version-1.0-ranges": ("rd.RANGES.clear()\nrd.MAX_HEADROOM = 64.0",
                           {"invalid-sdr-white-below-1", "invalid-sdr-white-1e-45", "invalid-epsilon-too-small",
                            "invalid-epsilon-above-half", "invalid-epsilon-1", "invalid-input-range-too-small",
                            "invalid-residual-mean-too-large", "invalid-residual-mean-too-small",
                            "invalid-residual-range-too-large", "invalid-residual-range-too-small",
                            "invalid-headroom-above-14"},
                           {"valid-bounds-low", "valid-bounds-high", "invalid-sdr-white-0",
                            "invalid-sdr-white-above-10000"}),
    "float32-phases": ("import math\n"
                       "def encode(values):\n"
                       "    phase = values.astype(np.float32)[:, None] * (np.float32(math.pi) * "
                       "np.exp2(np.arange(12)).astype(np.float32))\n"
                       "    return np.concatenate([np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)\n"
                       "rd.encode = encode",
                       {"valid-high-frequency-weights"}, {"valid-gamma-sine-w16", "valid-size-23x37"}),
    "joins-chunks-in-file-order": ("def reassemble(segments):\n"
                                   "    ours = [s for s in segments if rd.is_gainmlp(s)]\n"
                                   "    if not ours: raise rd.NoGainMapError('none')\n"
                                   "    return b''.join(s.payload[10:] for s in ours)\n"
                                   "rd.reassemble = reassemble",
                                   {"valid-segments-reversed", "invalid-segment-count-0", "invalid-segment-sequence-0"},
                                   {"valid-w128-two-segments", "invalid-segment-missing"}),
    "reads-segments-after-sos": ("import re\n_s = rd.read_segments\n"
                                 "def read_segments(data):\n"
                                 "    found = [rd.Segment(0xEF, m.start(), data[m.start() + 4 : m.start() + 2 + "
                                 "int.from_bytes(m.group(1), 'big')])\n"
                                 "             for m in re.finditer(rb'\\xff\\xef(..)GainMLP\\x00', data, re.S)]\n"
                                 "    return _s(data) + [s for s in found if s.offset > rd.split_at_sos(data)[1]]\n"
                                 "rd.read_segments = read_segments",
                                 {"nogainmap-segment-after-eoi", "valid-metadata-neighbours",
                                  "valid-with-iso-gain-map"}, {"valid-gamma-sine-w16"}),
    "ignores-display-headroom": ("rd.display_weight = lambda header, headroom: 1.0",
                                 {"valid-display-headroom-gamma", "valid-display-headroom-gain",
                                  "valid-gain-weight-zero"}, {"valid-headroom-equal"}),
    "applies-exif-orientation": ("from PIL import Image\nimport io\n_d = rd.decode\n"
                                 "def decode(data, headroom=None, reader=rd.READER_VERSION):\n"
                                 "    out = _d(data, headroom, reader)\n"
                                 "    turned = Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6\n"
                                 "    return np.rot90(out, -1).copy() if turned else out\n"
                                 "rd.decode = decode",
                                 {"valid-metadata-neighbours"}, {"valid-gamma-sine-w16"}),
    "no-gain-map-is-damage": ("rd.NoGainMapError.exit_status = rd.EXIT_REJECTED",
                              {"nogainmap-plain-jpeg", "nogainmap-segment-after-eoi"}, {"invalid-container-bad-magic"}),
    "no-clipping": ("def reconstruct(z, s, h, w):\n"
                    "    f = z.astype(np.float64) * (h.residual_range / 2) + h.residual_mean\n"
                    "    out = (s + h.epsilon) ** f - h.epsilon\n"
                    "    return np.where(np.isnan(out), 0, out).astype(np.float32)\n"
                    "rd.reconstruct = reconstruct",
                    {"valid-clipping"}, {"valid-gamma-sine-w16"}),
    "no-clamp-before-pq": ("def base_to_pq(code, h):\n"
                           "    c = code / 255.0\n"
                           "    srgb = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)\n"
                           "    linear = srgb if h.base_transfer == 1 else c ** 2.4\n"
                           "    m = np.linalg.inv(rd.npm(rd.PRIMARIES[3])) @ rd.npm(rd.PRIMARIES[h.base_primaries])\n"
                           "    y = (linear @ m.T * h.sdr_white / 10000) ** rd.M1\n"
                           "    return ((rd.C1 + rd.C2 * y) / (1 + rd.C3 * y)) ** rd.M2\n"
                           "rd.base_to_pq = base_to_pq",
                           {"valid-gamma-relu-w32-srgb-p3"}, {"valid-custom-epsilon-white"}),
    "accepts-any-hidden-width": ("rd.HIDDEN_WIDTHS = (8, 16, 24, 32, 64, 128)",
                                 {"invalid-hidden-width-24"}, {"invalid-graph-width-mismatch"}),
    "no-nan-guard": ("_r = rd.reconstruct\n"
                     "def reconstruct(z, s, h, w):\n"
                     "    f = z.astype(np.float64) * (h.residual_range / 2) + h.residual_mean\n"
                     "    return np.clip((s + h.epsilon) ** f - h.epsilon, 0, 1).astype(np.float32)\n"
                     "rd.reconstruct = reconstruct",
                     {"valid-overflow-nan"}, {"valid-gamma-sine-w16"}),
}

_OUTPUT_ON_REJECTION = """
status = rd.main(sys.argv[1:])
if status:
    np.save(sys.argv[2], np.zeros((1, 1, 3), np.float32))
sys.exit(status)
"""


def broken_decoder(tmp_path: Path, name: str, patch: str, tail: str = "sys.exit(rd.main(sys.argv[1:]))") -> str:
    script = tmp_path / f"{name}.py"
    script.write_text(f"import sys\nimport numpy as np\nfrom conformance import reference_decoder as rd\n"
                      f"{textwrap.dedent(patch)}\n{tail}\n")
    return f"{PYTHON} {script} {{input}} {{output}}"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_decoder_fails_on_the_right_vectors(tmp_path, monkeypatch, name):
    patch, must_fail, must_pass = BROKEN[name]
    broken = fresh_reference_decoder()
    exec(textwrap.dedent(patch), {"rd": broken, "np": np})  # the patch is this file's own text
    in_process(monkeypatch, {name: broken.main})  # type: ignore[attr-defined]
    decoder = f"{IN_PROCESS}{name} {{input}} {{output}}"
    status, report = run_suite(tmp_path, decoder, "--strict", *EXIT_CODES, "--only",
                               *sorted(must_fail | must_pass), headroom=decoder + " --display-headroom {headroom}")
    assert status == run.EXIT_FAIL
    assert statuses(report, "fail") == must_fail
    assert statuses(report, "pass") == must_pass


def test_decoder_writing_output_for_rejected_files_fails(tmp_path):
    decoder = broken_decoder(tmp_path, "writes-anyway", "", tail=_OUTPUT_ON_REJECTION)
    rejected = {"invalid-container-crc-weights", "invalid-graph-external-data", "nogainmap-plain-jpeg"}
    status, report = run_suite(tmp_path, decoder, "--only", *rejected, "valid-gamma-sine-w16")
    assert status == run.EXIT_FAIL and statuses(report, "fail") == rejected
    assert all("GEN-2" in r["message"] for r in report["results"] if r["status"] == "fail")


# ---- the runner's own behaviour ----

def fake_decoder(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake.py"
    script.write_text("import sys, time\nimport numpy as np\nsource, output = sys.argv[1], sys.argv[2]\n"
                      + textwrap.dedent(body))
    return f"{PYTHON} {script} {{input}} {{output}}"


@pytest.mark.parametrize(("body", "message"), [
    ("np.save(output, np.full((48, 64, 3), np.nan, np.float32))", "not finite"),
    ("np.save(output, np.zeros((64, 48, 3), np.float32))", "output shape"),
    ("np.save(output, np.zeros((48, 64, 3), np.float32))", "error max"),
    ("np.save(output, np.zeros((48, 64, 3), np.uint8))", "unreadable output"),
    ("open(output, 'wb').write(b'junk')", "unreadable output"),
    ("sys.exit(0)", "wrote no output"),
    ("sys.exit(5)", "exited with status 5"),
    ("time.sleep(30)", "timed out"),
])
def test_runner_judges_bad_outputs(tmp_path, body, message):
    status, report = run_suite(tmp_path, fake_decoder(tmp_path, body), "--only", "valid-gamma-sine-w16",
                               "--timeout", "3")
    assert status == run.EXIT_FAIL and message in report["results"][0]["message"]


def test_runner_limits_the_decoders_memory(tmp_path):
    hog = fake_decoder(tmp_path, "hoard = np.ones(1 << 30, np.uint8)\nnp.save(output, np.zeros((48, 64, 3)))")
    status, report = run_suite(tmp_path, hog, "--only", "valid-gamma-sine-w16", "--memory-limit", "700")
    assert status == run.EXIT_FAIL and "exited with status 1" in report["results"][0]["message"]
    decoder = f"{PYTHON} {ROOT}/conformance/reference_decoder.py {{input}} {{output}}"
    status, _ = run_suite(tmp_path, decoder, "--only", "valid-gamma-sine-w16", "invalid-base-too-large",
                          "--memory-limit", "2000")
    assert status == run.EXIT_PASS


def test_runner_checks_the_rejection_kind_only_when_told(tmp_path):
    decoder = fake_decoder(tmp_path, "sys.exit(7)")
    names = ["--only", "nogainmap-plain-jpeg", "unsupported-version-3.0", "invalid-container-crc-weights"]
    assert run_suite(tmp_path, decoder, *names)[0] == run.EXIT_PASS
    status, report = run_suite(tmp_path, decoder, *names, *EXIT_CODES)
    assert status == run.EXIT_FAIL
    assert statuses(report, "fail") == {"nogainmap-plain-jpeg", "invalid-container-crc-weights"}
    assert statuses(report, "warn") == {"unsupported-version-3.0"}  # [VER-4] is a SHOULD


def test_runner_skips_headroom_vectors_without_a_headroom_decoder(tmp_path):
    status, report = run_suite(tmp_path, fake_decoder(tmp_path, "sys.exit(1)"), "--only",
                               "valid-display-headroom-gamma")
    assert status == run.EXIT_PASS and statuses(report, "skip") == {"valid-display-headroom-gamma"}


def test_runner_detects_a_damaged_suite(tmp_path):
    copy = tmp_path / "vectors" / "valid-size-1x1"
    copy.mkdir(parents=True)
    for path in (VECTORS / "valid-size-1x1").iterdir():
        copy.joinpath(path.name).write_bytes(path.read_bytes())
    expected = np.load(copy / "expected.npy")
    np.save(copy / "expected.npy", expected + 0.5)
    decoder = f"{PYTHON} -m conformance.gainmap_decode {{input}} {{output}}"
    status, report = run_suite(tmp_path, decoder, "--vectors", str(tmp_path / "vectors"))
    assert status == run.EXIT_FAIL and "suite damaged" in report["results"][0]["message"]


@pytest.mark.parametrize("argv", [
    ["--decoder", "dec {input}"],
    ["--decoder", "dec {output}"],
    ["--decoder", "dec {input} {output} {extra}"],
    ["--decoder", "dec 'unclosed {input} {output}"],
    ["--decoder", "dec {input} {output}", "--headroom-decoder", "dec {input} {output}"],
    ["--decoder", "dec {input} {output}", "--only", "no-such-vector"],
    ["--decoder", "dec {input} {output}", "--vectors", "/nonexistent"],
    ["--decoder", "dec {input} {output}", "--exit-code", "damage=1"],
    ["--decoder", "dec {input} {output}", "--exit-code", "reject=0"],
    ["--decoder", "dec {input} {output}", "--timeout", "0"],
])
def test_runner_usage_errors(tmp_path, argv, capsys):
    report = tmp_path / "r.json"
    assert run.main([*argv, "--json", str(report), "--report", str(tmp_path / "r.txt")]) == run.EXIT_USAGE
    assert "conformance: error:" in capsys.readouterr().err and not report.exists()


def test_runner_argparse_errors_exit_2():
    completed = subprocess.run([PYTHON, "-m", "conformance"], capture_output=True, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert completed.returncode == 2 and "--decoder" in completed.stderr


def test_reference_decoder_cli(tmp_path):
    script = str(ROOT / "conformance" / "reference_decoder.py")
    for name, status in (("valid-size-1x1", 0), ("invalid-container-crc-weights", 1), ("nogainmap-plain-jpeg", 3),
                         ("unsupported-version-3.0", 4)):
        out = tmp_path / f"{name}.npy"
        completed = subprocess.run([PYTHON, script, str(VECTORS / name / "input.jpg"), str(out)],
                                   capture_output=True, text=True)
        assert completed.returncode == status and out.exists() == (status == 0)
        assert list(tmp_path.glob(".*")) == []  # no temporary file left behind
        assert status != 1 or "rejected: [CON-15]" in completed.stderr


def test_reference_decoder_needs_neither_onnx_nor_the_library():
    code = ("import sys\nfrom conformance import reference_decoder\n"
            "assert not {'onnx', 'onnxruntime', 'gainmap_format'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([PYTHON, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


# ---- spec coverage, writer checks, generator ----

def index_rows() -> list[tuple[str, str]]:
    """(identifier, summary) of every row of the spec's requirement index."""
    text = SPEC.read_text()
    index = text[text.index("## Requirement index") :]
    return re.findall(r"^\| ([A-Z]+-\d+) \| [^|]+ \| (.+?) \|$", index, re.M)


def spec_identifiers() -> list[str]:
    """The requirements in force; a withdrawn one keeps its row but binds nobody."""
    return [identifier for identifier, summary in index_rows() if not summary.startswith("Withdrawn")]


def test_withdrawn_requirements_keep_their_identifiers():
    identifiers = [identifier for identifier, _ in index_rows()]
    assert len(identifiers) == len(set(identifiers))
    withdrawn = set(identifiers) - set(spec_identifiers())
    assert withdrawn == {"CON-19", "CON-29", "CON-36", "RES-8"}
    body = SPEC.read_text()[: SPEC.read_text().index("## Requirement index")]
    assert all(f"**[{identifier}]**" not in body for identifier in withdrawn)


def exemptions() -> dict[str, str]:
    text = README.read_text()
    block = text[text.index("<!-- exemptions:begin -->") : text.index("<!-- exemptions:end -->")]
    return dict(re.findall(r"^\| ([A-Z]+-\d+) \| (.+?) \|$", block, re.M))


def test_every_must_shall_and_should_carries_an_identifier():
    text = SPEC.read_text()
    body = text[: text.index("## Requirement index")]
    untagged = [paragraph[:100] for paragraph in re.split(r"\n\s*\n", body)
                if re.search(r"\b(MUST|SHALL|SHOULD|REQUIRED|RECOMMENDED)\b", paragraph)
                and not paragraph.lstrip().startswith("**[") and "BCP 14" not in paragraph]
    assert untagged == []


def test_every_spec_requirement_is_covered_or_exempt():
    identifiers = spec_identifiers()
    assert len(identifiers) == len(set(identifiers)) > 150
    covered = {i for _, case in cases() for i in case["requirements"]}
    exempt = exemptions()
    assert not covered - set(identifiers), "vectors cite identifiers the spec does not define"
    assert not set(exempt) - set(identifiers), "the exemption table names identifiers the spec does not define"
    assert not covered & set(exempt), "an exempt identifier is covered after all; drop its exemption"
    assert set(identifiers) - covered - set(exempt) == set()
    assert all(len(reason) > 40 for reason in exempt.values()) and len(exempt) <= 5


def test_every_case_is_well_formed():
    for folder, case in cases():
        assert case["name"] == folder.name
        assert case["level"] in ("must", "should") and case["requirements"] and case["note"]
        assert run.sha256(folder / "input.jpg") == case["input_sha256"]
        if case["expected_result"] == "decode":
            expected = np.load(folder / "expected.npy")
            assert run.sha256(folder / "expected.npy") == case["expected_sha256"]
            assert expected.dtype == np.float32 and list(expected.shape) == case["shape"]
            assert set(case["tolerance"]) == {"max_abs", "rms"}
        for name, digest in case.get("extra_files", {}).items():
            assert run.sha256(folder / name) == digest


def writer_inputs(folder: Path) -> tuple[bytes | None, np.ndarray | None]:
    writer_input = folder / "writer_input.jpg"
    source = folder / "source.npy"
    return (writer_input.read_bytes() if writer_input.exists() else None,
            np.load(source) if source.exists() else None)


@pytest.mark.parametrize(("folder", "case"), [(f, c) for f, c in valid_cases() if c.get("writer_checks")],
                         ids=lambda v: getattr(v, "name", ""))
def test_writer_requirements_hold_on_the_reference_encoders_files(folder, case):
    outcomes = check_writer.check((folder / "input.jpg").read_bytes(), *writer_inputs(folder))
    assert {name: problem for name, problem in outcomes.items() if problem} == {}
    claimed = set(case["requirements"]) & check_writer.REQUIREMENTS
    assert claimed <= set(outcomes), f"listed but not verified: {sorted(claimed - set(outcomes))}"


@pytest.mark.parametrize(("name", "requirement"), [
    ("valid-flags-set", "CON-4"),
    ("valid-writer-version-0.0", "VER-2"),
    ("valid-segments-reversed", "CAR-22"),
    ("valid-graph-free-text", "ENC-8"),
    ("valid-headroom-equal", "ENC-6"),
])
def test_writer_checks_catch_files_no_reference_writer_makes(name, requirement):
    outcomes = check_writer.check((VECTORS / name / "input.jpg").read_bytes())
    assert outcomes[requirement] is not None


def test_readme_table_matches_the_vectors():
    records = [case for _, case in cases()]
    assert generate.table(records) in README.read_text()


def assert_same_vectors(made: Path, names: list[str]) -> None:
    for name in names:
        files = sorted(p.name for p in (made / name).iterdir())
        assert files == sorted(p.name for p in (VECTORS / name).iterdir())
        for file in files:
            assert (made / name / file).read_bytes() == (VECTORS / name / file).read_bytes(), f"{name}/{file}"


def test_generator_is_reproducible(tmp_path):
    names = ["valid-gamma-sine-w16", "valid-w128-two-segments", "valid-metadata-neighbours", "valid-bounds-high",
             "valid-high-frequency-weights", "invalid-graph-external-data", "invalid-base-too-large"]
    assert generate.main(["--out", str(tmp_path), "--only", *names]) == 0
    assert_same_vectors(tmp_path, names)


#: numpy's run-time SIMD dispatch turned off: its groups (numpy 2) and features (numpy 1), so that
#: numpy computes what a baseline x86-64 CPU computes, whatever this one has.
WITHOUT_SIMD = {"NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX2 FMA3 AVX512F AVX512CD AVX512_SKX AVX512_CLX "
                                            "AVX512_CNL AVX512_ICL AVX512_SPR",
                "GAINMAP_THREADS": "1"}


def test_generator_is_reproducible_on_a_cpu_without_simd(tmp_path):
    """Every vector, made again where numpy's float32 power, exp and sin round as on another CPU.

    The scenes, bases and byte surgery are integer or IEEE-exact arithmetic and the fits are the
    committed ones, so every input is the same bytes; the decodes may differ in their last bits,
    within generate.REPRODUCTION, so the committed expected outputs are kept.
    """
    completed = subprocess.run([PYTHON, "-m", "conformance.generate", "--out", str(tmp_path)], capture_output=True,
                               text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **WITHOUT_SIMD})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "fitting" not in completed.stdout
    assert_same_vectors(tmp_path, sorted(p.name for p in VECTORS.iterdir() if p.is_dir()))


def test_a_committed_expected_output_is_kept_only_within_the_reproduction_bound(tmp_path, monkeypatch):
    name = "valid-size-23x37"
    (case,) = catalogue.build([name])
    expected = np.load(VECTORS / name / "expected.npy")
    (tmp_path / name).mkdir()
    monkeypatch.setattr(catalogue.SETTINGS, "reference", tmp_path)
    for shift, kept in ((generate.REPRODUCTION * 0.9, True), (generate.REPRODUCTION * 1.1, False)):
        np.save(tmp_path / name / "expected.npy", expected + np.float32(shift))
        made = generate.expected_output(case)
        assert np.array_equal(made, np.load(tmp_path / name / "expected.npy")) == kept
        assert np.abs(made - expected).max() <= generate.REPRODUCTION


def test_a_committed_fit_is_taken_only_for_its_own_base_and_options():
    scene = catalogue.SCENES["29x1"]
    committed = (VECTORS / scene.vector / "input.jpg").read_bytes()
    base, options = catalogue.encoded("29x1").base, scene.encode_options()
    assert catalogue.matches_stored_fit(committed, base, options)
    assert not catalogue.matches_stored_fit(committed, catalogue.encoded("1x37").base, options)
    wider = dataclasses.replace(options, fit=dataclasses.replace(options.fit, hidden_width=32))
    assert not catalogue.matches_stored_fit(committed, base, wider)


def test_refitting_changes_only_the_parameters(monkeypatch):
    """--refit fits again (CPU-dependent bits); everything but the parameters is the committed file."""
    pytest.importorskip("torch")
    monkeypatch.setattr(catalogue.SETTINGS, "refit", True)
    catalogue.encoded.cache_clear()
    try:
        made = catalogue.encoded("29x1").jpeg
    finally:
        catalogue.encoded.cache_clear()
    committed = (VECTORS / "valid-size-29x1" / "input.jpg").read_bytes()
    assert mutations.without_gainmlp(made) == mutations.without_gainmlp(committed)
    new, old = (codec.read_container(data) for data in (made, committed))
    assert len(new.graph) == len(old.graph)
    for name, value in dataclasses.asdict(old.metadata).items():
        # Floats within binary32 rounding, headrooms within one rounding step of [CON-20].
        assert getattr(new.metadata, name) == (pytest.approx(value, rel=1e-6, abs=1e-4)
                                               if isinstance(value, float) else value)
