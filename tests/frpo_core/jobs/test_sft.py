"""Downstream SFT on the tiny offline model: it learns, trains only assistant tokens, and leaves a plain model; its GPU
options (bf16, checkpointing, attention) and clipping reach the trainer's config."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig

from frpo_core.jobs.gpu import GpuBaseOptions
from frpo_core.jobs.sft import SFTJob, build_sft_trainer, load_sft_data, merge_lora, run_sft, sft_config
from frpo_core.tiny import build_tiny_model
from tests.frpo_core.jobs.test_sft_masking import PLAIN_TEMPLATE

pytestmark = pytest.mark.slow


class Recorder(TrainerCallback):
    """Collects what a service would stream: every log and every evaluation step."""

    def __init__(self) -> None:
        self.logs: list[dict] = []
        self.evaluated_at: list[int] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.evaluated_at.append(state.global_step)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def small_job(tiny_path: Path, output_dir: Path, **overrides) -> SFTJob:
    settings = dict(
        model_path=tiny_path,
        dataset="benign_sft",
        output_dir=output_dir,
        learning_rate=3e-3,
        max_steps=20,
        per_device_train_batch_size=4,
        max_length=128,
        logging_steps=1,
    )
    return SFTJob(**{**settings, **overrides})


def load(path: Path) -> dict[str, torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(path)
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


@pytest.fixture(scope="module")
def full_run(tiny_path, tmp_path_factory):
    recorder = Recorder()
    job = small_job(tiny_path, tmp_path_factory.mktemp("sft"), eval_every=10, eval_holdout=8)
    return run_sft(job, callbacks=[recorder]), recorder


def test_full_sft_lowers_the_loss_and_streams_metrics(full_run):
    final_dir, recorder = full_run
    losses = [log["loss"] for log in recorder.logs if "loss" in log]
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    assert recorder.evaluated_at == [0, 10, 20]  # eval at start too: the pre-SFT policy is the reference point
    evals = [log["eval_loss"] for log in recorder.logs if "eval_loss" in log]
    assert evals[-1] < evals[0]


def test_full_sft_changes_every_parameter_and_saves_a_plain_model(full_run, tiny_path):
    final_dir, _ = full_run
    before, after = load(tiny_path), load(final_dir)
    assert before.keys() == after.keys()
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert unchanged == []
    assert not (final_dir / "adapter_config.json").exists()
    tokenizer = AutoTokenizer.from_pretrained(final_dir)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_path).chat_template


def test_only_assistant_tokens_carry_labels(tiny_path, tmp_path):
    trainer = build_sft_trainer(small_job(tiny_path, tmp_path, max_length=512))
    tokenizer = trainer.processing_class
    examples = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(examples)
    for row, example in enumerate(examples):
        user_turn, assistant_turn = example["messages"]
        ids, labels, mask = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row].bool()
        trained = labels != -100
        assert torch.equal(labels[trained], ids[trained])
        assert tokenizer.decode(ids[trained]) == assistant_turn["content"] + "<|im_end|>"
        assert tokenizer.decode(ids[mask & ~trained]) == (
            f"<|im_start|>user\n{user_turn['content']}<|im_end|>\n<|im_start|>assistant\n\n"
        )
        assert not trained[~mask].any()  # padding never carries a label


def test_on_a_template_without_generation_markers_only_the_completion_carries_labels(tiny_path, tmp_path):
    plain = tmp_path / "plain-template"
    shutil.copytree(tiny_path, plain)
    tokenizer = AutoTokenizer.from_pretrained(plain)
    tokenizer.chat_template = PLAIN_TEMPLATE
    tokenizer.save_pretrained(plain)
    data = load_sft_data(small_job(plain, tmp_path, max_length=512))
    assert data.masking == "completion" and data.train.column_names == ["prompt", "completion"]
    trainer = build_sft_trainer(small_job(plain, tmp_path, max_length=512), data=data)
    assert not trainer.args.assistant_only_loss and trainer.args.completion_only_loss
    examples = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(examples)
    for row in range(4):
        prompt, completion = data.train[row]["prompt"], data.train[row]["completion"]
        ids, labels, mask = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row].bool()
        trained = labels != -100
        assert tokenizer.decode(ids[trained]) == completion[0]["content"] + "<|im_end|>\n"
        rendered = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        assert tokenizer.decode(ids[mask & ~trained]) == rendered


def test_lora_sft_saves_a_merged_plain_model(tiny_path, tmp_path):
    final_dir = run_sft(
        small_job(tiny_path, tmp_path, lora=True, lora_r=4, lora_alpha=8, learning_rate=1e-2, max_steps=3)
    )
    assert not (final_dir / "adapter_config.json").exists()
    before, after = load(tiny_path), load(final_dir)
    assert before.keys() == after.keys()  # no lora_A / lora_B left: merged into the base weights
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert "model.layers.0.self_attn.q_proj.weight" in changed and "model.layers.1.mlp.down_proj.weight" in changed
    assert "model.embed_tokens.weight" not in changed  # LoRA touches only the projections


def test_merge_lora_matches_the_adapter_model(tiny_path, tmp_path):
    base = AutoModelForCausalLM.from_pretrained(tiny_path)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config)  # random (non-zero) adapters, as after training
    peft_model.save_pretrained(tmp_path / "adapter")
    inputs = torch.tensor([[5, 17, 40, 300, 2]])
    with torch.no_grad():
        expected = peft_model(input_ids=inputs).logits

    merged_dir = merge_lora(tmp_path / "adapter", tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=inputs).logits, expected, rtol=1e-4, atol=1e-5)
    assert not (merged_dir / "adapter_config.json").exists()
    assert AutoTokenizer.from_pretrained(merged_dir).chat_template is not None
    assert not torch.equal(
        merged.model.layers[0].self_attn.q_proj.weight, load(tiny_path)["model.layers.0.self_attn.q_proj.weight"]
    )


def test_bad_job_settings_are_rejected_before_training(tiny_path, tmp_path):
    with pytest.raises(ValueError, match="eval_holdout=5000"):
        build_sft_trainer(small_job(tiny_path, tmp_path, eval_every=5, eval_holdout=5000))
    with pytest.raises(ValueError, match="warmup_ratio=1.5"):
        build_sft_trainer(small_job(tiny_path, tmp_path, warmup_ratio=1.5))
    with pytest.raises(ValueError, match="exactly one of max_steps \\(20\\) and epochs \\(1\\)"):
        build_sft_trainer(small_job(tiny_path, tmp_path, epochs=1))
    with pytest.raises(ValueError, match="exactly one of max_steps \\(None\\) and epochs \\(None\\)"):
        build_sft_trainer(small_job(tiny_path, tmp_path, max_steps=None))


def test_without_gpu_options_sft_on_a_cpu_keeps_trls_defaults_fp32_weights_and_no_checkpointing(tmp_path):
    config = sft_config(SFTJob(model_path="m", output_dir=tmp_path))
    trl = SFTConfig(output_dir=str(tmp_path), use_cpu=True)
    assert (config.bf16, config.max_grad_norm) == (trl.bf16, trl.max_grad_norm)
    assert trl.gradient_checkpointing and not config.gradient_checkpointing  # TRL's default is for GPU memory
    assert config.model_init_kwargs == {"dtype": "float32"}


def test_gpu_options_and_clipping_reach_the_sft_config(tmp_path):
    job = SFTJob(model_path="m", output_dir=tmp_path, max_grad_norm=0.3, gpu=GpuBaseOptions())
    config = sft_config(job)
    assert config.bf16 and config.gradient_checkpointing and config.max_grad_norm == 0.3
    assert config.model_init_kwargs["dtype"] == "bfloat16"  # bf16 weights with bf16, as for RL
    assert config.model_init_kwargs["attn_implementation"] in ("flash_attention_2", "sdpa")  # "auto"
    fp32 = sft_config(SFTJob(model_path="m", output_dir=tmp_path, gpu=GpuBaseOptions("eager", False, False)))
    assert not fp32.bf16 and not fp32.gradient_checkpointing and fp32.max_grad_norm == 1.0
    assert fp32.model_init_kwargs == {"dtype": "float32", "attn_implementation": "eager"}


def test_sft_options_pass_through_to_the_config(tmp_path):
    options = {"packing": True, "neftune_noise_alpha": 5.0, "optim": "adafactor", "loss_type": "dft"}
    config = sft_config(SFTJob(model_path="m", output_dir=tmp_path, options=options))
    assert (config.packing, config.neftune_noise_alpha, config.optim, config.loss_type) == (
        True,
        5.0,
        "adafactor",
        "dft",
    )


def test_a_packed_sft_run_trains(tiny_path, tmp_path):
    trainer = build_sft_trainer(small_job(tiny_path, tmp_path, max_steps=2, options={"packing": True}))
    assert trainer.args.packing
    trainer.train()
    assert trainer.state.global_step == 2


def test_epochs_become_steps_over_the_packed_rows_and_the_run_ends_there(tiny_path, tmp_path):
    packed = {"packing": True}
    job = small_job(tiny_path, tmp_path, max_steps=None, epochs=0.5, dataset_limit=40, max_length=1024, options=packed)
    trainer = build_sft_trainer(job)
    rows = len(trainer.train_dataset)
    assert rows < 40  # packing joined examples: an epoch is the packed rows, as the trainer sees them
    assert trainer.args.max_steps == math.ceil(0.5 * math.ceil(rows / 4))  # half of the batches of 4, rounded up
    trainer.train()
    assert trainer.state.global_step == trainer.args.max_steps


def test_the_trainer_loads_the_model_as_the_gpu_options_say(tiny_path, tmp_path):
    plain = build_sft_trainer(small_job(tiny_path, tmp_path / "plain", max_steps=1))
    assert plain.model.dtype == torch.float32
    gpu = GpuBaseOptions(attn_implementation="eager", bf16=True, gradient_checkpointing=True)
    job = small_job(tiny_path, tmp_path / "gpu", max_steps=2, lora=True, max_grad_norm=0.3, gpu=gpu)
    trainer = build_sft_trainer(job)
    assert trainer.model.dtype == torch.bfloat16 and trainer.model.config._attn_implementation == "eager"
    assert trainer.args.max_grad_norm == 0.3
    trainer.train()  # bf16 weights, LoRA and checkpointing train on a CPU too
    assert trainer.model.is_gradient_checkpointing  # switched on by the trainer as training starts
    assert torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))
