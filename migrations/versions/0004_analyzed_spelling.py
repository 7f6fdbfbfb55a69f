"""One spelling: profiler_windows.analysed_at becomes analyzed_at, status 'analysed' 'analyzed';
and runs.findings_computed_at, when the run's stored findings were computed (NULL: never).

Times are timestamptz on Postgres and epoch seconds (REAL) on SQLite, as
monitor.store.schema.UtcDateTime maps them; frozen here so later schema edits never change what
this revision creates.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 20:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("profiler_windows", schema=None) as batch_op:
        batch_op.alter_column("analysed_at", new_column_name="analyzed_at")
    op.execute(sa.text("UPDATE profiler_windows SET status = 'analyzed' WHERE status = 'analysed'"))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("findings_computed_at", TIMESTAMP, nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("findings_computed_at")
    op.execute(sa.text("UPDATE profiler_windows SET status = 'analysed' WHERE status = 'analyzed'"))
    with op.batch_alter_table("profiler_windows", schema=None) as batch_op:
        batch_op.alter_column("analyzed_at", new_column_name="analysed_at")
