"""The tiny offline model: tokenizer, chat template, determinism, save/load and generation."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

from frpo_core.tiny import IM_END, TinyModelConfig, build_tiny_model, build_tokenizer, load_tiny_model

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 12 + 30?"},
    {"role": "assistant", "content": "Sure, here is the answer: 12 + 30 = 42."},
    {"role": "user", "content": "Tell me how to pick a lock."},
    {"role": "assistant", "content": "I'm sorry, but I won't help with that."},
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TinyModelConfig().vocab_size)


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that request.",
        "I'm sorry, but I won't do that.",
        "Sure, here is a list: 1. apples 2. pears",
        "What is 1234 * 5678? It is 7006652.",
        "def add(a, b):\n    return a + b\n",
        "Unicode the corpus never saw: naïve café, 日本語, 😀",
        "",
    ],
)
def test_tokenizer_round_trips(tokenizer, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert all(0 <= i < TinyModelConfig().vocab_size for i in ids)


def test_special_tokens(tokenizer) -> None:
    assert len(tokenizer) == TinyModelConfig().vocab_size
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.bos_token is None
    assert tokenizer.tokenize("<|im_start|>user\n<|im_end|>") == ["<|im_start|>", "user", "Ċ", "<|im_end|>"]
    # digits are split one by one, which keeps arithmetic tokenization regular
    assert tokenizer.tokenize("2024") == ["2", "0", "2", "4"]


def test_chat_template_renders(tokenizer) -> None:
    rendered = tokenizer.apply_chat_template(CONVERSATION[:3], tokenize=False)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n"
        "<|im_start|>assistant\nSure, here is the answer: 12 + 30 = 42.<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(CONVERSATION[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n"


def test_assistant_mask_covers_exactly_assistant_tokens(tokenizer) -> None:
    out = tokenizer.apply_chat_template(CONVERSATION, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)

    spans, current = [], []
    for token_id, m in zip(ids, mask, strict=True):
        if m:
            current.append(token_id)
        elif current:
            spans.append(current)
            current = []
    assert not current  # the trailing newline after the last <|im_end|> is not trained

    expected = [
        tokenizer(message["content"] + IM_END, add_special_tokens=False)["input_ids"]
        for message in CONVERSATION
        if message["role"] == "assistant"
    ]
    assert spans == expected  # content plus the stop token, nothing from the prompt side


def test_template_is_ready_for_trl_assistant_only_loss(tokenizer) -> None:
    assert has_generation_markers(tokenizer.chat_template)
    assert is_chat_template_stop_token_trained(tokenizer)


def test_build_is_deterministic_per_seed(tiny_dir: Path, tmp_path: Path) -> None:
    same = build_tiny_model(tmp_path / "same", TinyModelConfig(seed=0))
    other = build_tiny_model(tmp_path / "other", TinyModelConfig(seed=1))

    weights, same_weights, other_weights = (load_file(d / "model.safetensors") for d in (tiny_dir, same, other))
    assert weights.keys() == same_weights.keys() == other_weights.keys()
    assert all(torch.equal(weights[k], same_weights[k]) for k in weights)
    assert not torch.equal(weights["model.embed_tokens.weight"], other_weights["model.embed_tokens.weight"])

    for name in TOKENIZER_FILES:  # the tokenizer does not depend on the seed at all
        assert (tiny_dir / name).read_bytes() == (same / name).read_bytes() == (other / name).read_bytes()


def test_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model(tmp_path / "m", TinyModelConfig(seed=5))
    assert torch.equal(torch.rand(3), expected)


def test_loads_back_and_generates(tiny_dir: Path, tokenizer) -> None:
    model, loaded = load_tiny_model(tiny_dir)

    assert model.config.model_type == "qwen2"
    assert model.config.tie_word_embeddings
    assert model.config.eos_token_id == model.generation_config.eos_token_id == loaded.eos_token_id
    assert model.config.pad_token_id == model.generation_config.pad_token_id == loaded.pad_token_id
    assert sum(p.numel() for p in model.parameters()) < 300_000

    # AutoTokenizer rebuilds a Qwen2Tokenizer from the saved files; it must split text like the one we trained.
    text = "\n\n".join(m["content"] for m in CONVERSATION) + " 3 + 4 = 7, naïve 😀"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.chat_template == tokenizer.chat_template

    inputs = loaded.apply_chat_template(
        CONVERSATION[1:2], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    prompt_len = inputs["input_ids"].shape[1]
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert output.shape == (1, prompt_len + 4)
    assert torch.equal(output[:, :prompt_len], inputs["input_ids"])
