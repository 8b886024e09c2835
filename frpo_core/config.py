"""FRPOConfig: TRL's GRPOConfig plus FRPO's knobs, with the settings FRPO cannot honour refused up front.

Built against TRL 1.16 (pinned in pyproject.toml). Every TRL loss type keeps working through the same config, so a
GRPO baseline and an FRPO run differ only in `loss_type` and the FRPO fields.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from trl import GRPOConfig

from frpo_core.loss import CLIPS, SCALES

logger = logging.getLogger(__name__)


@dataclass
class FRPOConfig(GRPOConfig):
    """Configuration for `FRPOTrainer`. With `loss_type="frpo"` the policy loss is FRPO's (arXiv 2602.08813).

    Parameters beyond GRPOConfig:
        lamb: λ, the multiplier of the KL ball of downstream policies (docs/method.md §1). Small λ = large ball = more
            conservative; λ → ∞ recovers GRPO. Measured in raw reward units when `scale_rewards="none"`.
        jackknife: jackknife the log of the group mean to cancel its O(1/n) bias (paper App. F).
        baseline: subtract the zero-expected-gradient offset (the authors' `--baseline`), a variance reduction.
        frpo_scale: "authors" multiplies the loss by max(λ, 1) as the published code; "lambda" by λ as the objective.
        frpo_clip: "authors" clips min(ρ, clip ρ) for every sample; "sign_aware" clips by the sign of each sample's
            effective advantage, as PPO would. They differ only off-policy (num_iterations > 1).
    """

    lamb: float = field(
        default=1.0,
        metadata={
            "help": "FRPO's λ (> 0): the worst case is taken over a KL ball whose size falls as λ grows. Other loss "
            "types use it only to log the robust reward −λ·log mean exp(−r/λ)."
        },
    )
    jackknife: bool = field(
        default=True,
        metadata={"help": "Jackknife bias correction of log mean_g exp(−A/λ) (paper App. F); needs ≥ 2 generations."},
    )
    baseline: bool = field(
        default=True,
        metadata={"help": "Subtract the offset mean ρ: zero expected gradient, lower variance (docs/method.md §2.2)."},
    )
    frpo_scale: str = field(
        default="authors",
        metadata={"help": "'authors': loss × max(λ, 1), as the published code; 'lambda': loss × λ, as the objective."},
    )
    frpo_clip: str = field(
        default="authors",
        metadata={
            "help": "'authors': min(ρ, clip ρ) for every sample (never clips the downward push); 'sign_aware': "
            "clip by the sign of each sample's effective advantage, as PPO. Identical on-policy."
        },
    )

    def __post_init__(self) -> None:
        if self.loss_type == "frpo" and self.steps_per_generation is None and self.generation_batch_size is None:
            # TRL's default generates once per gradient-accumulation window and shuffles the window's completions
            # across micro-steps, which would split prompt groups. One generation per micro-step keeps them whole.
            self.steps_per_generation = 1
        super().__post_init__()
        if not (isinstance(self.lamb, int | float) and 0 < self.lamb < float("inf")):
            raise ValueError(f"lamb must be a finite number > 0, got {self.lamb!r}; for λ → ∞ use loss_type='grpo'.")
        if self.loss_type == "frpo":
            self._check_frpo()

    def _check_frpo(self) -> None:
        """Refuse what FRPO cannot honour, naming the setting to change."""
        if self.frpo_scale not in SCALES:
            raise ValueError(f"frpo_scale must be one of {SCALES}, got {self.frpo_scale!r}.")
        if self.frpo_clip not in CLIPS:
            raise ValueError(f"frpo_clip must be one of {CLIPS}, got {self.frpo_clip!r}.")
        refusals = {
            "steps_per_generation": (
                self.steps_per_generation != 1,
                f"is {self.steps_per_generation}: TRL shuffles each generation batch and splits it over "
                "steps_per_generation micro-steps, which splits prompt groups across micro-steps and makes the "
                "group log-mean wrong. Set steps_per_generation=1 (and leave generation_batch_size unset); "
                "gradient_accumulation_steps may stay > 1.",
            ),
            "importance_sampling_level": (
                self.importance_sampling_level != "token",
                "must be 'token': FRPO's group term is built from token-mean importance ratios.",
            ),
            "top_entropy_quantile": (
                self.top_entropy_quantile < 1.0,
                "must be 1.0 with FRPO: an entropy mask would cover the robust term but not the baseline "
                "(docs/method.md §2.4 item 8).",
            ),
            "off_policy_mask_threshold": (
                self.off_policy_mask_threshold is not None,
                "must be None with FRPO (off-policy sequence masking is not defined for the group log-mean).",
            ),
            "entropy_coef": (
                self.entropy_coef != 0.0 or self.use_adaptive_entropy,
                "must be 0 (and use_adaptive_entropy False) with FRPO: an entropy bonus would make the comparison "
                "with GRPO differ in more than the loss.",
            ),
        }
        for name, (refused, why) in refusals.items():
            if refused:
                raise ValueError(f"FRPOConfig.{name} {why}")
        if self.jackknife and min(self.num_generations, self.num_generations_eval or self.num_generations) < 2:
            raise ValueError(
                "jackknife=True needs num_generations (and num_generations_eval) >= 2; raise them or "
                "set jackknife=False."
            )
        if self.scale_rewards != "none" or self.multi_objective_aggregation != "sum_then_normalize":
            logger.warning(
                "FRPO with scale_rewards=%r and multi_objective_aggregation=%r: advantages are std-normalised, so "
                "λ=%s is in standard-deviation units, not reward units (docs/method.md §6.4). Set scale_rewards='none' "
                "for λ in raw reward units, as the authors.",
                self.scale_rewards,
                self.multi_objective_aggregation,
                self.lamb,
            )
