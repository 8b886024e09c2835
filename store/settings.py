"""Service settings from FRPO_* environment variables or `.env` (pydantic-settings).

With nothing configured the service runs embedded: a SQLite file and Celery's SQLAlchemy transport on SQLite under
the data folder (./var), CPU, the tiny offline model. Production sets FRPO_DATABASE_URL (PostgreSQL) and
FRPO_BROKER_URL (Redis).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRPO_", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="production refuses embedded SQLite and an embedded broker."
    )
    data_dir: Path = Field(Path("var"), description="Root of the embedded database, broker and run outputs.")
    database_url: str = Field("", description="SQLAlchemy URL; empty = sqlite:///<data_dir>/frpo.db.")
    broker_url: str = Field("", description="Celery broker URL; empty = sqla+sqlite:///<data_dir>/broker.db.")
    model_roots: list[Path] = Field(
        default_factory=list,
        description="Folders a job may load local models or data from; empty = <data_dir>/models (not the data "
        "directory itself, which holds the database, the keys and every run's outputs).",
    )
    output_root: Path | None = Field(None, description="Where runs write checkpoints; empty = <data_dir>/runs.")
    allow_trust_remote_code: bool = Field(False, description="Whether a job spec may set trust_remote_code.")
    lease_seconds: float = Field(60.0, gt=0, description="A claimed job is someone else's until its lease expires.")
    heartbeat_seconds: float = Field(10.0, gt=0, description="How often a worker renews its lease.")
    max_attempts: int = Field(
        3, ge=1, description="A job whose worker died this many times (each attempt) is failed, not retried again."
    )
    store_outage_seconds: float = Field(
        60.0, ge=0, description="How long a worker's writes retry (with backoff) through a database outage."
    )
    worker_template: bool = Field(
        True,
        description="Fork CPU jobs' training children from a per-worker process with the ML stack imported "
        "(workers.template) instead of starting each anew.",
    )
    max_request_bytes: int = Field(1 << 20, ge=1024, description="Larger request bodies are refused (413).")
    idempotency_ttl_seconds: float = Field(
        24 * 3600.0, gt=0, description="How long a POST's Idempotency-Key is remembered (and replayed)."
    )
    vllm_server_host: str = Field(
        "127.0.0.1", description="Where `trl vllm-serve` runs, for jobs with vllm_mode 'server'."
    )
    vllm_server_port: int = Field(8000, ge=1, le=65535, description="Its port.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'frpo.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.db'}"
        if not self.model_roots:
            self.model_roots = [self.data_dir / "models"]
        self.model_roots = [root.expanduser().resolve() for root in self.model_roots]
        self.output_root = (self.output_root or self.data_dir / "runs").expanduser().resolve()
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError("FRPO_DATABASE_URL must point at PostgreSQL when FRPO_ENVIRONMENT=production.")
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("FRPO_HEARTBEAT_SECONDS must be shorter than FRPO_LEASE_SECONDS.")
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
