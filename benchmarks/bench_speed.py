"""Issues 4 and 13's speed measurements: fitting, decoding and whole commands against their references, in one run.

0. Issue 13's table, whole commands in fresh processes (wall time and peak memory of each, the
   median over ``--command-repeats``), each beside its goal: ``gainmap encode`` of a 12 MP and a
   1 MP EXR (1,000 steps), the peak memory of a 50 MP encode (``--big-steps`` steps: a fit's
   memory does not depend on its steps) and of ``gainmap decode`` of that 50 MP file to EXR. The
   masters are the first of ``../shared/data/hdr`` scaled up (the generated scene without it).
   The decode row against libultrahdr is section 3, the GPU row section 4; the kernel build
   that ran is printed first.
1. Fitting, 1 megapixel, 65,536 pixels a step: the fused C kernel ("native", the default on
   the CPU) against the straightforward torch implementation ("dense", the 120-wide first
   layer) and torch's table lookups ("tables"). The reference methods run fewer steps (their
   per-step time is steady); every method starts from the same weights and draws the same
   batches, and the weights after ``--agree-steps`` steps are compared. The median step time
   of each, their ratio, and the absolute time of a 1,000-step native fit.
2. Scale: fit (1,000 steps) and decode (``codec.decode``: base JPEG decode plus the network and
   the decode equations) at 1, 4, 12 and 24 megapixels. A step's cost must not grow with the
   image; only preparing the image does.
3. Decoding 12 megapixels: ``np.asarray(Image.open(f).hdr)`` on a GainMLP file against
   libultrahdr's linear decode (imagecodecs) of a 12-megapixel Ultra HDR JPEG of the same scene,
   alternating, medians and ratio; each decoder's peak memory above the output array, measured
   in a fresh process (peak RSS after minus before).
4. On a GPU (``--gpu-device``, default "cuda", when torch sees it): a 4K (8.3 MP) fit of 1,000
   steps, and the largest weight difference from the CPU's torch fit on the same batches.
   ``--gpu-device cpu --steps 20`` runs the same code on the CPU, to check it where no GPU is.

    python benchmarks/bench_speed.py [--steps 1000] [--sizes 1,4,12,24] [--repeats 5] [--sections 0,1,2,3,4]

Images are generated scenes (``scenes.hdr_scene``) except in section 0: timing does not depend
on content.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_plugin import median_seconds, our_file, ultrahdr_file  # also registers the Pillow plugin
from PIL import Image

from gainmap_format import codec, fitting, native
from gainmap_format.colour import PRIMARIES
from gainmap_format.hdrio import read_hdr, write_exr
from gainmap_format.scenes import hdr_scene

SHAPES = {1: (1000, 1000), 4: (1728, 2304), 12: (3000, 4000), 24: (4000, 6000)}


def fit_inputs(height: int, width: int) -> codec.FitInputs:
    scene = hdr_scene(height, width, seed=0)
    return codec.prepare_fit_inputs(scene, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)


def timed_fit(inputs: codec.FitInputs, method: str, steps: int, device: str = "cpu") -> fitting.FitResult:
    options = fitting.FitOptions(iterations=steps, method=method, device=device, seed=1)
    norm = inputs.input_norm
    return fitting.fit(inputs.code, inputs.target, norm.mean, norm.range, options)


def per_step_seconds(inputs: codec.FitInputs, method: str, steps: int) -> float:
    """Median seconds per step over blocks of steps (the first, warm-up, block is dropped)."""
    block = max(1, steps // 5)
    times = [timed_fit(inputs, method, block).seconds / block for _ in range(6)]
    return statistics.median(times[1:])


#: Issue 13's masters: (width, height) of each size in megapixels.
MASTER_SIZES = {1: (1224, 816), 12: (4000, 3000), 50: (8160, 6120)}
SHARED_HDR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hdr"


def master(megapixels: int, folder: Path) -> Path:
    """An EXR master of ``megapixels``: the first shared HDR file scaled up (bilinear), else the generated scene."""
    width, height = MASTER_SIZES[megapixels]
    sources = sorted(SHARED_HDR.glob("*.exr")) if SHARED_HDR.is_dir() else []
    if sources:
        image = read_hdr(sources[0])
        planes = [Image.fromarray(np.ascontiguousarray(image.pixels[..., c]), "F").resize(
            (width, height), Image.Resampling.BILINEAR) for c in range(3)]
        pixels, chromaticities, white = np.stack(planes, -1), image.chromaticities, image.white_luminance
    else:
        pixels, chromaticities, white = hdr_scene(height, width, seed=0), PRIMARIES["bt2020"], 1.0
    path = folder / f"master-{megapixels}mp.exr"
    write_exr(path, pixels, chromaticities=chromaticities, white_luminance=white, half=True)
    return path


#: Runs ``gainmap`` with the given arguments and writes its peak memory to stderr when it exits.
#: VmHWM belongs to the process's own address space; ru_maxrss would carry the parent's over exec.
_PEAK_PROBE = """
import atexit, runpy, sys

def report():
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
    sys.stderr.write(f"\\nPEAK {peak}\\n")

atexit.register(report)
sys.argv = ["gainmap", *sys.argv[1:]]
runpy.run_module("gainmap_format.cli", run_name="__main__")
"""


def run_command(arguments: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of ``gainmap *arguments`` in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK_PROBE, *arguments], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"gainmap {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return seconds, int(done.stderr.rsplit("PEAK ", 1)[1])


def command_row(what: str, arguments: list[str], repeats: int, goal: str) -> None:
    """One row: medians of wall time and peak memory of ``gainmap *arguments`` over ``repeats`` fresh processes."""
    runs = [run_command(arguments) for _ in range(repeats)]
    seconds = statistics.median(run[0] for run in runs)
    peak = statistics.median(run[1] for run in runs)
    print(f"  {what:44s} {seconds:7.2f} s {peak / 2**20:7.0f} MiB   goal {goal}")


def table_section(repeats: int, big_steps: int) -> None:
    print("== 0. issue 13's table: whole commands, fresh processes, median of", repeats)
    print(f"  kernels: {native.variant()}, {native.thread_count()} threads; CPU: {cpu_name()}; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for megapixels, goal in ((12, "<= 7 s, <= 1 GB (fit 1,000 steps included)"), (1, "<= 4.5 s")):
            path = master(megapixels, folder)
            command_row(f"gainmap encode, {megapixels} MP EXR, 1,000 steps",
                        ["encode", str(path), "-o", str(folder / "out.jpg"), "--quiet"], repeats, goal)
        big = master(50, folder)
        encoded = folder / "big.jpg"
        command_row(f"gainmap encode, 50 MP EXR, {big_steps} steps", ["encode", str(big), "-o",
                    str(encoded), "--quiet", "--iterations", str(big_steps)], 1, "peak <= 3 GB")
        command_row("gainmap decode to EXR, 50 MP", ["decode", str(encoded), "-o",
                    str(folder / "big.exr")], 1, "peak <= 1.2 GB (streamed)")


def cpu_name() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (or the platform's processor string)."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown")
    except OSError:
        import platform

        return platform.processor() or "unknown"


def fit_section(steps: int, reference_steps: int, agree_steps: int) -> None:
    print("== 1. fitting, 1 MP, 65,536 pixels a step, this machine's CPU threads:", native.thread_count())
    inputs = fit_inputs(*SHAPES[1])
    seconds = {method: per_step_seconds(inputs, method, reference_steps if method != "native" else steps)
               for method in ("native", "tables", "dense")}
    for method, value in seconds.items():
        print(f"  {method:7s} median {value * 1e3:8.2f} ms/step")
    print(f"  ratio dense / native:  {seconds['dense'] / seconds['native']:.1f}x faster")
    print(f"  ratio tables / native: {seconds['tables'] / seconds['native']:.1f}x faster")
    result = timed_fit(inputs, "native", steps)
    print(f"  native fit of {steps} steps, 1 MP: {result.seconds:.2f} s (loss {result.loss:.3e})")
    fast = timed_fit(inputs, "native", agree_steps).weights
    dense = timed_fit(inputs, "dense", agree_steps).weights
    differences = [float(np.abs(a - b).max()) for a, b in zip(fast.arrays().values(), dense.arrays().values(),
                                                               strict=True)]
    scale = max(float(np.abs(a).max()) for a in dense.arrays().values())
    print(f"  after {agree_steps} steps from the same start and batches: largest weight difference "
          f"native vs dense {max(differences):.2e} (largest weight {scale:.2f})")


def scale_section(sizes: list[int], steps: int, repeats: int) -> None:
    print(f"== 2. scale: fit ({steps} steps) and decode (codec.decode) by image size")
    print(f"  {'MP':>4s} {'prepare s':>10s} {'fit s':>8s} {'ms/step':>8s} {'decode s':>9s}")
    for megapixels in sizes:
        height, width = SHAPES[megapixels]
        start = time.perf_counter()
        inputs = fit_inputs(height, width)
        prepare = time.perf_counter() - start
        fitted = timed_fit(inputs, "auto", steps)
        data = our_file(width, height)
        decode = median_seconds(lambda data=data: codec.decode(data), repeats)
        print(f"  {megapixels:4d} {prepare:10.2f} {fitted.seconds:8.2f} {fitted.seconds / steps * 1e3:8.2f} "
              f"{decode:9.2f}")


_MEMORY_PROBE = """
import io, sys
import numpy as np
from PIL import Image
import pillow_plugin, imagecodecs

def high_water_mark():
    # VmHWM belongs to this process's address space; ru_maxrss would carry the parent's over exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))

data = open(sys.argv[2], "rb").read()
before = high_water_mark()
if sys.argv[1] == "ours":
    out = np.asarray(Image.open(io.BytesIO(data)).hdr)
else:
    out = imagecodecs.ultrahdr_decode(data)
print(high_water_mark() - before, out.nbytes)
"""


def peak_memory(which: str, data: bytes) -> tuple[int, int]:
    """(peak RSS growth, output bytes) of one decode in a fresh process."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".jpg") as file:
        file.write(data)
        file.flush()
        out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, which, file.name], capture_output=True,
                             text=True, check=True)
    grown, output = out.stdout.split()
    return int(grown), int(output)


def decode_section(repeats: int) -> None:
    print("== 3. decoding 12 MP: np.asarray(Image.open(f).hdr) against libultrahdr")
    try:
        import imagecodecs
    except ImportError:
        print("  imagecodecs is not installed: no libultrahdr comparison")
        return
    height, width = SHAPES[12]
    ours = our_file(width, height)
    theirs = ultrahdr_file(width, height)
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        ours_times.append(median_seconds(lambda: np.asarray(Image.open(io.BytesIO(ours)).hdr), 1))
        theirs_times.append(median_seconds(lambda: imagecodecs.ultrahdr_decode(theirs), 1))
    ours_time, theirs_time = statistics.median(ours_times), statistics.median(theirs_times)
    print(f"  GainMLP (native kernel):  median {ours_time:.3f} s")
    print(f"  {imagecodecs.ultrahdr_version()}: median {theirs_time:.3f} s")
    print(f"  ratio GainMLP / libultrahdr: {ours_time / theirs_time:.2f}")
    graph_time = median_seconds(lambda: codec.decode(ours, engine="onnxruntime"), max(1, repeats // 2))
    print(f"  the same file through ONNX Runtime (engine='onnxruntime'): median {graph_time:.3f} s")
    for which, data in (("ours", ours), ("libultrahdr", theirs)):
        grown, output = peak_memory(which, data)
        print(f"  peak memory, {which:11s}: {grown / 2**20:7.0f} MiB in all, {(grown - output) / 2**20:7.0f} MiB "
              f"beyond its {output / 2**20:.0f} MiB output")


def gpu_section(steps: int, device: str, agree_steps: int) -> None:
    print(f"== 4. fitting on {device}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("  torch sees no CUDA device: skipped (--gpu-device cpu runs this section on the CPU)")
        return
    inputs = fit_inputs(2160, 3840)
    timed_fit(inputs, "tables", 20, device=device)  # warm-up: kernels compiled, memory allocated
    result = timed_fit(inputs, "tables", steps, device=device)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else cpu_name()
    print(f"  {name}: 4K fit of {steps} steps in {result.seconds:.2f} s (goal on an H200: 0.25 s for 1,000)")
    on_device = timed_fit(inputs, "tables", agree_steps, device=device).weights
    on_cpu = timed_fit(inputs, "tables", agree_steps).weights
    difference = max(float(np.abs(a - b).max()) for a, b in zip(on_device.arrays().values(),
                                                                  on_cpu.arrays().values(), strict=True))
    print(f"  after {agree_steps} steps from the same start and batches: largest weight difference {device} vs "
          f"cpu {difference:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reference-steps", type=int, default=50, help="steps per timing of dense and tables")
    parser.add_argument("--agree-steps", type=int, default=100)
    parser.add_argument("--sizes", default="1,4,12,24", help="megapixels, from 1, 4, 12, 24")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--command-repeats", type=int, default=3, help="fresh processes per row of section 0")
    parser.add_argument("--big-steps", type=int, default=50, help="fitting steps of the 50 MP encode")
    parser.add_argument("--gpu-device", default="cuda", help="torch device of section 4")
    parser.add_argument("--sections", default="0,1,2,3,4")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if not native.available():
        print("the C extension is not built: native timings are unavailable")
        return
    print(json.dumps({"torch": torch.__version__, "threads": native.thread_count(), "kernels": native.variant()}))
    sections = set(args.sections.split(","))
    if "0" in sections:
        table_section(args.command_repeats, args.big_steps)
    if "1" in sections:
        fit_section(args.steps, args.reference_steps, args.agree_steps)
    if "2" in sections:
        scale_section(sizes, args.steps, args.repeats)
    if "3" in sections:
        decode_section(args.repeats)
    if "4" in sections:
        gpu_section(args.steps, args.gpu_device, args.agree_steps)


if __name__ == "__main__":
    main()
