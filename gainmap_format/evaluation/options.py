"""What one bench run is told: methods, sizes, network variants (the ablations), protocols, limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..codec import EncodeOptions
from ..errors import InputError
from ..registries import ACTIVATION_CODES, HIDDEN_WIDTHS, RESIDUAL_CODES, Activation, ResidualKind
from .protocols import PROTOCOLS, ProtocolName

#: Every method family the bench knows, in the order the report lists them.
METHOD_NAMES = (
    "gain-jpeg",
    "gamma-jpeg",
    "gain-heic",
    "gamma-heic",
    "direct-mlp",
    "gain-mlp",
    "gamma-mlp",
    "libultrahdr",
)

InitName = Literal["meta", "random"]
INIT_NAMES: tuple[InitName, ...] = ("meta", "random")

#: The base quality of the real-file protocol: the codec's own default.
DEFAULT_BASE_QUALITY = EncodeOptions().quality


@dataclass(frozen=True)
class BenchOptions:
    """One run's settings; the tuples are the ablations (every combination is run).

    Attributes:
        methods: method families, from :data:`METHOD_NAMES`.
        sizes: byte budgets for the traditional maps, each a point of their RD curves.
        widths: hidden widths for the MLPs, each a point of their RD curves.
        activations: "sine" and/or "relu", for the MLPs.
        residuals: "gamma" and/or "gain": which of the gain and gamma variants of the map and
            MLP families run (the exponential-against-multiplicative ablation).
        inits: "meta" and/or "random": how Gain-MLP and Gamma-MLP fits start.
        protocols: "paper" and/or "real" (see ``protocols.py``).
        steps: fitting steps per MLP.
        max_megapixels: larger images are shrunk to this; None keeps every size.
        base_quality: JPEG quality (4:4:4) of the bases this library encodes.
        seed: seeds every fit.
        device: device for the fits: "auto", "cpu" or "cuda" (``FitOptions.device``).
        vdp: add ColorVideoVDP's JOD when it can be imported.
        keep_files: also write every method's file under the report folder.
    """

    methods: tuple[str, ...] = METHOD_NAMES
    sizes: tuple[int, ...] = (5120, 10240, 20480)
    widths: tuple[int, ...] = (16,)
    activations: tuple[Activation, ...] = ("sine",)
    residuals: tuple[ResidualKind, ...] = ("gamma", "gain")
    inits: tuple[InitName, ...] = ("meta",)
    protocols: tuple[ProtocolName, ...] = PROTOCOLS
    steps: int = 1000
    max_megapixels: float | None = None
    base_quality: int = DEFAULT_BASE_QUALITY
    seed: int = 0
    device: str = "auto"
    vdp: bool = True
    keep_files: bool = False

    def __post_init__(self) -> None:
        """Reject bad settings before any image is read."""
        for name, values, allowed in (
            ("method", self.methods, METHOD_NAMES),
            ("width", self.widths, HIDDEN_WIDTHS),
            ("activation", self.activations, tuple(ACTIVATION_CODES)),
            ("residual", self.residuals, tuple(RESIDUAL_CODES)),
            ("init", self.inits, INIT_NAMES),
            ("protocol", self.protocols, PROTOCOLS),
        ):
            if not values:
                raise InputError(f"at least one {name} is needed")
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise InputError(
                    f"unknown {name} {', '.join(map(str, unknown))}; choose from {', '.join(map(str, allowed))}"
                )
        if not self.sizes or min(self.sizes) < 1:
            raise InputError(f"byte budgets {self.sizes} must be at least one, each >= 1")
        if self.steps < 0:
            raise InputError(f"steps {self.steps} must be >= 0")
        if self.max_megapixels is not None and not self.max_megapixels > 0:
            raise InputError(f"max megapixels {self.max_megapixels} must be > 0")
        if not 1 <= self.base_quality <= 100:
            raise InputError(f"base quality {self.base_quality} is outside 1-100")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device {self.device!r} is not 'auto', 'cpu' or 'cuda'")
