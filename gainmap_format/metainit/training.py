"""Meta-initialisation: initial weights learned from chromatic noise.

Two methods, both over the same set of chromatic-noise images (:mod:`.noise`), each prepared
exactly as ``codec.encode`` prepares a photograph:

- "average", the authors' procedure: fit one network per image (paper: 50 images, 10,000
  steps each) and average the weights element-wise. Every fit starts from the same random
  weights: networks fitted from different starting points put their features in different
  neurons, and averaging those would mix unrelated neurons.
- "reptile" (Nichol et al. 2018): start from random weights; in each round fit a few steps
  on one image from the current meta weights and move the meta weights a fraction of the
  way toward the result. Rounds cycle over the images in a fresh random order each pass.

With the same options both spend the same number of fitting steps: ``steps`` per image.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..codec import FitInputs
from ..errors import InputError
from ..fitting import FitOptions, FitResult, ProgressCallback, fit, random_initial_weights
from ..initweights import initial_weights_name
from ..network import PARAMETER_NAMES, MlpWeights
from ..registries import HIDDEN_WIDTHS, RESIDUAL_CODES, Activation, ResidualKind
from .noise import noise_fit_inputs

Method = Literal["average", "reptile"]


@dataclass(frozen=True)
class MetaInitOptions:
    """How to meta-initialise one configuration; the defaults are the paper's.

    Attributes:
        residual: "gamma" or "gain": the residual the weights are for.
        activation: "sine" or "relu".
        hidden_width: neurons per hidden layer.
        method: "average" (the authors') or "reptile".
        images: number of chromatic-noise images.
        height: rows of each noise image.
        width: columns of each noise image.
        steps: fitting steps per image (both methods).
        inner_steps: reptile only: fitting steps per round.
        step_size: reptile only: the fraction of the way, in (0, 1], that a round moves the
            meta weights toward its fit.
        batch_size: random pixels per fitting step.
        learning_rate: Adam's learning rate of every fit.
        seed: seeds the noise, the initial weights, the sampling and reptile's order.
        device: "auto" (CUDA when available), "cpu" or "cuda".
    """

    residual: ResidualKind = "gamma"
    activation: Activation = "sine"
    hidden_width: int = 16
    method: Method = "average"
    images: int = 50
    height: int = 512
    width: int = 512
    steps: int = 10000
    inner_steps: int = 100
    step_size: float = 0.1
    batch_size: int = 65536
    learning_rate: float = 1e-2
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        """Reject bad options before any noise is made or any fit runs."""
        if self.residual not in RESIDUAL_CODES:
            raise InputError(f"residual {self.residual!r} is not 'gamma' or 'gain'")
        if self.method not in ("average", "reptile"):
            raise InputError(f"method {self.method!r} is not 'average' or 'reptile'")
        if self.hidden_width not in HIDDEN_WIDTHS:
            raise InputError(f"hidden width {self.hidden_width} is not one of {HIDDEN_WIDTHS}")
        if min(self.images, self.height, self.width, self.steps, self.inner_steps) < 1:
            raise InputError(
                f"images {self.images}, size {self.width}x{self.height}, steps {self.steps} and inner steps "
                f"{self.inner_steps} must all be at least 1"
            )
        if self.method == "reptile" and self.inner_steps > self.images * self.steps:
            raise InputError(f"inner steps {self.inner_steps} exceed the budget of {self.images * self.steps} steps")
        if not 0.0 < self.step_size <= 1.0:
            raise InputError(f"step size {self.step_size} is outside (0, 1]")

    @property
    def rounds(self) -> int:
        """Reptile's number of rounds: the per-image budget spent ``inner_steps`` at a time."""
        return self.images * self.steps // self.inner_steps

    @property
    def total_steps(self) -> int:
        """Fitting steps the whole procedure takes."""
        if self.method == "average":
            return self.images * self.steps
        return self.rounds * self.inner_steps

    @property
    def name(self) -> str:
        """The configuration's file stem, e.g. "gamma-sine-16"."""
        return initial_weights_name(self.residual, self.activation, self.hidden_width)


@dataclass(frozen=True)
class MetaInitResult:
    """The outcome of :func:`meta_initialise`.

    Attributes:
        weights: the meta-initialised weights, float32.
        losses: the last-step loss of every inner fit, in order.
        seconds: wall time, noise generation included.
        device: the device the fits ran on: "cpu" or "cuda".
    """

    weights: MlpWeights
    losses: tuple[float, ...]
    seconds: float
    device: str


def average_weights(weights: Sequence[MlpWeights]) -> MlpWeights:
    """The element-wise mean of networks of one width.

    Args:
        weights: at least one network.

    Returns:
        float32 weights, each parameter the mean of the inputs' (taken in float64).
    """
    if not weights:
        raise InputError("cannot average no weights")
    if len({w.hidden_width for w in weights}) != 1:
        raise InputError(f"cannot average networks of widths {sorted({w.hidden_width for w in weights})}")
    return MlpWeights(
        **{
            name: np.stack([getattr(w, name) for w in weights]).mean(axis=0, dtype=np.float64).astype(np.float32)
            for name in PARAMETER_NAMES
        }
    )


def reptile_step(meta: MlpWeights, adapted: MlpWeights, step_size: float) -> MlpWeights:
    """Move meta weights toward adapted ones: meta + step_size (adapted - meta), element-wise.

    Returns:
        float32 weights.
    """
    return MlpWeights(
        **{
            name: (getattr(meta, name) + np.float32(step_size) * (getattr(adapted, name) - getattr(meta, name)))
            .astype(np.float32)
            for name in PARAMETER_NAMES
        }
    )


def derived_seed(seed: int, *keys: int) -> int:
    """A fit seed for one use of the master seed, independent of the others (numpy SeedSequence)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def noise_images(options: MetaInitOptions) -> list[FitInputs]:
    """The noise images, image i seeded with (seed, i), prepared for ``options.residual``."""
    return [noise_fit_inputs(options.height, options.width, (options.seed, i), options.residual)
            for i in range(options.images)]


def fit_options(options: MetaInitOptions, iterations: int, seed: int) -> FitOptions:
    """The options of one inner fit (the default, fast fit method)."""
    return FitOptions(
        iterations=iterations,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        hidden_width=options.hidden_width,
        activation=options.activation,
        seed=seed,
        device=options.device,
    )


def _fit(
    inputs: FitInputs, options: FitOptions, init: MlpWeights | None, progress: ProgressCallback | None
) -> FitResult:
    norm = inputs.input_norm
    return fit(inputs.code, inputs.target, norm.mean, norm.range, options, init=init, progress=progress)


def random_weights(options: MetaInitOptions) -> MlpWeights:
    """The seeded random initialisation every method starts from: a fit's, of ``options.seed``."""
    return random_initial_weights(options.hidden_width, options.seed)


def _offset(progress: ProgressCallback | None, done: int, total: int) -> ProgressCallback | None:
    """A fit's progress callback that reports steps of the whole procedure."""
    if progress is None:
        return None
    return lambda step, _steps, loss: progress(done + step, total, loss)


def reptile_order(options: MetaInitOptions) -> list[int]:
    """The image of each reptile round: passes over all images, each in a fresh random order."""
    rng = np.random.default_rng([options.seed, 3])
    passes = -(-options.rounds // options.images)
    order = np.concatenate([rng.permutation(options.images) for _ in range(passes)])
    return [int(i) for i in order[: options.rounds]]


def _average(
    options: MetaInitOptions, images: list[FitInputs], initial: MlpWeights, progress: ProgressCallback | None
) -> tuple[MlpWeights, list[FitResult]]:
    """The authors' method: one fit per image from ``initial``, weights averaged."""
    results = [
        _fit(
            inputs,
            fit_options(options, options.steps, derived_seed(options.seed, 1, index)),
            initial,
            _offset(progress, index * options.steps, options.total_steps),
        )
        for index, inputs in enumerate(images)
    ]
    return average_weights([r.weights for r in results]), results


def _reptile(
    options: MetaInitOptions, images: list[FitInputs], initial: MlpWeights, progress: ProgressCallback | None
) -> tuple[MlpWeights, list[FitResult]]:
    """Reptile: each round fits one image from the meta weights and moves them toward the fit."""
    weights, results = initial, []
    for round_, index in enumerate(reptile_order(options)):
        result = _fit(
            images[index],
            fit_options(options, options.inner_steps, derived_seed(options.seed, 2, round_)),
            weights,
            _offset(progress, round_ * options.inner_steps, options.total_steps),
        )
        weights = reptile_step(weights, result.weights, options.step_size)
        results.append(result)
    return weights, results


def meta_initialise(options: MetaInitOptions, progress: ProgressCallback | None = None) -> MetaInitResult:
    """Learn initial weights from chromatic noise.

    Args:
        options: configuration, method and budget.
        progress: called as progress(steps_done, total_steps, loss) during the fits.

    Returns:
        The weights and how the fits went.
    """
    start = time.perf_counter()
    images = noise_images(options)
    method = _average if options.method == "average" else _reptile
    weights, results = method(options, images, random_weights(options), progress)
    losses = tuple(r.loss for r in results)
    return MetaInitResult(weights, losses, time.perf_counter() - start, results[-1].device)


def _git(*args: str) -> str | None:
    """Output of a git command in the package's checkout; None outside one or without git."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"python": platform.python_version(), "numpy": np.__version__, "torch": _installed_version("torch"),
            "gainmap_format": __version__}


def _installed_version(distribution: str) -> str:
    """An installed distribution's version, read without importing it; "not installed" without it."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def provenance(options: MetaInitOptions, result: MetaInitResult, command: str) -> dict[str, object]:
    """The JSON record of how some weights were made.

    Args:
        options: what :func:`meta_initialise` was given.
        result: what it returned.
        command: the command line that ran it.

    Returns:
        A JSON-ready dict: the command, every option, the git commit (and whether the
        checkout had changes), the date, library versions, device, time, and the last-step
        losses of the last ``images`` fits (every fit for "average", the last pass for "reptile").
    """
    status = _git("status", "--porcelain")
    return {
        "configuration": options.name,
        "command": command,
        "options": dataclasses.asdict(options),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "device": result.device,
        "seconds": round(result.seconds, 1),
        "final_losses": [float(x) for x in result.losses[-options.images :]],
    }
