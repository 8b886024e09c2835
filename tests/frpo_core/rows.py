"""Small files and chat turns the data tests write and compare against."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def said(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


FORMATS = ["jsonl", "csv", "parquet"]


def write_table(path: Path, rows: list[dict]) -> Path:
    """``rows`` as a jsonl, csv or parquet file, by ``path``'s suffix."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    table = Dataset.from_list(rows)
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path)
    return path
