"""One spelling: profiler_windows.analysed_at becomes analyzed_at, status 'analysed' 'analyzed'.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 20:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(sa.text("UPDATE profiler_windows SET status = 'analysed' WHERE status = 'analyzed'"))
    with op.batch_alter_table("profiler_windows", schema=None) as batch_op:
        batch_op.alter_column("analyzed_at", new_column_name="analysed_at")
