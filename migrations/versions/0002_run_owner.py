"""runs and sweeps record the API key that submitted them

Revision ID: 0002_run_owner
Revises: 0001
Create Date: 2026-12-06 09:50:00

Runs and sweeps stored before this revision get no owner: only admin keys act on them (and see them, besides read
keys, which see every run).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_run_owner"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_key_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_runs_owner_key_id", "api_keys", ["owner_key_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index("ix_runs_owner_created", ["owner_key_id", "created_at"], unique=False)
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_key_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_sweeps_owner_key_id", "api_keys", ["owner_key_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index(batch_op.f("ix_sweeps_owner_key_id"), ["owner_key_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweeps_owner_key_id"))
        batch_op.drop_constraint("fk_sweeps_owner_key_id", type_="foreignkey")
        batch_op.drop_column("owner_key_id")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_owner_created")
        batch_op.drop_constraint("fk_runs_owner_key_id", type_="foreignkey")
        batch_op.drop_column("owner_key_id")
