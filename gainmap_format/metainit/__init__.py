"""Offline training of the shipped initial weights (needs torch): ``gainmap meta-init``.

Encoding and decoding never import this package; it makes the files in ``gainmap_format/init/``
that encoding starts its fits from. The data flow, one module per step:

1. :mod:`.noise` makes chromatic-noise HDR images (Daly et al.) and prepares each exactly as
   ``codec.encode`` prepares a photograph.
2. :mod:`.training` fits networks to them and combines the fits: the average of per-image fits
   (the paper's procedure) or Reptile; :func:`provenance` records how a file was made.

``initweights.py`` (beside ``codec.py``) loads and checks the files this package writes.
"""

from .training import MetaInitOptions, MetaInitResult, meta_initialise, provenance

__all__ = ["MetaInitOptions", "MetaInitResult", "meta_initialise", "provenance"]
