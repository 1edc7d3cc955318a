"""Batch encoding (#14): many files, resumable, failures reported, local processes and a Dask cluster."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gainmap_format import batch, codec, fitting, jpeg
from gainmap_format.batch import BatchItem, ConvertRecipe, EncodeRecipe
from gainmap_format.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, main
from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import InputError
from gainmap_format.hdrio import write_exr
from gainmap_format.scenes import hdr_scene

ITERATIONS = 30
RECIPE = EncodeRecipe(codec.EncodeOptions(fit=codec.FitOptions(iterations=ITERATIONS, seed=2)))
ARGS = ["--iterations", str(ITERATIONS), "--seed", "2"]

#: PQ code values: the fused kernel sums in an order that depends on its thread count, and a
#: sequential run and a worker differ in threads; 30 steps from the same start stay this close.
PQ_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def masters(tmp_path_factory):
    """A folder of five tiny HDR masters (two in a subfolder), with a hidden file and a note beside them."""
    root = tmp_path_factory.mktemp("masters")
    (root / "trip").mkdir()
    for index, name in enumerate(["a.exr", "b.exr", "c.exr", "trip/d.exr", "trip/e.exr"]):
        write_exr(root / name, hdr_scene(48, 64, seed=index), chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)
    (root / ".hidden.exr").write_bytes(b"not looked at")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def with_corrupt(masters, tmp_path_factory):
    """The masters and one corrupt .exr, as a folder."""
    root = tmp_path_factory.mktemp("library")
    for source in masters.rglob("*.exr"):
        target = root / source.relative_to(masters)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(source.read_bytes())
    (root / "trip" / "broken.exr").write_bytes(b"v/1\x01 this is not an OpenEXR file")
    return root


@pytest.fixture(scope="module")
def sequential(masters, tmp_path_factory):
    """The masters encoded one after another in this process: the reference for the parallel runs."""
    out = tmp_path_factory.mktemp("sequential")
    results = list(batch.run_batch(batch.discover([masters], out), RECIPE, jobs=1))
    assert [r.status for r in results] == ["written"] * 5
    return out


def _outputs(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _assert_same_hdr(folder: Path, reference: Path) -> None:
    for path in reference.rglob("*.jpg"):
        ours, theirs = (folder / path.relative_to(reference)).read_bytes(), path.read_bytes()
        assert jpeg.parse_jpeg(ours).scan == jpeg.parse_jpeg(theirs).scan, "the base images differ"
        difference = np.abs(codec.decode(ours).pq - codec.decode(theirs).pq).max()
        assert difference <= PQ_TOLERANCE, (path.name, difference)


def _signatures(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*.jpg")}


# ---- Finding files ----


def test_discover_mirrors_the_tree_and_chooses_files(masters, tmp_path):
    out = tmp_path / "out"
    items = batch.discover([masters], out, suffixes=batch.HDR_SUFFIXES)
    assert [(i.source.relative_to(masters).as_posix(), i.output.relative_to(out).as_posix()) for i in items] == [
        ("a.exr", "a.jpg"), ("b.exr", "b.jpg"), ("c.exr", "c.jpg"), ("trip/d.exr", "trip/d.jpg"),
        ("trip/e.exr", "trip/e.jpg"),
    ]
    chosen = batch.discover([masters], out, pattern="trip/*.exr")
    assert [i.output.relative_to(out).as_posix() for i in chosen] == ["trip/d.jpg", "trip/e.jpg"]
    assert [i.source.name for i in batch.discover([masters], out, pattern="*.txt")] == ["notes.txt"]


def test_discover_refuses_clashes_and_missing_inputs(masters, tmp_path):
    with pytest.raises(InputError, match="would both be written to"):
        batch.discover([masters, masters], tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        batch.discover([tmp_path / "missing"], tmp_path)
    jpeg_folder = tmp_path / "jpegs"
    jpeg_folder.mkdir()
    (jpeg_folder / "x.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="is the input itself"):
        batch.discover([jpeg_folder], jpeg_folder, suffixes=batch.JPEG_SUFFIXES)
    # The output folder inside an input folder is never walked: its outputs are not inputs.
    (jpeg_folder / "out").mkdir()
    (jpeg_folder / "out" / "y.jpg").write_bytes(b"")
    assert [i.source.name for i in batch.discover([jpeg_folder], jpeg_folder / "out", suffixes=(".jpg",))] == ["x.jpg"]


# ---- Provenance ----


def test_provenance_decides_what_is_redone(masters, sequential):
    output = sequential / "a.jpg"
    digest = batch.file_digest(masters / "a.exr")
    comment = batch.provenance(digest, batch.settings_digest(RECIPE))
    assert comment.startswith(b"gainmap-provenance 1 source-sha256=" + digest.encode() + b" options-sha256=")
    assert jpeg.comments(output.read_bytes(), b"gainmap-provenance ") == [comment]
    headroom = codec.read_container(output).metadata.alternate_headroom
    assert batch.valid_output(output, comment, RECIPE) == pytest.approx(headroom)
    other = EncodeRecipe(codec.EncodeOptions(fit=codec.FitOptions(iterations=ITERATIONS + 1, seed=2)))
    assert batch.settings_digest(other) != batch.settings_digest(RECIPE)
    # Where the fit runs does not change what the output is.
    on_cpu = EncodeRecipe(codec.EncodeOptions(fit=codec.FitOptions(iterations=ITERATIONS, seed=2, device="cpu")))
    assert batch.settings_digest(on_cpu) == batch.settings_digest(RECIPE)
    assert batch.valid_output(output, batch.provenance("0" * 64, batch.settings_digest(RECIPE)), RECIPE) is None
    assert batch.valid_output(output, comment, ConvertRecipe(to="iso")) is None


def test_a_damaged_or_unstamped_output_is_not_valid(sequential, tmp_path):
    data = (sequential / "b.jpg").read_bytes()
    comment = jpeg.comments(data, b"gainmap-provenance ")[0]
    cases = {
        "truncated": data[:-200],
        "unstamped": jpeg.replace_segments(jpeg.parse_jpeg(data), [], lambda s: s.marker == jpeg.COM).to_bytes(),
        "twice": jpeg.replace_segments(jpeg.parse_jpeg(data), [jpeg.Segment(jpeg.COM, comment)], lambda s: False)
        .to_bytes(),
    }
    for name, damaged in cases.items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(damaged)
        assert batch.valid_output(path, comment, RECIPE) is None, name
    assert batch.valid_output(tmp_path / "missing.jpg", comment, RECIPE) is None
    # Stamping again replaces the comment rather than adding one.
    restamped = batch.stamp(data, comment.replace(b"source-sha256=", b"source-sha256=f"))
    assert len(jpeg.comments(restamped, b"gainmap-provenance ")) == 1 and len(restamped) == len(data) + 1


# ---- The command line, on this machine ----


def test_a_folder_with_a_corrupt_file(with_corrupt, sequential, tmp_path, capsys):
    out, report = tmp_path / "out", tmp_path / "report.json"
    status = main(["encode", str(with_corrupt), "-o", str(out), "--jobs", "2", "--report", str(report), *ARGS])
    assert status == EXIT_REJECTED
    captured = capsys.readouterr()
    broken = with_corrupt / "trip" / "broken.exr"
    assert f"gainmap: {broken}: not a readable OpenEXR file" in captured.err
    assert "written        5" in captured.out and "failed         1" in captured.out
    assert _outputs(out) == ["a.jpg", "b.jpg", "c.jpg", "trip/d.jpg", "trip/e.jpg"]
    records = {Path(r["input"]).name: r for r in json.loads(report.read_text())}
    assert len(records) == 6 and set(records["a.exr"]) == set(batch.REPORT_FIELDS)
    assert records["broken.exr"]["status"] == "failed" and "OpenEXR" in records["broken.exr"]["error"]
    good = [r for name, r in records.items() if name != "broken.exr"]
    assert all(r["status"] == "written" and r["error"] is None for r in good)
    assert all(r["output_bytes"] == Path(r["output"]).stat().st_size and r["final_loss"] > 0 for r in good)
    assert all(r["fit_seconds"] > 0 and r["headroom"] > 0 and r["input_bytes"] > 0 for r in good)
    _assert_same_hdr(out, sequential)

    # Run again: nothing is redone, the corrupt file still fails.
    before = _signatures(out)
    csv_report = tmp_path / "report.csv"
    status = main(["encode", str(with_corrupt), "-o", str(out), "--jobs", "2", "--report", str(csv_report), *ARGS,
                   "--quiet"])
    assert status == EXIT_REJECTED and _signatures(out) == before
    lines = csv_report.read_text().splitlines()
    assert lines[0] == ",".join(batch.REPORT_FIELDS) and len(lines) == 7
    assert sum(",skipped," in line for line in lines) == 5 and sum(",failed," in line for line in lines) == 1
    assert capsys.readouterr().out.count("skipped ") == 5

    # Other options, or --force, redo the files.
    assert main(["encode", str(with_corrupt / "a.exr"), "-o", str(out / "a.jpg"), "--force", "--quiet", *ARGS]) == 0
    assert _signatures(out)[str(out / "a.jpg")] != before[str(out / "a.jpg")]
    assert main(["encode", str(with_corrupt / "trip"), "-o", str(out / "trip"), "--glob", "e.exr", "--jobs", "1",
                 "--quiet", "--iterations", "31", "--seed", "2"]) == EXIT_OK
    assert _signatures(out)[str(out / "trip/e.jpg")] != before[str(out / "trip/e.jpg")]


def test_a_batch_resumes_over_single_file_outputs(masters, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["encode", str(masters / "c.exr"), "-o", str(out / "c.jpg"), "--quiet", *ARGS]) == EXIT_OK
    single = _signatures(out)
    args = ["encode", str(masters / "c.exr"), str(masters / "b.exr"), "-o", str(out), "--jobs", "1", "--quiet"]
    assert main([*args, *ARGS]) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[0].startswith(f"skipped {out / 'c.jpg'}")
    assert _signatures(out)[str(out / "c.jpg")] == single[str(out / "c.jpg")] and (out / "b.jpg").exists()


def test_ctrl_c_stops_cleanly_and_reports_what_finished(masters, tmp_path, monkeypatch, capsys):
    real_fit, calls = fitting.fit, []

    def fit_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(fitting, "fit", fit_then_interrupt)
    out, report = tmp_path / "out", tmp_path / "r.json"
    status = main(["encode", str(masters), "-o", str(out), "--jobs", "1", "--report", str(report), "--quiet", *ARGS])
    assert status == EXIT_INTERRUPTED and "interrupted" in capsys.readouterr().err
    assert _outputs(out) == ["a.jpg"]  # no temporary file left
    assert [r["status"] for r in json.loads(report.read_text())] == ["written"]


def test_convert_a_folder_to_iso(tmp_path, capsys):
    from tests.standard_fixtures import standard_fixture

    phone = tmp_path / "phone"
    (phone / "day").mkdir(parents=True)
    (phone / "one.jpg").write_bytes(standard_fixture("iso-and-xmp").data)
    (phone / "day" / "two.jpeg").write_bytes(standard_fixture("iso-and-xmp").data)
    (phone / "day" / "plain.jpg").write_bytes(b"\xff\xd8\xff not a gain map")
    out = phone / "iso"
    args = ["convert", str(phone), "-o", str(out), "--to", "iso", "--jobs", "1", "--quiet"]
    assert main(args) == EXIT_REJECTED
    assert _outputs(out) == ["day/two.jpg", "one.jpg"]
    assert main(args) == EXIT_REJECTED
    assert capsys.readouterr().out.count("skipped ") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "MASTERS", "-o", "OUT/x.jpg"], "-o names an output folder, not a JPEG"),
        (["encode", "MASTERS", "-o", "OUT", "--report", "OUT.txt"], "give the output a name ending in .json or .csv"),
        (["encode", "MASTERS", "-o", "OUT", "--sdr", "MASTERS/a.exr"], "--sdr: a base for one input"),
        (["encode", "MASTERS", "-o", "OUT", "--glob", "*.tif"], "no input files: the folders hold no *.tif"),
        (["encode", "MASTERS", "MASTERS/missing.exr", "-o", "OUT"], "missing.exr: does not exist"),
        (["encode", "MASTERS", "-o", "OUT", "--jobs", "0"], "0 is not a positive integer"),
    ],
)
def test_wrong_batch_arguments_exit_2_before_any_work(args, message, masters, tmp_path, capsys):
    args = [a.replace("MASTERS", str(masters)).replace("OUT", str(tmp_path / "out")) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_scheduler_without_distributed_says_what_to_install(masters, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(masters), "-o", str(tmp_path / "out"), "--scheduler", "local"])
    assert exit_info.value.code == EXIT_USAGE
    assert "pip install 'gainmap-format[dask]'" in capsys.readouterr().err


def test_version_and_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("gainmap 0.")
    from gainmap_format.cli import build_parser

    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    assert set(commands) == {"encode", "decode", "convert", "edit", "info", "demo", "meta-init", "bench"}
    for command in commands:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"examples:\n  gainmap {command}" in capsys.readouterr().out


# ---- A Dask cluster with a worker killed in the middle ----


class _WriteWatcher:
    """Polls the outputs' (inode, mtime) every few milliseconds: each atomic write makes a new inode.

    A second write of a file needs a second whole fit, far longer than the polling interval, so
    every write is seen.
    """

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for path, signature in _signatures(self.folder).items():
                    self.seen.setdefault(path, set()).add(signature)
            except FileNotFoundError:  # a temporary file renamed while we looked
                pass
            time.sleep(0.005)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        for path, signature in _signatures(self.folder).items():
            self.seen.setdefault(path, set()).add(signature)
        return self.seen


def test_dask_cluster_survives_a_killed_worker(masters, sequential, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "out"
    items = batch.discover([masters], out)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        configured = os.environ.get("GAINMAP_THREADS")
        expected = int(configured) if configured else max(1, len(os.sched_getaffinity(0)) // 2)
        assert set(batch.thread_shares(client).values()) == {expected}
        watcher = _WriteWatcher(out)
        results, killed = [], None
        for result in batch.run_batch(items, RECIPE, client=client):
            results.append(result)
            if killed is None:
                busy = [worker for worker, tasks in client.processing().items() if tasks]
                assert busy, "every task finished before a worker could be killed"
                killed = busy[0]
                os.kill(client.run(os.getpid, workers=[killed])[killed], signal.SIGKILL)
        seen = watcher.stop()
    assert killed is not None
    assert sorted(r.output for r in results) == sorted(str(i.output) for i in items)
    assert all(r.status in ("written", "skipped") for r in results), [r.problem for r in results if r.failed]
    assert {path: len(signatures) for path, signatures in seen.items()} == {str(i.output): 1 for i in items}
    # SIGKILL gives the killed worker no chance to remove its temporary file, if it was writing one;
    # at most that one is left, and never under an output's name.
    assert len(list(out.rglob(".*.tmp"))) <= 1
    digest = batch.settings_digest(RECIPE)
    for item in items:
        comment = batch.provenance(batch.file_digest(item.source), digest)
        assert batch.valid_output(item.output, comment, RECIPE) is not None
    _assert_same_hdr(out, sequential)


def test_dask_task_skips_an_output_made_before_it_ran(masters, sequential, tmp_path):
    """What a rerun of a task whose worker died after writing does: check, and write nothing."""
    item = BatchItem(masters / "a.exr", sequential / "a.jpg")
    before = _signatures(sequential)
    assert batch.process(item, RECIPE).status == "skipped" and _signatures(sequential) == before
