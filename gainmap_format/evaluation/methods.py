"""The methods the bench compares: each encodes one image against a base and decodes it back.

- Gain-JPEG, Gamma-JPEG: the traditional pipeline, the map at a quarter of the resolution per
  axis, 8 bits, JPEG at the highest quality that fits a byte budget; real files
  (``mapfiles.py``: Gain-JPEG is ISO 21496-1), decoded by reading the file back.
- Gain-HEIC, Gamma-HEIC: the same maps coded with HEIC (the ``heif`` extra). No file format
  carries a HEIC map in a JPEG, so they count the HEIF image plus the metadata record the JPEG
  variants carry, and decode from those bytes.
- Gain-MLP, Gamma-MLP: this library's codec.
- Direct-MLP (Le et al.): the same network, fitted to the HDR's normalised PQ code values
  themselves instead of a residual, always from random weights (the shipped initialisations
  are residual fits). It is measured, not a file format: its bytes are its network in our
  container, which no reader should open as a gain map.
- libultrahdr: Google's encoder through imagecodecs, at its default quality and a quarter-size
  map, as the real-world peer. It makes its own base from the HDR, so it has no lossless
  variant and runs in the real-file protocol only.

``encode`` returns :class:`Encoded`: the bytes the method adds to the SDR file, and what its
decoder reads. ``decode`` returns the HDR in BT.2020 PQ. In the paper's protocol decoders read
their maps from the same bytes but apply them to the lossless base (see ``protocols.py``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Protocol, TypedDict, TypeVar

import numpy as np

from .. import codec
from ..colour import pq_encode
from ..errors import InputError, NoGainMapError
from ..graph import check_graph
from ..jpeg import Segment, parse_jpeg, replace_segments
from ..registries import RESIDUAL_CODES, Activation, ResidualKind
from ..residual import Normalisation, pq_to_linear, sdr_to_pq
from ..runtime import predict_residual
from ..standard import HDRGM_NS, StandardGainMap, StandardGainMapMetadata, find_gain_map, iso_metadata_payload
from ..standard.decode import base_linear, decode_jpeg
from ..structs import ISO_IDENTIFIER, MPF_IDENTIFIER
from .baselines import apply_map_values, dequantise_map, map_values, quantise_map
from .inputs import BenchImage
from .mapcoding import JPEG, MapCodec, heic_codec
from .mapfiles import (
    GammaMapRecord,
    apply_iso_map,
    iso_gain_values,
    iso_metadata,
    iso_rendition_to_pq,
    lossless_base_linear,
    read_gamma_file,
    write_gamma_file,
    write_iso_file,
)
from .options import BenchOptions, InitName
from .protocols import PROTOCOLS, Base, ProtocolName
from .sizing import fit_budget

#: Downsampling of a traditional map per axis: the paper's (and Ultra HDR phones') quarter.
MAP_SCALE = 4

#: cd/m² of libultrahdr's linear value 1.0: ITU-R BT.2408's HDR reference white.
LIBULTRAHDR_WHITE = 203.0

#: What a traditional map's file records beside the map: ISO 21496-1 metadata or the gamma record.
MapDescription = GammaMapRecord | StandardGainMapMetadata

_Description = TypeVar("_Description", GammaMapRecord, StandardGainMapMetadata)


@dataclass(frozen=True)
class CodedMap:
    """A traditional map coded without a file (HEIC): the map image and what a file would record.

    Attributes:
        image: the coded map.
        description: its metadata.
    """

    image: bytes
    description: MapDescription


@dataclass(frozen=True)
class Encoded:
    """What a method made for one image.

    Attributes:
        added_bytes: every byte the method adds to the SDR base file.
        seconds: encoding time: the fit for MLPs, the map and its quality search otherwise.
        file: the whole file, for methods that write one.
        payload: what the decoder reads when there is no file: a HEIC map and its metadata
            (:class:`CodedMap`), or Direct-MLP's container.
        quality: the map codec's quality chosen for the budget, for traditional maps.
    """

    added_bytes: int
    seconds: float
    file: bytes | None = None
    payload: CodedMap | bytes | None = None
    quality: int | None = None


class Method(Protocol):
    """A method the bench runs; see the module notes for each.

    Its attributes are read-only (properties or frozen dataclass fields).
    """

    @property
    def family(self) -> str:
        """The method's name in the paper's Table 1, e.g. "Gamma-JPEG"."""

    @property
    def label(self) -> str:
        """One row of the report, e.g. "Gamma-JPEG ≤10 KB" or "Gamma-MLP w16"."""

    @property
    def curve(self) -> str:
        """The rate-distortion line the row is a point of."""

    @property
    def budget(self) -> int | None:
        """The byte budget of a traditional map, else None."""

    @property
    def width(self) -> int | None:
        """The hidden width of an MLP, else None."""

    @property
    def protocols(self) -> tuple[ProtocolName, ...]:
        """The protocols it runs under."""

    def encode(self, image: BenchImage, base: Base) -> Encoded:
        """Encode ``image`` against ``base``."""

    def decode(self, encoded: Encoded, base: Base) -> np.ndarray:
        """The HDR, float32 (H, W, 3) BT.2020 PQ, read back from what :meth:`encode` made."""


@dataclass(frozen=True)
class Skipped:
    """A method family that did not run, and why."""

    family: str
    reason: str


def _residual_title(residual: ResidualKind) -> str:
    return residual.capitalize()


@dataclass(frozen=True)
class MapMethod:
    """Gain-JPEG, Gamma-JPEG, Gain-HEIC or Gamma-HEIC at one byte budget."""

    residual: ResidualKind
    codec: MapCodec
    budget: int
    protocols: tuple[ProtocolName, ...] = PROTOCOLS
    width: None = None

    @property
    def family(self) -> str:
        """E.g. "Gain-JPEG"."""
        return f"{_residual_title(self.residual)}-{self.codec.name}"

    @property
    def label(self) -> str:
        """The family and its budget in KB of 1024 bytes."""
        return f"{self.family} ≤{self.budget / 1024:.3g} KB"

    @property
    def curve(self) -> str:
        """One line per family."""
        return self.family

    def encode(self, image: BenchImage, base: Base) -> Encoded:
        """Quantise the map, then code it at the highest quality whose bytes fit the budget."""
        start = time.perf_counter()
        if self.residual == "gain":
            values = iso_gain_values(image.hdr_pq, _iso_base_linear(base))
        else:
            values = map_values(image.hdr_pq, sdr_to_pq(base.code, "gamma2.4", "bt709"), "gamma")
        quantised = quantise_map(values, MAP_SCALE)
        description: MapDescription
        if self.residual == "gain":
            description = iso_metadata(quantised.low, quantised.high, image.hdr_pq)
        else:
            description = GammaMapRecord(quantised.low, quantised.high)

        def pack(quality: int) -> Encoded:
            coded = self.codec.encode(quantised.code, quality)
            if self.codec is not JPEG:
                added = len(coded) + len(_description_bytes(description))
                return Encoded(added, 0.0, payload=CodedMap(coded, description))
            if isinstance(description, GammaMapRecord):
                file = write_gamma_file(base.jpeg, coded, description)
            else:
                file = write_iso_file(base.jpeg, coded, description)
            return Encoded(len(file) - len(base.jpeg), 0.0, file=file)

        sized = fit_budget(pack, lambda encoded: encoded.added_bytes, self.budget)
        return dataclasses.replace(sized.value, seconds=time.perf_counter() - start, quality=sized.quality)

    def decode(self, encoded: Encoded, base: Base) -> np.ndarray:
        """Read the map from the file (or payload) and apply it as its reader does."""
        if self.residual == "gain":
            return self._decode_gain(encoded, base)
        if encoded.file is not None:
            map_image, record = read_gamma_file(encoded.file)
            code = base.code if base.lossless else codec.decode_base(encoded.file)
        else:
            map_image, record = _coded_map(encoded, GammaMapRecord)
            code = base.code
        height, width, _ = code.shape
        values = dequantise_map(self.codec.decode(map_image), record.low, record.high, (width, height))
        sdr_pq = sdr_to_pq(code, record.base_transfer, record.base_primaries, record.sdr_white_luminance)
        return apply_map_values(sdr_pq, values, "gamma")

    def _decode_gain(self, encoded: Encoded, base: Base) -> np.ndarray:
        if encoded.file is None:
            coded, metadata = _coded_map(encoded, StandardGainMapMetadata)
            return apply_iso_map(_iso_base_linear(base), self.codec.decode(coded), metadata)
        gain_map = _gain_map(encoded.file)
        if not base.lossless:
            return iso_rendition_to_pq(gain_map.render(), gain_map.primaries)
        codes = decode_jpeg(gain_map.gain_map_jpeg, "gain-map image")
        return apply_iso_map(_iso_base_linear(base), codes, gain_map.metadata)


def _iso_base_linear(base: Base) -> np.ndarray:
    """The base as an ISO 21496-1 reader linearises it: the reference decode of the JPEG, or the lossless SDR."""
    return lossless_base_linear(base.code) if base.lossless else base_linear(base.jpeg)


def _description_bytes(description: MapDescription) -> bytes:
    """A map's metadata as a file would carry it: the ISO payload or the gamma record."""
    if isinstance(description, GammaMapRecord):
        return description.to_bytes()
    return iso_metadata_payload(description)


def _coded_map(encoded: Encoded, kind: type[_Description]) -> tuple[bytes, _Description]:
    """The map image and its description that a map method without a file left in the payload.

    Raises:
        InputError: ``encoded`` holds no coded map described by a ``kind``.
    """
    payload = encoded.payload
    if not isinstance(payload, CodedMap) or not isinstance(payload.description, kind):
        raise InputError(f"the encoding holds no coded map with a {kind.__name__}")
    return payload.image, payload.description


def _file(encoded: Encoded) -> bytes:
    """The file a method wrote.

    Raises:
        InputError: ``encoded`` holds no file.
    """
    if encoded.file is None:
        raise InputError("the encoding holds no file")
    return encoded.file


def _gain_map(data: bytes) -> StandardGainMap:
    """The standard gain map of a file a method wrote.

    Raises:
        NoGainMapError: the file has none.
    """
    gain_map = find_gain_map(data)
    if gain_map is None:
        raise NoGainMapError("the file holds no standard gain map")
    return gain_map


@dataclass(frozen=True)
class MlpMethod:
    """Gain-MLP or Gamma-MLP: this library's codec with one network configuration."""

    residual: ResidualKind
    width: int
    activation: Activation
    init: InitName
    steps: int
    seed: int
    device: str
    protocols: tuple[ProtocolName, ...] = PROTOCOLS
    budget: None = None

    @property
    def family(self) -> str:
        """E.g. "Gamma-MLP"."""
        return f"{_residual_title(self.residual)}-MLP"

    @property
    def curve(self) -> str:
        """The family, with the activation and initialisation when they are not the defaults."""
        return _variant(self.family, self.activation, self.init)

    @property
    def label(self) -> str:
        """The curve and the width."""
        return f"{self.curve} w{self.width}"

    def encode(self, image: BenchImage, base: Base) -> Encoded:
        """Fit against the base's code values and insert the network into the base JPEG."""
        options = _codec_options(self.residual, self.width, self.activation, self.init, self.steps, self.seed,
                                 self.device)
        result = codec.encode_prepared(codec.fit_inputs(base.jpeg, base.code, image.hdr_pq, options), options)
        return Encoded(result.metadata_bytes, result.fit_seconds, file=result.jpeg)

    def decode(self, encoded: Encoded, base: Base) -> np.ndarray:
        """The codec's decoder, on the file's base or on the lossless one."""
        decoded = codec.decode(_file(encoded), base_pixels=base.code if base.lossless else None)
        assert decoded.pq is not None, "decode keeps the PQ values unless told with_pq=False"
        return decoded.pq


@dataclass(frozen=True)
class DirectMlpMethod:
    """Direct-MLP: the network predicts the HDR's PQ code values, not a residual."""

    width: int
    activation: Activation
    steps: int
    seed: int
    device: str
    protocols: tuple[ProtocolName, ...] = PROTOCOLS
    budget: None = None
    family: str = "Direct-MLP"

    @property
    def curve(self) -> str:
        """The family, with the activation when it is not the default."""
        return _variant(self.family, self.activation)

    @property
    def label(self) -> str:
        """The curve and the width."""
        return f"{self.curve} w{self.width}"

    def encode(self, image: BenchImage, base: Base) -> Encoded:
        """The codec's fit with the HDR itself, normalised, as the target."""
        options = _codec_options("gamma", self.width, self.activation, "random", self.steps, self.seed, self.device)
        inputs = codec.fit_inputs(base.jpeg, base.code, image.hdr_pq, options)
        hdr_norm = Normalisation.of(image.hdr_pq)
        direct = dataclasses.replace(inputs, target=hdr_norm.apply(image.hdr_pq), residual_norm=hdr_norm)
        result = codec.encode_prepared(direct, options)
        # The container's residual statistics are the HDR's, so its "residual" is the HDR itself.
        return Encoded(result.metadata_bytes, result.fit_seconds, payload=result.jpeg)

    def decode(self, encoded: Encoded, base: Base) -> np.ndarray:
        """Evaluate the network over the base: its denormalised output is the HDR."""
        if not isinstance(encoded.payload, bytes):
            raise InputError("the encoding holds no Direct-MLP container")
        container = codec.read_container(encoded.payload)
        metadata = container.metadata
        weights = check_graph(container.graph, metadata.activation, metadata.hidden_width)
        hdr_pq: np.ndarray = np.clip(predict_residual(weights, metadata, base.code), 0.0, 1.0)
        return hdr_pq


@dataclass(frozen=True)
class LibUltraHdrMethod:
    """libultrahdr's own Ultra HDR encoder and decoder (imagecodecs)."""

    family: str = "libultrahdr"
    label: str = "libultrahdr 1/4 map"
    curve: str = "libultrahdr"
    protocols: tuple[ProtocolName, ...] = ("real",)
    budget: None = None
    width: None = None

    def encode(self, image: BenchImage, base: Base) -> Encoded:
        """Encode the HDR (BT.2100 primaries, linear) with libultrahdr's defaults and a quarter-size map."""
        import imagecodecs

        start = time.perf_counter()
        hdr = pq_to_linear(image.hdr_pq, LIBULTRAHDR_WHITE)
        rgba = np.ones((*hdr.shape[:2], 4), dtype=np.float16)
        rgba[..., :3] = hdr
        data = bytes(imagecodecs.ultrahdr_encode(rgba, scale=MAP_SCALE, gamut=imagecodecs.ULTRAHDR.CG.BT_2100))
        return Encoded(_added_to_primary(data), time.perf_counter() - start, file=data)

    def decode(self, encoded: Encoded, base: Base) -> np.ndarray:
        """libultrahdr's decode to linear light, back in BT.2020 PQ."""
        import imagecodecs

        linear = imagecodecs.ultrahdr_decode(_file(encoded))[..., :3].astype(np.float32)
        # It decodes to the primaries it was given, BT.2100's.
        return pq_encode(np.clip(linear, 0.0, None) * LIBULTRAHDR_WHITE).astype(np.float32)


def _added_to_primary(data: bytes) -> int:
    """Bytes of a gain-map JPEG beyond its primary image: the map image and the segments announcing it."""
    gain_map = _gain_map(data)

    def carriage(segment: Segment) -> bool:
        if segment.is_app(2):
            return segment.payload.startswith((MPF_IDENTIFIER, ISO_IDENTIFIER))
        return segment.is_app(1) and HDRGM_NS.encode() in segment.payload

    primary = replace_segments(parse_jpeg(data[: gain_map.gain_map_offset]), [], carriage).to_bytes()
    return len(data) - len(primary)


def _codec_options(
    residual: ResidualKind, width: int, activation: Activation, init: InitName, steps: int, seed: int, device: str
) -> codec.EncodeOptions:
    """The codec's options for one network configuration."""
    fit = codec.FitOptions(hidden_width=width, activation=activation, iterations=steps, seed=seed, device=device)
    return codec.EncodeOptions(residual=residual, init=init, fit=fit)


def _variant(family: str, activation: Activation, init: InitName = "meta") -> str:
    """The family with the non-default choices of the ablations appended."""
    suffix = "" if activation == "sine" else f" {activation}"
    return f"{family}{suffix}{' random-init' if init == 'random' else ''}"


class _FitSettings(TypedDict):
    """The fitting settings every MLP method of a run shares."""

    steps: int
    seed: int
    device: str


def _residual_of(name: str) -> ResidualKind | None:
    """The residual a method family's name starts with ("gain" for "gain-jpeg"); None for the others."""
    return next((kind for kind in RESIDUAL_CODES if name.startswith(f"{kind}-")), None)


def build_methods(options: BenchOptions) -> tuple[list[Method], list[Skipped]]:
    """Every method variant a run asks for, in report order, and the families that cannot run.

    Args:
        options: the run's settings.

    Returns:
        (the methods, the skipped families with their reasons).
    """
    methods: list[Method] = []
    skipped: list[Skipped] = []
    fit = _FitSettings(steps=options.steps, seed=options.seed, device=options.device)
    for name in options.methods:
        residual = _residual_of(name)
        if residual is not None and residual not in options.residuals:
            continue
        if residual is not None and name.endswith(("-jpeg", "-heic")):
            try:
                map_codec = JPEG if name.endswith("-jpeg") else heic_codec()
            except ImportError as error:
                skipped.append(Skipped(f"{_residual_title(residual)}-HEIC", str(error)))
                continue
            methods += [MapMethod(residual, map_codec, budget) for budget in sorted(options.sizes)]
        elif name == "direct-mlp":
            methods += [DirectMlpMethod(w, a, **fit) for a in options.activations for w in sorted(options.widths)]
        elif residual is not None and name.endswith("-mlp"):
            methods += [
                MlpMethod(residual, w, a, i, **fit)
                for a in options.activations
                for i in options.inits
                for w in sorted(options.widths)
            ]
        else:
            reason = _libultrahdr_unavailable()
            if reason:
                skipped.append(Skipped("libultrahdr", reason))
            else:
                methods.append(LibUltraHdrMethod())
    return methods, skipped


def _libultrahdr_unavailable() -> str | None:
    try:
        import imagecodecs
    except ImportError:
        return "imagecodecs is not installed (pip install 'gainmap-format[bench]')"
    if not imagecodecs.ULTRAHDR.available:
        return "this imagecodecs build has no libultrahdr"
    return None
