"""Train the tiny offline model with GRPO and with FRPO at a few λ, side by side, on a laptop CPU.

    python -m frpo_core.toy.quickstart [--steps 40] [--lambdas 0.5 2.0] [--output-dir var/quickstart]

Every run starts from the same weights and seed and differs only in `loss_type` / λ. The reward is a toy one (how
much of the answer is the letter "e"), dense enough for a 140k-parameter model to climb in a few dozen steps. It
prints the mean reward at the start and end of training, the robust reward −λ·log mean exp(−r/λ) that every run logs,
and the time per optimiser step.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path

from datasets import Dataset
from transformers import PrinterCallback
from transformers.utils import logging as transformers_logging

from frpo_core.config import FRPOConfig
from frpo_core.data.conversations import Completion, text_of
from frpo_core.tiny import build_tiny_model
from frpo_core.trainer import FRPOTrainer

QUICKSTART_PROMPTS = (
    "Tell me a story.",
    "What is two plus two?",
    "Name a colour.",
    "Say something nice.",
    "How are you?",
    "Write a word.",
    "Count to three.",
    "Give me a number.",
)
"""The quickstart's prompts (the RL dataset named ``"toy"``): no task labels, for the :func:`share_of_e` reward."""


def share_of_e(completions: list[Completion], **kwargs) -> list[float]:
    """The quickstart's toy reward in [0, 1]: the share of the letter "e" in each completion (random text ≈ 0.1)."""
    texts = [text_of(completion) for completion in completions]
    return [text.count("e") / max(len(text), 1) for text in texts]


def prompt_dataset() -> Dataset:
    """:data:`QUICKSTART_PROMPTS` as TRL's conversational prompts."""
    return Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in QUICKSTART_PROMPTS]})


def toy_config(output_dir: str | Path, **overrides) -> FRPOConfig:
    """The toy task's training settings (CPU, 32 completions of ≤ 16 tokens per step, λ in raw reward units)."""
    settings = dict(
        output_dir=str(output_dir),
        loss_type="frpo",
        lamb=0.5,
        scale_rewards="none",
        learning_rate=3e-3,
        per_device_train_batch_size=32,
        num_generations=8,
        max_completion_length=16,
        max_steps=40,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        seed=0,
        use_cpu=True,
        disable_tqdm=True,
        log_level="error",
    )
    return FRPOConfig(**{**settings, **overrides})


def toy_trainer(model_path: str | Path, config: FRPOConfig, trainer_class: type[FRPOTrainer] = FRPOTrainer):
    """A trainer for the toy task on a model saved at `model_path`, printing nothing per step."""
    trainer = trainer_class(
        model=str(model_path), reward_funcs=[share_of_e], args=config, train_dataset=prompt_dataset()
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def train_once(model_path: Path, output_dir: Path, loss_type: str, lamb: float, steps: int) -> dict[str, float]:
    """One run; returns mean reward over its first and last five logged steps, the final robust reward, s/step."""
    trainer = toy_trainer(model_path, toy_config(output_dir, loss_type=loss_type, lamb=lamb, max_steps=steps))
    trainer.train()
    history = [h for h in trainer.state.log_history if "reward" in h]
    return {
        "reward_start": statistics.mean(h["reward"] for h in history[:5]),
        "reward_end": statistics.mean(h["reward"] for h in history[-5:]),
        "robust_reward_end": statistics.mean(h["robust_reward"] for h in history[-5:]),
        "seconds_per_step": statistics.median(h["step_time"] for h in history),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--output-dir", type=Path, default=Path("var/quickstart"))
    args = parser.parse_args()
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6", category=FutureWarning)

    model_path = build_tiny_model(args.output_dir / "tiny-model")
    runs = [("grpo", args.lambdas[0])] + [("frpo", lamb) for lamb in args.lambdas]
    print(f"{'method':<8}{'λ':>6}{'reward start':>14}{'reward end':>12}{'robust end':>12}{'s/step':>9}")
    for loss_type, lamb in runs:
        result = train_once(model_path, args.output_dir / f"{loss_type}-{lamb}", loss_type, lamb, args.steps)
        print(
            f"{loss_type:<8}{lamb if loss_type == 'frpo' else '-':>6}{result['reward_start']:>14.3f}"
            f"{result['reward_end']:>12.3f}{result['robust_reward_end']:>12.3f}{result['seconds_per_step']:>9.3f}"
        )
    print(f"(robust reward at λ = {args.lambdas[0]} for GRPO; at each run's λ for FRPO)")


if __name__ == "__main__":
    main()
