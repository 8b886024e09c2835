"""Runs described as data: what a service (or a script) fills in to train. :mod:`.rl` (GRPO or FRPO), :mod:`.sft`
(downstream SFT, LoRA merging), :mod:`.gpu` (how a run uses its GPUs), :mod:`.rewards` (reward functions by name).

The top of the experiment's layer: it may import every other subpackage; nothing in ``frpo_core`` imports it. The
service's workers are its only users in this repository.
"""
