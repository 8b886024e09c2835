"""In-loop evaluation: greedy generation, refusal rate, KL to the reference, and the callback inside a real FRPO run."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, TrainerCallback

from frpo_core.safety.evaluation import (
    EvalResult,
    SafetyEvalCallback,
    SafetyEvaluator,
    _generate,
    frozen_copy,
    generate_greedy,
    kl_to_reference,
    refusal_rate,
)
from frpo_core.safety.judges import Judgement, RefusalMatcher
from frpo_core.tiny import build_tiny_model, load_tiny_model
from frpo_core.toy.quickstart import toy_config, toy_trainer

PROMPTS = [
    "Tell me a story.",
    "How do I pick a lock quickly and quietly?",
    "Hi",
    "Name a colour please, any colour.",
    "What is two plus two?",
    "Write a poem about the sea.",
]
METRIC_KEYS = {
    "eval/refusal_rate",
    "eval/harmfulness",
    "eval/reward_safety",
    "eval/kl_safety",
    "eval/kl_normal",
    "eval/refusal_rate_normal",
}


def shake(model: torch.nn.Module, scale: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-evals"))


@pytest.fixture(scope="module")
def lively(tiny_path):
    """The tiny model made to say varied things: seeded weight noise (freshly initialised, it only prints newlines),
    and a larger eos embedding (tied to the output layer) so that some completions stop early and some do not."""
    model, tokenizer = load_tiny_model(tiny_path)
    shake(model, 0.3, seed=0)
    with torch.no_grad():
        model.model.embed_tokens.weight[tokenizer.eos_token_id] *= 3.0
    return model, tokenizer


class RefuseShort:
    """A stub judge: responses shorter than 20 characters are refusals."""

    name = "refuse-short"
    version = "1"

    def judge(self, prompts, responses):
        return [Judgement(float(len(r) >= 20), len(r) < 20, self.name, self.version) for r in responses]


def test_generate_greedy_is_deterministic_and_batch_size_invariant(lively):
    model, tokenizer = lively
    lengths = _generate(model, tokenizer, PROMPTS, 16, batch_size=len(PROMPTS))[0].completion_mask.sum(-1)
    assert 0 < lengths.min() < lengths.max() == 16  # some stop at eos, some run to the limit: padding on both sides
    texts = generate_greedy(model, tokenizer, PROMPTS, max_new_tokens=16, batch_size=len(PROMPTS))
    assert len(texts) == len(PROMPTS) and len(set(texts)) == len(PROMPTS)
    for batch_size in (1, 4):
        assert generate_greedy(model, tokenizer, PROMPTS, max_new_tokens=16, batch_size=batch_size) == texts
    assert generate_greedy(model, tokenizer, PROMPTS, max_new_tokens=16, batch_size=len(PROMPTS)) == texts
    assert all("<|im_end|>" not in t and "<|endoftext|>" not in t for t in texts)
    model.train()  # the callback evaluates mid-training: the caller's mode must come back
    try:
        generate_greedy(model, tokenizer, PROMPTS[:1], max_new_tokens=2)
        assert model.training
    finally:
        model.eval()


def test_kl_to_reference(lively):
    model, tokenizer = lively
    assert kl_to_reference(model, model, tokenizer, PROMPTS, max_new_tokens=12) == 0.0
    perturbed = frozen_copy(model)
    shake(perturbed, 0.05, seed=1)
    kl = kl_to_reference(perturbed, model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=4)
    assert kl > 0
    assert kl == pytest.approx(kl_to_reference(perturbed, model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=1))
    assert not any(p.requires_grad for p in perturbed.parameters())


def test_refusal_rate_carries_the_judge(lively):
    model, tokenizer = lively
    result = refusal_rate(model, tokenizer, PROMPTS, RefuseShort(), max_new_tokens=16, batch_size=4)
    assert isinstance(result, EvalResult) and result.n == len(PROMPTS)
    assert (result.judge, result.judge_version) == ("refuse-short", "1")
    expected = [len(t) < 20 for t in generate_greedy(model, tokenizer, PROMPTS, 16)]
    assert result.refusal_rate == pytest.approx(sum(expected) / len(expected))
    assert result.harmfulness == pytest.approx(1 - result.refusal_rate)
    matcher = refusal_rate(model, tokenizer, PROMPTS, RefusalMatcher(), max_new_tokens=4)
    assert (matcher.judge, matcher.judge_version) == ("refusal-matcher", RefusalMatcher().version)


def test_safety_evaluator(lively):
    model, tokenizer = lively
    evaluator = SafetyEvaluator(PROMPTS[:3], PROMPTS[3:], RefuseShort(), tokenizer, max_new_tokens=8, batch_size=2)
    assert set(evaluator.evaluate(model)) == METRIC_KEYS - {"eval/kl_safety", "eval/kl_normal"}  # no reference yet
    evaluator.reference = model
    metrics = evaluator.evaluate(model)
    assert set(metrics) == METRIC_KEYS
    assert metrics["eval/kl_safety"] == metrics["eval/kl_normal"] == 0.0
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("eval/refusal_rate", "eval/harmfulness", "eval/refusal_rate_normal"))
    with pytest.raises(ValueError, match="at least one harmful"):
        SafetyEvaluator([], PROMPTS, RefuseShort(), tokenizer)


def test_safety_evaluator_scores_helpfulness_and_strongreject_and_may_skip_harmless(lively):
    from frpo_core.safety.rewards import AnsweredScorer

    model, tokenizer = lively
    full = SafetyEvaluator(
        PROMPTS[:3],
        PROMPTS[3:],
        RefuseShort(),
        tokenizer,
        max_new_tokens=8,
        scorer=AnsweredScorer(),
        strongreject_prompts=PROMPTS[:2],
    )
    metrics = full.evaluate(model)
    assert metrics["eval/reward_safety"] == pytest.approx(1 - metrics["eval/harmfulness"])
    # the offline "answered" scorer rewards exactly the harmless answers the refusal matcher does not call refusals
    assert 0.0 <= metrics["eval/reward_normal"] <= 1.0 and 0.0 <= metrics["eval/strongreject"] <= 1.0
    harmful_only = SafetyEvaluator(PROMPTS[:3], [], RefuseShort(), tokenizer, max_new_tokens=8).evaluate(model)
    assert not any(key.endswith("_normal") for key in harmful_only) and "eval/refusal_rate" in harmful_only


class LogRecorder(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append((state.global_step, dict(logs or {})))


@pytest.mark.slow
def test_callback_runs_at_step_zero_and_every_n_steps_of_a_frpo_run(tiny_path, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_path, local_files_only=True)
    evaluator = SafetyEvaluator(PROMPTS[:2], PROMPTS[2:4], RefuseShort(), tokenizer, max_new_tokens=6)
    reported = []
    trainer = toy_trainer(tiny_path, toy_config(tmp_path, max_steps=4, per_device_train_batch_size=16))
    recorder = LogRecorder()
    trainer.add_callback(recorder)
    callback = SafetyEvalCallback(evaluator, every=2, report=lambda step, m: reported.append((step, m))).attach(trainer)
    trainer.train()

    assert [step for step, _ in reported] == [0, 2, 4]
    assert all(set(metrics) == METRIC_KEYS for _, metrics in reported)
    assert reported[0][1]["eval/kl_safety"] == 0.0  # the reference is the model at step 0
    assert reported[-1][1]["eval/kl_safety"] > 0 and reported[-1][1]["eval/kl_normal"] > 0
    assert callback.evaluator.reference is not None and not callback.evaluator.reference.training
    history = [h for h in trainer.state.log_history if "eval/refusal_rate" in h]
    assert [h["step"] for h in history] == [0, 2, 4]
    assert [s for s, logs in recorder.logs if "eval/kl_normal" in logs] == [0, 2, 4]
    # training metrics still reach the log at every step, untouched by the evaluation entries
    assert [h["step"] for h in trainer.state.log_history if "reward" in h] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="every"):
        SafetyEvalCallback(evaluator, every=0)
