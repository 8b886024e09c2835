"""Data for the ``toy_choice`` task: the JSON lines beside this file, read locally (no hub, no network)."""

from pathlib import Path

import datasets


def load_toy_choice(**kwargs) -> datasets.DatasetDict:
    """lm-eval's ``custom_dataset`` hook: the task's one split, ``test``, from ``toy_choice.jsonl``."""
    path = Path(__file__).with_name("toy_choice.jsonl")
    return datasets.DatasetDict({"test": datasets.load_dataset("json", data_files=str(path), split="train")})
