"""The options of fitting and encoding, checked when they are made (no torch here).

:class:`FitOptions` says how the network is fitted to one image; :class:`EncodeOptions` holds a
``FitOptions`` and adds what only encoding needs (the residual kind, the base JPEG's quality,
transfer and primaries, where the fit starts). Each option is checked once, when the options
are constructed, so a mistake is an :class:`~gainmap_format.errors.InputError` before any work
starts: before an HDR image is read, a base is encoded or torch is imported.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Literal

from .colour import PrimariesName, TransferName
from .container import MAX_HEADROOM
from .errors import InputError
from .registries import (
    ACTIVATION_CODES,
    HIDDEN_WIDTHS,
    PRIMARIES_CODES,
    RESIDUAL_CODES,
    TRANSFER_CODES,
    Activation,
    ResidualKind,
)
from .tonemap import DEFAULT_TONE_MAP, TONE_MAPS, ToneMapName

FitMethod = Literal["auto", "native", "tables", "dense"]
InitName = Literal["meta", "random"]

FIT_METHODS: tuple[FitMethod, ...] = ("auto", "native", "tables", "dense")
DEVICES = ("auto", "cpu", "cuda")
INITS: tuple[InitName, ...] = ("meta", "random")

#: Stops of exposure a tone map accepts, either way: far beyond any photograph's need.
MAX_EXPOSURE = 16.0

#: The transfer recorded for a base the caller gives when ``sdr_transfer`` is None: the one
#: files have recorded since format 1.0, so that such files stay as they were.
GIVEN_BASE_TRANSFER: TransferName = "gamma2.4"
#: The transfer of a base this library renders when ``sdr_transfer`` is None: what viewers assume.
RENDERED_BASE_TRANSFER: TransferName = "srgb"

#: The fit's seed feeds SplitMix64 (``fitting.draw_indices``) and numpy's PCG64: 64 bits unsigned.
MAX_SEED = (1 << 64) - 1


def _integer(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; bools and floats are refused, numpy integers accepted.

    Raises:
        InputError: not an integer, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer, not {type(value).__name__} ({value!r:.40})")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise InputError(f"{name} {number} is outside {bound}")
    return number


def _positive_real(name: str, value: object) -> float:
    """``value`` as a finite float > 0; bools and non-numbers are refused.

    Raises:
        InputError: not a real number, not finite, or not positive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number, not {type(value).__name__} ({value!r:.40})")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise InputError(f"{name} {value!r:.40} is not a finite number > 0")
    return number


def _bounded_real(name: str, value: object, low: float, high: float, unit: str) -> float:
    """``value`` as a finite float in [low, high]; bools and non-numbers are refused.

    Raises:
        InputError: not a real number, not finite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number of {unit}, not {type(value).__name__} ({value!r:.40})")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise InputError(f"{name} {value!r:.40} is not a number of {unit} in [{low:g}, {high:g}]")
    return number


def _choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    """Refuse a ``value`` that is not one of ``choices`` (compared as equal strings, so 1 is not 'sine')."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name} {value!r:.40} is not one of {list(choices)}")


def _set(options: object, name: str, value: object) -> None:
    """Store a checked, normalised value on a frozen dataclass during its construction."""
    object.__setattr__(options, name, value)


@dataclass(frozen=True)
class FitOptions:
    """How to fit the network to one image; the defaults are the paper's.

    Attributes:
        iterations: optimisation steps, >= 0 (paper: 1,000).
        batch_size: random pixels per step, >= 1 (paper: 65,536).
        learning_rate: Adam's learning rate, finite and > 0 (paper: 1e-2).
        hidden_width: neurons per hidden layer: 8, 16, 32, 64 or 128.
        activation: "sine" (the authors' released configs) or "relu" (the paper's text).
        seed: seeds the initial weights and the pixel sampling, 0 to 2**64 - 1; the same seed
            gives the same fit.
        device: "auto" (CUDA when torch sees it), "cpu" or "cuda". "cpu" never imports torch;
            "auto" imports it (seconds) to ask only where CUDA could be: torch is installed and,
            on Linux, a GPU driver shows (/proc/driver/nvidia/version, /dev/nvidia0, WSL2's
            /dev/dxg or ROCm's /dev/kfd); never on macOS; always elsewhere. So whether CUDA
            is there is known only when fitting starts.
        method: "native" runs the fused C kernel (CPU only); "tables" evaluates the first
            layer as five table lookups in torch; "dense" as the textbook 120-wide product.
            All give the same fit to float32 rounding; "dense" is the reference the
            benchmarks compare with. "auto" picks "native" on the CPU when the extension
            is built, else "tables". The fused kernel sums in a thread-dependent order;
            "tables" gives the same bytes on every run of a machine whatever its thread count.

    Raises:
        InputError: on construction, for any value outside the ranges above or of the wrong
            type (a bool or float where an integer belongs).
    """

    iterations: int = 1000
    batch_size: int = 65536
    learning_rate: float = 1e-2
    hidden_width: int = 16
    activation: Activation = "sine"
    seed: int = 0
    device: str = "auto"
    method: FitMethod = "auto"

    def __post_init__(self) -> None:
        """Check every option and store integers as plain ints."""
        _set(self, "iterations", _integer("iterations", self.iterations, 0))
        _set(self, "batch_size", _integer("batch size", self.batch_size, 1))
        _set(self, "seed", _integer("seed", self.seed, 0, MAX_SEED))
        _set(self, "hidden_width", _integer("hidden width", self.hidden_width, 0))
        if self.hidden_width not in HIDDEN_WIDTHS:
            raise InputError(f"hidden width {self.hidden_width} is not one of {list(HIDDEN_WIDTHS)}")
        _set(self, "learning_rate", _positive_real("learning rate", self.learning_rate))
        _choice("activation", self.activation, tuple(ACTIVATION_CODES))
        _choice("device", self.device, DEVICES)
        _choice("fit method", self.method, FIT_METHODS)


@dataclass(frozen=True)
class EncodeOptions:
    """Everything ``encode`` can be told; the defaults are the paper's Gamma-MLP.

    Attributes:
        residual: "gamma" (exponential residual) or "gain" (multiplicative).
        quality: JPEG quality (1-100) used when this library encodes the base (at 4:4:4). The
            base's own compression noise is the floor of the HDR's fidelity, so the default is
            98; 95 gives a base about 40% smaller and an HDR about 2.5 dB worse.
        sdr_transfer: how the base's code values turn into light ("srgb", "gamma2.4"), or
            None (the default): "srgb" for a base this library renders from the HDR (what
            viewers assume, and what its ICC profile says), "gamma2.4" for a base the caller
            gives (as files have recorded since format 1.0).
        sdr_primaries: the base's primaries ("bt709", "display-p3", "bt2020"); a base rendered
            here is rendered in them and carries an ICC profile of them.
        tone_map: how a base is rendered from the HDR when the caller gives none: "reinhard"
            (the default: Reinhard's extended curve on max(R, G, B), the image's peak at SDR
            white, 203 cd/m² at about 0.46 of it), "bt2390" (BT.2390's EETF on max(R, G, B),
            203 cd/m² at SDR white) or "paper" (the paper's curve); see
            :mod:`~gainmap_format.tonemap`.
        exposure: stops added to the HDR before the tone map, finite, within +-16; 0 (the
            default) leaves the map's own anchoring.
        max_headroom: None (the default) keeps the HDR's own peak; a number of stops in
            [0, 14] caps the HDR rendition at SDR white (100 cd/m², the container's) times
            2**max_headroom: brighter light is tone-mapped down (BT.2390's EETF on
            max(R, G, B)) before the fit, and the file records at most this headroom. For files
            meant for displays of known capability; the base is rendered from the uncapped HDR.
        init: "meta" starts the fit from the shipped meta-initialised weights for this residual,
            activation and width (random initialisation, with a warning, when none ship);
            "random" always starts from the seeded random initialisation.
        fit: how the network is fitted (width, activation, steps, seed, device, method).

    Raises:
        InputError: on construction, for any value outside the choices above, of the wrong
            type, or a ``fit`` that is not a :class:`FitOptions`. A fit option given here
            directly (``EncodeOptions(iterations=40)`` rather than
            ``EncodeOptions(fit=FitOptions(iterations=40))``) is Python's TypeError.
    """

    residual: ResidualKind = "gamma"
    quality: int = 98
    sdr_transfer: TransferName | None = None
    sdr_primaries: PrimariesName = "bt709"
    init: InitName = "meta"
    fit: FitOptions = field(default_factory=FitOptions)
    tone_map: ToneMapName = DEFAULT_TONE_MAP
    exposure: float = 0.0
    max_headroom: float | None = None

    def __post_init__(self) -> None:
        """Check every option; the fit's were checked when ``fit`` was made."""
        _choice("residual", self.residual, tuple(RESIDUAL_CODES))
        _set(self, "quality", _integer("JPEG quality", self.quality, 1, 100))
        if self.sdr_transfer is not None:
            _choice("SDR transfer", self.sdr_transfer, tuple(TRANSFER_CODES))
        _choice("tone map", self.tone_map, TONE_MAPS)
        _set(self, "exposure", _bounded_real("exposure", self.exposure, -MAX_EXPOSURE, MAX_EXPOSURE, "stops"))
        if self.max_headroom is not None:
            _set(self, "max_headroom", _bounded_real("max headroom", self.max_headroom, 0.0, MAX_HEADROOM, "stops"))
        _choice("SDR primaries", self.sdr_primaries, tuple(PRIMARIES_CODES))
        _choice("init", self.init, INITS)
        if not isinstance(self.fit, FitOptions):
            raise InputError(f"fit must be a FitOptions, not {type(self.fit).__name__}")

    def for_base(self, rendered: bool) -> EncodeOptions:
        """These options with the base's transfer settled (``sdr_transfer`` never None).

        Args:
            rendered: whether this library renders the base from the HDR (no SDR was given).

        Returns:
            ``self`` when the transfer was given, else a copy with the transfer for such a base.
        """
        if self.sdr_transfer is not None:
            return self
        return dataclasses.replace(self, sdr_transfer=RENDERED_BASE_TRANSFER if rendered else GIVEN_BASE_TRANSFER)

    @property
    def base_transfer(self) -> TransferName:
        """The transfer the base is recorded with: ``sdr_transfer``, or a given base's when it is None."""
        return self.sdr_transfer or GIVEN_BASE_TRANSFER


def checked_encode_options(options: object, what: str = "options") -> EncodeOptions:
    """``options`` as given to ``encode`` (or to a Pillow save as ``hdr_options``): None for the defaults.

    Args:
        options: an :class:`EncodeOptions`, or None.
        what: the argument's name, for the message.

    Raises:
        InputError: anything else.
    """
    if options is None:
        return EncodeOptions()
    if not isinstance(options, EncodeOptions):
        raise InputError(f"{what} must be a gainmap_format.EncodeOptions, not {type(options).__name__}")
    return options
