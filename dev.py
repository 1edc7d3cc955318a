#!/usr/bin/env python3
"""Set up a virtual environment and run the project's jobs; needs nothing but Python 3.10+.

    python3 dev.py demo    encode a generated HDR scene, decode it, print quality and size
    python3 dev.py test    lint, type-check and run the test suite (twice: see OTHER_MACHINES)

The first run creates .venv/ and installs the project with its train and test extras. torch
is installed first, pinned, because an unpinned torch pulls gigabytes of CUDA packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH = "torch==2.13.0"
STAMP = VENV / ".installed"


def _python() -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / "python"


#: The test suite runs twice: as this machine runs it, then on the paths other machines take (one
#: thread, as on a one-core machine; the kernels' baseline build, as on a CPU without AVX2+FMA).
OTHER_MACHINES = {"GAINMAP_THREADS": "1", "GAINMAP_KERNEL": "baseline"}


def _run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    settings = "".join(f"{name}={value} " for name, value in (env or {}).items())
    print("+", settings + " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, env={**os.environ, **(env or {})})


def ensure_environment() -> Path:
    """Create .venv and install the project into it, once; returns its python."""
    python = _python()
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return python
    if not python.exists():
        venv.create(VENV, with_pip=True)
    _run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(python, "-m", "pip", "install", "--quiet", TORCH)
    _run(python, "-m", "pip", "install", "--quiet", "-e", ".[train,test]")
    STAMP.touch()
    return python


def main(argv: list[str]) -> int:
    """Run the job named in ``argv``."""
    if len(argv) < 1 or argv[0] not in ("demo", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_environment()
    job, extra = argv[0], argv[1:]
    try:
        if job == "demo":
            _run(python, "-m", "gainmap_format.cli", "demo", *extra)
        else:
            _run(python, "-m", "ruff", "check", ".")
            _run(python, "-m", "mypy")
            _run(python, "-m", "pytest", *extra)
            _run(python, "-m", "pytest", *extra, env=OTHER_MACHINES)
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
