"""Identity columns on spans (user.id, organization.id) for filtering, backfilled from tags.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 1000


def _identity(doc: str) -> tuple[str | None, str | None]:
    try:
        tags = json.loads(doc).get("tags") or []
    except (ValueError, AttributeError):
        return None, None
    found: dict[str, str] = {}
    for tag in tags:
        if isinstance(tag, str):
            key, sep, value = tag.partition(":")
            if sep and key in ("user.id", "organization.id") and key not in found:
                found[key] = value[:256]
    return found.get("user.id"), found.get("organization.id")


def upgrade() -> None:
    with op.batch_alter_table("spans") as batch:
        batch.add_column(sa.Column("user_id", sa.String(256), nullable=True))
        batch.add_column(sa.Column("organization_id", sa.String(256), nullable=True))
    op.create_index("ix_spans_experiment_user", "spans", ["experiment_id", "user_id", "seq"])
    op.create_index("ix_spans_experiment_org", "spans", ["experiment_id", "organization_id", "seq"])

    spans = sa.table(
        "spans",
        sa.column("seq", sa.BigInteger),
        sa.column("doc", sa.Text),
        sa.column("user_id", sa.String),
        sa.column("organization_id", sa.String),
    )
    conn = op.get_bind()
    last = -1
    while True:
        rows = conn.execute(
            sa.select(spans.c.seq, spans.c.doc)
            .where(spans.c.seq > last)
            .order_by(spans.c.seq)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for seq, doc in rows:
            user_id, org_id = _identity(doc)
            if user_id is not None or org_id is not None:
                updates.append({"b_seq": seq, "user_id": user_id, "organization_id": org_id})
        if updates:
            conn.execute(
                spans.update()
                .where(spans.c.seq == sa.bindparam("b_seq"))
                .values(
                    user_id=sa.bindparam("user_id"), organization_id=sa.bindparam("organization_id")
                ),
                updates,
            )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_spans_experiment_org", "spans")
    op.drop_index("ix_spans_experiment_user", "spans")
    with op.batch_alter_table("spans") as batch:
        batch.drop_column("organization_id")
        batch.drop_column("user_id")
