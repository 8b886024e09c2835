"""What every command that talks to a running API shares: where it is, the key, `--json`, and errors as one line.

A command opens `connect(url, key)`; any `ApiError` inside (the API unreachable, a refused key, a rejected spec)
ends the command with the API's message and its fix on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from frpo_client import ApiError, Client

ApiUrl = Annotated[str, typer.Option(envvar="FRPO_API_URL", help="Base URL of the API.")]
ApiKeyOption = Annotated[str, typer.Option(envvar="FRPO_API_KEY", help="A bearer key (frpo keys create).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
DEFAULT_URL = "http://127.0.0.1:8000"


@contextmanager
def connect(url: str, key: str) -> Iterator[Client]:
    """A client for the API at `url`; an ApiError raised inside becomes `error: <message>` and exit status 1."""
    if not key:
        raise typer.BadParameter("no API key: set FRPO_API_KEY or pass --key (create one with `frpo keys create`)")
    try:
        with Client(url, key) as client:
            yield client
    except ApiError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def print_json(data: Any) -> None:
    """One JSON document on stdout (UUIDs, datetimes as strings)."""
    typer.echo(json.dumps(data, indent=2, default=str))
