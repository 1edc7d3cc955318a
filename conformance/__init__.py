"""The GainMLP conformance suite: vectors, a runner for any decoder, and an independent numpy decoder.

- ``python -m conformance --decoder "cmd {input} {output}"`` runs a decoder over the vectors
  (:mod:`conformance.run`).
- ``conformance/reference_decoder.py`` decodes from the spec alone, without ``gainmap_format``.
- ``python -m conformance.generate`` rebuilds the vectors.
"""
