"""Constant-time stats counters, the event log, caption cycles and end-to-end times.

Revision ID: 0002_core
Revises: 0001
Create Date: 2026-11-30

Counters of existing images are computed once from the images table here; from then on every
state change keeps them in step (``gateway.persistence.ledger``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_core"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("end_to_end_ms", sa.Float(), nullable=True))
    op.add_column("images", sa.Column("caption_cycles", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_images_status_created_at", "images", ["status", "created_at", "id"])
    op.create_index("ix_images_status_processing_ms", "images", ["status", "processing_ms"])
    op.create_index("ix_images_status_end_to_end_ms", "images", ["status", "end_to_end_ms"])
    op.create_table(
        "stat_counters",
        sa.Column("key", sa.String(48), primary_key=True),
        sa.Column("shard", sa.Integer(), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_events_image_id", "events", ["image_id"])
    op.create_index("ix_events_at", "events", ["at"])
    _count_existing_images()


def _count_existing_images() -> None:
    """Seed the counters from rows written before this revision (same keys as gateway.persistence.ledger)."""
    stages = ("decode", "metadata", "thumbnails", "caption")
    completed = "status = 'completed' AND processing_ms IS NOT NULL"  # constant SQL, no input
    selects = [
        "SELECT 'status.' || status, 0, COUNT(*) FROM images GROUP BY status",
        "SELECT 'caption.' || caption_status, 0, COUNT(*) FROM images GROUP BY caption_status",
        f"SELECT 'processing.sum', 0, SUM(processing_ms) FROM images WHERE {completed} HAVING COUNT(*) > 0",  # noqa: S608
        f"SELECT 'processing.n', 0, COUNT(*) FROM images WHERE {completed} HAVING COUNT(*) > 0",  # noqa: S608
    ]
    for stage in stages:
        present = f"FROM images WHERE {stage}_ms IS NOT NULL HAVING COUNT(*) > 0"
        selects.append(f"SELECT 'stage_sum.{stage}', 0, SUM({stage}_ms) {present}")
        selects.append(f"SELECT 'stage_n.{stage}', 0, COUNT(*) {present}")
    for query in selects:
        op.execute(f"INSERT INTO stat_counters (key, shard, value) {query}")
    _seed_processing_histogram()


def _seed_processing_histogram() -> None:
    from gateway.persistence.histogram import bucket_of  # the same buckets as the running code

    rows = op.get_bind().execute(
        sa.text("SELECT processing_ms FROM images WHERE status = 'completed' AND processing_ms IS NOT NULL")
    )
    buckets: dict[int, int] = {}
    for (duration_ms,) in rows:
        bucket = bucket_of(float(duration_ms))
        buckets[bucket] = buckets.get(bucket, 0) + 1
    table = sa.table("stat_counters", sa.column("key"), sa.column("shard"), sa.column("value"))
    if buckets:
        op.bulk_insert(table, [{"key": f"processing.h{b}", "shard": 0, "value": n} for b, n in buckets.items()])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("stat_counters")
    op.drop_index("ix_images_status_end_to_end_ms", "images")
    op.drop_index("ix_images_status_processing_ms", "images")
    op.drop_index("ix_images_status_created_at", "images")
    op.drop_column("images", "caption_cycles")
    op.drop_column("images", "end_to_end_ms")
