"""A Python client for the frpo-lab API: what the CLI, the demo and the dashboard use, and what scripts can use.

    from frpo_client import Client

    client = Client("http://127.0.0.1:8000", key)          # or Client.from_env(): FRPO_API_URL, FRPO_API_KEY
    job = client.submit_job({"kind": "train", "preset": "toy-safety", "lamb": 0.5})
    job = client.wait(job["id"])                            # polls until it ends
    series = client.series(job["id"], ["eval/refusal_rate"])  # every point, {key: [(step, value), ...]}

It needs nothing but httpx: no torch, no database. Every failure is an `ApiError` carrying the API's own message,
the fields it names and their fixes.
"""

from frpo_client.client import FINISHED, ApiError, Client, Json
from frpo_client.version import version

__all__ = ["FINISHED", "ApiError", "Client", "Json", "version"]
