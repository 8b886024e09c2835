"""The helpfulness reward model: a tiny random Qwen2 sequence classifier with the tiny tokenizer, scored for real."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, Qwen2ForSequenceClassification

from frpo_core.safety.reward_model import RewardModelScorer
from frpo_core.tiny import build_tiny_model

PROMPTS = [
    "Tell me a story about a cat.",
    "What is two plus two?",
    "Name a colour.",
    "How do I bake bread?",
    "Count to three.",
    "Explain {braces} in text.",
]
RESPONSES = [
    "Once upon a time a cat sat on a warm mat and dreamt of fish, the sea and the moon.",
    "Four.",
    "Blue.",
    "Mix flour, water, salt and yeast; knead, let it rise, then bake it for forty minutes.",
    "One, two, three.",
    "",
]


@pytest.fixture(scope="module")
def reward_model_path(tmp_path_factory):
    """The tiny tokenizer (chat template, pad token) with a random single-logit Qwen2 classifier on top.

    The score head is drawn with a large scale (seeded) so that different inputs get visibly different rewards.
    """
    tiny = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    tokenizer = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    config = AutoConfig.from_pretrained(tiny, local_files_only=True, num_labels=1)
    config.pad_token_id = tokenizer.pad_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2ForSequenceClassification(config)
        torch.nn.init.normal_(model.score.weight, std=2.0)
    out = tmp_path_factory.mktemp("tiny-rm")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_scores_are_probabilities_batched_as_one_by_one(reward_model_path):
    batched = RewardModelScorer(reward_model_path, batch_size=4)
    scores = batched.score(PROMPTS, RESPONSES)
    assert len(scores) == len(PROMPTS) and all(0.0 < s < 1.0 for s in scores)
    assert max(scores) - min(scores) > 1e-2  # inputs are told apart, so the comparisons below mean something

    single = RewardModelScorer(reward_model_path, batch_size=1)
    assert single.version == batched.version  # batch size does not change scores, so not the version
    one_by_one = single.score(PROMPTS, RESPONSES)
    torch.testing.assert_close(torch.tensor(scores), torch.tensor(one_by_one), rtol=0, atol=1e-5)
    assert batched.score(PROMPTS, RESPONSES) == scores  # deterministic


def test_order_is_preserved_and_chat_prompts_match_strings(reward_model_path):
    scorer = RewardModelScorer(reward_model_path, batch_size=4)
    scores = scorer.score(PROMPTS, RESPONSES)
    reversed_scores = scorer.score(PROMPTS[::-1], RESPONSES[::-1])
    torch.testing.assert_close(torch.tensor(reversed_scores[::-1]), torch.tensor(scores), rtol=0, atol=1e-5)
    as_chat = [[{"role": "user", "content": prompt}] for prompt in PROMPTS]
    torch.testing.assert_close(torch.tensor(scorer.score(as_chat, RESPONSES)), torch.tensor(scores), rtol=0, atol=0)
    assert scorer.score([], []) == []


def test_the_score_is_the_sigmoid_of_the_logit_at_the_last_token(reward_model_path):
    """Checked against the model run by hand on the chat-rendered pair, with no padding at all."""
    scorer = RewardModelScorer(reward_model_path)
    text = scorer.tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}, {"role": "assistant", "content": RESPONSES[0]}], tokenize=False
    )
    assert text.endswith(RESPONSES[0] + "<|im_end|>\n")
    ids = scorer.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logit = scorer.model(input_ids=ids).logits[0, 0]
    assert scorer.score(PROMPTS[:1], RESPONSES[:1])[0] == pytest.approx(torch.sigmoid(logit).item(), abs=1e-6)


def test_name_version_and_errors(reward_model_path):
    scorer = RewardModelScorer(reward_model_path)
    assert scorer.name == f"reward-model:{reward_model_path}"
    assert not scorer.model.training and not any(p.requires_grad for p in scorer.model.parameters())
    assert RewardModelScorer(reward_model_path, max_length=64).version != scorer.version
    truncated = RewardModelScorer(reward_model_path, max_length=8).score(PROMPTS, RESPONSES)
    assert all(0.0 < s < 1.0 for s in truncated)
    with pytest.raises(ValueError, match="one response per prompt"):
        scorer.score(PROMPTS, RESPONSES[:2])
    with pytest.raises(ValueError, match="batch_size"):
        RewardModelScorer(reward_model_path, batch_size=0)


def test_a_multi_logit_classifier_is_refused(reward_model_path, tmp_path):
    config = AutoConfig.from_pretrained(reward_model_path, num_labels=2)
    Qwen2ForSequenceClassification(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(reward_model_path).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="one logit"):
        RewardModelScorer(tmp_path)
