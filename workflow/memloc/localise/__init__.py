"""Localisation techniques (DESIGN §4): where in a fine-tuned classifier are memorised examples stored?

Window techniques evaluate every contiguous run of blocks ("window") and turn per-window errors
into per-layer weights:

- :mod:`memloc.localise.windows`: the windows, the size-by-layer heatmap, layer weights, M-CoG;
- :mod:`memloc.localise.swapping`: copy a window from the clean twin into the noisy model;
- :mod:`memloc.localise.retraining`: reset a window to its pretrained weights and retrain it on
  clean examples;
- :mod:`memloc.localise.common`: job inputs, the memorised set, output tables with provenance.

Every technique writes a raw table and a per-layer weights table (``layer`` 1-based, ``weight``).
"""
