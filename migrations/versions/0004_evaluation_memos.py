"""evaluation_memos: safety evaluations remembered by fingerprint, for runs that evaluate the same weights again

Revision ID: 0004_evaluation_memos
Revises: 0003_eval_samples
Create Date: 2026-12-06 13:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_evaluation_memos"
down_revision: str | Sequence[str] | None = "0003_eval_samples"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluation_memos",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("weights", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evaluation_memos_key", "evaluation_memos", ["key"], unique=False)
    op.create_index("ix_evaluation_memos_run_id", "evaluation_memos", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_evaluation_memos_run_id", table_name="evaluation_memos")
    op.drop_index("ix_evaluation_memos_key", table_name="evaluation_memos")
    op.drop_table("evaluation_memos")
