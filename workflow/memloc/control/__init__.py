"""Control models and control accuracy (docs/protocol.md §7): memorisation forced into known blocks.

* :mod:`memloc.control.pairs` -- target block pairs scaled to L, variant names ``control-i-j``,
  their clean twins ``control-i-j-clean`` and the baseline ``control-frozen``, the number of
  blocks of a configured model;
* :mod:`memloc.control.multitask` -- the two-task control model (main task: blocks i, j and its
  head; auxiliary task: every block and its own head) and the training job;
* :mod:`memloc.control.accuracy` -- acc@1 / acc@2 per technique and run, summaries;
* :mod:`memloc.control.figure` -- the control-accuracy summary figure.

Import the submodules directly; this package imports nothing heavy on its own so that the
Snakefile can use :mod:`memloc.control.pairs` at parse time.
"""

from memloc.control.pairs import (
    VARIANT_PATTERN,
    all_adjacent_pairs,
    control_variants,
    default_pairs,
    model_num_layers,
    parse_variant,
    target_pairs,
    twin_of,
    variant_name,
)

__all__ = [
    "VARIANT_PATTERN",
    "all_adjacent_pairs",
    "control_variants",
    "default_pairs",
    "model_num_layers",
    "parse_variant",
    "target_pairs",
    "twin_of",
    "variant_name",
]
