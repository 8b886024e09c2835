"""The math setting (docs/method.md §2.3, §3): MATH-style problems as RL prompts with decontamination against MATH500
(:mod:`.data`), the boxed-answer verifier (:mod:`.verifier`) and the authors' ``0.2·format + 0.8·correct`` reward
(:mod:`.reward`).

May import the method and ``data``; never ``safety``, ``capability``, ``toy``, ``jobs`` or anything of the service.
"""
