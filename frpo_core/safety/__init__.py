"""The safety setting (docs/method.md §2.3, §3): safety prompts labelled by task (:mod:`.prompts`: the authors' mix,
HarmBench, StrongREJECT), judges of harmfulness and refusal (:mod:`.judges`), the safety and helpfulness rewards
(:mod:`.rewards`, :mod:`.reward_model`), and the in-loop safety evaluation: refusal rate, harmfulness and the KL to the
pre-fine-tuning policy (:mod:`.evaluation`).

May import the method and ``data``; never ``math``, ``capability``, ``toy``, ``jobs`` or anything of the service.
"""
