"""GenAI usage: token counts and model per span, totals per experiment and model.

``spans`` gains ``input_tokens``, ``output_tokens`` and ``model`` (NULL when a span carries
no usage: no existing row does, since spans could not carry ``attributes`` before this
revision, so there is nothing to backfill). ``usage_totals`` holds per experiment and model
the sums of every stored span carrying usage; ingest adds to it for newly stored spans only.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_MODEL_CHARS = 200  # schema.CATEGORY_INDEX_CHARS when this revision was written


def upgrade() -> None:
    with op.batch_alter_table("spans") as batch:
        batch.add_column(sa.Column("input_tokens", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("output_tokens", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("model", sa.String(_MODEL_CHARS), nullable=True))
    op.create_table(
        "usage_totals",
        sa.Column("experiment_id", sa.String(256), primary_key=True),
        sa.Column("model", sa.String(_MODEL_CHARS), primary_key=True),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("spans", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_totals")
    with op.batch_alter_table("spans") as batch:
        batch.drop_column("model")
        batch.drop_column("output_tokens")
        batch.drop_column("input_tokens")
