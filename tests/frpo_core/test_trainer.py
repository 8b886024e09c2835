"""FRPOConfig / FRPOTrainer on the tiny offline model: config refusals, exact groups, and real training."""

from __future__ import annotations

import pytest
import torch
from trl import GRPOConfig

from frpo_core import FRPOTrainer, build_tiny_model
from frpo_core.toy.quickstart import prompt_dataset, share_of_e, toy_config, toy_trainer


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def prompts():
    return prompt_dataset()


class TestConfig:
    def test_frpo_generates_once_per_micro_step_by_default(self, tmp_path):
        config = toy_config(tmp_path, gradient_accumulation_steps=4)
        assert config.steps_per_generation == 1
        assert toy_config(tmp_path, loss_type="grpo", gradient_accumulation_steps=4).steps_per_generation == 4

    @pytest.mark.parametrize(
        "overrides,field",
        [
            (dict(steps_per_generation=2), "steps_per_generation"),
            (dict(generation_batch_size=64), "steps_per_generation"),
            (dict(importance_sampling_level="sequence"), "importance_sampling_level"),
            (dict(top_entropy_quantile=0.5), "top_entropy_quantile"),
            (dict(off_policy_mask_threshold=0.5), "off_policy_mask_threshold"),
            (dict(entropy_coef=0.01), "entropy_coef"),
            (dict(frpo_scale="max"), "frpo_scale"),
            (dict(frpo_clip="ppo"), "frpo_clip"),
            (dict(lamb=0.0), "lamb"),
            (dict(lamb=-1.0, loss_type="grpo"), "lamb"),
            (dict(num_generations_eval=1), "num_generations_eval"),
        ],
    )
    def test_refuses_what_frpo_cannot_honour(self, tmp_path, overrides, field):
        with pytest.raises(ValueError, match=field):
            toy_config(tmp_path, **overrides)

    def test_grpo_keeps_every_trl_option(self, tmp_path):
        config = toy_config(tmp_path, loss_type="grpo", steps_per_generation=2, top_entropy_quantile=0.5)
        assert config.steps_per_generation == 2

    def test_trainer_needs_an_frpo_config(self, tiny_path, prompts, tmp_path):
        with pytest.raises(TypeError, match="FRPOConfig"):
            FRPOTrainer(
                model=tiny_path,
                reward_funcs=[share_of_e],
                train_dataset=prompts,
                args=GRPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True),
            )


class RecordingTrainer(FRPOTrainer):
    """Keeps what reaches the loss, to check the groups TRL's shuffle and split leave behind."""

    seen: list[dict]

    def _compute_loss(self, model, inputs):
        self.seen.append({k: inputs[k].clone() for k in ("prompt_ids", "prompt_mask", "group_ids", "advantages")})
        return super()._compute_loss(model, inputs)


@pytest.mark.slow
def test_group_ids_survive_shuffle_and_split(tiny_path, tmp_path):
    config = toy_config(tmp_path, per_device_train_batch_size=16, gradient_accumulation_steps=2, max_steps=3)
    trainer = toy_trainer(tiny_path, config, trainer_class=RecordingTrainer)
    trainer.seen = []
    trainer.train()
    assert len(trainer.seen) == 6  # 3 optimiser steps × 2 micro-steps, each with its own whole groups
    for batch in trainer.seen:
        ids = batch["group_ids"]
        assert not torch.equal(ids, ids.sort().values), "TRL shuffles completions; ids should arrive unsorted"
        for gid in ids.unique():
            rows = (ids == gid).nonzero().flatten()
            assert rows.numel() == config.num_generations
            prompts_in_group = batch["prompt_ids"][rows] * batch["prompt_mask"][rows]
            assert (prompts_in_group == prompts_in_group[0]).all(), "a group must hold one prompt's completions"
            assert abs(float(batch["advantages"][rows].sum())) < 1e-4, "raw centred advantages sum to 0 per group"


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        dict(loss_type="grpo"),
        dict(loss_type="frpo"),
        dict(loss_type="frpo", jackknife=False, frpo_scale="lambda", lamb=0.2),
        dict(loss_type="frpo", frpo_clip="sign_aware", num_iterations=2, beta=0.01),
    ],
    ids=["grpo", "frpo", "frpo-plain", "frpo-sign-aware-offpolicy-kl"],
)
def test_trains_the_tiny_model_for_real(tiny_path, tmp_path, overrides):
    trainer = toy_trainer(tiny_path, toy_config(tmp_path, **overrides))
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    for name, param in trainer.model.named_parameters():
        assert not torch.equal(param, before[name]), f"{name} did not change"
    history = [h for h in trainer.state.log_history if "reward" in h]
    rewards = [h["reward"] for h in history]
    assert sum(rewards[-8:]) / 8 > sum(rewards[:8]) / 8 + 0.015, rewards  # batch-mean noise is ~0.004
    # The robust reward is logged for every loss type and never exceeds the mean reward.
    assert all(h["robust_reward"] <= h["reward"] + 1e-6 for h in history)
    if overrides["loss_type"] == "frpo":
        assert "frpo/robust_term" in history[-1] and "frpo/effective_advantage_min" in history[-1]


@pytest.mark.slow
def test_frpo_at_huge_lambda_takes_grpos_step(tiny_path, tmp_path):
    """Same seed, same samples, one SGD step: FRPO (large λ, plain log-mean, scale λ) lands where GRPO does.

    The inputs reaching both losses are identical; Ã = λ·(1 − n·w) = A + O(A²/λ), and float32 rounds 1 − n·w, so at
    λ = 100 the two steps agree to within about 1% (the float64 check of the limit is in test_loss.py).
    """
    common = dict(max_steps=1, optim="sgd", learning_rate=1.0, lr_scheduler_type="constant", max_grad_norm=0.0)
    params = {}
    for loss_type, extra in (("grpo", {}), ("frpo", dict(lamb=100.0, jackknife=False, frpo_scale="lambda"))):
        trainer = toy_trainer(tiny_path, toy_config(tmp_path / loss_type, loss_type=loss_type, **common, **extra))
        start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
        params[loss_type] = {n: p.detach() - start[n] for n, p in trainer.model.named_parameters()}
    for name, step in params["grpo"].items():
        assert step.norm() > 0
        assert (params["frpo"][name] - step).norm() / step.norm() < 2e-2, name


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["dapo", "bnpo", "dr_grpo", "cispo", "sapo"])
def test_trls_other_loss_types_run_unchanged(tiny_path, tmp_path, loss_type):
    trainer = toy_trainer(tiny_path, toy_config(tmp_path, loss_type=loss_type, max_steps=2))
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and "frpo/robust_term" not in trainer.state.log_history[0]
    assert "robust_reward" in trainer.state.log_history[0]
