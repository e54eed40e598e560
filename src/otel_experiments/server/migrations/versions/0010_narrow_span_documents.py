"""Spans: the stored document leaves out the members the columns hold (trace_id, span_id,
name, start_ns, duration, status, parent_id), put back on read (``store.columns``).

A third of a document's bytes. Documents stored before stay whole (read as they are), so
the upgrade changes no row; the revision marks the format, so that an older server refuses
this database rather than serving documents without those members. The downgrade gives
every narrow document its members back.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("trace_id", "span_id", "name", "start_ns", "duration", "status", "parent_id")


def upgrade() -> None:
    pass


def downgrade() -> None:
    spans = sa.table("spans", *(sa.column(c) for c in ("seq", "doc", *_COLUMNS)))
    conn = op.get_bind()
    last = 0
    while True:  # in pages of seq: a big experiment's rows are not all held at once
        rows = conn.execute(sa.select(spans).where(spans.c.seq > last)
                            .order_by(spans.c.seq).limit(5000)).all()
        if not rows:
            return
        last = rows[-1].seq
        for row in rows:
            stored = json.loads(row.doc)
            if "span_id" in stored:
                continue  # whole already
            doc = {c: getattr(row, c) for c in _COLUMNS if c != "parent_id"}
            doc.update(meta=stored.pop("meta", {}), tags=stored.pop("tags", []))
            if row.parent_id is not None:
                doc["parent_id"] = row.parent_id
            doc.update(stored)
            conn.execute(spans.update().where(spans.c.seq == row.seq)
                         .values(doc=json.dumps(doc, separators=(",", ":"))))
