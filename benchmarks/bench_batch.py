"""Which --jobs encodes a folder fastest on this machine, and how long a resumed run takes.

Encodes the same generated masters with each --jobs setting (each worker gets cores // jobs
kernel threads), rounds interleaved so that load from other processes falls on every setting
alike, and prints per setting: wall seconds of each round, their median and its ratio to the
first setting; CPU seconds (this process and its workers), which other load does not inflate;
and the seconds per file spent outside the fit (reading, tone map, JPEG, export: one thread).
Then times a resumed run over finished outputs (every file skipped).

    .venv/bin/python benchmarks/bench_batch.py --files 6 --size 512x384 --iterations 300 --rounds 3
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gainmap_format import batch, codec, native
from gainmap_format.colour import PRIMARIES
from gainmap_format.hdrio import write_exr
from gainmap_format.scenes import hdr_scene


def _masters(folder: Path, files: int, width: int, height: int) -> None:
    for index in range(files):
        write_exr(folder / f"m{index:02d}.exr", hdr_scene(height, width, seed=index),
                  chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished workers (the pool has joined them)."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _run(masters: Path, out: Path, options: codec.EncodeOptions, jobs: int) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds, and mean seconds per file outside the fit."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    results = list(batch.encode_batch([masters], out, options, jobs=jobs))
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    failed = [r.problem for r in results if r.failed]
    if failed:
        raise SystemExit(f"failures: {failed}")
    outside = statistics.mean(r.seconds - (r.fit_seconds or 0.0) for r in results)
    return seconds, cpu, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--size", default="512x384", help="WxH of each master")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default="1,2", help="comma-separated settings to compare")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    settings = [int(v) for v in args.jobs.split(",")]
    options = codec.EncodeOptions(fit=codec.FitOptions(iterations=args.iterations))
    cores = native.thread_count()
    print(f"{args.files} masters {width}x{height}, {args.iterations} steps, {cores} cores, kernels {native.variant()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        _masters(root / "in", args.files, width, height)
        times: dict[int, list[tuple[float, float, float]]] = {jobs: [] for jobs in settings}
        for round_ in range(args.rounds):
            for jobs in settings if round_ % 2 == 0 else reversed(settings):
                out = root / f"out{jobs}"
                shutil.rmtree(out, ignore_errors=True)
                times[jobs].append(_run(root / "in", out, options, jobs))
        base = statistics.median(t[0] for t in times[settings[0]])
        for jobs in settings:
            median = statistics.median(t[0] for t in times[jobs])
            rounds = " ".join(f"{t[0]:.1f}" for t in times[jobs])
            cpu = statistics.median(t[1] for t in times[jobs])
            outside = statistics.median(t[2] for t in times[jobs])
            print(f"--jobs {jobs}: {max(1, cores // jobs)} threads each; wall {rounds} s, median {median:.1f} s "
                  f"({60 * args.files / median:.1f} files/min, {base / median:.2f}x --jobs {settings[0]}); "
                  f"CPU {cpu:.1f} s; outside the fit {outside:.2f} s/file")
        resumed = _run(root / "in", root / f"out{settings[-1]}", options, settings[-1])[0]
        print(f"resumed run over finished outputs (--jobs {settings[-1]}, all skipped): {resumed:.1f} s")


if __name__ == "__main__":
    main()
