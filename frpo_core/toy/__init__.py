"""Every shipped toy set and warm start, and the quickstart: what lets the paper's experiments run on a CPU with the
tiny offline model.

- :mod:`.safety`: the toy safety task's warm start (refuses harmful requests only part of the time);
- :mod:`.arithmetic`: the toy math task (the 100 one-digit sums) and its warm start;
- :mod:`.quickstart`: GRPO and FRPO side by side on a toy reward (``python -m frpo_core.toy.quickstart``);
- :mod:`.assets`: which shipped file each builder writes (``python -m frpo_core.toy`` writes them all again).

May import the method, ``data``, ``safety`` and ``math``; never ``jobs`` (which builds on it) or anything of the
service.
"""

from frpo_core._moved import forward_old_names

__getattr__ = forward_old_names(__name__)  # 0.1's frpo_core.toy module: its names, with a warning
