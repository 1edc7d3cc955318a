"""The spec's code registries (spec §4.3): the names the library uses and the codes files store.

They live apart from :mod:`.container` so that the model (:mod:`.network`, :mod:`.fitting`) and
the options can name a residual, an activation or a width without importing the file format.
"""

from __future__ import annotations

from typing import Literal

from .colour import PrimariesName, TransferName

#: How the network's output turns the base into the HDR: exponent or factor (spec §7.4).
ResidualKind = Literal["gamma", "gain"]
#: The hidden layers' activation (spec §6.2).
Activation = Literal["sine", "relu"]

RESIDUAL_CODES: dict[ResidualKind, int] = {"gamma": 0, "gain": 1}
ACTIVATION_CODES: dict[Activation, int] = {"sine": 0, "relu": 1}
TRANSFER_CODES: dict[TransferName, int] = {"srgb": 1, "gamma2.4": 2}
PRIMARIES_CODES: dict[PrimariesName, int] = {"bt709": 1, "display-p3": 2, "bt2020": 3}
#: The only residual domain: both images in BT.2020 PQ code values.
DOMAIN_BT2020_PQ = 1
#: Neurons per hidden layer that a file may have.
HIDDEN_WIDTHS = (8, 16, 32, 64, 128)
#: Sinusoidal encoding frequencies per input (spec §6.1).
FREQUENCIES = 12
