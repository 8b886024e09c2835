"""FRPOTrainer: TRL's GRPOTrainer with FRPO's loss, explicit prompt groups and the robust reward logged.

    trainer = FRPOTrainer(model=path, reward_funcs=[reward], args=FRPOConfig(loss_type="frpo", lamb=0.5, ...),
                          train_dataset=prompts)
    trainer.train()

Three overrides, each small:
- `_generate_and_score_completions` tags every completion with the id of its prompt group, derived from the sampler's
  layout (each prompt repeated `num_generations` times, contiguously, across the gathered batch) *before* TRL
  shuffles and splits the batch, so the id survives any reordering (docs/method.md §6.1).
- `_calculate_rewards` logs the robust reward −λ·log mean exp(−r/λ) per group, for every loss type.
- `_compute_loss` runs `frpo_core.loss` when `loss_type="frpo"` and defers to TRL otherwise.
"""

from __future__ import annotations

import torch
from trl import GRPOTrainer

from frpo_core.config import FRPOConfig
from frpo_core.loss import FRPOLossOptions, frpo_loss_terms, robust_reward


class FRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose `loss_type="frpo"` optimises the fine-tuning-robust objective; other loss types are TRL's."""

    _tag_names = ["trl", "grpo", "frpo"]

    def __init__(self, *args, **kwargs) -> None:
        config = kwargs.get("args")
        if config is not None and not isinstance(config, FRPOConfig):
            raise TypeError(f"FRPOTrainer needs args=FRPOConfig(...), got {type(config).__name__}.")
        super().__init__(*args, **kwargs)
        self.frpo_options = self._frpo_options() if self.loss_type == "frpo" else None

    def _frpo_options(self) -> FRPOLossOptions:
        """The FRPO loss's options from the config and what TRL resolved (clip range, β, processes)."""
        args = self.args
        return FRPOLossOptions(
            lamb=args.lamb,
            jackknife=args.jackknife,
            baseline=args.baseline,
            epsilon_low=self.epsilon_low,
            epsilon_high=self.epsilon_high,
            delta=args.delta,
            beta=self.beta,
            scale=args.frpo_scale,
            clip=args.frpo_clip,
            kl_bias_correction=args.use_bias_correction_kl,
            distributed=self.accelerator.num_processes > 1,
        )

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        output = super()._generate_and_score_completions(inputs)
        output["group_ids"] = self._group_ids(len(inputs))
        return output

    def _group_ids(self, local_batch: int) -> torch.Tensor:
        """Prompt-group id of each local completion: global position // num_generations (TRL's RepeatSampler layout)."""
        num_generations = self.num_generations if self.model.training else self.num_generations_eval
        start = self.accelerator.process_index * local_batch
        positions = torch.arange(start, start + local_batch, device=self.accelerator.device)
        return positions // num_generations

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._log_robust_reward(rewards_per_func)
        return rewards_per_func

    def _log_robust_reward(self, rewards_per_func: torch.Tensor) -> None:
        """Mean over prompt groups of the worst-case reward in the KL ball at λ = args.lamb (GRPO runs too)."""
        mode = "train" if self.model.training else "eval"
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights).nansum(dim=1)
        scored = ~torch.isnan(rewards_per_func).all(dim=1)  # completions no reward function could score
        group_ids = torch.arange(rewards.numel(), device=rewards.device) // num_generations
        if scored.any():
            value = robust_reward(rewards[scored], group_ids[scored], lamb=self.args.lamb).mean()
            self._metrics[mode]["robust_reward"].append(value.item())

    def _compute_loss(self, model, inputs: dict) -> torch.Tensor:
        if self.loss_type != "frpo":
            return super()._compute_loss(model, inputs)
        prompt_ids, completion_ids = inputs["prompt_ids"], inputs["completion_ids"]
        per_token_logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompt_ids, completion_ids], dim=1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
            completion_ids.size(1),
            compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
        )
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:  # tool-call tokens are not the policy's to learn, as in TRL
            mask = mask * inputs["tool_mask"]
        sampler_correction = self.use_vllm and self.vllm_importance_sampling_correction
        out = frpo_loss_terms(
            per_token_logps,
            inputs.get("old_per_token_logps"),
            inputs["advantages"],
            mask,
            inputs["group_ids"],
            options=self.frpo_options,
            ref_per_token_logps=inputs.get("ref_per_token_logps"),
            importance_sampling_ratio=inputs.get("importance_sampling_ratio") if sampler_correction else None,
        )
        mode = "train" if self.model.training else "eval"
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        loss = out.loss / accumulation  # as TRL's "grpo" loss: the mean over the accumulation window
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / accumulation
        self._log_loss_metrics(mode, out, per_token_logps, entropies, mask, inputs.get("ref_per_token_logps"))
        return loss

    def _log_loss_metrics(self, mode, out, per_token_logps, entropies, mask, ref_per_token_logps) -> None:
        """The same kl / entropy / clip metrics TRL logs for GRPO (token-weighted over all ranks), plus FRPO's own."""
        metrics = self._metrics[mode]

        def global_token_mean(values: torch.Tensor) -> float:
            totals = torch.stack([(values * mask).sum(), mask.sum().to(values.dtype)])
            totals = self.accelerator.reduce(totals, reduction="sum")
            return (totals[0] / totals[1].clamp(min=1.0)).item()

        def global_mean(value: torch.Tensor) -> float:
            return self.accelerator.gather(value.detach().reshape(1)).float().mean().item()

        with torch.no_grad():
            if self.beta != 0.0:
                diff = ref_per_token_logps - per_token_logps
                metrics["kl"].append(global_token_mean(torch.exp(diff) - diff - 1))
            metrics["entropy"].append(global_token_mean(entropies))
        metrics["clip_ratio/low_mean"].append(global_mean(out.clip_ratio_low))
        metrics["clip_ratio/high_mean"].append(global_mean(out.clip_ratio_high))
        metrics["frpo/robust_term"].append(global_mean(out.robust_term))
        metrics["frpo/baseline_term"].append(global_mean(out.baseline_term))
        effective = self.accelerator.gather(out.effective_advantages)
        metrics["frpo/effective_advantage_min"].append(effective.min().item())
        metrics["frpo/effective_advantage_max"].append(effective.max().item())
