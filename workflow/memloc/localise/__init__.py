"""Localisation techniques (docs/protocol.md §6): where in a fine-tuned classifier are memorised examples stored?

Window techniques evaluate every contiguous run of blocks ("window") and turn per-window errors
into per-layer weights:

- :mod:`memloc.localise.windows`: the windows, the size-by-layer heatmap, layer weights, M-CoG;
- :mod:`memloc.localise.swapping`: copy a window from the clean twin into the noisy model;
- :mod:`memloc.localise.retraining`: reset a window to its pretrained weights and retrain it on
  clean examples.

Per-layer techniques: :mod:`memloc.localise.gradients` (forgetting gradients),
:mod:`memloc.localise.probing` and :mod:`memloc.localise.centroids`, the last two on the pooled
hidden states of :mod:`memloc.localise.hidden`. Probing's batched MLPs are
:mod:`memloc.localise.probes`; its label probes and probing events
:mod:`memloc.localise.label_probes` and :mod:`memloc.localise.probing_events`.

:mod:`memloc.localise.common` holds what every job shares: its inputs, the memorised set (the
noisy training examples, or an explicit set of example ids), and output tables with provenance.
Every technique but centroids writes a raw table and a per-layer weights table (``technique``,
``layer`` 1-based, ``weight``).
"""
