"""A tiny, fully offline chat model for tests and laptop-scale experiments.

Nothing here touches a model hub: the tokenizer is trained on a small English corpus shipped with the package
(``frpo_core/assets/tiny_corpus.txt``) and the model is a randomly initialised Qwen2 with a few hundred thousand
parameters. Everything is deterministic for a given seed, so tests can build a model into a temporary directory,
warm-start it (e.g. with TRL's ``SFTTrainer``) and compare results across runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END]

# ChatML, as used by Qwen. The assistant's content *and* its closing <|im_end|> sit inside
# {% generation %}...{% endgeneration %}: `return_assistant_tokens_mask=True` (and therefore TRL's
# `assistant_only_loss=True`) then trains exactly the tokens the model must produce, including the stop token.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    """Sizes of the tiny Qwen2 model. The defaults give roughly 140k parameters."""

    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary size, special tokens included."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the residual stream."})
    intermediate_size: int = field(default=128, metadata={"help": "Width of the SwiGLU MLP."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Number of decoder layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "Query heads; must divide hidden_size."})
    num_key_value_heads: int = field(
        default=2, metadata={"help": "Key/value heads (grouped-query attention); must divide num_attention_heads."}
    )
    max_position_embeddings: int = field(
        default=512, metadata={"help": "Longest sequence the model (and the tokenizer's model_max_length) accepts."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for the random weights; same seed, same weights."})


def _corpus_lines() -> list[str]:
    """The shipped training text, one paragraph per item (read as package data so it works from a wheel too)."""
    text = files("frpo_core").joinpath("assets", "tiny_corpus.txt").read_text(encoding="utf-8")
    return [paragraph for paragraph in text.split("\n\n") if paragraph.strip()]


def build_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the shipped corpus and wrap it with a ChatML chat template.

    Byte-level BPE means any string round-trips, even characters the corpus never shows. Training is deterministic,
    so every call with the same ``vocab_size`` returns an identical tokenizer. ``<|endoftext|>`` pads, ``<|im_end|>``
    ends a turn (eos); there is no bos token, as in Qwen.

    The normalizer and pre-tokenizer are exactly Qwen2's. This is not cosmetic: for a ``qwen2`` checkpoint,
    transformers 5 ``AutoTokenizer`` always builds a ``Qwen2Tokenizer``, which keeps only the vocab and merges from
    ``tokenizer.json`` and re-creates its own pipeline. Training with any other pipeline would make the tokenizer
    loaded from disk split text differently from the one built here.
    """
    backend = Tokenizer(models.BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus_lines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=IM_END,
        unk_token=PAD_TOKEN,  # what Qwen2Tokenizer defaults to on load; set here so both agree
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(output_dir: str | Path, config: TinyModelConfig | None = None) -> Path:
    """Build the tokenizer and a randomly initialised tiny Qwen2, save both to ``output_dir`` and return that path.

    The result loads like any Hub checkpoint (``from_pretrained(output_dir)``), so code written against real models
    runs unchanged on it. Weights depend only on ``config``: initialisation runs under ``config.seed`` in a forked
    torch RNG, so the caller's random state is left untouched.
    """
    config = config or TinyModelConfig()
    output_dir = Path(output_dir)
    tokenizer = build_tokenizer(config.vocab_size)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than vocab_size={config.vocab_size}")
    tokenizer.model_max_length = config.max_position_embeddings

    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    model_config = Qwen2Config(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        # Like Qwen: <|endoftext|> doubles as bos in the config, although the tokenizer never prepends it.
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG stream
        torch.manual_seed(config.seed)
        model = Qwen2ForCausalLM(model_config)
    model.generation_config = GenerationConfig(bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id)

    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def load_tiny_model(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a model saved by :func:`build_tiny_model` (or trained from one) from disk only, never from a hub."""
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer
