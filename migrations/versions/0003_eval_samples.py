"""eval_samples: every judged answer of a safety evaluation

Revision ID: 0003_eval_samples
Revises: 0002_run_owner
Create Date: 2026-12-06 10:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_eval_samples"
down_revision: str | Sequence[str] | None = "0002_run_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eval_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("prompt_set", sa.String(length=32), nullable=False),
        sa.Column("prompt_id", sa.String(length=64), nullable=False),
        sa.Column("prompt_sha256", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("decoding", sa.String(length=16), nullable=False),
        sa.Column("sample_index", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("judge", sa.String(length=200), nullable=False),
        sa.Column("judge_version", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("kl", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_eval_samples_run_step", "eval_samples", ["run_id", "step", "prompt_set"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_eval_samples_run_step", table_name="eval_samples")
    op.drop_table("eval_samples")
