"""Data sets for FRPO's workflow: where a set comes from (:mod:`.sources`: the sets known by name, shipped or on the
hub, local files, hub ids; fixed evaluation subsets) and downstream SFT conversations (:mod:`.conversations`).

The bottom of the experiment's layer: it imports only ``datasets`` and the standard library, never the other
subpackages. Loaders that know one setting's layouts live with that setting (safety prompts in
:mod:`frpo_core.safety.prompts`, MATH-style problems in :mod:`frpo_core.math.data`).
"""

from frpo_core._moved import forward_old_names

__getattr__ = forward_old_names(__name__)  # 0.1's frpo_core.data module: its names, with a warning
