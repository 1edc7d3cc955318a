"""Reproducing the paper's comparison on real images: ``gainmap bench``.

The data flow, one module per step:

1. :mod:`.inputs` finds the HDR files (and SDR images paired with them), masters them and
   shrinks large ones.
2. :mod:`.protocols` makes the SDR base each method works against: the lossless SDR (the
   paper's protocol) or a JPEG of it (the real-file protocol).
3. :mod:`.methods` runs each method: the traditional maps (coded by :mod:`.mapcoding`, written
   as files by :mod:`.mapfiles`, sized to a byte budget by :mod:`.sizing`), the MLPs and
   libultrahdr; each decodes its result back from the bytes it wrote.
4. :mod:`.scoring` measures each reconstruction with ``metrics.py``.
5. :mod:`.report` averages the results into the table and writes the CSV; :mod:`.plots` draws
   the rate-distortion curves and the crop comparison.

:mod:`.runner` drives the steps with a progress bar; :mod:`.options` holds what a run is told.
"""

from .options import METHOD_NAMES, BenchOptions
from .runner import BenchReport, run_bench

__all__ = ["METHOD_NAMES", "BenchOptions", "BenchReport", "run_bench"]
