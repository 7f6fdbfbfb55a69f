"""Advisor tables: the findings table, and run_steps.pre_forward_us.

Times are timestamptz on Postgres and epoch seconds (REAL) on SQLite, as
monitor.store.schema.UtcDateTime maps them; JSON documents are jsonb on Postgres and JSON text
on SQLite. Frozen here so later schema edits never change what this revision creates.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 09:41:17.402115

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
JSON_DOCUMENT = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
)


# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("run_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pre_forward_us", sa.Float(), nullable=True))

    op.create_table(
        "findings",
        sa.Column("finding_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("gpu_uuid", sa.String(length=96), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("time_fraction", sa.Float(), nullable=False),
        sa.Column("wasted_gpu_hours", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("finding_id", name=op.f("pk_findings")),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_findings_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_findings_status_wasted_gpu_hours"),
            ["status", "wasted_gpu_hours"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_findings_status_wasted_gpu_hours"))
        batch_op.drop_index(batch_op.f("ix_findings_run_id"))
    op.drop_table("findings")

    with op.batch_alter_table("run_steps", schema=None) as batch_op:
        batch_op.drop_column("pre_forward_us")
